"""The survey flow on an injected clock: callback -> survey task -> answer -> report."""

import io
import random
from datetime import timedelta

import pytest
from crmcore import ConflictError, NotFoundError, PermissionDenied, Priority, ValidationError
from crmcore.audit import record_digest
from crmcore.logs import configure_logging
from crmcore.schema import personal_fields
from crmcore.testing.audit import operations
from crmcore.transfer import export_customer_file

from crmcore_nps import build_report, record_answer
from crmcore_nps.model import ANSWERS, Answer
from crmcore_nps.plugin import crm_simulate
from crmcore_nps.surveys import report_section, summary_lines


@pytest.fixture
def crm(make_crm):
    return make_crm(["nps"])


def customer(crm, **fields):
    return crm.customers.add(actor="ann", name="Li Lei", owner="bo", **fields)


def callback(crm, c, **fields):
    return crm.interactions.log(actor="ann", customer_id=c.id, kind="callback", **fields)


def surveys(crm, c=None, status=None):
    query = {"kind": "nps_survey"}
    if c is not None:
        query["customer_id"] = c.id
    if status is not None:
        query["status"] = status
    return crm.tasks.find(query, sort=[("created_at", 1)])


def stored_answers(crm):
    return crm.records(ANSWERS, Answer).find(sort=[("answered_at", 1)])


def test_a_callback_creates_a_survey_due_a_day_later(crm, clock):
    c = customer(crm)
    logged = callback(crm, c, rep="cy")
    [task] = surveys(crm, c)
    assert task.due_at == clock.now() + timedelta(hours=24)
    assert (task.assignee, task.ref, task.source) == ("cy", logged.id, "nps")
    assert task.priority is Priority.LOW and task.is_open


def test_the_delay_counts_from_when_the_callback_happened(make_crm, clock):
    crm = make_crm(["nps"], settings={"nps": {"delay_hours": 2.5}})
    c = customer(crm)
    callback(crm, c, occurred_at=clock.now() - timedelta(hours=1))
    assert surveys(crm, c)[0].due_at == clock.now() + timedelta(hours=1.5)


@pytest.mark.parametrize("kind", ["purchase", "complaint", "survey", "follow_up", "care"])
def test_other_interactions_create_no_survey(crm, kind):
    c = customer(crm)
    crm.interactions.log(actor="ann", customer_id=c.id, kind=kind)
    assert surveys(crm) == []


@pytest.mark.parametrize(
    ("assign_to", "rep", "expected"),
    [
        ("rep", "cy", "cy"),
        ("rep", None, "bo"),
        ("owner", "cy", "bo"),
        ("none", "cy", None),
    ],
)
def test_assignee(make_crm, assign_to, rep, expected):
    crm = make_crm(["nps"], settings={"nps": {"assign_to": assign_to}})
    c = customer(crm)
    callback(crm, c, rep=rep)
    assert surveys(crm, c)[0].assignee == expected


def test_do_not_contact_customers_are_not_surveyed_unless_configured(make_crm):
    crm = make_crm(["nps"])
    callback(crm, customer(crm, do_not_contact=True))
    assert surveys(crm) == []
    crm = make_crm(["nps"], settings={"nps": {"skip_do_not_contact": False}})
    callback(crm, customer(crm, do_not_contact=True))
    assert len(surveys(crm)) == 1


def test_repeated_callbacks_make_one_survey_per_period(crm, clock):
    c, other = customer(crm), customer(crm)
    for _ in range(3):
        callback(crm, c)
    callback(crm, other)
    assert len(surveys(crm, c)) == 1 and len(surveys(crm, other)) == 1
    record_answer(crm, c.id, 9, actor="ann")
    clock.advance(days=89, hours=23)
    callback(crm, c)  # still inside the 90-day period of the first survey
    assert len(surveys(crm, c)) == 1
    clock.advance(hours=1)
    callback(crm, c)  # the period has passed
    assert [t.status.value for t in surveys(crm, c)] == ["done", "open"]


def test_an_answer_without_a_survey_also_counts_for_the_period(crm, clock):
    c = customer(crm)
    record_answer(crm, c.id, 7, actor="ann")
    clock.advance(days=10)
    callback(crm, c)
    assert surveys(crm, c) == []


def test_a_cancelled_survey_does_not_count(crm, clock):
    c = customer(crm)
    callback(crm, c)
    crm.tasks.cancel(surveys(crm, c)[0].id, actor="ann", reason="wrong number")
    callback(crm, c)
    assert [t.status.value for t in surveys(crm, c)] == ["cancelled", "open"]


def test_period_zero_still_keeps_one_open_survey_per_customer(make_crm):
    crm = make_crm(["nps"], settings={"nps": {"period_days": 0}})
    c = customer(crm)
    callback(crm, c)
    callback(crm, c)
    assert len(surveys(crm, c)) == 1
    record_answer(crm, c.id, 10, actor="ann")
    callback(crm, c)
    assert [t.status.value for t in surveys(crm, c)] == ["done", "open"]


def test_an_answer_completes_the_survey_and_logs_a_survey_interaction(crm, clock):
    c = customer(crm)
    callback(crm, c)
    [task] = surveys(crm, c)
    clock.advance(hours=30)
    answer = record_answer(crm, c.id, 6, actor="cy", comment="  slow  ", channel="sms")
    assert (answer.score, answer.comment, answer.survey_task_id) == (6, "slow", task.id)
    assert answer.answered_at == clock.now() and answer.recorded_by == "cy"
    done = crm.tasks.get(task.id)
    assert done.status.value == "done" and done.outcome == "answered 6 (detractor)"
    logged = crm.interactions.get(answer.interaction_id)
    assert (logged.kind, logged.satisfaction, logged.ref, logged.channel.value) == (
        "survey",
        3,
        task.id,
        "sms",
    )
    assert logged.ext["nps"] == {"answer_id": answer.id, "score": 6, "category": "detractor"}
    assert stored_answers(crm) == [answer]


def test_an_answer_counts_for_a_survey_a_rep_already_carried_out(crm, clock):
    c = customer(crm)
    callback(crm, c)
    [task] = surveys(crm, c)
    crm.tasks.complete(task.id, actor="cy", outcome="sent by sms")
    clock.advance(days=14)
    assert record_answer(crm, c.id, 8, actor="ann").survey_task_id == task.id
    assert record_answer(crm, c.id, 9, actor="ann").survey_task_id is None  # answered already
    assert crm.tasks.get(task.id).outcome == "sent by sms"


def test_an_answer_after_expire_days_belongs_to_no_survey(crm, clock):
    c = customer(crm)
    callback(crm, c)
    crm.tasks.complete(surveys(crm, c)[0].id, actor="cy")
    clock.advance(days=14, seconds=1)
    assert record_answer(crm, c.id, 8, actor="ann").survey_task_id is None


def test_answering_a_named_survey(crm):
    c, other = customer(crm), customer(crm)
    callback(crm, c)
    [task] = surveys(crm, c)
    with pytest.raises(ValidationError, match="is not a survey of customer"):
        record_answer(crm, other.id, 9, actor="ann", survey_task_id=task.id)
    record_answer(crm, c.id, 9, actor="ann", survey_task_id=task.id)
    with pytest.raises(ConflictError, match="already answered"):
        record_answer(crm, c.id, 9, actor="ann", survey_task_id=task.id)
    assert len(stored_answers(crm)) == 1


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ({"score": 11}, ValidationError, "score: expected a whole number from 0 to 10"),
        ({"score": -1}, ValidationError, "score:"),
        ({"score": "9"}, ValidationError, "score:"),
        ({"actor": " "}, ValidationError, "actor:"),
        ({"comment": "x" * 2001}, ValidationError, "comment: at most 2000"),
        ({"channel": "pigeon"}, ValidationError, "channel: unknown value 'pigeon'"),
        ({"customer_id": "cus_missing"}, NotFoundError, "cus_missing"),
        ({"survey_task_id": "tsk_missing"}, NotFoundError, "tsk_missing"),
    ],
)
def test_bad_answers_write_nothing(crm, args, error, match):
    c = customer(crm)
    callback(crm, c)
    before = crm.interactions.count()
    call = {"customer_id": c.id, "score": 9, "actor": "ann", **args}
    with pytest.raises(error, match=match):
        record_answer(crm, call.pop("customer_id"), call.pop("score"), **call)
    assert stored_answers(crm) == [] and crm.interactions.count() == before
    assert surveys(crm, c)[0].is_open


def test_answers_of_merged_customers_move_and_of_erased_ones_are_exported(crm):
    keep, dup = customer(crm), customer(crm)
    record_answer(crm, dup.id, 3, actor="ann", comment="rude on the phone")
    crm.customers.merge(keep.id, dup.id, actor="ann")
    [answer] = stored_answers(crm)
    assert answer.customer_id == keep.id
    held = export_customer_file(crm, keep.id)
    assert held["collections"][ANSWERS][0]["comment"] == "rude on the phone"


def test_forget_erases_the_comment_and_keeps_the_score(crm):
    c = customer(crm)
    record_answer(crm, c.id, 2, actor="ann", comment="my neighbour Wang was rude")
    crm.customers.forget(c.id, actor="ann")
    [answer] = stored_answers(crm)
    assert (answer.score, answer.comment) == (2, "(erased)")
    assert build_report(crm, crm.now()).windows[0][1].detractors == 1


def test_the_audit_trail_names_the_actor_and_masks_the_comment(crm):
    c = customer(crm)
    answer = record_answer(crm, c.id, 9, actor="maria", comment="lovely")
    [entry] = operations(crm, record_id=answer.id)  # crmcore.testing.audit
    assert entry["actor"] == "maria" and entry["customer_id"] == c.id
    # an insert records a digest of the masked record (crmcore.audit.record_digest)
    stored = crm.store.collection(ANSWERS).get(answer.id)
    personal = crm.audit.masked_fields(ANSWERS)
    assert "comment" in personal and entry["diff"] == {"sha": record_digest(stored, personal)}
    assert record_digest({**stored, "comment": "awful"}, personal) == entry["diff"]["sha"]


def test_permissions_are_checked_before_anything_is_written(make_crm):
    crm = make_crm(
        ["nps"],
        settings={
            "security": {
                "enforce": True,
                "actors": {"bo": {"role": "agent"}, "cy": {"role": "agent"}},
            }
        },
    )
    c = crm.customers.add(actor="bo", name="Li Lei", owner="bo")
    with pytest.raises(PermissionDenied, match="cy"):
        record_answer(crm, c.id, 9, actor="cy")
    with pytest.raises(PermissionDenied, match="unknown actor"):
        record_answer(crm, c.id, 9, actor="stranger")
    assert stored_answers(crm) == [] and crm.interactions.count() == 0
    assert record_answer(crm, c.id, 9, actor="bo").recorded_by == "bo"


def test_the_comment_is_personal_data_and_never_logged():
    assert personal_fields(Answer) == ("comment",)


def test_logs_mask_personal_data(crm):
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        c = customer(crm)
        record_answer(crm, c.id, 10, actor="ann", comment="call me on +86 138 0013 8000")
    finally:
        configure_logging()
    out = stream.getvalue()
    assert "answer recorded" in out and c.id in out
    assert "138" not in out and "call me" not in out and "Li Lei" not in out


def test_the_worker_cancels_surveys_overdue_by_expire_days(crm, clock):
    c = customer(crm)
    callback(crm, c)
    [task] = surveys(crm, c)
    clock.set(task.due_at + timedelta(days=14))
    assert crm.tick("w1").tasks_updated == 0
    clock.advance(seconds=1)
    assert crm.tick("w1").tasks_updated == 1
    assert crm.tick("w2").tasks_updated == 0  # a second worker finds nothing left to do
    cancelled = crm.tasks.get(task.id)
    assert (
        cancelled.status.value == "cancelled" and cancelled.outcome == "survey expired unanswered"
    )


def test_report_windows_and_counts(make_crm, clock):
    crm = make_crm(["nps"], settings={"nps": {"report_days": 30, "period_days": 0}})
    c = customer(crm)
    record_answer(crm, c.id, 10, actor="ann")  # 39 days before the report
    clock.advance(days=5)
    record_answer(crm, c.id, 3, actor="ann")  # 34 days before: the previous window
    clock.advance(days=30)
    callback(crm, c)
    for score in (9, 9, 8, 6):  # the last 30 days
        record_answer(crm, c.id, score, actor="ann")
        clock.advance(days=1)
    report = build_report(crm, crm.now())
    recent, earlier, every = (r for _label, r in report.windows)
    assert (recent.promoters, recent.passives, recent.detractors, recent.nps) == (2, 1, 1, 25.0)
    assert (earlier.answers, earlier.nps) == (2, 0.0)
    assert (every.answers, every.nps) == (6, 100 * (3 - 2) / 6)
    assert build_report(crm, crm.now(), 35).windows[0][1].answers == 5
    assert report.distribution[9] == 2 and report.distribution[10] == 0
    assert (report.surveys_sent, report.surveys_answered, report.response_rate) == (1, 1, 1.0)
    section = report_section(crm, crm.now())
    assert section.rows[0] == ("last 30 days", 4, 2, 1, 1, "+25.0")
    assert section.chart["score 9"] == 2
    assert "Surveys sent in the last 30 days: 1, answered: 1 (100%)" in section.note
    with pytest.raises(ValidationError, match="days"):
        build_report(crm, crm.now(), 0)


def test_empty_report(crm):
    section = report_section(crm, crm.now())
    assert [row[-1] for row in section.rows] == ["n/a", "n/a", "n/a"]
    assert section.note.endswith("answered: 0")


def test_customer_summary(crm, clock):
    c = customer(crm)
    assert summary_lines(crm, c) == []
    callback(crm, c)
    assert summary_lines(crm, c)[0].text == "survey due 2026-01-06 09:00 UTC"
    record_answer(crm, c.id, 9, actor="ann")
    clock.advance(days=1)
    record_answer(crm, c.id, 6, actor="ann")
    [line] = summary_lines(crm, c)
    assert (line.label, line.text) == ("NPS", "6 (detractor) on 2026-01-06; 2 answers, average 7.5")


def test_simulate_answers_some_surveys_and_repeats_with_the_seed(make_crm, clock):
    def run(seed):
        clock.set(clock.now().replace(year=2026, month=1, day=5))
        crm = make_crm(["nps"])
        people = [customer(crm) for _ in range(40)]
        for i, c in enumerate(people):
            callback(crm, c, satisfaction=1 + i % 5)
        rng = random.Random(seed)
        for _day in range(14):
            clock.advance(days=1)
            crm_simulate(crm, crm.now(), rng, "demo-staff")
        return [(a.customer_id[-4:], a.score, a.comment) for a in stored_answers(crm)], crm

    first, crm = run(3)
    assert 10 <= len(first) <= 30  # 5% a day over 14 days: about half answer
    assert all(a.survey_task_id for a in stored_answers(crm))
    assert len({a.survey_task_id for a in stored_answers(crm)}) == len(first)
    assert len(run(3)[0]) == len(first) and [s for _c, s, _m in run(3)[0]] == [
        s for _c, s, _m in first
    ]
