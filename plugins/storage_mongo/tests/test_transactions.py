"""``Store.transaction()``: atomic on a replica set or sharded cluster, grouping elsewhere.

mongomock has no sessions, so on it the backend declares ``transactions=False`` and these
tests check only that fallback and the bookkeeping around a transaction (with a stand-in
session that records calls). That MongoDB commits and rolls back is shown only by the
real-server tests at the end, which run when ``CRM_TEST_MONGODB_URI`` names a replica set.
"""

from __future__ import annotations

import attrs
import pytest
from crmcore_storage_mongo.store import _Txn
from pymongo.errors import OperationFailure

from crmcore.errors import ConflictError, DuplicateKeyError, StorageError, TransientConflict
from crmcore.storage import IndexSpec

# -- without transactions (mongomock, standalone servers, transactions = "off") ---------------


def test_without_transactions_the_block_only_groups_writes(open_mock):
    store = open_mock()
    assert store.capabilities.transactions is False
    a = store.collection("a")
    with pytest.raises(RuntimeError), store.transaction():
        a.insert({"id": "1"})
        with store.transaction():  # nesting is allowed and changes nothing
            store.collection("b").insert({"id": "2"})
        raise RuntimeError("boom")
    # each write was atomic on its own and stays: this is what capabilities say
    assert a.count() == 1 and store.collection("b").count() == 1


# -- the bookkeeping, with a stand-in session (not MongoDB's semantics) ----------------------


class FakeSession:
    def __init__(self, commit_errors=()):
        self.calls: list[str] = []
        self.in_transaction = False
        self._commit_errors = list(commit_errors)

    def start_transaction(self, **kwargs):
        self.calls.append("start")
        self.in_transaction = True

    def commit_transaction(self):
        self.calls.append("commit")
        if self._commit_errors:
            raise self._commit_errors.pop(0)
        self.in_transaction = False

    def abort_transaction(self):
        self.calls.append("abort")
        self.in_transaction = False

    def end_session(self):
        self.calls.append("end")


def labelled(label: str) -> OperationFailure:
    exc = OperationFailure("simulated", code=112)
    exc._add_error_label(label)
    return exc


@pytest.fixture
def with_fake_sessions(open_mock, monkeypatch):
    store = open_mock()
    store.capabilities = attrs.evolve(store.capabilities, transactions=True)
    sessions: list[FakeSession] = []

    def start(errors=()):
        def start_session():
            sessions.append(FakeSession(errors))
            return sessions[-1]

        monkeypatch.setattr(store.client, "start_session", start_session, raising=False)

    return store, sessions, start


def test_a_clean_block_commits_and_an_exception_aborts(with_fake_sessions):
    store, sessions, start = with_fake_sessions
    start()
    with store.transaction(), store.transaction():  # the inner one joins the outer
        pass
    with pytest.raises(KeyError), store.transaction():
        raise KeyError("x")
    assert [s.calls for s in sessions] == [["start", "commit", "end"], ["start", "abort", "end"]]


def test_an_unknown_commit_result_is_retried_and_a_collision_is_a_conflict(with_fake_sessions):
    store, sessions, start = with_fake_sessions
    start([labelled("UnknownTransactionCommitResult")])
    with store.transaction():
        pass
    assert sessions[-1].calls == ["start", "commit", "commit", "end"]
    start([labelled("TransientTransactionError")])
    with pytest.raises(TransientConflict, match="retry"), store.transaction():
        pass  # a collision: the core's API runs the operation again (crmcore.retry)
    start([OperationFailure("disk full", code=14031)])
    with pytest.raises(StorageError), store.transaction():
        pass


def test_a_failed_write_inside_a_transaction_dooms_it(open_mock):
    """The server aborts a transaction when a command in it fails; afterwards every
    operation, and leaving the block, says so instead of pretending to continue."""
    store = open_mock()
    coll = store.collection("a")
    coll.ensure_index(IndexSpec([("k", 1)], unique=True))
    coll.insert({"id": "1", "k": 1})
    txn = _Txn(session=None)  # operations run without a session on mongomock
    token = store._txn.set(txn)
    try:
        coll._server_indexes()
        coll._on_server = []  # pretend no unique index is known, so the write itself fails
        with pytest.raises(DuplicateKeyError):
            coll.insert({"id": "2", "k": 1})
    finally:
        store._txn.reset(token)
    assert txn.doomed and "retry" in txn.doomed
    token = store._txn.set(txn)
    try:
        with pytest.raises(ConflictError, match="aborted") as raised:
            coll.get("1")
        assert not isinstance(raised.value, TransientConflict)  # a real duplicate: no retry
    finally:
        store._txn.reset(token)


def test_a_transaction_doomed_by_a_collision_says_it_may_be_run_again(open_mock):
    store = open_mock()
    coll = store.collection("a")
    coll.insert({"id": "1"})
    txn = _Txn(session=None)
    token = store._txn.set(txn)
    try:
        with pytest.raises(TransientConflict), coll._op("writing"):
            raise labelled("TransientTransactionError")  # what a write conflict carries
        with pytest.raises(TransientConflict, match="aborted"):
            coll.get("1")
    finally:
        store._txn.reset(token)
    assert txn.transient and isinstance(txn.fail(), TransientConflict)


def test_inside_a_transaction_duplicates_are_found_by_reading_first(open_mock):
    """A duplicate found by a read does not abort the transaction: the caller may go on
    (the core catches DuplicateKeyError when a dedupe key is taken)."""
    store = open_mock()
    coll = store.collection("a")
    coll.ensure_index(IndexSpec([("k", 1)], unique=True, sparse=True))
    coll.insert({"id": "1", "k": 1})
    txn = _Txn(session=None)
    token = store._txn.set(txn)
    try:
        with pytest.raises(DuplicateKeyError):
            coll.insert({"id": "1"})
        with pytest.raises(DuplicateKeyError):
            coll.insert({"id": "2", "k": 1})
        assert [e.index for e in coll.upsert_many([{"id": "3", "k": 1}]).errors] == [0]
        coll.insert({"id": "4", "k": None})
        coll.insert({"id": "5"})
        assert coll.update("4", {"k": 2}, expected_version=1)["k"] == 2
        with pytest.raises(DuplicateKeyError):
            coll.update("5", {"k": 2}, expected_version=1)
        assert txn.doomed is None
    finally:
        store._txn.reset(token)
    assert coll.count() == 3


# -- on a real replica set ---------------------------------------------------------------------


@pytest.fixture
def replica_set(open_real):
    store = open_real()
    if not store.capabilities.transactions:
        pytest.skip(f"{store.describe()}: transactions need a replica set or sharded cluster")
    return store


def test_real_rollback_across_collections(replica_set):
    a, b = replica_set.collection("a"), replica_set.collection("b")
    a.insert({"id": "keep", "x": 1})
    with pytest.raises(RuntimeError), replica_set.transaction():
        a.update("keep", {"x": 2}, expected_version=1)
        b.insert({"id": "new"})
        assert b.count() == 1  # visible inside the transaction
        raise RuntimeError("boom")
    assert a.get("keep") == {"id": "keep", "x": 1, "version": 1}
    assert b.count() == 0


def test_real_escalation_and_its_task_commit_together(replica_set):
    tickets, tasks = replica_set.collection("tickets"), replica_set.collection("tasks")
    tasks.ensure_index(IndexSpec([("open_key", 1)], unique=True, sparse=True))
    tickets.insert({"id": "t1", "level": 0})
    with replica_set.transaction():
        tickets.update("t1", {"level": 1}, expected_version=1)
        tasks.insert({"id": "k1", "open_key": "escalate:t1"})
        with pytest.raises(DuplicateKeyError):  # found by reading: the transaction lives on
            tasks.insert({"id": "k2", "open_key": "escalate:t1"})
    assert tickets.get("t1")["level"] == 1 and tasks.count() == 1


def test_real_switch_off(open_real):
    assert open_real(transactions="off").capabilities.transactions is False


def test_real_concurrent_writers_through_the_core_api_all_succeed(replica_set):
    """Two threads adding customers at once with the audit trail on: their transactions
    collide on the chain's next entry, and the core runs the losers again."""
    import threading

    from crmcore.testing import make_test_crm

    crm = make_test_crm(
        ["storage_mongo"],
        storage={
            "backend": "mongodb",
            "location": replica_set.uri,
            "options": {"database": replica_set.database_name},
        },
    )
    failures: list[BaseException] = []

    def adds(prefix: str) -> None:
        try:
            for i in range(50):
                crm.customers.add(actor=prefix, name=f"{prefix} {i}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=adds, args=(p,)) for p in ("ann", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert failures == [] and crm.customers.count() == 100
        report = crm.audit.verify()
        assert report.ok and report.entries == 100
    finally:
        crm.close()
