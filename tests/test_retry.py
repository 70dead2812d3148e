"""Operations rolled back by a concurrent transaction (``TransientConflict``) run again.

MongoDB replica sets raise it; here a store layer over the in-memory backend makes the first
commits collide, so the core's side of it is tested on every machine. (The real-server test
of concurrent writers is in plugins/storage_mongo/tests/test_transactions.py.)
"""

from __future__ import annotations

import contextlib

import pytest

from crmcore import hookimpl, retry
from crmcore.errors import ConflictError, TransientConflict
from crmcore.retry import retrying
from crmcore.storage import StorageBackend
from crmcore.storage.base import StoreLayer
from crmcore.storage.memory import MemoryStore


class CollidingStore(StoreLayer):
    """Rolls back the next ``collisions`` outermost transactions as MongoDB does when another
    transaction wrote the same key first (the body ran; nothing of it is kept)."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())
        self.collisions = 0  # at commit
        self.write_collisions = 0  # at the next insert (a write conflict inside the block)
        self.commits = 0
        self._depth = 0

    def collection(self, name: str):
        inner = self.inner.collection(name)
        store = self

        class Colliding(type(inner)):  # the memory collection, its inserts sometimes refused
            def insert(self, doc):
                if store.write_collisions:
                    store.write_collisions -= 1
                    raise TransientConflict("simulated: write conflict")
                return super().insert(doc)

        inner.__class__ = Colliding
        return inner

    @contextlib.contextmanager
    def transaction(self):
        self._depth += 1
        try:
            with self.inner.transaction():
                yield
                if self._depth == 1 and self.collisions:
                    self.collisions -= 1
                    raise TransientConflict("simulated: a concurrent transaction won")
                if self._depth == 1:
                    self.commits += 1
        finally:
            self._depth -= 1


@pytest.fixture
def colliding(make_crm, monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", pauses.append)
    store = CollidingStore()

    class Backend:
        @hookimpl
        def crm_storage_backends(self):
            return [StorageBackend("colliding", lambda _options: store, "for tests")]

    crm = make_crm([("backend", Backend())], storage={"backend": "colliding"})
    return crm, store, pauses


def test_an_api_write_rolled_back_by_a_collision_runs_again_and_is_kept_once(
    colliding, monkeypatch
):
    crm, store, pauses = colliding
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: (low + high) / 2)
    store.collisions = 2
    customer = crm.customers.add(actor="ann", name="Li")
    assert [c.id for c in crm.customers.find()] == [customer.id]
    assert crm.audit.verify().ok and crm.audit.verify().entries == 1
    assert pauses == [retry.FIRST_PAUSE, 2 * retry.FIRST_PAUSE]  # backing off (jitter at 1x)


def test_each_core_write_method_retries(colliding):
    crm, store, _pauses = colliding
    customer = crm.customers.add(actor="ann", name="Li")
    other = crm.customers.add(actor="ann", name="Li Lei")
    for call in (
        lambda: crm.customers.update(customer.id, actor="ann", region="North"),
        lambda: crm.customers.patch_ext(customer.id, "probe", {"x": 1}, actor="ann"),
        lambda: crm.interactions.log(
            actor="ann", customer_id=customer.id, kind="purchase", amount=5.0
        ),
        lambda: crm.tasks.create(
            actor="ann", kind="callback", title="call", due_at=crm.now(), customer_id=customer.id
        ),
    ):
        store.collisions = 1
        call()
        assert store.collisions == 0
    task = crm.tasks.open_for(customer.id)[0]
    for call in (
        lambda: crm.tasks.assign(task.id, "bo", actor="ann"),
        lambda: crm.tasks.reschedule(task.id, crm.now(), actor="ann"),
        lambda: crm.tasks.set_priority(task.id, 3, actor="ann"),
        lambda: crm.tasks.complete(task.id, actor="ann"),
        lambda: crm.customers.merge(customer.id, other.id, actor="ann"),
        lambda: crm.customers.forget(customer.id, actor="ann"),
    ):
        store.collisions = 1
        call()
        assert store.collisions == 0
    assert crm.interactions.count() == 1 and crm.tasks.count() == 1
    assert crm.audit.verify().ok


def test_after_the_last_attempt_the_conflict_reaches_the_caller_and_nothing_is_kept(colliding):
    crm, store, pauses = colliding
    store.collisions = retry.ATTEMPTS
    with pytest.raises(TransientConflict, match="concurrent"):
        crm.customers.add(actor="ann", name="Li")
    assert crm.customers.count() == 0 and len(pauses) == retry.ATTEMPTS - 1
    assert crm.audit.verify().entries == 0


def test_inside_a_transaction_the_block_is_what_runs_again(colliding):
    crm, store, pauses = colliding

    def two_adds() -> None:
        with crm.transaction("ann"):
            crm.customers.add(actor="ann", name="Li")
            crm.customers.add(actor="ann", name="Bo")

    store.collisions = 1
    with pytest.raises(TransientConflict):
        two_adds()  # the adds inside do not retry on their own: the block was rolled back
    assert crm.customers.count() == 0 and pauses == []
    store.write_collisions = 1
    with pytest.raises(TransientConflict, match="write conflict"):
        two_adds()  # raised inside the block by the first add: still not retried there
    assert crm.customers.count() == 0 and pauses == []
    store.collisions = 1
    retrying(crm, two_adds)
    assert sorted(c.name for c in crm.customers.find()) == ["Bo", "Li"]
    assert store.commits == 1 and len(pauses) == 1


def test_a_stale_version_is_not_retried(colliding):
    crm, _store, pauses = colliding
    customer = crm.customers.add(actor="ann", name="Li")
    crm.customers.update(customer.id, actor="ann", region="North")
    with pytest.raises(ConflictError) as raised:
        crm.customers.update(customer.id, actor="bo", region="South", expected_version=1)
    assert not isinstance(raised.value, TransientConflict) and pauses == []
    assert crm.customers.get(customer.id).region == "North"
