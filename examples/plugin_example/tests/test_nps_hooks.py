"""``crm_nps_answered``: the hook this plugin offers, seen from another plugin's side."""

from datetime import timedelta

import pytest
from crmcore import Effects, TaskDraft, ValidationError, hookimpl

from crmcore_nps import model, record_answer
from crmcore_nps.model import ANSWERS


class RetentionDesk:
    """Another plugin: a retention call for every detractor. It never imports crmcore_nps."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str]] = []

    @hookimpl(optionalhook=True)
    def crm_nps_answered(self, crm, answer, category, actor):
        self.seen.append((answer.score, category, actor))
        if category != "detractor":
            return None
        return Effects(
            tasks=[
                TaskDraft(
                    kind="retention",
                    title=f"detractor ({answer.score}): call back",
                    due_at=crm.now() + timedelta(days=1),
                    customer_id=answer.customer_id,
                    dedupe_key=f"retention:{answer.customer_id}",
                    source="retention_desk",
                )
            ]
        )


class Refuser:
    @hookimpl(optionalhook=True)
    def crm_nps_answered(self, crm, answer, category, actor):
        raise ValidationError("answers are closed for audit")


def test_implementers_are_called_and_their_effects_applied(make_crm):
    desk = RetentionDesk()
    crm = make_crm(["nps", ("retention_desk", desk)])
    c = crm.customers.add(actor="ann", name="Li Lei")
    record_answer(crm, c.id, 10, actor="ann")
    assert crm.tasks.open_for(c.id, kind="retention") == []
    record_answer(crm, c.id, 5, actor="bo")
    [task] = crm.tasks.open_for(c.id, kind="retention")
    assert task.title == "detractor (5): call back" and task.created_by == "bo"
    assert desk.seen == [(10, "promoter", "ann"), (5, "detractor", "bo")]


def test_an_implementer_can_refuse_and_nothing_is_written(make_crm):
    crm = make_crm(["nps", ("refuser", Refuser())])
    c = crm.customers.add(actor="ann", name="Li Lei")
    crm.interactions.log(actor="ann", customer_id=c.id, kind="callback")
    with pytest.raises(ValidationError, match="answers are closed"):
        record_answer(crm, c.id, 9, actor="ann")
    assert crm.records(ANSWERS, dict).count() == 0
    assert [i.kind for i in crm.interactions.for_customer(c.id)] == ["callback"]
    assert crm.tasks.open_for(c.id, kind="nps_survey")  # still waiting for an answer


def test_an_implementer_loads_without_this_plugin(make_crm):
    crm = make_crm([("retention_desk", RetentionDesk())])
    assert crm.has_plugin("retention_desk") and not crm.has_plugin("nps")


def test_the_names_plugin_py_spells_out_are_the_models(make_crm):
    """``plugin.py`` names the kind, the collection and the record class without importing
    ``model``: they are the model's, and ``record_class`` checks the personal fields."""
    crm = make_crm(["nps"])
    assert model.SURVEY_TASK in crm.task_kinds
    (spec,) = [s for s in crm.collection_specs() if s.name == model.ANSWERS]
    assert spec.record_class() is model.Answer
