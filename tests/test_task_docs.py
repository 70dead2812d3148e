"""Tasks as stored: without their blank fields, and without the English title where its
message id and parameters give it back; tasks stored whole (by older versions) still read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from bench.stack import START
from crmcore.app import CRM
from crmcore.compactdocs import blank_defaults, without_defaults
from crmcore.converter import to_doc
from crmcore.entities import Task
from crmcore.i18n import N_, msg, term
from crmcore.tasks import task_doc


@pytest.fixture
def store(memory_or_tinydb: CRM) -> CRM:
    return memory_or_tinydb


def raw(crm: CRM, id: str) -> dict[str, Any]:
    return crm.store.collection("tasks").get(id)


def test_a_new_task_is_stored_without_blank_fields_or_a_title_its_message_gives(store: CRM):
    due = store.now() + timedelta(days=1)
    title = msg("Call %(who)s about %(what)s", who="Ann", what=term(N_("the invoice")))
    task = store.tasks.create(actor="ann", kind="follow_up", title=title, due_at=due)
    doc = raw(store, task.id)
    assert "title" not in doc and doc["title_key"] == "Call %(who)s about %(what)s"
    for blank in ("assignee", "lease_owner", "lease_until", "outcome", "notes", "ext", "ref"):
        assert blank not in doc
    got = store.tasks.get(task.id)
    assert got == task and got.title == "Call Ann about the invoice"
    assert got.title_message.msgid == "Call %(who)s about %(what)s"  # type: ignore[attr-defined]
    # plain text keeps its title; a field holding a value is stored
    plain = store.tasks.create(
        actor="ann", kind="follow_up", title="Ring back", due_at=due, notes="after 5pm"
    )
    assert raw(store, plain.id)["title"] == "Ring back"
    assert raw(store, plain.id)["notes"] == "after 5pm"
    assert store.tasks.get(plain.id) == plain


def test_compact_tasks_answer_queries_claims_and_changes_as_whole_ones(store: CRM):
    due = store.now()
    t = store.tasks.create(actor="ann", kind="follow_up", title=msg("Call back"), due_at=due)
    # a missing field reads null: unassigned, unleased
    assert [x.id for x in store.tasks.find({"assignee": None})] == [t.id]
    assert [x.id for x in store.tasks.due(now=due)] == [t.id]
    store.tasks.reschedule(t.id, due + timedelta(hours=1), actor="ann")
    assert "assignee" not in raw(store, t.id)  # a field that kept its value is not written
    store.tasks.assign(t.id, "bo", actor="ann")
    assert [x.id for x in store.tasks.due(now=due + timedelta(hours=2), assignee="bo")] == [t.id]
    store.tasks.assign(t.id, None, actor="ann")
    assert store.tasks.find({"assignee": None})[0].id == t.id
    later = due + timedelta(hours=2)
    claimed = store.tasks.claim(worker="w1", lease=timedelta(minutes=5), now=later)
    assert claimed is not None and claimed.id == t.id and claimed.lease_owner == "w1"
    done = store.tasks.complete(t.id, actor="ann", outcome="reached")
    assert done.title == "Call back" and done.lease_owner is None
    assert store.tasks.get(t.id) == done and store.tasks.find({"status": "done"}) == [done]


def test_a_task_stored_whole_by_an_older_version_still_reads_and_changes(store: CRM):
    due = store.now()
    whole = Task(
        id="tsk_old",
        kind="follow_up",
        title="Callback after purchase",
        due_at=due,
        created_at=due,
        created_by="ann",
        updated_at=due,
        updated_by="ann",
        title_key="Callback after %(reason)s",
        title_args={"reason": {"key": "purchase"}},
    )
    doc = task_doc(whole)
    assert set(doc) >= {"title", "assignee", "lease_owner", "notes", "ext"}
    store.store.collection("tasks").insert(doc)  # beneath the API, as it was written
    assert store.tasks.get("tsk_old") == attrs.evolve(whole, version=1)
    assert [x.id for x in store.tasks.due(now=due)] == ["tsk_old"]
    done = store.tasks.complete("tsk_old", actor="ann")
    assert done.title == "Callback after purchase"


def test_without_defaults_leaves_out_only_blank_defaults():
    blank = blank_defaults(Task)
    assert blank["assignee"] is None and blank["notes"] == "" and blank["ext"] == {}
    assert "status" not in blank and "priority" not in blank  # defaults that hold a value
    t = Task(
        id="t",
        kind="k",
        title="x",
        due_at=START,
        created_at=START,
        created_by="a",
        updated_at=START,
        updated_by="a",
        notes="n",
    )
    doc = without_defaults(Task, to_doc(t))
    assert doc["notes"] == "n" and doc["status"] == "open" and "assignee" not in doc
    assert without_defaults(Task, {"ext": {}, "outcome": 0}) == {"outcome": 0}


def test_an_open_task_holds_its_dedupe_key_once_and_a_closed_one_keeps_it(store: CRM):
    due = store.now() + timedelta(days=1)
    t = store.tasks.create(
        actor="ann", kind="follow_up", title="Ring", due_at=due, dedupe_key="ring:cus_1"
    )
    doc = raw(store, t.id)
    assert doc["open_key"] == "ring:cus_1" and "dedupe_key" not in doc
    assert store.tasks.get(t.id) == t and t.dedupe_key == "ring:cus_1"
    again = store.tasks.create(
        actor="ann", kind="follow_up", title="Ring", due_at=due, dedupe_key="ring:cus_1"
    )
    assert again.id == t.id  # still one open task per key
    store.tasks.reschedule(t.id, due + timedelta(hours=1), actor="ann")
    assert "dedupe_key" not in raw(store, t.id)
    assert [x.id for x in store.tasks.find({"dedupe_key": "ring:cus_1"})] == [t.id]
    done = store.tasks.complete(t.id, actor="ann", outcome="reached")
    doc = raw(store, t.id)
    assert doc["dedupe_key"] == "ring:cus_1" and doc["open_key"] is None
    assert done.dedupe_key == "ring:cus_1" and store.tasks.get(t.id) == done
    fresh = store.tasks.create(
        actor="ann", kind="follow_up", title="Ring", due_at=due, dedupe_key="ring:cus_1"
    )
    assert fresh.id != t.id  # the key is free once the task is closed
    # one stored whole by an older version: both fields on an open task
    old = {**raw(store, fresh.id), "id": "tsk_old", "open_key": "old:1", "dedupe_key": "old:1"}
    del old["version"]
    store.store.collection("tasks").insert(old)
    plain = store.tasks.create(actor="ann", kind="follow_up", title="No key", due_at=due)
    assert "open_key" not in raw(store, plain.id)
    by_key = {
        k: {x.id for x in store.tasks.find({"dedupe_key": k})} for k in ("ring:cus_1", "old:1")
    }
    assert by_key == {"ring:cus_1": {t.id, fresh.id}, "old:1": {"tsk_old"}}
    assert store.tasks.count({"dedupe_key": "ring:cus_1", "status": "open"}) == 1
    assert [x.id for x in store.tasks.iter({"dedupe_key": None})] == [plain.id]
    either = {"$or": [{"status": "done"}, {"kind": "none"}], "dedupe_key": "ring:cus_1"}
    assert [x.id for x in store.tasks.find(either)] == [t.id]
    assert store.tasks.open_by_key("old:1").id == "tsk_old"  # type: ignore[union-attr]
    claimed = store.tasks.claim(
        worker="w", lease=timedelta(minutes=5), filter={"dedupe_key": "ring:cus_1"}, now=due
    )
    assert claimed is not None and claimed.id == fresh.id


def test_a_customers_file_holds_tasks_as_they_read(store: CRM):
    """The data export shows a task's title and dedupe key, which the stored document of an
    open task does not hold (its title given by its message, its key kept as ``open_key``)."""
    from crmcore.transfer import export_customer_file

    c = store.customers.add(actor="ann", name="Li Lei", phone="+8613912345678")
    due = store.now() + timedelta(days=1)
    title = msg("Call %(who)s about %(what)s", who="Ann", what=term(N_("the invoice")))
    task = store.tasks.create(
        actor="ann",
        kind="follow_up",
        title=title,
        due_at=due,
        customer_id=c.id,
        dedupe_key=f"ring:{c.id}",
    )
    assert {"title", "dedupe_key"}.isdisjoint(raw(store, task.id))
    (exported,) = export_customer_file(store, c.id)["collections"]["tasks"]
    assert exported == to_doc(store.tasks.get(task.id))
    assert exported["title"] == "Call Ann about the invoice"
    assert exported["dedupe_key"] == f"ring:{c.id}"
