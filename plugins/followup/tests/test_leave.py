"""``crm reps leave``: a departing rep's customers, open tasks and open tickets move, balanced
by ability, audited (DOMAIN §9: service must not change with staff turnover)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from crmcore_followup.leave import leave
from crmcore_followup.reps import Roster

from crmcore import NotFoundError, ValidationError
from crmcore.testing.audit import operations


def roster(crm, *reps: tuple[str, int]) -> None:
    for name, ability in reps:
        Roster(crm).add(name, actor="admin", ability=ability)


def customers_of(crm, owner: str) -> list[str]:
    return [c.id for c in crm.customers.find({"owner": owner})]


def test_rebalance_shares_customers_by_ability_and_moves_every_open_task(crm):
    roster(crm, ("ann", 3), ("bo", 1), ("cy", 3))
    mine = [crm.customers.add(actor="admin", name=f"C{i}", owner="ann").id for i in range(8)]
    other = crm.tasks.create(
        actor="admin",
        kind="other",
        title="send the contract",
        due_at=crm.now(),
        assignee="ann",
        customer_id=mine[0],
    )
    done = leave(crm, "ann", actor="mgr", rebalance=True)
    owners = Counter(crm.customers.get(c).owner for c in mine)
    assert owners == Counter({"cy": 6, "bo": 2})  # 3:1 ability, fewest per unit first
    assert done.customers == {"cy": 6, "bo": 2} and done.customers_moved == 8
    assert crm.tasks.count({"assignee": "ann", "status": "open"}) == 0
    assert crm.tasks.get(other.id).assignee == crm.customers.get(mine[0]).owner
    assert done.tasks >= 9  # the 8 first contacts and the contract
    with pytest.raises(NotFoundError):
        Roster(crm).get("ann")
    # the new owners' first contact within the week (a handed-over customer is new to them)
    for customer in mine:
        [first] = crm.tasks.find(
            {"kind": "first_contact", "customer_id": customer, "status": "open"}
        )
        assert first.assignee == crm.customers.get(customer).owner


def test_to_hands_everything_to_one_rep_audited(crm):
    roster(crm, ("ann", 3), ("bo", 3))
    mine = [crm.customers.add(actor="admin", name=f"C{i}", owner="ann").id for i in range(3)]
    loose = crm.tasks.create(
        actor="admin", kind="other", title="chase the invoice", due_at=crm.now(), assignee="ann"
    )
    done = leave(crm, "ann", actor="mgr", to="bo")
    assert set(customers_of(crm, "bo")) == set(mine)
    assert crm.tasks.get(loose.id).assignee == "bo"
    assert (done.customers, done.tasks) == ({"bo": 3}, 4)
    trail = operations(crm, collection="customers", op="update")
    handed = [e for e in trail if e["actor"] == "mgr"]
    assert len(handed) == 3
    assert all(e["diff"]["owner"] == ["ann", "bo"] for e in handed), handed[0]["diff"]
    reps = operations(crm, collection="followup.reps", op="delete")
    assert [e["actor"] for e in reps] == ["mgr"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "--to REP or --rebalance"),
        ({"to": "bo", "rebalance": True}, "--to REP or --rebalance"),
        ({"to": "ann"}, "cannot hand over to themselves"),
        ({"to": "off"}, "off is unavailable"),
    ],
)
def test_wrong_requests_write_nothing(crm, kwargs, message):
    roster(crm, ("ann", 3), ("bo", 3))
    Roster(crm).add("off", actor="admin", available=False)
    customer = crm.customers.add(actor="admin", name="C", owner="ann")
    with pytest.raises(ValidationError, match=message):
        leave(crm, "ann", actor="mgr", **kwargs)
    assert crm.customers.get(customer.id).owner == "ann"
    assert Roster(crm).get("ann").available


def test_rebalance_needs_someone_to_share_with(crm):
    roster(crm, ("ann", 3))
    with pytest.raises(ValidationError, match="no other available rep"):
        leave(crm, "ann", actor="mgr", rebalance=True)
    with pytest.raises(NotFoundError, match="no rep named 'zed'"):
        leave(crm, "zed", actor="mgr", rebalance=True)


def test_open_tickets_follow_the_customer(make_crm):
    crm = make_crm(["followup", "complaints"])
    from crmcore_complaints.api import Complaints

    roster(crm, ("ann", 3), ("bo", 3), ("cy", 3))
    api = Complaints(crm)
    mine = crm.customers.add(actor="admin", name="Mine", owner="ann")
    theirs = crm.customers.add(actor="admin", name="Theirs", owner="cy")
    open_mine = api.open(actor="ann", customer_id=mine.id, content="late", category="service")
    open_theirs = api.open(
        actor="ann", customer_id=theirs.id, content="rude", category="service"
    )  # ann took cy's customer's complaint
    closed = api.open(actor="ann", customer_id=mine.id, content="x", category="service")
    closed = api.judge(closed, actor="ann", valid=False, explanation="not ours")
    done = leave(crm, "ann", actor="mgr", to="bo")
    assert api.get(open_mine.id).owner == "bo"
    assert api.get(open_theirs.id).owner == "cy"
    assert api.get(closed.id).owner == "ann"  # closed history stays as it was
    assert done.other == 2
    [moved] = [t for t in api.history(open_theirs.id) if t.action == "handed_over"]
    assert (moved.actor, moved.details) == ("mgr", {"from": "ann", "to": "cy", "fields": ["owner"]})


def test_cli_leave(crm_cli):
    cli = crm_cli("followup")
    for name in ("ann", "bo"):
        assert cli("--as", "admin", "reps", "add", name)[0] == 0
    crm = cli.open()
    ids = [crm.customers.add(actor="admin", name=f"C{i}", owner="ann").id for i in range(2)]
    crm.close()
    code, out, err = cli("--as", "mgr", "--json", "reps", "leave", "ann", "--to", "bo")
    assert code == 0, err
    assert json.loads(out)["customers"] == {"bo": 2}
    crm = cli.open()
    assert {crm.customers.get(i).owner for i in ids} == {"bo"}
    crm.close()
    code, _out, err = cli("--as", "mgr", "reps", "leave", "bo")
    assert code != 0
    assert err.strip().splitlines() == ["error: say where the work goes: --to REP or --rebalance"]
