"""The CRM facade host applications use: customers, interactions, tasks, actors, conflicts."""

import re
import threading
from datetime import timedelta

import pytest

import crmcore
from crmcore import ConflictError, NotFoundError, Priority, TaskStatus, ValidationError
from crmcore.testing import START


@pytest.fixture
def crm(make_crm):
    return make_crm(core={"default_country_code": "86", "timezone": "Asia/Shanghai"})


def test_open_crm_is_a_context_manager_that_closes_the_store():
    with crmcore.open_crm({"storage": {"backend": "memory", "location": None}}, plugins=[]) as crm:
        crm.customers.add(actor="ann", name="Li")
    from crmcore.errors import StorageError

    with pytest.raises(StorageError, match="closed"):
        crm.store.collection("customers")


def test_add_normalises_contacts_and_records_the_actor(crm):
    c = crm.customers.add(
        actor="ann", name="  Li   Lei ", phone="138-0013-8000", email=" Li.Lei@Example.com"
    )
    assert (c.name, c.phone, c.email) == ("Li Lei", "+8613800138000", "li.lei@example.com")
    assert (c.created_by, c.updated_by, c.created_at, c.version) == ("ann", "ann", START, 1)
    assert c.timezone == "Asia/Shanghai"  # the business default
    assert crm.customers.get(c.id) == c


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "name: must not be empty"),
        ({"name": "Li", "phone": "12"}, "phone: malformed phone number"),
        ({"name": "Li", "email": "li@"}, "email: malformed e-mail"),
        ({"name": "Li", "colour": "red"}, "unknown or read-only customer field(s): colour"),
        ({"name": "Li", "version": 5}, "unknown or read-only customer field(s): version"),
        ({"name": "Li", "timezone": "Moon/Base"}, "timezone: unknown time zone"),
        ({"name": "Li", "gender": "x"}, "gender: unknown value 'x'"),
    ],
)
def test_bad_customer_input_is_refused_and_writes_nothing(crm, fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        crm.customers.add(actor="ann", **fields)
    assert crm.customers.count() == 0


def test_every_write_needs_an_actor(crm):
    with pytest.raises(ValidationError, match="actor"):
        crm.customers.add(actor=" ", name="Li")


def test_update_with_a_stale_version_raises_conflict_and_changes_nothing(crm):
    c = crm.customers.add(actor="ann", name="Li")
    crm.customers.update(c.id, actor="bo", region="North", expected_version=c.version)
    with pytest.raises(ConflictError, match="changed since you read it"):
        crm.customers.update(c.id, actor="cy", region="South", expected_version=c.version)
    assert crm.customers.get(c.id).region == "North"


def test_unknown_ids_are_not_found(crm):
    with pytest.raises(NotFoundError, match="no record with id 'cus_nope'"):
        crm.customers.get("cus_nope")
    with pytest.raises(NotFoundError):
        crm.interactions.log(actor="ann", customer_id="cus_nope", kind="visit")
    with pytest.raises(NotFoundError):
        crm.tasks.complete("tsk_nope", actor="ann")


def test_find_by_contact_and_duplicates(crm):
    a = crm.customers.add(actor="ann", name="Li", phone="13800138000")
    b = crm.customers.add(actor="ann", name="Li L", phone="+86 138 0013 8000")
    c = crm.customers.add(actor="ann", name="Wang", email="w@example.com")
    d = crm.customers.add(actor="ann", name="Wang W", email="W@EXAMPLE.com")
    crm.customers.add(actor="ann", name="Zhao")
    assert [x.id for x in crm.customers.find_by_contact(phone="138 0013 8000")] == [a.id, b.id]
    groups = [[x.id for x in g] for g in crm.customers.find_duplicates()]
    assert groups == [[a.id, b.id], [c.id, d.id]]


def test_merge_moves_history_fills_gaps_and_leaves_a_tombstone_without_personal_data(crm):
    keep = crm.customers.add(actor="ann", name="Li Lei", phone="13800138000", tags=["vip"])
    dup = crm.customers.add(
        actor="ann",
        name="Lei Li",
        phone="13800138000",
        email="li@example.com",
        region="North",
        tags=["new"],
    )
    crm.interactions.log(actor="ann", customer_id=dup.id, kind="purchase", amount=10.0)
    task = crm.tasks.create(
        actor="ann", kind="callback", title="call", due_at=START, customer_id=dup.id
    )
    merged = crm.customers.merge(keep.id, dup.id, actor="bo")
    assert merged.name == "Li Lei" and merged.email == "li@example.com"
    assert merged.region == "North" and merged.tags == ("new", "vip")
    assert [i.customer_id for i in crm.interactions.for_customer(keep.id)] == [keep.id]
    assert crm.tasks.get(task.id).customer_id == keep.id
    tomb = crm.customers.get_any(dup.id)
    assert tomb.status.value == "merged" and tomb.merged_into == keep.id
    assert (tomb.name, tomb.phone, tomb.email) == ("(merged)", None, None)
    with pytest.raises(NotFoundError, match=f"merged into {keep.id}"):
        crm.customers.get(dup.id)
    assert crm.customers.count() == 1
    with pytest.raises(ValidationError, match="into itself"):
        crm.customers.merge(keep.id, keep.id, actor="bo")


def test_interactions_history_newest_first(crm, clock):
    c = crm.customers.add(actor="ann", name="Li")
    for days, kind in ((0, "consultation"), (1, "purchase"), (2, "visit")):
        crm.interactions.log(
            actor="ann", customer_id=c.id, kind=kind, occurred_at=START + timedelta(days=days)
        )
    assert [i.kind for i in crm.interactions.for_customer(c.id)] == [
        "visit",
        "purchase",
        "consultation",
    ]
    assert [
        i.kind
        for i in crm.interactions.for_customer(
            c.id, since=START + timedelta(days=1), newest_first=False
        )
    ] == ["purchase", "visit"]
    with pytest.raises(ValidationError, match="unknown interaction kind 'gossip'"):
        crm.interactions.log(actor="ann", customer_id=c.id, kind="gossip")


def test_due_queue_is_sorted_by_urgency_and_filters(crm, clock):
    c = crm.customers.add(actor="ann", name="Li")
    mk = crm.tasks.create
    low = mk(
        actor="ann",
        kind="other",
        title="low",
        due_at=START - timedelta(days=2),
        priority=Priority.LOW,
        assignee="ann",
    )
    urgent = mk(
        actor="ann",
        kind="callback",
        title="urgent",
        due_at=START,
        priority=Priority.URGENT,
        assignee="bo",
        customer_id=c.id,
    )
    normal = mk(
        actor="ann", kind="other", title="normal", due_at=START - timedelta(hours=1), assignee="ann"
    )
    mk(actor="ann", kind="other", title="later", due_at=START + timedelta(days=1))
    assert [t.id for t in crm.tasks.due()] == [urgent.id, normal.id, low.id]
    assert [t.id for t in crm.tasks.due(assignee="ann")] == [normal.id, low.id]
    assert [t.id for t in crm.tasks.due(overdue=True)] == [normal.id, low.id]
    assert len(crm.tasks.due(within=timedelta(days=1))) == 4
    assert [t.id for t in crm.tasks.due(kinds=["callback"])] == [urgent.id]


def test_task_lifecycle_and_refusals(crm, clock):
    t = crm.tasks.create(actor="ann", kind="other", title="x", due_at=START)
    t = crm.tasks.assign(t.id, "bo", actor="ann")
    t = crm.tasks.reschedule(t.id, START + timedelta(hours=3), actor="bo")
    clock.advance(hours=4)
    done = crm.tasks.complete(t.id, actor="bo", outcome="reached")
    assert (done.status, done.completed_by, done.completed_at) == (
        TaskStatus.DONE,
        "bo",
        clock.now(),
    )
    with pytest.raises(ValidationError, match="is done; only open tasks change"):
        crm.tasks.complete(t.id, actor="bo")
    with pytest.raises(ValidationError, match="unknown task kind 'chore'"):
        crm.tasks.create(actor="ann", kind="chore", title="x", due_at=START)
    with pytest.raises(ValidationError, match="due_at: naive datetime"):
        crm.tasks.create(actor="ann", kind="other", title="x", due_at=START.replace(tzinfo=None))


def test_dedupe_key_allows_one_open_task_and_frees_after_completion(crm):
    first = crm.tasks.create(actor="ann", kind="other", title="a", due_at=START, dedupe_key="k")
    again = crm.tasks.create(actor="ann", kind="other", title="b", due_at=START, dedupe_key="k")
    assert again.id == first.id and crm.tasks.count() == 1
    crm.tasks.complete(first.id, actor="ann")
    third = crm.tasks.create(actor="ann", kind="other", title="c", due_at=START, dedupe_key="k")
    assert third.id != first.id and crm.tasks.count() == 2


def test_concurrent_creators_with_one_dedupe_key_make_one_task(crm):
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        crm.tasks.create(actor="w", kind="other", title="once", due_at=START, dedupe_key="once")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert crm.tasks.count({"dedupe_key": "once"}) == 1


def test_claim_leases_a_due_task_to_one_worker(crm, clock):
    crm.tasks.create(actor="ann", kind="other", title="x", due_at=START)
    first = crm.tasks.claim(worker="w1", lease=timedelta(minutes=5))
    assert first is not None and first.lease_owner == "w1"
    assert crm.tasks.claim(worker="w2", lease=timedelta(minutes=5)) is None
    clock.advance(minutes=5)
    assert crm.tasks.claim(worker="w2", lease=timedelta(minutes=5)).lease_owner == "w2"


def test_ext_patches_merge_per_namespace(crm):
    c = crm.customers.add(actor="ann", name="Li", ext={"a": {"x": 1}})
    crm.customers.patch_ext(c.id, "a", {"y": 2}, actor="sys")
    crm.customers.patch_ext(c.id, "b", {"z": 3}, actor="sys")
    assert crm.customers.get(c.id).ext == {"a": {"x": 1, "y": 2}, "b": {"z": 3}}


def test_an_ext_patch_is_checked_and_a_bad_one_writes_nothing(crm):
    from crmcore import ValidationError

    c = crm.customers.add(actor="ann", name="Li", ext={"a": {"x": 1}})
    with pytest.raises(ValidationError, match="ext"):
        crm.customers.patch_ext(c.id, "b", {"when": object()}, actor="sys")
    with pytest.raises(ValidationError, match="ext"):
        crm.customers.patch_ext(c.id, "b", {"n": float("nan")}, actor="sys")
    stored = crm.customers.get(c.id)
    assert (stored.ext, stored.version) == ({"a": {"x": 1}}, c.version)
    same = crm.customers.patch_ext(c.id, "a", {"x": 1}, actor="sys")
    assert same == stored  # nothing to change: nothing written


def test_unique_contacts_when_configured(make_crm):
    from crmcore import DuplicateKeyError

    crm = make_crm(core={"unique_phone": True})
    crm.customers.add(actor="ann", name="Li", phone="13800138000")
    crm.customers.add(actor="ann", name="No phone")
    crm.customers.add(actor="ann", name="No phone either")
    with pytest.raises(DuplicateKeyError):
        crm.customers.add(actor="ann", name="Li again", phone="138 0013 8000")
