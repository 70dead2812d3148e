"""Derived fields (``CollectionSpec.derived``): data computed from other records, recorded by
the audit trail as a digest of its new value rather than its values before and after."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.stack import START, init_retail
from crmcore import ManualClock, hookimpl, open_crm
from crmcore.audit import changes, derived_tree, flat_changes, value_digest
from crmcore.errors import PluginError
from crmcore.storage import CollectionSpec
from crmcore.testing.audit import operations

SIGNALS = derived_tree(["ext.grading.signals"])


def test_a_derived_field_is_recorded_by_the_digest_of_its_new_value():
    before = {"id": "c1", "region": "North", "ext": {"grading": {"signals": {"n": 1}}}}
    after = {"id": "c1", "region": "South", "ext": {"grading": {"signals": {"n": 2}}}}
    diff = changes(before, after, frozenset(), SIGNALS)
    assert diff == {
        "region": ["North", "South"],
        "ext": {"grading": {"signals": value_digest({"n": 2})}},
    }
    assert flat_changes(diff) == ["ext.grading.signals", "region"]
    # without the declaration: both values, as before
    assert changes(before, after)["ext"] == {"grading": {"signals": {"n": [1, 2]}}}
    # an object holding a derived field that appears is shown inside it, not whole
    first = changes({"ext": {}}, {"ext": {"grading": {"signals": {"n": 1}}}}, derived=SIGNALS)
    assert first == {"ext": {"grading": {"signals": value_digest({"n": 1})}}}
    gone = changes({"ext": {"grading": {"signals": {"n": 1}, "grade": "A"}}}, {}, derived=SIGNALS)
    assert gone == {"ext": {"grading": {"signals": value_digest(None), "grade": ["A", None]}}}
    # a derived field that did not change is not recorded; personal fields stay masked
    same = changes(
        {**before, "name": "Ann"}, {**before, "name": "Bo"}, frozenset({"name"}), SIGNALS
    )
    assert same == {"name": ["***", "***"]}
    assert value_digest({"n": 2}) != value_digest({"n": 3})
    assert derived_tree(["ext.a", "ext.a.b", "c"]) == {"ext": {"a": True}, "c": True}


def test_the_retail_stack_records_its_derived_data_by_digest(tmp_path: Path):
    clock = ManualClock(START)
    with open_crm(init_retail(tmp_path / "retail"), clock=clock) as crm:
        assert crm.audit is not None
        c = crm.customers.add(actor="ann", name="Wang Fang", phone="+8613912345678")
        for _ in range(2):
            clock.advance(days=1)
            crm.interactions.log(actor="ann", customer_id=c.id, kind="purchase", amount=420.0)
        customer = crm.customers.get(c.id)
        last = operations(crm, collection="customers", op="update")[-1]
        signals = last["diff"]["ext"]["grading"]["signals"]
        assert signals == value_digest(customer.ext["grading"]["signals"])
        # loyalty's spend totals, on the account (written with the earn): by digest; the
        # accounts' balance is the ledger's sum but not declared derived: both values
        (stored,) = crm.store.collection("loyalty.accounts").find({"customer_id": c.id})
        account = operations(crm, collection="loyalty.accounts", op="update")[-1]
        assert account["diff"]["spend_micros"] == value_digest(stored["spend_micros"])
        assert account["diff"]["spend_top"] == value_digest(stored["spend_top"])
        assert isinstance(account["diff"]["balance"], list)
        assert crm.audit.verify().ok


class DerivedName:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("customers", derived=("name",))]


class DerivedOwnExt:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("customers", derived=("ext.nps.score",))]


def test_a_plugin_declares_derived_only_its_own_fields_of_the_core_records(make_crm):
    with pytest.raises(PluginError, match=r"derived field 'name' of 'customers'"):
        make_crm([("nps", DerivedName())])
    crm = make_crm([("nps", DerivedOwnExt())])
    c = crm.customers.add(actor="admin", name="Ann", ext={"nps": {"score": 7}})
    crm.customers.update(c.id, actor="admin", ext={"nps": {"score": 9}})
    (update,) = operations(crm, collection="customers", op="update")
    assert update["diff"]["ext"] == {"nps": {"score": value_digest(9)}}
