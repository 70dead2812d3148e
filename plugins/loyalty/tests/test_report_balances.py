"""The report's points figures (the dashboard's loyalty cards) come from the accounts' running
balances and the period's entries, and equal what a pass over the whole ledger gives, over
random histories and several windows (everyone, a team, a rep, periods, brief)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from crmcore_loyalty.records import ACCOUNTS, CLAWBACK, EARN, LEDGER, account_id
from crmcore_loyalty.reporting import FEW, balances, sections

from crmcore import ReportWindow
from crmcore.converter import iso

from .conftest import Kit
from .test_balance import SETTINGS, History

SECURITY = {
    "actors": {
        "ann": {"role": "agent", "team": "north"},
        "bo": {"role": "agent", "team": "north"},
        "cy": {"role": "agent", "team": "south"},
    }
}


def whole_ledger_figures(crm, now, window: ReportWindow, days: int) -> dict[str, int]:
    """The figures as the report computed them before balances: one pass over every entry."""
    since = window.since or now - timedelta(days=days)
    upper = window.until or now + timedelta(microseconds=1)
    counts = window.rep_filter(crm)
    owned = (
        None
        if window.everyone
        else {c.id for c in crm.customers.iter() if c.owner is not None and counts(c.owner)}
    )
    holders: Counter[str] = Counter()
    period: Counter[str] = Counter()
    shortfall = goodwill = 0
    first, end = iso(since), iso(upper)
    for doc in crm.collection(LEDGER).iter():
        if owned is not None and doc["customer_id"] not in owned:
            continue
        holders[doc["customer_id"]] += doc["points"]
        if first <= doc["at"] < end:
            period[doc["kind"]] += doc["points"]
            if doc["kind"] == CLAWBACK:
                shortfall += doc.get("shortfall") or 0
            if doc["kind"] == EARN and doc.get("reason") == "compensation":
                goodwill += doc["points"]
    return {
        "outstanding": sum(holders.values()),
        "members": sum(1 for p in holders.values() if p > 0),
        "earned": period["earn"],
        "goodwill": goodwill,
        "redeemed": -period["redeem"],
        "expired": -period["expire"],
        "clawed": -period["clawback"],
        "shortfall": shortfall,
        "adjusted": period["adjust"],
    }


def report_figures(loyalty, now, window: ReportWindow) -> dict[str, int]:
    points = next(s for s in sections(loyalty, now, window) if s.title == "Loyalty points")
    values = [row[1] for row in points.rows]
    names = ["outstanding", "value", "members", "earned", "goodwill", "redeemed", "expired",
             "clawed", "shortfall", "adjusted"]  # fmt: skip
    figures = dict(zip(names, values, strict=True))
    del figures["value"]
    return figures


@pytest.mark.parametrize("seed", range(5))
def test_the_points_figures_equal_a_pass_over_the_whole_ledger(make_crm, clock, seed):
    loyalty_settings = {**SETTINGS, "report_period_days": 7}
    kit = Kit(make_crm(["loyalty"], settings={"loyalty": loyalty_settings, "security": SECURITY}))
    rng = random.Random(seed)
    history = History(kit, clock, rng, owners=("ann", "bo", "cy", None))
    start = clock.now()
    for step in range(60):
        history.step()
        if step % 15 != 14:
            continue
        now = clock.now()
        middle = start + (now - start) / 2
        windows = [
            ReportWindow(),
            ReportWindow(brief=True),
            ReportWindow(since=start, until=middle),
            ReportWindow(since=middle, brief=True),
            ReportWindow(team="north"),
            ReportWindow(rep="cy", since=start),
            ReportWindow(rep="bo", until=middle, brief=True),
        ]
        for window in windows:
            expected = whole_ledger_figures(kit.crm, now, window, 7)
            assert report_figures(kit.loyalty, now, window) == expected, (seed, step, window)
    assert any(
        f > 0 for f in whole_ledger_figures(kit.crm, clock.now(), ReportWindow(), 7).values()
    )


def test_accounts_without_a_balance_are_read_from_their_ledger(kit, clock):
    ann, bo = kit.customer(), kit.customer("Bo")
    kit.buy(ann, 100)
    kit.buy(bo, 40)
    coll = kit.crm.store.collection(ACCOUNTS)
    old = dict(coll.get(account_id(ann.id)))
    del old["balance"]  # a store from before balances were kept
    coll.upsert_many([old])
    assert balances(kit.loyalty) == {ann.id: 100, bo.id: 40}
    assert report_figures(kit.loyalty, clock.now(), ReportWindow())["outstanding"] == 140


def test_a_store_not_rebuilt_yet_is_read_in_one_pass_with_the_same_figures(kit, clock):
    """More accounts without a balance than are worth reading one by one."""
    customers = [kit.customer(f"C{n}") for n in range(FEW + 5)]
    for n, customer in enumerate(customers):
        kit.buy(customer, 10 + n)
    coll = kit.crm.store.collection(ACCOUNTS)
    olds = []
    for customer in customers:
        old = dict(coll.get(account_id(customer.id)))
        del old["balance"]
        olds.append(old)
    coll.upsert_many(olds)
    assert balances(kit.loyalty) == {c.id: 10 + n for n, c in enumerate(customers)}
    expected = whole_ledger_figures(kit.crm, clock.now(), ReportWindow(), 30)
    assert report_figures(kit.loyalty, clock.now(), ReportWindow()) == expected


def test_everyones_holdings_equal_the_balances_through_merges_and_old_accounts(kit, clock):
    """``holdings`` (sums over the balance index) gives ``balances``'s figures: merged-away
    accounts (a chain of merges, a forgotten tombstone) and accounts keeping no balance."""
    from crmcore_loyalty.reporting import holdings

    crm = kit.crm
    rng = random.Random(7)
    people = [kit.customer(f"C{n}") for n in range(10)]

    def check():
        held = balances(kit.loyalty)
        assert holdings(kit.loyalty) == (sum(held.values()), len(held))
        figures = report_figures(kit.loyalty, clock.now(), ReportWindow(brief=True))
        assert (figures["outstanding"], figures["members"]) == holdings(kit.loyalty)

    for customer in people:
        for _ in range(rng.randint(0, 3)):
            kit.buy(customer, round(rng.uniform(5, 400), 2))
    kit.loyalty.redeem(people[3].id, 1, actor="t") if kit.loyalty.balance(people[3].id) else None
    check()
    crm.customers.merge(people[0].id, people[1].id, actor="admin")
    check()
    crm.customers.merge(people[2].id, people[0].id, actor="admin")  # a chain: 1 -> 0 -> 2
    kit.buy(people[2], 50)
    check()
    crm.customers.forget(people[1].id, actor="admin")  # the tombstone of a merge, erased
    check()
    coll = crm.store.collection(ACCOUNTS)
    for customer in (people[2], people[5]):  # accounts from before balances were kept
        old = dict(coll.get(account_id(customer.id)))
        del old["balance"]
        coll.upsert_many([old])
    check()
    held = balances(kit.loyalty)
    assert held[people[2].id] > 0 and people[0].id not in held and people[1].id not in held
