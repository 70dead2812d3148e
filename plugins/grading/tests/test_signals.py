"""Signals aggregated from interactions: the same whether folded one event at a time or in one
streaming pass, in any order; refunds, margins and the day windows."""

from __future__ import annotations

from datetime import timedelta

from crmcore_grading import api
from crmcore_grading.settings import SignalSettings
from crmcore_grading.signals import Acc, Folder, Signals, Window, aggregate
from grading_helpers import add_customer, grading_of, log
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.converter import iso
from crmcore.testing import START

FOLDER = Folder(SignalSettings())
NOW = START + timedelta(days=400)
WINDOW = Window(NOW, 90, 30)

KINDS = [
    "purchase",
    "refund",
    "visit",
    "treatment",
    "referral",
    "event",
    "complaint",
    "feedback",
    "survey",
    "consultation",
    "note",
]

interaction = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["cus_a", "cus_b", "cus_c"]),
        "kind": st.sampled_from(KINDS),
        "occurred_at": st.integers(0, 400 * 24).map(lambda h: iso(START + timedelta(hours=h))),
        "amount": st.one_of(st.none(), st.floats(0, 10_000).map(lambda a: round(a, 2))),
        "satisfaction": st.one_of(st.none(), st.integers(1, 5)),
        "ref": st.one_of(st.none(), st.sampled_from(["cus_x", "cus_y", "cus_z"])),
        "ext": st.one_of(st.just({}), st.floats(0, 1).map(lambda m: {"grading": {"margin": m}})),
    }
)


@settings(max_examples=80, deadline=None)
@given(st.lists(interaction, max_size=40), st.randoms(use_true_random=False))
def test_folding_in_any_order_gives_the_same_signals(docs, rnd):
    batch, count = aggregate(docs, FOLDER, WINDOW)
    assert count == len(docs)
    shuffled = list(docs)
    rnd.shuffle(shuffled)
    one_by_one: dict[str, dict] = {}
    for doc in shuffled:  # as events do: load the stored form, fold one, store again
        acc = Acc.from_stored(one_by_one.get(doc["customer_id"]))
        acc.fold(doc, FOLDER, WINDOW)
        one_by_one[doc["customer_id"]] = acc.stored(WINDOW)
    assert {c: a.stored(WINDOW) for c, a in batch.items()} == {
        c: s for c, s in one_by_one.items() if s
    }


def doc(kind: str, days_ago: float, amount: float | None = None, **more) -> dict:
    return {
        "customer_id": "cus_a",
        "kind": kind,
        "amount": amount,
        "occurred_at": iso(NOW - timedelta(days=days_ago)),
        "ext": {},
        **more,
    }


def fold(*docs: dict) -> Signals:
    acc = Acc()
    for d in docs:
        acc.fold(d, FOLDER, WINDOW)
    return Signals(acc.stored(WINDOW))


def test_spend_is_net_of_refunds_and_profit_uses_margins():
    s = fold(
        doc("purchase", 10, 100.0, ext={"grading": {"margin": 0.25}}),
        doc("purchase", 5, 50.0),
        doc("refund", 1, 30.0),
    )
    assert s.spend == 120.0
    assert s.profit == 25.0 + 50.0 - 30.0
    assert s.purchases == 2
    assert fold(doc("refund", 1, 30.0)).spend == 0.0  # never below nothing


def test_counts_for_the_hospital_signals():
    s = fold(
        doc("visit", 40),
        doc("treatment", 30, 200.0),
        doc("purchase", 20, 10.0),
        doc("referral", 10, ref="cus_x"),
        doc("referral", 9, ref="cus_x"),
        doc("referral", 8, ref="cus_y"),
        doc("event", 7),
        doc("complaint", 6),
        doc("feedback", 5, satisfaction=5),
        doc("survey", 4, satisfaction=1),
        doc("feedback", 3, satisfaction=3),
        doc("consultation", 2),
    )
    assert (s.visits, s.items, s.purchases, s.activities) == (2, 2, 2, 3)
    assert (s.referrals, s.people_referred, s.events, s.complaints) == (3, 2, 1, 1)
    assert (s.feedback_pos, s.feedback_neg) == (1, 1)
    assert s.first_activity == NOW - timedelta(days=40)
    assert s.last_activity == NOW - timedelta(days=20)
    assert s.last_purchase == NOW - timedelta(days=20)


def test_callback_answers_are_feedback_and_an_unsatisfied_one_lowers_it():
    s = fold(
        doc("callback", 5, satisfaction=5),
        doc("callback", 4, ext={"followup": {"satisfied": False}}),  # no score said
        doc("callback", 3, satisfaction=5, ext={"followup": {"satisfied": False}}),
        doc("callback", 2, satisfaction=1, ext={"followup": {"satisfied": True}}),
        doc("callback", 1, ext={"followup": {"satisfied": None}}),
    )
    assert (s.feedback_pos, s.feedback_neg) == (2, 2)


def test_day_buckets_keep_only_what_the_windows_read():
    s = fold(
        doc("purchase", 200, 1000.0),
        doc("purchase", 150, 40.0),
        doc("purchase", 100, 60.0),
        doc("purchase", 10, 25.0),
        doc("complaint", 45),
        doc("complaint", 29),
    )
    assert s.spend == 1125.0
    assert list(s.data["spend_days"]) == [
        (NOW - timedelta(days=d)).date().isoformat() for d in (150, 100, 10)
    ]
    assert s.spend_between(WINDOW.recent_after, "9999-12-31") == 25.0
    assert s.spend_between(WINDOW.spend_cut, WINDOW.recent_after) == 100.0
    assert s.complaints == 2 and s.complaints_since(WINDOW.complaint_cut) == 1


def test_kinds_are_configurable():
    folder = Folder(
        SignalSettings(spend_kinds=["business"], visit_kinds=["visit"], item_kinds=["business"])
    )
    acc = Acc()
    acc.fold(doc("business", 3, 80.0), folder, WINDOW)
    assert not acc.fold(doc("purchase", 2, 99.0), folder, WINDOW)
    s = Signals(acc.stored(WINDOW))
    assert (s.spend, s.purchases, s.items) == (80.0, 1, 1)


def test_events_and_the_full_pass_agree_so_the_second_writes_nothing(grading_crm, clock):
    crm = grading_crm()
    a, b = add_customer(crm), add_customer(crm, name="Wang Fang")
    for day in range(12):
        clock.advance(days=3)
        log(crm, a, "purchase", amount=10.0 + day)
        log(crm, b, "visit")
        if day % 4 == 0:
            log(crm, b, "feedback", satisfaction=5)
            log(crm, a, "refund", amount=5.0)
    by_events = grading_of(crm, a)["signals"], grading_of(crm, b)["signals"]
    first = api.grade_all(crm, actor="nightly")
    assert (grading_of(crm, a)["signals"], grading_of(crm, b)["signals"]) == by_events
    versions = [crm.customers.get(c).version for c in (a, b)]
    second = api.grade_all(crm, actor="nightly")
    assert second.changed == 0 and first.customers == second.customers == 2
    assert [crm.customers.get(c).version for c in (a, b)] == versions


def test_customers_from_before_grading_started_are_rebuilt_on_their_first_event(make_crm, clock):
    settings = {"grading": {"schemes": ["pipeline", "rfm", "pyramid", "hospital"]}}
    storage = {"backend": "memory", "location": f"grading-signals-{id(clock)}"}
    try:
        with make_crm([], storage=storage) as bare:  # a stack without grading
            cid = add_customer(bare)
            for _ in range(3):
                log(bare, cid, "purchase", amount=100.0)
        clock.advance(days=1)
        crm = make_crm(["grading"], storage=storage, settings=settings)
        log(crm, cid, "purchase", amount=50.0)
        signals = Signals(grading_of(crm, cid)["signals"])
        assert (signals.purchases, signals.spend) == (4, 350.0)
    finally:
        from crmcore.storage.memory import MemoryStore

        MemoryStore.drop_shared(storage["location"])
