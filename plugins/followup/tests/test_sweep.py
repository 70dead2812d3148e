"""The worker sweep: creates what has come due, touches only what is due, and is idempotent
under repeated sweeps and several workers at once (threads, and processes on tinydb)."""

from __future__ import annotations

import importlib.metadata
import itertools
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from crmcore_followup.records import SCHEDULE, Schedule

from crmcore.storage.memory import MemoryStore
from crmcore.testing import START

_names = itertools.count()


@pytest.fixture
def shared(make_crm):
    """Two CRMs on one in-memory store: one without the plugin (customers added before it
    was enabled), one with it."""
    name = f"followup-sweep-{next(_names)}"
    storage = {"backend": "memory", "location": name}

    def open_(plugins, core=None, **settings):
        return make_crm(plugins, storage=storage, settings=settings, core=core)

    yield open_
    MemoryStore.drop_shared(name)


def _populate(crm, n):
    ids = []
    for i in range(n):
        fields = {"birth_date": date(1980, 1, 1 + i % 28)} if i % 2 == 0 else {}
        grade = "ABCDE"[i % 5]
        ids.append(
            crm.customers.add(
                actor="import",
                name=f"C{i}",
                ext={"grading": {"grades": {"pipeline": grade}}},
                **fields,
            ).id
        )
    return ids


def _check_no_duplicates(crm, ids):
    open_tasks = crm.tasks.find({"status": "open"})
    keys = Counter(t.dedupe_key for t in open_tasks)
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    follow_ups = Counter(t.customer_id for t in open_tasks if t.kind == "follow_up")
    assert follow_ups == dict.fromkeys(ids, 1)
    # one greeting per occasion ever, done or not (follow-up keys recur once completed)
    once = Counter(t.dedupe_key for t in crm.tasks.find({"kind": "care"}))
    assert all(n == 1 for n in once.values())


def test_customers_from_before_the_plugin_get_follow_ups_from_their_last_contact(shared, clock):
    before = shared([])
    old = before.customers.add(
        actor="import", name="Old", ext={"grading": {"grades": {"pipeline": "B"}}}
    )
    before.interactions.log(
        actor="rep", customer_id=old.id, kind="follow_up", occurred_at=START - timedelta(days=2)
    )
    never = before.customers.add(actor="import", name="Never")
    crm = shared(["followup"])
    report = crm.tick("w1")
    assert report.tasks_created == 2
    [task] = crm.tasks.open_for(old.id, kind="follow_up")
    assert task.due_at == START + timedelta(days=5)  # 7 days after the last follow-up
    [later] = crm.tasks.open_for(never.id, kind="follow_up")
    assert later.due_at == START + timedelta(days=30)  # ungraded: 30 days after it was added
    assert crm.tasks.open_for(old.id, kind="first_contact") == []  # not newly assigned


def test_the_backfill_goes_a_batch_per_sweep(shared):
    ids = _populate(shared([]), 25)
    crm = shared(["followup"], followup={"sweep_batch": 10})
    created = [crm.tick("w1").tasks_created for _ in range(4)]
    _check_no_duplicates(crm, ids)
    assert sum(created) >= 25 and created[-1] == 0


def test_repeated_sweeps_create_nothing_twice_and_touch_only_what_is_due(shared, clock):
    ids = _populate(shared([]), 60)
    crm = shared(["followup"])
    first = crm.tick("w1")
    assert first.tasks_created > 60  # follow-ups, and January birthdays within a week
    versions = {d["id"]: d["version"] for d in crm.collection(SCHEDULE).find()}
    for _ in range(5):
        assert crm.tick("w1").tasks_created == 0
        assert crm.tick("w2").tasks_created == 0
    # nothing was due: no schedule was even leased, let alone rewritten
    assert {d["id"]: d["version"] for d in crm.collection(SCHEDULE).find()} == versions
    _check_no_duplicates(crm, ids)


def test_two_workers_at_once_create_no_duplicates(shared, clock):
    ids = _populate(shared([]), 150)
    crm = shared(["followup"], followup={"sweep_batch": 7})
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(name):
        try:
            barrier.wait()
            for _ in range(40):
                crm.tick(name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    _check_no_duplicates(crm, ids)
    birthdays = [t for t in crm.tasks.find({"kind": "care"})]
    assert len(birthdays) == len({t.dedupe_key for t in birthdays}) > 0
    # and a year of daily sweeps by both workers keeps it that way
    for _ in range(30):
        clock.advance(days=1)
        crm.tick("w1")
        crm.tick("w2")
        for task in crm.tasks.due(kinds=["follow_up"], limit=40):
            crm.tasks.complete(task.id, actor="rep")
    _check_no_duplicates(crm, ids)


def test_a_grade_set_without_an_event_is_adopted_at_the_next_look(crm, clock):
    customer = crm.customers.add(actor="t", name="X")
    [first] = crm.tasks.open_for(customer.id, kind="first_contact")
    crm.tasks.complete(first.id, actor="rep")
    crm.customers.patch_ext(customer.id, "grading", {"grades": {"pipeline": "A"}}, actor="import")
    clock.advance(days=31)
    crm.tick("w1")
    [task] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert task.due_at == START + timedelta(days=1)


def test_do_not_contact_cancels_contact_tasks_and_stops_the_sweep(crm, clock):
    customer = crm.customers.add(
        actor="t",
        name="X",
        birth_date=date(1990, 1, 9),
        ext={"grading": {"grades": {"pipeline": "A"}}},
    )
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    crm.tick("w1")
    kinds = sorted(t.kind for t in crm.tasks.open_for(customer.id))
    assert kinds == ["callback", "care", "first_contact"]
    crm.customers.update(customer.id, actor="rep", do_not_contact=True)
    assert crm.tasks.open_for(customer.id) == []
    for _ in range(40):
        clock.advance(days=1)
        crm.tick("w1")
        crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    assert crm.tasks.open_for(customer.id) == []
    assert crm.records(SCHEDULE, Schedule).get(f"fus_{customer.id}").check_at is None
    crm.customers.update(customer.id, actor="rep", do_not_contact=False)
    crm.tick("w1")
    [task] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert task.due_at <= clock.now()  # overdue since the last contact: due now


def test_a_merge_retires_the_duplicates_schedule(crm, clock):
    keep = crm.customers.add(actor="t", name="Keep", phone="+86 139 0000 0001")
    dup = crm.customers.add(actor="t", name="Dup", birth_date=date(1990, 1, 20))
    crm.customers.merge(keep.id, dup.id, actor="m")
    retired = crm.records(SCHEDULE, Schedule).get(f"fus_{dup.id}")
    assert (retired.active, retired.check_at, retired.customer_id) == (False, None, keep.id)
    for _ in range(20):
        clock.advance(days=1)
        crm.tick("w1")
    tasks = crm.tasks.find({"customer_id": keep.id, "status": "open"})
    assert Counter(t.kind for t in tasks) == {"first_contact": 1, "care": 1}
    assert crm.tasks.find({"customer_id": dup.id, "status": "open"}) == []


CHILD = textwrap.dedent("""
    import sys
    from datetime import datetime
    from crmcore import ManualClock
    from crmcore.testing import make_test_crm
    location, worker, when = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
    crm = make_test_crm(["followup", "storage_tinydb"], clock=ManualClock(when),
                        storage={"backend": "tinydb", "location": location},
                        settings={"followup": {"sweep_batch": 5}})
    for _ in range(12):
        crm.tick(worker)
    crm.close()
""")


@pytest.mark.skipif(
    "storage_tinydb" not in importlib.metadata.entry_points(group="crmcore").names,
    reason="the tinydb storage plugin is not installed",
)
def test_two_worker_processes_on_one_tinydb_store_create_no_duplicates(make_crm, tmp_path):
    location = str(tmp_path / "data")
    storage = {"backend": "tinydb", "location": location}
    setup = make_crm(["storage_tinydb"], storage=storage)
    ids = _populate(setup, 40)
    setup.close()
    when = START.isoformat()
    script = tmp_path / "worker.py"
    script.write_text(CHILD)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), location, f"p{i}", when],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in (1, 2)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    crm = make_crm(["followup", "storage_tinydb"], storage=storage)
    _check_no_duplicates(crm, ids)
    assert (
        crm.tasks.count({"kind": "care"})
        == len({t.dedupe_key for t in crm.tasks.find({"kind": "care"})})
        > 0
    )


def test_the_tick_report_counts_what_the_sweep_created(crm, clock):
    crm.customers.add(actor="t", name="B", birth_date=date(1990, 1, 8))
    report = crm.tick("w1", now=datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
    assert report.tasks_created == 1  # the birthday greeting, three days ahead
