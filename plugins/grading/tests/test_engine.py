"""Re-grading: on events, in one pass for everyone, by the worker; writing only changes;
pluggable schemes chosen by configuration; the hooks grading offers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import attrs
import pytest
from crmcore_grading import Facts, Grade, GradingScheme, Scheme, SchemeContext, api
from crmcore_grading.engine import engine_for
from crmcore_grading.records import HISTORY, POPULATION, STATE
from grading_helpers import ALL_SCHEMES, Recorder, add_customer, grades_of, grading_of, log

from crmcore import ConfigError, Effects, PluginError, TaskDraft, hookimpl
from crmcore.storage.memory import MemoryStore


def history_count(crm) -> int:
    return crm.collection(HISTORY).count()


# -- writing only what changed ---------------------------------------------------------------


def test_an_event_that_changes_nothing_writes_nothing(grading_crm):
    crm = grading_crm()
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-02-01")
    log(crm, cid, "purchase", amount=20.0)
    api.grade_all(crm, actor="nightly")
    version, records = crm.customers.get(cid).version, history_count(crm)
    for kind in ("consultation", "note", "inquiry"):
        log(crm, cid, kind, summary="asked about prices")
    api.grade_customer(crm, cid, actor="ann")
    assert crm.customers.get(cid).version == version
    assert history_count(crm) == records


def test_grade_all_twice_writes_nothing_the_second_time(grading_crm, clock):
    crm = grading_crm()
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(12)]
    for i, cid in enumerate(ids):
        for _ in range(i % 4):
            log(crm, cid, "purchase", amount=10.0 * (i + 1))
            log(crm, cid, "visit")
        clock.advance(hours=5)
    first = api.grade_all(crm, actor="nightly")
    assert first.customers == 12 and first.changed == 12 and first.grade_changes > 0
    versions = {cid: crm.customers.get(cid).version for cid in ids}
    records = history_count(crm)
    second = api.grade_all(crm, actor="nightly")
    assert (second.changed, second.grade_changes, second.churn_rises) == (0, 0, 0)
    assert {cid: crm.customers.get(cid).version for cid in ids} == versions
    assert history_count(crm) == records


def test_progress_wraps_each_pass(grading_crm):
    crm = grading_crm()
    add_customer(crm)
    seen = []

    def bar(items, total, description):
        seen.append((description, total))
        return items

    api.grade_all(crm, actor="nightly", progress=bar)
    assert seen == [("reading customers", 1), ("reading interactions", 0), ("grading", 1)]


# -- population tiers ------------------------------------------------------------------------


def test_population_tiers_wait_for_a_population_run_then_place_events(grading_crm):
    crm = grading_crm({"pyramid": {"tiers": [{"name": "vip", "top": 0.25}], "rest": "small"}})
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(4)]
    for i, cid in enumerate(ids):
        log(crm, cid, "purchase", amount=100.0 * (i + 1))
    assert set(grades_of(crm, ids[0])) == set()  # no cut-offs yet: nothing to place against
    api.grade_all(crm, actor="nightly")
    assert [grades_of(crm, c)["pyramid"] for c in ids] == ["small", "small", "small", "vip"]
    assert set(grades_of(crm, ids[0])) == {"rfm", "pyramid", "hospital"}
    log(crm, ids[0], "purchase", amount=1000.0)  # placed at once against the stored cut-offs
    assert grades_of(crm, ids[0])["pyramid"] == "vip"
    assert grades_of(crm, ids[3])["pyramid"] == "vip"  # until the next population run
    api.grade_all(crm, actor="nightly")
    assert grades_of(crm, ids[3])["pyramid"] == "small"


def test_cut_offs_made_under_another_configuration_are_not_used(make_crm):
    location = f"grading-config-{uuid.uuid4()}"
    storage = {"backend": "memory", "location": location}
    try:
        five = make_crm(["grading"], storage=storage, settings={"grading": {"schemes": ["rfm"]}})
        cid = add_customer(five)
        log(five, cid, "purchase", amount=10.0)
        api.grade_all(five, actor="nightly")
        assert engine_for(five).cutoffs(five.now()).keys() == {"rfm"}
        assert grades_of(five, cid)["rfm"] == "loyal"  # R3 F3 M3: a population of one
        four = make_crm(
            ["grading"],
            storage=storage,
            settings={
                "grading": {"schemes": ["rfm"], "rfm": {"bins": 4, "segments": [{"name": "any"}]}}
            },
        )
        assert engine_for(four).cutoffs(four.now()) == {}
        log(four, cid, "purchase", amount=10.0)
        assert grades_of(four, cid)["rfm"] == "loyal"  # kept until the next run
        api.grade_all(four, actor="nightly")
        assert grades_of(four, cid)["rfm"] == "any"
    finally:
        MemoryStore.drop_shared(location)


# -- the worker ------------------------------------------------------------------------------


def test_the_worker_runs_the_population_once_per_interval(grading_crm, clock):
    crm = grading_crm({"population_interval_hours": 24})
    cid = add_customer(crm)
    log(crm, cid, "purchase", amount=10.0)
    engine = engine_for(crm)
    assert engine.tick(clock.now(), "w1") is not None
    assert "rfm" in grades_of(crm, cid)
    assert engine.tick(clock.now(), "w1") is None
    assert engine.tick(clock.now(), "w2") is None
    clock.advance(hours=23, minutes=59)
    assert engine.tick(clock.now(), "w2") is None
    clock.advance(minutes=1)
    report = crm.tick("w2")
    assert report.worker == "w2"
    state = crm.collection(STATE).get(POPULATION)
    assert state["computed_at"].startswith(clock.now().date().isoformat())
    assert state["lease_owner"] is None  # released after the run


def test_two_workers_never_both_run_it_and_a_crashed_one_does_not_block_for_ever(
    grading_crm, clock
):
    crm = grading_crm({"population_interval_hours": 6, "population_lease_minutes": 30})
    add_customer(crm)
    engine = engine_for(crm)
    with crm.transaction("worker:w1"):
        assert engine._claim_run(clock.now(), "w1")  # w1 claims the run, then dies
    assert engine.tick(clock.now(), "w2") is None
    clock.advance(hours=5)
    assert engine.tick(clock.now(), "w2") is None
    clock.advance(hours=1)  # the next run is due and w1's lease has long lapsed
    assert engine.tick(clock.now(), "w2") is not None


# -- pluggable schemes ------------------------------------------------------------------------


class VisitScheme(Scheme):
    """A third party's scheme: regulars by visit count (``regular_at`` from its options)."""

    tiers = ("rare", "regular")
    ordered = True

    def __init__(self, context: SchemeContext) -> None:
        self.regular_at = int(context.options.get("regular_at", 5))

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        visits = facts.signals.visits
        if visits >= self.regular_at:
            return Grade("regular", f"{visits} visits")
        return Grade("rare", f"{visits} visits, fewer than {self.regular_at}")


class AboveMedian(Scheme):
    """A third party's population scheme: spend above the population's median."""

    tiers = ("below", "above")
    ordered = True
    population = True

    def fit(self, population: Sequence[Facts]) -> dict[str, Any]:
        spends = sorted(f.signals.spend for f in population)
        return {"median": spends[len(spends) // 2] if spends else 0.0}

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        above = facts.signals.spend > cutoffs["median"]
        return Grade("above" if above else "below", f"median {cutoffs['median']:.2f}")


class ThirdParty:
    """Registers schemes the way any plugin would."""

    @hookimpl
    def crm_grading_schemes(self) -> list[GradingScheme]:
        return [
            GradingScheme("visits", VisitScheme, "regulars by visit count"),
            GradingScheme("median", lambda _context: AboveMedian(), "above the median"),
        ]


def test_a_third_party_scheme_is_chosen_by_configuration_and_runs(grading_crm):
    crm = grading_crm(
        {
            "schemes": ["pipeline", "visits", "median"],
            "options": {"visits": {"regular_at": 3}},
            "churn": {"valuable": {"visits": ["regular"]}},
        },
        plugins=[("thirdparty", ThirdParty())],
    )
    cid, other = add_customer(crm), add_customer(crm, name="Wang Fang")
    log(crm, cid, "visit")
    assert grades_of(crm, cid) == {"visits": "rare"}
    log(crm, cid, "visit")
    log(crm, cid, "visit")
    assert grading_of(crm, cid)["reasons"]["visits"] == "3 visits"
    log(crm, other, "purchase", amount=80.0)
    api.grade_all(crm, actor="nightly")
    assert grades_of(crm, cid) == {"visits": "regular", "median": "below"}
    assert grades_of(crm, other) == {"visits": "rare", "median": "below"}
    log(crm, cid, "purchase", amount=100.0)  # placed against the stored median (80)
    assert grades_of(crm, cid)["median"] == "above"
    infos = {s.name: s for s in api.schemes(crm)}
    assert (infos["visits"].plugin, infos["visits"].running) == ("thirdparty", True)
    assert infos["median"].population and not infos["rfm"].running


def test_a_registered_scheme_runs_only_when_configured(grading_crm):
    crm = grading_crm({"schemes": ["pipeline"]}, plugins=[("thirdparty", ThirdParty())])
    cid = add_customer(crm)
    log(crm, cid, "visit")
    assert grades_of(crm, cid) == {}


class Clash:
    @hookimpl
    def crm_grading_schemes(self) -> list[GradingScheme]:
        return [GradingScheme("rfm", VisitScheme)]


class Broken:
    def __init__(self, what: str) -> None:
        self.what = what

    @hookimpl
    def crm_grading_schemes(self) -> list[Any]:
        if self.what == "type":
            return ["not a registration"]

        def factory(_context: SchemeContext) -> Scheme:
            if self.what == "factory":
                raise RuntimeError("no database")
            scheme = VisitScheme(_context)
            scheme.grade = lambda facts, cutoffs: "A"  # type: ignore[method-assign]
            return scheme

        return [GradingScheme("broken", factory)]


def test_two_plugins_registering_one_name_is_an_error_naming_both(grading_crm):
    crm = grading_crm(plugins=[("clash", Clash())])
    with pytest.raises(
        PluginError, match="'rfm' is provided by both plugin 'clash' and plugin 'grading'"
    ):
        api.grade_all(crm, actor="nightly")


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("type", "crm_grading_schemes returned str, not GradingScheme"),
        ("factory", "could not be built: RuntimeError: no database"),
        ("grade", "returned 'A', not a Grade"),
    ],
)
def test_a_broken_scheme_is_reported_with_its_plugin(grading_crm, what, message):
    crm = grading_crm(
        {"schemes": ["broken"]} if what != "type" else {}, plugins=[("broken", Broken(what))]
    )
    with pytest.raises(PluginError, match=message) as info:
        cid = add_customer(crm)
        log(crm, cid, "visit")
    assert info.value.plugin == "broken"


def test_a_scheme_name_must_be_usable():
    with pytest.raises(ValueError, match="'churn' is reserved"):
        GradingScheme("churn", VisitScheme)
    with pytest.raises(ValueError, match="not a usable scheme name"):
        GradingScheme("Big Spenders", VisitScheme)


# -- the hooks grading offers -------------------------------------------------------------------


def test_grade_changed_implementers_effects_are_applied(grading_crm, clock):
    def answer(crm, customer, scheme, new):
        if scheme == "pipeline" and new == "A":
            return Effects(
                tasks=[
                    TaskDraft(
                        kind="follow_up",
                        title="daily log",
                        due_at=clock.now() + timedelta(days=1),
                        customer_id=customer.id,
                        dedupe_key="fu:a",
                    )
                ]
            )
        return None

    recorder = Recorder(answer)
    crm = grading_crm(plugins=[("recorder", recorder)])
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-01-20")
    [task] = crm.tasks.open_for(cid)
    assert task.title == "daily log"
    assert recorder.grades == [
        (cid, "pipeline", None, "A", "clear need, expected to close 2026-01-20, within 1 month")
    ]


def test_grade_changed_fires_once_per_changed_scheme_in_grade_all(grading_crm):
    recorder = Recorder()
    crm = grading_crm(plugins=[("recorder", recorder)])
    cid = add_customer(crm)
    log(crm, cid, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    assert sorted(g[1] for g in recorder.grades) == ["hospital", "pyramid", "rfm"]
    api.grade_all(crm, actor="nightly")
    assert len(recorder.grades) == 3


def test_the_hookspecs_are_declared_for_implementers(grading_crm):
    crm = grading_crm()
    for name in ("crm_grading_schemes", "crm_grade_changed", "crm_churn_risk_changed"):
        assert getattr(crm.plugins.hook, name).spec is not None


# -- merging and concurrent changes -----------------------------------------------------------


class FakeComplaints:
    """Stands in for the complaints plugin by name; its hooks are contracts (declared always)."""


@attrs.frozen
class Ticket:
    id: str
    customer_id: str


def test_merging_rebuilds_signals_and_joins_open_complaints(grading_crm):
    crm = grading_crm(plugins=[("complaints", FakeComplaints())])
    keep, dup = add_customer(crm), add_customer(crm, name="Li Lei (2)")
    api.set_inputs(crm, dup, actor="ann", demand="target", expected_close="2026-02-01")
    for cid, amount in ((keep, 10.0), (dup, 30.0), (dup, 5.0)):
        log(crm, cid, "purchase", amount=amount)
    crm.events.complaint_registered(actor="desk", ticket=Ticket("tkt_1", keep))
    crm.events.complaint_registered(actor="desk", ticket=Ticket("tkt_2", dup))
    crm.customers.merge(keep, dup, actor="ann")
    kept = grading_of(crm, keep)
    assert (kept["signals"]["purchases"], kept["signals"]["spend"]) == (3, 4500)
    assert kept["open_complaints"] == ["tkt_1", "tkt_2"]
    assert kept["inputs"]["demand"] == "target" and kept["grades"]["pipeline"] == "A"


class Meddler(Scheme):
    """Changes one customer while everyone is being graded (another writer, concurrently)."""

    tiers = ("x",)

    def __init__(self, context: SchemeContext) -> None:
        self.crm = context.crm
        self.done = False
        self.target: str | None = None

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        if not self.done and facts.customer_id == self.target:
            self.done = True
            self.crm.customers.update(facts.customer_id, actor="bo", region="North")
        return Grade("x", "always")


class MeddlerPlugin:
    @hookimpl
    def crm_grading_schemes(self) -> list[GradingScheme]:
        return [GradingScheme("meddler", Meddler)]


def test_a_customer_changed_during_grade_all_is_re_graded_carefully(grading_crm):
    crm = grading_crm(
        {"schemes": [*ALL_SCHEMES, "meddler"]}, plugins=[("meddler", MeddlerPlugin())]
    )
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(3)]
    for cid in ids:
        log(crm, cid, "purchase", amount=12.0)
    engine_for(crm).by_name["meddler"].target = ids[1]
    report = api.grade_all(crm, actor="nightly")
    assert report.retried == 1 and report.changed == 3
    assert crm.customers.get(ids[1]).region == "North"
    assert grades_of(crm, ids[1]) == grades_of(crm, ids[0])
    assert api.grade_all(crm, actor="nightly").changed == 0


def test_inactive_customers_are_left_alone(grading_crm):
    crm = grading_crm()
    keep, dup = add_customer(crm), add_customer(crm, name="Dup")
    crm.customers.merge(keep, dup, actor="ann")
    assert api.grade_all(crm, actor="nightly").customers == 1
    assert engine_for(crm).regrade(dup, actor="ann") is None


def test_an_unknown_scheme_is_refused_naming_the_key_before_anything_is_written(grading_crm):
    crm = grading_crm({"schemes": ["pipeline", "rfmm"]})
    with pytest.raises(
        ConfigError,
        match=r"grading\.schemes\[1\]: unknown grading scheme "
        "'rfmm'",
    ):
        crm.customers.add(actor="ann", name="Li Lei")
    assert crm.customers.count() == 0


def test_grading_writes_follow_the_permission_policy(make_crm):
    from crmcore import PermissionDenied

    security = {"enforce": True, "actors": {"ann": {"role": "agent"}, "bo": {"role": "agent"}}}
    crm = make_crm(["grading"], settings={"security": security})
    cid = crm.customers.add(actor="bo", name="Li Lei", owner="bo").id
    with pytest.raises(PermissionDenied):
        api.set_inputs(crm, cid, actor="ann", demand="dead")
    assert grades_of(crm, cid) == {}
    api.set_inputs(crm, cid, actor="bo", demand="dead")
    assert grades_of(crm, cid) == {"pipeline": "E"}
    with pytest.raises(PermissionDenied):
        api.grade_all(crm, actor="stranger")
    assert api.grade_all(crm, actor="worker:nightly").customers == 1


def test_with_the_real_followup_plugin_the_cadence_follows_the_grade(make_crm, clock):
    """contracts.md: followup implements crm_grade_changed and follows the pipeline grade."""
    pytest.importorskip("crmcore_followup")
    crm = make_crm(["grading", "followup"])
    cid = crm.customers.add(actor="ann", name="Li Lei", owner="ann").id
    [first_contact] = crm.tasks.open_for(cid)
    crm.tasks.complete(first_contact.id, actor="ann", outcome="reached")
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-09-01")
    [slow] = [t for t in crm.tasks.open_for(cid) if t.kind == "follow_up"]
    api.set_inputs(crm, cid, actor="ann", expected_close="2026-01-20")  # now an A
    fast = [t for t in crm.tasks.open_for(cid) if t.kind == "follow_up"]
    assert len(fast) == 1 and fast[0].due_at <= clock.now() + timedelta(days=1)
    assert slow.due_at >= clock.now() + timedelta(days=29)  # D: monthly
