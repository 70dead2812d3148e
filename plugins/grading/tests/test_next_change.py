"""The worker's population run assesses only the customers whose assessment could have
changed (``ext["grading"]["next"]``, events, moved cut-offs): day by day it must leave exactly
what re-assessing everyone leaves."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from crmcore_grading import api
from crmcore_grading.engine import engine_for
from crmcore_grading.nextchange import first_change
from crmcore_grading.pipeline import PipelineScheme
from crmcore_grading.settings import PipelineSettings
from grading_helpers import make_facts

from crmcore import CRM, ManualClock
from crmcore.i18n import restored

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ZONES = ["Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", None]


def _history(crm: CRM, seed: int, days: int, customers: int) -> list[Any]:
    """Play a random history on ``crm`` (its clock is advanced), ticking once a day; returns
    a snapshot per day of every customer's stored grading (without ``next``) and history."""
    clock = crm.clock
    assert isinstance(clock, ManualClock)
    rng = random.Random(seed)
    ids = []
    for i in range(customers):
        zone = rng.choice(ZONES)
        extra = {"timezone": zone} if zone else {}
        cid = crm.customers.add(actor="ann", name=f"Customer {i:03d}", **extra).id
        ids.append(cid)
        if rng.random() < 0.6:
            close = START.date() + timedelta(days=rng.randrange(-10, 200))
            api.set_inputs(
                crm,
                cid,
                actor="ann",
                demand=rng.choice(["target", "target", "potential", "dead"]),
                expected_close=close,
                deal_status=rng.choice(["negotiating", "closed", None]),
            )
    quiet_from = {cid: rng.randrange(0, days) for cid in ids}  # then they stop buying
    snapshots = []
    for day in range(days):
        for cid in ids:
            if day < quiet_from[cid] and rng.random() < 0.25:
                kind = rng.choice(["purchase", "purchase", "visit", "refund", "complaint"])
                amount = round(rng.uniform(5, 900), 2) if kind in ("purchase", "refund") else None
                at = clock.now() + timedelta(minutes=rng.randrange(0, 600))
                crm.interactions.log(
                    actor="ann", customer_id=cid, kind=kind, occurred_at=at, amount=amount
                )
        if rng.random() < 0.2:  # edits that do not go through grading's events
            cid = rng.choice(ids)
            crm.customers.update(cid, actor="ann", timezone=rng.choice(ZONES[:-1]))
        if rng.random() < 0.1:
            cid = rng.choice(ids)
            close = clock.now().date() + timedelta(days=rng.randrange(0, 120))
            api.set_inputs(crm, cid, actor="ann", demand="target", expected_close=close)
        clock.advance(hours=rng.randrange(12, 14))
        crm.tick("w")
        snapshots.append(_snapshot(crm, ids))
        clock.set(START + timedelta(days=day + 1))
    return snapshots


def _snapshot(crm: CRM, ids: list[str]) -> dict[str, Any]:
    out = {}
    for cid in ids:
        customer = crm.customers.get(cid)
        grading = {k: v for k, v in customer.ext.get("grading", {}).items() if k != "next"}
        history = sorted(
            (
                h.at.isoformat(),
                h.scheme,
                h.old or "",
                h.new or "",
                h.actor,
                str(restored(h.reason)),
            )
            for h in api.history(crm, cid)
        )
        out[customer.name] = (grading, history)
    return out


_REFERENCE: dict[str, Any] = {}  # the runs re-assessing everyone, by settings: plain data


def _run(grading_crm: Any, settings: dict[str, Any], seed: int, *, proportional: bool) -> Any:
    key = repr((settings, seed))
    if not proportional and key in _REFERENCE:
        return _REFERENCE[key]
    crm = grading_crm(
        settings={"population_interval_hours": 1.0, **settings}, clock=ManualClock(START)
    )
    engine = engine_for(crm)
    engine.proportional = proportional
    snapshots = _history(crm, seed, days=60, customers=30)
    assessed = engine.last_run.assessed if engine.last_run else None
    if not proportional:
        _REFERENCE[key] = (snapshots, assessed)
    return snapshots, assessed


def _first_difference(left: list[Any], right: list[Any]) -> str | None:
    for day, (a, b) in enumerate(zip(left, right, strict=True)):
        for name in a:
            if a[name] != b[name]:
                return f"day {day}, {name}: {a[name]} != {b[name]}"
    return None


SETTINGS = {
    "retail, pace rule": {"schemes": ["pipeline", "rfm", "pyramid"]},
    "interval rule, pipeline watched": {
        "schemes": ["pipeline", "rfm", "pyramid"],
        "churn": {
            "rule": "interval",
            "valuable": {"pipeline": ["A", "B"], "pyramid": ["vip", "major"]},
        },
    },
    "hospital too": {"schemes": ["pipeline", "rfm", "pyramid", "hospital"]},
}


@pytest.mark.parametrize("name", SETTINGS)
def test_the_worker_leaves_what_reassessing_everyone_leaves(grading_crm: Any, name: str) -> None:
    settings = SETTINGS[name]
    everyone, all_assessed = _run(grading_crm, settings, seed=7, proportional=False)
    changed, some_assessed = _run(grading_crm, settings, seed=7, proportional=True)
    assert _first_difference(everyone, changed) is None
    assert all_assessed == 30
    if "hospital" not in settings["schemes"]:  # its scores move daily: everyone, daily
        assert some_assessed < all_assessed
    # the history did move: grades and churn levels changed with time and events
    by_worker = {
        h[1] for _grading, history in everyone[-1].values() for h in history if h[4] == "worker:w"
    }
    assert {"pipeline", "rfm", "pyramid", "churn"} <= by_worker


@pytest.mark.parametrize(
    "broken",
    ["churn", "pipeline", "placement"],
)
def test_a_late_next_change_is_caught(
    grading_crm: Any, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """The comparison above fails when the next-change computation is broken on purpose."""
    settings = SETTINGS["retail, pace rule"]
    everyone, _ = _run(grading_crm, settings, seed=7, proportional=False)
    if broken == "churn":
        monkeypatch.setattr("crmcore_grading.engine.churn_next", lambda *a, **k: None)
    elif broken == "pipeline":
        monkeypatch.setattr(PipelineScheme, "next_change", lambda self, facts, cutoffs: None)
    else:  # moved cut-offs never re-assess anyone
        from crmcore_grading.pyramid import PyramidScheme
        from crmcore_grading.rfm import RfmScheme

        monkeypatch.setattr(RfmScheme, "placement", lambda self, facts, cutoffs: 0)
        monkeypatch.setattr(PyramidScheme, "placement", lambda self, facts, cutoffs: 0)
    changed, _ = _run(grading_crm, settings, seed=7, proportional=True)
    assert _first_difference(everyone, changed) is not None


def test_first_change_bisects_within_stretches_and_checks_their_ends() -> None:
    start = date(2026, 1, 1)

    def key(day: date) -> int:  # steps up on the 10th, jumps back at a break on the 20th
        if day >= date(2026, 1, 20):
            return 0
        return 1 if day >= date(2026, 1, 10) else 0

    assert first_change(key, start, date(2026, 3, 1), [date(2026, 1, 20)]) == date(2026, 1, 10)
    assert first_change(lambda d: 0, start, date(2026, 3, 1)) is None
    assert first_change(lambda d: d >= date(2026, 1, 2), start, date(2026, 1, 5)) == date(
        2026, 1, 2
    )
    # a change only at a break day
    assert first_change(
        lambda d: d == date(2026, 2, 3), start, date(2026, 3, 1), [date(2026, 2, 3)]
    ) == date(2026, 2, 3)


def test_the_pipeline_changes_on_the_local_day_its_letter_moves() -> None:
    scheme = PipelineScheme(PipelineSettings())
    inputs = {"demand": "target", "expected_close": "2026-06-15"}
    facts = make_facts(inputs=inputs, now=datetime(2026, 1, 1, 9, tzinfo=UTC))
    # C until 2026-03-15 (within 3 months from then on: B)
    assert scheme.next_change(facts, None) == date(2026, 3, 15)
    passed = make_facts(inputs=inputs, now=datetime(2026, 6, 15, 9, tzinfo=UTC))
    assert scheme.next_change(passed, None) == date(2026, 6, 16)  # "date passed"
    done = make_facts(inputs=inputs, now=datetime(2026, 6, 16, 9, tzinfo=UTC))
    assert scheme.next_change(done, None) is None
    assert scheme.next_change(make_facts(inputs={"demand": "potential"}), None) is None


def test_rewindow_gives_what_canonical_gives() -> None:
    """The population run re-windows every customer's stored signals by filtering the day
    buckets alone; the result must be canonical()'s."""
    from crmcore_grading.signals import Acc, Window, canonical, rewindow

    rng = random.Random(5)
    for _ in range(300):
        acc = Acc()
        acc.spend, acc.purchases, acc.n = rng.randrange(1, 10**6), rng.randrange(1, 9), 3
        acc.last_purchase = "2026-05-01T10:00:00Z"
        for _ in range(rng.randrange(0, 12)):
            day = (date(2026, 1, 1) + timedelta(days=rng.randrange(0, 300))).isoformat()
            acc.spend_days[day] = rng.choice([-500, 100, 2500])
            if rng.random() < 0.3:
                acc.complaint_days[day] = 1
        stored = acc.stored(Window(datetime(2026, 6, 1, tzinfo=UTC), 90, 30))
        later = Window(
            datetime(2026, 6, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 200)), 90, 30
        )
        assert rewindow(stored, later) == canonical(stored, later)
    odd = {"spend": 5, "spend_days": {"2026-01-02": 2.5, "2026-05-30": 3}}  # not as stored
    late = Window(datetime(2026, 7, 1, tzinfo=UTC), 90, 30)
    assert rewindow(odd, late) == canonical(odd, late)
