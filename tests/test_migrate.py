"""``crmcore.migrate``: every collection copied, versions and indexes included, and verified."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmcore.errors import DuplicateKeyError, StorageError, ValidationError
from crmcore.migrate import MANIFEST, canonical, checksum, manifest, migrate, plan
from crmcore.storage import Collection, IndexSpec
from crmcore.storage.memory import MemoryCollection, MemoryStore


@pytest.fixture
def source(make_crm, clock):
    """A CRM's backend with history: updated customers, completed tasks, an audit trail."""
    crm = make_crm(core={"unique_email": True})
    ann = crm.customers.add(actor="rep", name="Ann", email="ann@example.com", tags=["vip"])
    for region in ("North", "South", "East"):
        crm.customers.update(ann.id, actor="rep", region=region)
    bob = crm.customers.add(actor="rep", name="Bob")
    crm.interactions.log(actor="rep", customer_id=bob.id, kind="purchase", amount=12.5)
    task = crm.tasks.create(
        actor="rep", kind="callback", title="call", due_at=clock.now(), dedupe_key="cb:bob"
    )
    crm.tasks.claim(worker="w", lease=timedelta(minutes=5))
    crm.tasks.complete(task.id, actor="rep")
    extra = crm.store.inner.collection("notes.things")
    extra.ensure_index(IndexSpec([("code", 1)], unique=True, sparse=True))
    extra.insert_many(
        [
            {
                "id": f"n{i}",
                "code": None if i % 2 else f"c{i}",
                "nested": {"list": [i, None, {"x": True}]},
            }
            for i in range(25)
        ]
    )
    return crm.store


def _everything(store) -> dict[str, list[dict]]:
    """Every data collection (the target's ``_migration`` manifest left out)."""
    return {
        name: list(store.collection(name).iter())
        for name in store.collection_names()
        if name != MANIFEST
    }


def test_a_memory_to_memory_move_is_lossless_and_verified(source):
    target = MemoryStore()
    calls: list[tuple[str, int]] = []
    report = migrate(source, target, progress=lambda name, n: calls.append((name, n)), batch_size=7)
    assert report.ok, report.problems()
    assert _everything(target) == _everything(source.inner)
    customers = {d["name"]: d for d in target.collection("customers").iter()}
    assert customers["Ann"]["version"] == 4  # versions survived the move
    counts = plan(source)
    assert report.documents == sum(counts.values())
    for name, n in counts.items():
        assert (name, 0) in calls
        assert sum(k for c, k in calls if c == name) == n
        assert max(k for c, k in calls if c == name) <= 7
    assert {c.name: c.exact_versions for c in report.collections}["customers"] is True
    assert "verified" in report.summary()


def test_indexes_are_copied_and_enforced_in_the_target(source):
    target = MemoryStore()
    migrate(source, target)
    assert (
        IndexSpec([("email", 1)], unique=True, sparse=True)
        in target.collection("customers").indexes()
    )
    with pytest.raises(DuplicateKeyError):
        target.collection("notes.things").insert({"id": "dup", "code": "c0"})


def test_the_audit_trail_is_copied_not_extended(source):
    before = list(source.inner.collection("audit").iter())
    assert before
    target = MemoryStore()
    assert migrate(source, target).ok
    assert list(target.collection("audit").iter()) == before


def test_a_target_holding_documents_is_refused_and_nothing_is_written(source):
    target = MemoryStore()
    target.collection("leftover").insert({"id": "x"})
    with pytest.raises(StorageError, match=r"not empty: leftover \(1\)"):
        migrate(source, target)
    assert target.collection_names() == ["leftover"]
    with pytest.raises(ValidationError):
        migrate(source, source)
    with pytest.raises(ValidationError):
        migrate(source, MemoryStore(), batch_size=0)


class ContractOnlyCollection(MemoryCollection):
    """A backend that leaves ``import_raw`` to the contract's default (insert, then updates)."""

    import_raw = Collection.import_raw


class ContractOnlyStore(MemoryStore):
    def collection(self, name):
        with self._lock:
            if name not in self._collections:
                self._collections[name] = ContractOnlyCollection(self, name)
            return self._collections[name]


def test_the_default_import_raw_gets_the_same_result_as_a_direct_one(source):
    direct, default = MemoryStore(), ContractOnlyStore()
    assert migrate(source, direct).ok
    report = migrate(source, default)
    assert report.ok and not any(c.exact_versions for c in report.collections)
    assert _everything(default) == _everything(direct)


class LossyCollection(MemoryCollection):
    def import_raw(self, docs):
        return super().import_raw([{k: v for k, v in d.items() if k != "tags"} for d in docs])


class LossyStore(MemoryStore):
    def collection(self, name):
        with self._lock:
            if name not in self._collections:
                self._collections[name] = LossyCollection(self, name)
            return self._collections[name]


def test_a_lossy_target_fails_verification_and_says_where(source):
    report = migrate(source, LossyStore())
    assert not report.ok
    assert report.problems() == ["customers: the same number of documents, different contents"]
    assert "NOT verified" in report.summary()


def test_rows_the_target_refuses_are_reported_with_their_position():
    src = MemoryStore()
    src.collection("c").insert_many([{"id": f"d{i}", "k": i % 3} for i in range(6)])
    dst = MemoryStore()
    dst.collection("c").ensure_index(IndexSpec([("k", 1)], unique=True))  # stricter target
    report = migrate(src, dst, batch_size=4)
    (coll,) = report.collections
    assert [(e.index, e.id) for e in coll.errors] == [(3, "d3"), (4, "d4"), (5, "d5")]
    assert not report.ok and coll.target_count == 3
    assert len(report.problems()) == 4


def test_checksums_ignore_key_order_and_see_every_value():
    a = {"id": "1", "x": [1, {"b": 2, "a": None}], "version": 3}
    b = {"version": 3, "x": [1, {"a": None, "b": 2}], "id": "1"}
    assert canonical(a) == canonical(b)
    assert checksum([a]) == checksum([b])
    assert checksum([a])[1] != checksum([{**a, "version": 4}])[1]
    assert checksum([a])[1] != checksum([{**a, "x": [1, {"b": 2.5, "a": None}]}])[1]
    assert checksum([a, b])[0] == 2


class BreakingCollection(MemoryCollection):
    def import_raw(self, docs):
        docs = list(docs)
        if self._store.limit < len(docs):
            raise StorageError("connection lost")
        self._store.limit -= len(docs)
        return super().import_raw(docs)


class BreaksAfter(MemoryStore):
    """A target whose imports fail for good after ``limit`` documents (a dropped connection)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def collection(self, name):
        with self._lock:
            if name not in self._collections:
                self._collections[name] = BreakingCollection(self, name)
            return self._collections[name]


def test_the_manifest_says_verified_only_after_a_verified_copy(source):
    target = MemoryStore()
    assert migrate(source, target).ok
    (held,) = target.collection(MANIFEST).find()
    assert held["state"] == "verified"
    assert {r["name"]: r["count"] for r in held["collections"]} == plan(source)
    assert {r["name"]: r["sha256"] for r in held["collections"]} == {
        n: m["sha256"] for n, m in manifest(source).items()
    }


def test_a_broken_run_is_refused_as_a_source_and_as_a_target_until_resumed(source):
    """The incident: a forward run failed halfway, and migrating the partial copy back
    reported success. Now the partial copy says what it is."""
    total = sum(plan(source).values())
    broken = BreaksAfter(limit=total // 2)
    with pytest.raises(StorageError, match="connection lost"):
        migrate(source, broken, batch_size=3)
    partial = sum(broken.collection(n).count() for n in broken.collection_names() if n != MANIFEST)
    assert 0 < partial < total
    with pytest.raises(StorageError, match="is an incomplete copy"):
        migrate(broken, MemoryStore())  # migrating it on would copy a partial store
    with pytest.raises(StorageError, match=r"not empty: .*pass --resume"):
        migrate(source, broken)
    broken.limit = total  # the connection is back
    calls: list[tuple[str, int]] = []
    report = migrate(
        source, broken, resume=True, batch_size=3, progress=lambda name, n: calls.append((name, n))
    )
    assert report.ok, report.problems()
    assert report.resumed and "resumed" in report.summary()
    assert sum(c.copied for c in report.collections) == total - partial
    assert sum(n for _, n in calls) == total - partial
    assert _everything(broken) == _everything(source.inner)
    back = MemoryStore()
    assert migrate(broken, back).ok  # now complete: it may be migrated on
    assert _everything(back) == _everything(source.inner)


def test_resume_refuses_a_source_that_changed_since_the_broken_run(source):
    broken = BreaksAfter(limit=2)
    with pytest.raises(StorageError):
        migrate(source, broken)
    source.inner.collection("notes.things").insert({"id": "late", "code": "zz"})
    broken.limit = 10_000
    with pytest.raises(StorageError, match=r"source changed .*notes\.things"):
        migrate(source, broken, resume=True)


def test_resume_with_nothing_to_resume_is_refused(source):
    target = MemoryStore()
    with pytest.raises(StorageError, match=r"nothing to resume: .*no interrupted migration"):
        migrate(source, target, resume=True)
    assert migrate(source, target).ok
    with pytest.raises(StorageError, match="already finished and verified"):
        migrate(source, target, resume=True)


def test_a_target_with_data_but_no_manifest_is_refused_even_with_resume(source):
    target = MemoryStore()
    target.collection("customers").insert({"id": "x"})
    with pytest.raises(StorageError, match="nothing to resume"):
        migrate(source, target, resume=True)
    with pytest.raises(StorageError, match="not empty: customers"):
        migrate(source, target)
