"""A task draft (what Effects create) names a customer who is there: checked without building
the customer record, refused for one who is not, or was merged away."""

from __future__ import annotations

import pytest

from crmcore import NotFoundError, TaskDraft


def draft_for(crm, customer_id: str) -> TaskDraft:
    return TaskDraft(kind="other", title="Ring", due_at=crm.now(), customer_id=customer_id)


def test_a_draft_for_a_stored_customer_is_created(crm):
    ann = crm.customers.add(actor="t", name="Ann")
    task, new = crm.tasks.create_from(draft_for(crm, ann.id), actor="t")
    assert new and crm.tasks.get(task.id).customer_id == ann.id


def test_a_draft_for_an_unknown_customer_is_refused_and_writes_nothing(crm):
    with pytest.raises(NotFoundError):
        crm.tasks.create_from(draft_for(crm, "cus_01NOBODY"), actor="t")
    assert crm.tasks.find({}) == []


def test_a_draft_for_a_merged_customer_says_where_they_went(crm):
    ann = crm.customers.add(actor="t", name="Ann", phone="+8613900000001")
    dup = crm.customers.add(actor="t", name="Ann L", phone="+8613900000002")
    crm.customers.merge(ann.id, dup.id, actor="t")
    with pytest.raises(NotFoundError, match=f"was merged into {ann.id}"):
        crm.tasks.create_from(draft_for(crm, dup.id), actor="t")
    assert crm.tasks.find({"customer_id": dup.id}) == []
