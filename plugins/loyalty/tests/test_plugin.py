"""The plugin as crmcore sees it: every hook it implements or offers, reports, the customer
page, export, permissions, and a simulated stretch of the demo."""

from __future__ import annotations

import inspect
import random
from datetime import timedelta

import pytest
from crmcore_loyalty import plugin
from crmcore_loyalty.records import EARN, LINKED, REFERRALS, REWARDED, Referral
from crmcore_loyalty.reporting import short_name

from crmcore import PermissionDenied, ReportSection, SummaryLine
from crmcore.contracts import LoyaltyContract
from crmcore.report import build_report

# Each hook the plugin implements, and the test file that exercises it.
HOOKS_TESTED = {
    "crm_settings": "test_settings.py",
    "crm_collections": "test_plugin.py::test_collections_and_kinds",
    "crm_kinds": "test_plugin.py::test_collections_and_kinds",
    "crm_customer_created": "test_referrals.py::test_every_new_customer_gets_a_short_…",
    "crm_customer_adding": "test_referrals.py::test_a_new_customer_is_written_once_with_…",
    "crm_interaction_logged": "test_earning_and_tiers.py, test_referrals.py, test_asks.py",
    "crm_interactions_replayed": "tests/test_history_batch.py (equal to the per-row replay)",
    "crm_replay_per_row": "tests/test_history_batch.py (referrals, refunds, recent events)",
    "crm_customers_merged": "test_referrals.py::test_merging_keeps_referrals_and_ledgers",
    "crm_tick": "test_expiry.py, test_asks.py, test_earning_and_tiers.py",
    "crm_customer_perks": "test_earning_and_tiers.py::test_perks_hook_answers_…",
    "crm_grade_changed": "test_earning_and_tiers.py::test_a_grading_tier_grants_a_…",
    "crm_complaint_resolved": "test_compensation.py",
    "crm_complaint_reopened": "test_compensation.py",
    "crm_award_points": "test_award_points_contract.py",
    "crm_cli_commands": "test_cli.py",
    "crm_api_routes": "test_api_routes.py",
    "crm_report_sections": "test_plugin.py::test_report_sections",
    "crm_customer_summary": "test_plugin.py::test_customer_summary",
    "crm_customer_records": "test_plugin.py::test_export_includes_referrals_made",
    "crm_simulate": "test_plugin.py::test_simulated_days_do_visible_work",
    "crm_customer_badges": "test_workspace_panel.py::test_the_workspace_hooks_answer",
    "crm_customers_badges": "test_workspace_panel.py::test_the_tier_badge_follows_the_account_…",
    "crm_customer_panels": "test_workspace_panel.py::test_the_workspace_hooks_answer",
    "crm_web_templates": "test_workspace_panel.py::test_the_workspace_hooks_answer",
    "crm_translations": "test_workspace_panel.py::test_the_workspace_hooks_answer, test_catalog.py",
}


def test_every_implemented_hook_is_listed_as_tested():
    implemented = {
        name
        for name, fn in inspect.getmembers(plugin, inspect.isfunction)
        if name.startswith("crm_")
    }
    assert implemented == set(HOOKS_TESTED)


def test_offered_hooks_are_the_contracts_declared_documented(make_crm):
    crm = make_crm(["loyalty"])
    for name in ("crm_tier_changed", "crm_customer_perks", "crm_award_points"):
        spec = getattr(crm.plugins.hook, name).spec
        assert spec is not None and spec.namespace is LoyaltyContract
        doc = inspect.getdoc(getattr(LoyaltyContract, name))
        assert doc and ("Every plugin" in doc or "first non-None" in doc)
    signature = inspect.signature(LoyaltyContract.crm_tier_changed)
    assert list(signature.parameters) == ["self", "crm", "customer", "old", "new", "actor"]


def test_collections_and_kinds(make_crm):
    crm = make_crm(["loyalty"])
    names = {spec.name for spec in crm.collection_specs()}
    assert {
        "loyalty.ledger",
        "loyalty.accounts",
        "loyalty.codes",
        "loyalty.referrals",
        "loyalty.cursors",
    } <= names
    ledger = next(s for s in crm.collection_specs() if s.name == "loyalty.ledger")
    assert any(ix.unique and ix.fields == (("key", 1),) for ix in ledger.indexes)
    assert {"referral_ask", "points_expiry"} <= crm.task_kinds


@pytest.fixture
def busy(kit_for, clock):
    kit = kit_for({"asks": {"enabled": True}})
    ann = kit.customer("Ann", owner="bo")
    bob = kit.customer("Bob")
    kit.buy(ann, 2500)
    kit.loyalty.redeem(ann.id, 300, actor="t")
    code = kit.crm.customers.get(ann.id).ext["loyalty"]["referral_code"]
    kit.loyalty.link(bob.id, code, actor="t")
    kit.buy(bob, 100)
    return kit, ann, bob


def test_report_sections(busy, clock):
    kit, ann, _bob = busy
    sections = {
        s.title: s for s in build_report(kit.crm) if isinstance(s, ReportSection) and s.order >= 60
    }
    points = dict(sections["Loyalty points"].rows)
    assert points["points outstanding"] == 2500 - 300 + 500 + 100 + 200
    assert points["value outstanding"] == 30.0
    assert points["redeemed, last 30 days"] == 300
    tiers = {row[0]: row[1] for row in sections["Loyalty tiers"].rows}
    assert (tiers["gold"], tiers["(no tier)"]) == (1, 1)
    referrals = dict(sections["Referrals (old brings new)"].rows)
    assert referrals["rewarded (qualified)"] == 1
    assert referrals["points paid to referrers (net of clawbacks)"] == 500
    assert referrals["'ask for a referral' tasks, last 30 days"] == 2
    # by name (shortened), not by id
    assert sections["Top referrers"].rows[0][:2] == (short_name(ann.name), 1)
    [top] = sections["Top referrers"].charts
    assert top.x == (short_name(ann.name),) and top.series[0].values == (1,)
    assert short_name("Fang Li") == "Fang L." and short_name("王小明") == "王**"
    assert short_name("Ann") == "Ann"
    clock.advance(days=31)
    later = {s.title: dict(s.rows) for s in build_report(kit.crm) if s.order == 60}
    assert later["Loyalty points"]["redeemed, last 30 days"] == 0


def test_report_window_narrows_points_to_a_period_and_a_rep(busy, clock):
    from crmcore import ReportWindow

    kit, _ann, _bob = busy

    def points(window):
        [section] = [s for s in build_report(kit.crm, window=window) if s.title == "Loyalty points"]
        return dict(section.rows)

    # ann's owner is bo; bob has no owner
    assert points(ReportWindow(rep="bo"))["points outstanding"] == 2500 - 300 + 500
    assert points(ReportWindow(rep="bo"))["redeemed, last 30 days"] == 300
    clock.advance(days=31)
    old = points(ReportWindow(since=clock.now() - timedelta(days=40)))
    assert (old["redeemed, in the period"], old["points outstanding"]) == (300, 3000)


def test_customer_summary(busy):
    kit, ann, bob = busy
    lines = kit.crm.plugins.flat(
        "crm_customer_summary", crm=kit.crm, customer=kit.crm.customers.get(ann.id)
    )
    assert all(isinstance(line, SummaryLine) for line in lines)
    text = {line.label: line.text for line in lines}
    assert text["Loyalty"] == (
        "2,700 points; gold since 2026-01-05, review 2027-01-05; 2,500 to platinum"
    )
    assert text["Perks"] == "exclusive_offers, priority_handling"
    assert text["Referral"].endswith("brought 1 (1 rewarded)")
    bob_text = {
        line.label: line.text
        for line in kit.crm.plugins.flat(
            "crm_customer_summary", crm=kit.crm, customer=kit.crm.customers.get(bob.id)
        )
    }
    assert bob_text["Referral"].endswith(f"referred by {ann.id}")
    assert "Perks" not in bob_text


def test_export_includes_referrals_made(busy):
    kit, ann, bob = busy
    records = kit.crm.plugins.flat(
        "crm_customer_records", crm=kit.crm, customer=kit.crm.customers.get(ann.id)
    )
    [exported] = [r for r in records if "loyalty" in r]
    assert [r["referred_id"] for r in exported["loyalty"]["referrals_made"]] == [bob.id]


def test_actions_are_checked_against_the_permission_policy(make_crm):
    crm = make_crm(
        ["loyalty"],
        settings={
            "security": {
                "enforce": True,
                "actors": {
                    "bo": {"role": "agent"},
                    "cy": {"role": "agent"},
                    "audi": {"role": "auditor"},
                },
            }
        },
    )
    from crmcore_loyalty import Loyalty

    loyalty = Loyalty(crm)
    ann = crm.customers.add(actor="system", name="Ann", owner="bo")
    crm.interactions.log(actor="system", customer_id=ann.id, kind="purchase", amount=100)
    loyalty.redeem(ann.id, 10, actor="bo")
    with pytest.raises(PermissionDenied, match=r"cy .*may not redeem"):
        loyalty.redeem(ann.id, 10, actor="cy")
    with pytest.raises(PermissionDenied):
        loyalty.adjust(ann.id, 10, actor="audi", reason="x")
    assert loyalty.balance(ann.id, actor="audi") == 90
    with pytest.raises(PermissionDenied):
        loyalty.history(ann.id, actor="cy")
    assert loyalty.balance(ann.id) == 90


def test_simulated_days_do_visible_work(kit_for, clock):
    kit = kit_for({})
    crm = kit.crm
    rng = random.Random(3)
    people = [kit.customer(f"P {i}", owner="bo") for i in range(30)]
    for _day in range(25):
        now = clock.now()
        for person in rng.sample(people, 8):
            kit.buy(person, round(rng.uniform(20, 400), 2))
        crm.plugins.call("crm_simulate", crm=crm, now=now, rng=rng, actor="demo-staff")
        crm.tick("demo")
        clock.advance(days=1)
    referrals = crm.records(REFERRALS, Referral).find()
    assert len(referrals) >= 10
    assert {r.status for r in referrals} >= {LINKED, REWARDED}
    kinds = {e.kind for e in kit.entries()}
    assert {EARN, "redeem", "clawback"} <= kinds
    assert crm.tasks.count({"kind": "referral_ask"}) > 0
    assert crm.interactions.count({"kind": "referral"}) == len(referrals)
    for customer in crm.customers.iter():
        state = kit.loyalty.ledger.state(customer.id)
        assert state.balance >= 0
        assert state.balance == sum(e.points for e in kit.entries(customer))
