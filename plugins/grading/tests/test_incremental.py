"""``grade_all`` continues from the last run's watermark: the same grades, reasons and signals as
a full rebuild, every interaction counted once, and a full rebuild whenever the store changed
in a way the watermark cannot account for."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from crmcore_grading import Facts, Grade, GradingScheme, Scheme, api
from crmcore_grading.engine import LOOKBACK_DAYS, engine_for
from crmcore_grading.records import POPULATION, STATE, WATERMARK
from crmcore_grading.signals import Signals, canonical
from grading_helpers import ALL_SCHEMES, add_customer, grading_of, log
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmcore import ManualClock, hookimpl
from crmcore.converter import to_doc
from crmcore.entities import Interaction
from crmcore.storage.memory import MemoryStore
from crmcore.testing import START, make_test_crm

GRADING = {"schemes": list(ALL_SCHEMES)}


def state_of(crm) -> dict[str, Any]:
    """Every active customer's ext["grading"] (signals in canonical form) and the cut-offs."""
    window = engine_for(crm).window(crm.now())
    out: dict[str, Any] = {}
    for customer in crm.customers.iter():
        grading = dict(customer.ext.get("grading") or {})
        grading["signals"] = canonical(grading.get("signals"), window)
        out[customer.id] = grading
    out["cutoffs"] = crm.collection(STATE).get(POPULATION)["cutoffs"]
    return out


def assert_same_as_rebuild(crm) -> None:
    """A full rebuild right after finds nothing to change."""
    before = state_of(crm)
    full = api.grade_all(crm, actor="check", rebuild=True)
    assert full.full_rebuild and full.rebuild_reason == "asked for"
    assert (full.changed, full.grade_changes, full.churn_rises) == (0, 0, 0)
    assert state_of(crm) == before


@pytest.fixture
def shared() -> Iterator[dict[str, str]]:
    """Storage several CRMs in one test open (with different plugins or settings)."""
    location = f"grading-incremental-{uuid.uuid4()}"
    yield {"backend": "memory", "location": location}
    MemoryStore.drop_shared(location)


def old_id(prefix: str) -> str:
    """An id older than any minted in these tests (``new_id`` never goes back in time within
    a process; a restore or a raw import from elsewhere brings such ids)."""
    return prefix + "0" * 10 + uuid.uuid4().hex[:16].upper()


def old_interaction(customer_id: str) -> dict[str, Any]:
    when = START - timedelta(days=30)
    return to_doc(
        Interaction(
            id=old_id("int_"),
            customer_id=customer_id,
            kind="purchase",
            occurred_at=when,
            created_at=when,
            created_by="import",
            amount=40.0,
        )
    )


# -- random histories ------------------------------------------------------------------------

KINDS = [
    "purchase",
    "refund",
    "visit",
    "treatment",
    "referral",
    "event",
    "complaint",
    "feedback",
    "consultation",
]

step = st.one_of(
    st.tuples(
        st.just("log"),
        st.integers(0, 5),
        st.sampled_from(KINDS),
        st.floats(1, 500).map(lambda a: round(a, 2)),
        # how long before now it occurred: mostly now, sometimes back-dated past the
        # look-back (found by the id scan) or out of the day windows altogether
        st.one_of(st.just(0), st.integers(0, 24 * 400)),
    ),
    st.tuples(st.just("advance"), st.integers(1, 24 * 120)),
    st.tuples(st.just("customer")),
    st.tuples(st.just("grade")),
    # merge the customer at the second index into the one at the first; with grading loaded
    # or by a process without it
    st.tuples(st.just("merge"), st.integers(0, 5), st.integers(0, 5), st.booleans()),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(step, min_size=1, max_size=30))
# a merge by a process without grading between two runs (the last run is always added)
@example([("log", 1, "purchase", 30.0, 0), ("grade",), ("merge", 0, 1, False)])
def test_incremental_runs_give_what_a_full_rebuild_gives(steps):
    clock = ManualClock(START)
    storage = {"backend": "memory", "location": f"grading-history-{uuid.uuid4()}"}
    crm = make_test_crm(["grading"], settings={"grading": GRADING}, clock=clock, storage=storage)
    bare = make_test_crm([], clock=clock, storage=storage)
    try:
        ids = [add_customer(crm, name=f"Customer {i}") for i in range(3)]
        graded = False
        for op in [*steps, ("grade",)]:
            if op[0] == "log":
                _, who, kind, amount, back = op
                fields: dict[str, Any] = (
                    {"amount": amount} if kind in ("purchase", "refund", "treatment") else {}
                )
                if kind == "feedback":
                    fields["satisfaction"] = 1 + int(amount) % 5
                if kind == "referral":
                    fields["ref"] = ids[int(amount) % len(ids)]
                log(crm, ids[who % len(ids)], kind, clock.now() - timedelta(hours=back), **fields)
            elif op[0] == "advance":
                clock.advance(hours=op[1])
            elif op[0] == "customer":
                ids.append(add_customer(crm, name=f"Customer {len(ids)}"))
            elif op[0] == "merge":
                _, keep, dup, loaded = op
                keep_id, dup_id = ids[keep % len(ids)], ids[dup % len(ids)]
                if keep_id != dup_id and len(ids) > 1:
                    (crm if loaded else bare).customers.merge(keep_id, dup_id, actor="ann")
                    ids.remove(dup_id)
            else:
                report = api.grade_all(crm, actor="nightly")
                assert report.full_rebuild is not graded  # only the first run rebuilds
                assert_same_as_rebuild(crm)
                graded = True
    finally:
        bare.close()
        crm.close()
        MemoryStore.drop_shared(storage["location"])


# -- what an incremental run reads and counts -----------------------------------------------


def test_interactions_logged_between_runs_are_counted_exactly_once(grading_crm, clock):
    crm = grading_crm()
    a, b, c = (add_customer(crm, name=n) for n in ("Ann", "Bo", "Chen"))
    for cid in (a, b, c):
        log(crm, cid, "purchase", amount=10.0)
    first = api.grade_all(crm, actor="nightly")
    assert first.full_rebuild and first.rebuild_reason == "no earlier run to continue from"
    clock.advance(days=1)
    log(crm, a, "purchase", amount=25.0)  # folded into a's stored signals by the event
    log(crm, a, "visit")
    log(crm, b, "purchase", amount=5.0)
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.rebuild_reason == ""
    assert report.signals_rebuilt == 2  # a and b; c keeps its stored signals
    assert report.interactions == 6
    spend = {cid: Signals(grading_of(crm, cid)["signals"]) for cid in (a, b, c)}
    assert (spend[a].purchases, spend[a].spend, spend[a].visits) == (2, 35.0, 1)
    assert (spend[b].purchases, spend[b].spend) == (2, 15.0)
    assert (spend[c].purchases, spend[c].spend) == (1, 10.0)
    again = api.grade_all(crm, actor="nightly")  # the watermark moved on
    assert not again.full_rebuild and again.signals_rebuilt == 0
    assert again.interactions_read == 0 and again.changed == 0
    assert_same_as_rebuild(crm)


def test_the_window_moving_months_forward_gives_what_a_rebuild_gives(grading_crm, clock):
    crm = grading_crm()
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(4)]
    for day in range(60):
        log(crm, ids[day % 4], "purchase", amount=10.0 + day)
        if day % 9 == 0:
            log(crm, ids[day % 3], "complaint")
        clock.advance(days=1)
    api.grade_all(crm, actor="nightly")
    days_before = {cid: dict(grading_of(crm, cid)["signals"].get("spend_days", {})) for cid in ids}
    clock.advance(days=150)  # most day buckets fall out of the windows
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 0
    window = engine_for(crm).window(clock.now())
    for cid in ids:
        kept = canonical(grading_of(crm, cid)["signals"], window).get("spend_days", {})
        assert set(kept) < set(days_before[cid])  # the re-windowing dropped buckets
    assert_same_as_rebuild(crm)


def test_back_dated_interactions_are_found_past_the_look_back(grading_crm, clock):
    crm = grading_crm()
    a, b = add_customer(crm), add_customer(crm, name="Bo")
    log(crm, a, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=1)
    log(crm, b, "purchase", clock.now() - timedelta(days=LOOKBACK_DAYS + 30), amount=70.0)
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert Signals(grading_of(crm, b)["signals"]).spend == 70.0
    assert_same_as_rebuild(crm)


def test_new_customers_have_their_signals_rebuilt_whatever_they_carry(grading_crm, clock):
    crm = grading_crm()
    a = add_customer(crm)
    log(crm, a, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    bogus = {"grading": {"signals": {"n": 9, "purchases": 9, "spend": 99900}}}
    b = crm.customers.add(actor="ann", name="Imported", ext=bogus).id
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert grading_of(crm, b).get("signals", {}) == {}
    assert_same_as_rebuild(crm)


def test_progress_wraps_each_incremental_pass(grading_crm, clock):
    crm = grading_crm()
    cid = add_customer(crm)
    api.grade_all(crm, actor="nightly")
    log(crm, cid, "purchase", amount=10.0)
    seen = []

    def bar(items, total, description):
        seen.append((description, total))
        return items

    api.grade_all(crm, actor="nightly", progress=bar)
    assert seen == [
        ("reading customers", 1),
        ("reading new interactions", None),
        ("rebuilding signals", 1),
        ("grading", 1),
    ]


def test_the_worker_continues_from_the_watermark(grading_crm, clock):
    crm = grading_crm({"population_interval_hours": 24})
    cid = add_customer(crm)
    log(crm, cid, "purchase", amount=10.0)
    engine = engine_for(crm)
    assert engine.tick(clock.now(), "w1").full_rebuild
    clock.advance(days=1)
    log(crm, cid, "purchase", amount=15.0)
    report = engine.tick(clock.now(), "w1")
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert Signals(grading_of(crm, cid)["signals"]).spend == 25.0


def test_the_embedded_store_finds_new_interactions_through_its_indexes(make_crm, clock, tmp_path):
    pytest.importorskip("crmcore_storage_tinydb")
    crm = make_crm(
        ["storage_tinydb", "grading"],
        settings={"grading": GRADING},
        storage={"backend": "tinydb", "location": str(tmp_path / "crm")},
    )
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(5)]
    for i, cid in enumerate(ids):
        log(crm, cid, "purchase", clock.now() - timedelta(days=40 * i), amount=10.0 * (i + 1))
    api.grade_all(crm, actor="nightly")
    clock.advance(days=1)
    log(crm, ids[0], "visit")
    log(crm, ids[1], "purchase", clock.now() - timedelta(days=2), amount=5.0)
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 2
    assert report.interactions_read == 2 + 4  # the two new ones, then the two customers'
    assert Signals(grading_of(crm, ids[1])["signals"]).spend == 25.0
    assert_same_as_rebuild(crm)
    clock.advance(days=1)
    log(crm, ids[2], "purchase", clock.now() - timedelta(days=LOOKBACK_DAYS + 60), amount=1.0)
    report = api.grade_all(crm, actor="nightly")  # not in the index probe: the id scan
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert Signals(grading_of(crm, ids[2])["signals"]).spend == 31.0
    raw = crm.collection("interactions")
    raw.delete(raw.find({"customer_id": ids[3]})[0]["id"])
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild and "removed" in report.rebuild_reason
    assert grading_of(crm, ids[3]).get("signals", {}) == {}
    assert_same_as_rebuild(crm)


# -- falling back to a full rebuild ----------------------------------------------------------


def test_a_deleted_interaction_makes_the_next_run_a_full_rebuild(grading_crm):
    crm = grading_crm()
    a, b = add_customer(crm), add_customer(crm, name="Bo")
    log(crm, a, "purchase", amount=10.0)
    log(crm, a, "purchase", amount=20.0)
    log(crm, b, "purchase", amount=5.0)
    api.grade_all(crm, actor="nightly")
    raw = crm.collection("interactions")
    gone = raw.find({"customer_id": a, "amount": 20.0})[0]
    raw.delete(gone["id"])
    log(crm, b, "visit")  # one new interaction: the count alone would still look right
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild
    assert report.rebuild_reason == (
        "interactions were removed, or added with ids older than the last run's"
    )
    assert Signals(grading_of(crm, a)["signals"]).spend == 10.0
    assert not api.grade_all(crm, actor="nightly").full_rebuild  # a new watermark
    assert_same_as_rebuild(crm)


def test_an_interaction_imported_with_an_old_id_makes_a_full_rebuild(grading_crm, clock):
    crm = grading_crm()
    a = add_customer(crm)
    log(crm, a, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=1)
    result = crm.collection("interactions").import_raw([{**old_interaction(a), "version": 1}])
    assert result.ok
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild and "older than the last run's" in report.rebuild_reason
    assert Signals(grading_of(crm, a)["signals"]).spend == 50.0
    assert_same_as_rebuild(crm)


def test_a_customer_imported_with_an_old_id_makes_a_full_rebuild(grading_crm, clock):
    crm = grading_crm()
    a = add_customer(crm)
    log(crm, a, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    old = to_doc(crm.customers.validate(name="Restored"))
    old.update(
        id=old_id("cus_"),
        version=1,
        ext={"grading": {"signals": {"n": 5, "purchases": 5, "spend": 50000}}},
    )
    assert crm.collection("customers").import_raw([old]).ok
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild and report.rebuild_reason == (
        "customer records were removed, or added with old ids"
    )
    assert grading_of(crm, old["id"]).get("signals", {}) == {}
    assert_same_as_rebuild(crm)


def test_a_merge_rebuilds_the_kept_customer_only(grading_crm, clock):
    crm = grading_crm()
    keep, dup, other = (add_customer(crm, name=n) for n in ("Li", "Li (2)", "Bo"))
    for cid, amount in ((keep, 10.0), (dup, 30.0), (other, 7.0)):
        log(crm, cid, "purchase", amount=amount)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=1)
    crm.customers.merge(keep, dup, actor="ann")
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert Signals(grading_of(crm, keep)["signals"]).spend == 40.0
    assert_same_as_rebuild(crm)


def test_a_merge_made_without_grading_loaded_is_caught(make_crm, shared, clock):
    crm = make_crm(["grading"], storage=shared, settings={"grading": GRADING})
    keep, dup = add_customer(crm), add_customer(crm, name="Li (2)")
    add_customer(crm, name="Bo")  # not merged: keeps its stored signals
    log(crm, keep, "purchase", amount=10.0)
    log(crm, dup, "purchase", amount=30.0)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=3)
    bare = make_crm([], storage=shared)  # no grading: nothing rebuilds the kept customer
    bare.customers.merge(keep, dup, actor="ann")
    assert Signals(grading_of(crm, keep)["signals"]).spend == 10.0  # stale until re-graded
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert Signals(grading_of(crm, keep)["signals"]).spend == 40.0
    assert_same_as_rebuild(crm)


def test_a_chain_of_merges_rebuilds_the_customer_at_its_end(make_crm, shared, clock):
    crm = make_crm(["grading"], storage=shared, settings={"grading": GRADING})
    a, b, c = (add_customer(crm, name=n) for n in ("A", "B", "C"))
    for cid, amount in ((a, 1.0), (b, 2.0), (c, 4.0)):
        log(crm, cid, "purchase", amount=amount)
    api.grade_all(crm, actor="nightly")
    bare = make_crm([], storage=shared)
    bare.customers.merge(b, a, actor="ann")  # a -> b, then b -> c
    bare.customers.merge(c, b, actor="ann")
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 1
    assert Signals(grading_of(crm, c)["signals"]).spend == 7.0
    assert_same_as_rebuild(crm)


def test_merges_the_recent_tombstones_do_not_account_for_make_a_full_rebuild(
    make_crm, shared, clock
):
    crm = make_crm(["grading"], storage=shared, settings={"grading": GRADING})
    keep, dup = add_customer(crm), add_customer(crm, name="Li (2)")
    log(crm, dup, "purchase", amount=30.0)
    api.grade_all(crm, actor="nightly")
    bare = make_crm([], storage=shared, clock=ManualClock(clock.now() - timedelta(days=30)))
    bare.customers.merge(keep, dup, actor="ann")  # a process whose clock is a month behind
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild and report.rebuild_reason == (
        "customers were merged and the merges since the last run cannot be told apart"
    )
    assert Signals(grading_of(crm, keep)["signals"]).spend == 30.0
    assert_same_as_rebuild(crm)


@pytest.mark.parametrize(
    "changed",
    [
        {"signals": {"default_margin": 0.5}},
        {"signals": {"spend_kinds": ["purchase"]}},
        {"churn": {"spend_window_days": 120}},
    ],
)
def test_changed_signal_settings_make_a_full_rebuild(make_crm, shared, clock, changed):
    crm = make_crm(["grading"], storage=shared, settings={"grading": GRADING})
    cid = add_customer(crm)
    log(crm, cid, "purchase", amount=10.0)
    log(crm, cid, "treatment", amount=20.0)
    api.grade_all(crm, actor="nightly")
    assert not api.grade_all(crm, actor="nightly").full_rebuild
    other = make_crm(["grading"], storage=shared, settings={"grading": {**GRADING, **changed}})
    report = api.grade_all(other, actor="nightly")
    assert report.full_rebuild
    assert report.rebuild_reason == "the settings that shape signals changed"
    assert_same_as_rebuild(other)
    signals = Signals(grading_of(other, cid)["signals"])
    if "default_margin" in changed.get("signals", {}):
        assert signals.profit == 15.0
    if "spend_kinds" in changed.get("signals", {}):
        assert signals.spend == 10.0


def test_other_settings_do_not_force_a_rebuild(make_crm, shared, clock):
    crm = make_crm(["grading"], storage=shared, settings={"grading": GRADING})
    log(crm, add_customer(crm), "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    other = make_crm(
        ["grading"],
        storage=shared,
        settings={
            "grading": {
                "schemes": ["pipeline", "rfm"],
                "rfm": {"measure": "profit"},
                "write_batch": 7,
            }
        },
    )
    assert not api.grade_all(other, actor="nightly").full_rebuild


def test_grading_as_of_an_earlier_day_makes_a_full_rebuild(grading_crm, clock):
    crm = grading_crm()
    cid = add_customer(crm)
    log(crm, cid, "purchase", amount=10.0)
    clock.advance(days=10)
    api.grade_all(crm, actor="nightly")
    report = api.grade_all(crm, actor="nightly", now=clock.now() - timedelta(days=3))
    assert report.full_rebuild
    assert report.rebuild_reason == "grading as of a day before the last run"
    assert not api.grade_all(crm, actor="nightly", now=clock.now()).full_rebuild


def test_a_lost_or_damaged_watermark_makes_a_full_rebuild(grading_crm):
    crm = grading_crm()
    log(crm, add_customer(crm), "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    state = crm.collection(STATE)
    mark = state.get(WATERMARK)
    state.update(WATERMARK, {"interactions": "many"}, expected_version=mark["version"])
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild and report.rebuild_reason == "no earlier run to continue from"
    assert state.get(WATERMARK)["interactions"] == 1


def test_rebuild_can_be_asked_for(grading_crm):
    crm = grading_crm()
    log(crm, add_customer(crm), "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    report = api.grade_all(crm, actor="nightly", rebuild=True)
    assert report.full_rebuild and report.rebuild_reason == "asked for"
    assert report.signals_rebuilt == 1 and report.interactions_read == 1


def test_the_cli_says_which_it_did_and_takes_rebuild(crm_cli):
    cli = crm_cli("grading")

    def ok(*args: str) -> str:
        code, out, err = cli(*args)
        assert code == 0, err
        return out

    cid = json.loads(ok("--json", "customer", "add", "--name", "Ann"))["id"]
    ok("log", cid, "--kind", "purchase", "--amount", "12")
    first = json.loads(ok("--json", "grade", "all"))
    assert first["full_rebuild"] and first["rebuild_reason"] == "no earlier run to continue from"
    text = " ".join(ok("grade", "all").split())  # the console wraps long lines
    assert text.startswith("re-graded 1 customer (1 interactions)")
    assert text.endswith("; incremental: signals of 0 rebuilt, 0 interactions read")
    data = json.loads(ok("--json", "grade", "all", "--rebuild"))
    assert data["full_rebuild"] and data["rebuild_reason"] == "asked for"
    assert (data["signals_rebuilt"], data["interactions_read"], data["written"]) == (1, 1, 0)


def test_interactions_logged_without_grading_loaded_are_picked_up(make_crm, shared, clock):
    crm = make_crm(["grading"], storage=shared, settings={"grading": GRADING})
    a, b = add_customer(crm), add_customer(crm, name="Bo")
    log(crm, a, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=1)
    bare = make_crm([], storage=shared)  # no event folds these into the stored signals
    log(bare, a, "purchase", amount=20.0)
    log(bare, b, "visit")
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.signals_rebuilt == 2
    assert Signals(grading_of(crm, a)["signals"]).spend == 30.0
    assert Signals(grading_of(crm, b)["signals"]).visits == 1
    assert_same_as_rebuild(crm)


class DaysSeen(Scheme):
    """Reports the day buckets a scheme is shown (a third-party scheme may read them all)."""

    tiers = ("seen",)

    def grade(self, facts: Facts, cutoffs: Any) -> Grade:
        data = facts.signals.data
        return Grade(
            "seen", f"{sorted(data.get('spend_days', {}))} {sorted(data.get('complaint_days', {}))}"
        )


class DaysSeenPlugin:
    @hookimpl
    def crm_grading_schemes(self) -> list[GradingScheme]:
        return [GradingScheme("days_seen", lambda context: DaysSeen())]


def test_schemes_see_the_day_buckets_of_now_not_of_the_last_run(grading_crm, clock):
    crm = grading_crm({"schemes": ["rfm", "days_seen"]}, plugins=[("days_seen", DaysSeenPlugin())])
    cid = add_customer(crm)
    for day in range(30):
        log(crm, cid, "purchase" if day % 3 else "complaint", amount=5.0)
        clock.advance(days=2)
    api.grade_all(crm, actor="nightly")
    seen = api.current(crm, cid).reasons["days_seen"]
    clock.advance(days=100)
    assert not api.grade_all(crm, actor="nightly").full_rebuild
    assert api.current(crm, cid).reasons["days_seen"] != seen
    assert_same_as_rebuild(crm)


def test_forgetting_a_customer_needs_no_rebuild(grading_crm, clock):
    crm = grading_crm()
    a, b = add_customer(crm), add_customer(crm, name="Bo")
    log(crm, a, "purchase", amount=10.0, summary="bought a hat")
    log(crm, b, "purchase", amount=20.0)
    api.grade_all(crm, actor="nightly")
    crm.customers.forget(a, actor="dpo")  # blanks the summary of a's interactions in place
    report = api.grade_all(crm, actor="nightly")
    assert not report.full_rebuild and report.customers == 1
    assert_same_as_rebuild(crm)


def test_when_most_customers_need_rebuilding_one_pass_does_it(grading_crm, clock, monkeypatch):
    from crmcore_grading import engine

    monkeypatch.setattr(engine, "REBUILD_MOST", 2)
    crm = grading_crm()
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(5)]
    api.grade_all(crm, actor="nightly")
    for cid in ids[:2]:
        log(crm, cid, "visit")
    assert not api.grade_all(crm, actor="nightly").full_rebuild  # 2 of 5: one query each
    for cid in ids[:3]:
        log(crm, cid, "purchase", amount=3.0)
    report = api.grade_all(crm, actor="nightly")
    assert report.full_rebuild
    assert report.rebuild_reason == "more than half of the customers' signals need rebuilding"
    assert_same_as_rebuild(crm)
