"""QA sampling of each rep's contacts, the scorecard, complaints naming staff, and the monthly
service-quality report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_service.plugin import crm_report_sections
from crmcore_service.qa import QualityAssurance

from crmcore import NotFoundError, TaskStatus, ValidationError

FULL = {"wording": 4, "attitude": 5, "tone": 4, "summarising_needs": 3, "adaptability": 4}


def contacts(crm, clock, cid, rep: str, count: int, kind: str = "consultation") -> list[str]:
    ids = []
    for _ in range(count):
        clock.advance(timedelta(minutes=10))
        ids.append(crm.interactions.log(actor=rep, customer_id=cid, kind=kind, rep=rep).id)
    return ids


def test_sampling_takes_up_to_n_per_rep_once_and_repeatably(setup, customer_id, clock):
    crm, api = setup({"qa": {"per_rep_per_month": 2, "reviewer": "quinn"}})
    cid = customer_id(crm)
    ann = contacts(crm, clock, cid, "ann", 5)
    bo = contacts(crm, clock, cid, "bo", 1)
    contacts(crm, clock, cid, "cy", 3, kind="purchase")  # not a kind QA listens to
    qa = QualityAssurance(api)
    assert qa.sample("2026-01", actor="lead") == 3
    assert qa.sample("2026-01", actor="lead") == 0
    queue = qa.queue(month="2026-01")
    assert sorted(r.rep for r in queue) == ["ann", "ann", "bo"]
    assert {r.interaction_id for r in queue if r.rep == "ann"} <= set(ann)
    assert [r.interaction_id for r in queue if r.rep == "bo"] == bo
    tasks = crm.tasks.find({"kind": "qa_review"})
    assert len(tasks) == 3 and {t.assignee for t in tasks} == {"quinn"}
    # another store with the same contacts draws the same ones
    drawn = sorted(r.interaction_id for r in queue)
    assert drawn == sorted(r.interaction_id for r in QualityAssurance(api).queue())
    assert qa.sample("2026-02", actor="lead") == 0  # nothing happened in February


def test_review_scorecard_complaints_and_the_monthly_report(setup, customer_id, clock):
    crm, api = setup({"qa": {"per_rep_per_month": 1}})
    cid = customer_id(crm)
    contacts(crm, clock, cid, "ann", 2)
    qa = QualityAssurance(api)
    qa.sample("2026-01", actor="lead")
    [pending] = qa.queue()
    with pytest.raises(ValidationError, match="own contacts"):
        qa.review(pending.id, actor="ann", scores=FULL)
    with pytest.raises(ValidationError, match="score adaptability from 1 to 5"):
        qa.review(pending.id, actor="quinn", scores={**FULL, "adaptability": 7})
    with pytest.raises(ValidationError, match="not on the scorecard: speed"):
        qa.review(pending.id, actor="quinn", scores={**FULL, "speed": 3})
    with pytest.raises(NotFoundError):
        qa.review("qa_nope", actor="quinn", scores=FULL)
    done = qa.review(pending.id, actor="quinn", scores=FULL, comment="clear")
    assert done.score == 4.0 and qa.queue() == []
    assert crm.tasks.find({"kind": "qa_review"})[0].status is TaskStatus.DONE
    with pytest.raises(ValidationError, match="already scored"):
        qa.review(pending.id, actor="quinn", scores=FULL)
    complaint = crm.interactions.log(actor="x", customer_id=cid, kind="complaint")
    qa.name_staff(complaint.id, "ann", actor="lead")
    with pytest.raises(ValidationError, match="not a complaint"):
        qa.name_staff(done.interaction_id, "ann", actor="lead")
    crm.interactions.log(actor="x", customer_id=cid, kind="callback", rep="ann", satisfaction=2)
    [row] = qa.monthly("2026-01")
    assert (row.rep, row.contacts, row.reviewed, row.qa_score, row.complaints, row.survey_mean) == (
        "ann",
        3,
        1,
        4.0,
        1,
        2.0,
    )  # the callback is a contact too
    assert row.criteria["summarising_needs"] == 3.0
    [section] = [
        s for s in crm_report_sections(crm, crm.now()) if s.title == "Service quality, 2026-01"
    ]
    assert section.rows == (("ann", 3, 1, 4.0, 1, 2.0),)
    with pytest.raises(ValidationError, match="YYYY-MM"):
        qa.monthly("January")
