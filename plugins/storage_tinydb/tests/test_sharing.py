"""Several processes share one store: no lost write, no collision, claims handed out once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions

from crmcore.errors import StorageError
from crmcore.testing.factories import make_test_crm

sys.path.insert(0, str(Path(__file__).parent))
import tinydb_store_children as children


@pytest.fixture(scope="module")
def forkserver():
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["crmcore_storage_tinydb", "tinydb_store_children"])
    return ctx


def _run_all(forkserver, target, args_list, limit=60.0):
    procs = [forkserver.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(limit)
        assert not p.is_alive(), "a child process hung"
        assert p.exitcode == 0, f"a child process failed (exit code {p.exitcode})"


def test_four_processes_writing_250_each_leave_exactly_1000_records(store_dir, forkserver):
    TinyStore(store_dir).close()
    _run_all(forkserver, children.adder, [(str(store_dir), w, 250) for w in range(4)])
    store = TinyStore(store_dir)
    try:
        things = store.collection("things")
        assert things.count() == 1000
        ids = [d["id"] for d in things.iter()]
        assert len(set(ids)) == 1000
        assert all(things.count({"worker": w}) == 250 for w in range(4))
        assert store.check()["things"] == 1000
    finally:
        store.close()


def test_four_processes_adding_customers_through_the_core_api(store_dir, forkserver, clock):
    make_test_crm(
        ["storage_tinydb"], clock=clock, storage={"backend": "tinydb", "location": str(store_dir)}
    ).close()
    _run_all(forkserver, children.crm_adder, [(str(store_dir), w, 60) for w in range(4)])
    crm = make_test_crm(
        ["storage_tinydb"], clock=clock, storage={"backend": "tinydb", "location": str(store_dir)}
    )
    try:
        assert crm.customers.count() == 240
        assert len({c.id for c in crm.customers.iter()}) == 240
        if crm.audit is not None:  # the audit chain's unique sequence held across processes
            report = crm.audit.verify()
            assert report.ok, report.problem
            assert report.entries >= 240
    finally:
        crm.close()


def test_claims_from_several_processes_hand_out_each_document_once(store_dir, tmp_path, forkserver):
    store = TinyStore(store_dir)
    store.collection("jobs").insert_many({"id": f"j{i:03d}", "n": i} for i in range(120))
    store.close()
    notes = [tmp_path / f"claims-{w}" for w in range(4)]
    _run_all(forkserver, children.claimer, [(str(store_dir), w, str(notes[w])) for w in range(4)])
    claimed = [line for n in notes if n.exists() for line in n.read_text().split()]
    assert sorted(claimed) == [f"j{i:03d}" for i in range(120)]


def test_a_process_sees_anothers_committed_writes_on_its_next_operation(store_dir, child):
    reader = child(
        """
store = TinyStore(sys.argv[1])
coll = store.collection("things")
say("ready", coll.count())
for line in sys.stdin:
    key = line.strip()
    try:
        say("got", coll.get(key)["v"], coll.count())
    except Exception as exc:
        say("error", type(exc).__name__)
""",
        str(store_dir),
        stdin=-1,
    )
    writer = TinyStore(store_dir)
    try:
        assert reader.stdout.readline().split() == ["ready", "0"]
        things = writer.collection("things")
        for n in range(1, 4):
            things.insert({"id": f"t{n}", "v": n * 10})
            reader.stdin.write(f"t{n}\n")
            reader.stdin.flush()
            assert reader.stdout.readline().split() == ["got", str(n * 10), str(n)]
        writer.compact()  # a new journal generation: the reader follows it
        things.update("t1", {"v": 99}, expected_version=1)
        reader.stdin.write("t1\n")
        reader.stdin.flush()
        assert reader.stdout.readline().split() == ["got", "99", "3"]
    finally:
        writer.close()


def test_two_stores_in_one_process_see_each_other(store_dir):
    one, two = TinyStore(store_dir), TinyStore(store_dir)
    try:
        a, b = one.collection("c"), two.collection("c")
        a.insert({"id": "x", "v": 1})
        assert b.get("x")["v"] == 1
        b.update("x", {"v": 2}, expected_version=1)
        assert a.get("x") == {"id": "x", "v": 2, "version": 2}
        with pytest.raises(Exception, match="changed by someone else"):
            a.update("x", {"v": 3}, expected_version=1)
        b.delete("x")
        assert a.count() == 0
        assert set(one.collection_names()) == set(two.collection_names())
    finally:
        one.close()
        two.close()


def test_a_held_store_is_refused_naming_the_holding_process(store_dir, child):
    holder = child(
        """
store = TinyStore(sys.argv[1])
with store.transaction():
    store.collection("things").insert({"id": "held"})
    say("holding", os.getpid())
    sys.stdin.readline()
say("released")
store.close()
""",
        str(store_dir),
        stdin=-1,
    )
    words = holder.stdout.readline().split()
    assert words[0] == "holding", holder.stderr.read()
    store = TinyStore(store_dir, TinyStoreOptions(lock_timeout=0.3))
    try:
        with pytest.raises(StorageError) as caught:
            store.collection("things").insert({"id": "mine"})
        assert f"process {words[1]}" in str(caught.value)
        assert "lock_timeout" in str(caught.value)
        assert store.collection("things").count() == 0  # readers never wait for writers
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        store.collection("things").insert({"id": "mine"})
        assert {d["id"] for d in store.collection("things").find()} == {"held", "mine"}
    finally:
        store.close()


def test_a_forked_child_must_open_its_own_store(store_dir):
    import os

    store = TinyStore(store_dir)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                store.collection("x").count()
            except StorageError as exc:
                os._exit(0 if "forked" in str(exc) else 1)
            os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.collection("x").count() == 0  # the parent is unaffected
    finally:
        store.close()


def test_a_reader_follows_several_compactions_and_a_repair_in_between(store_dir):
    one, two = TinyStore(store_dir), TinyStore(store_dir)
    try:
        assert one.collection("c").count() == 0
        mine = two.collection("c")
        mine.insert({"id": "x1"})
        two.compact()
        mine.insert({"id": "x2"})
        two.compact()
        mine.insert({"id": "x3"})
        assert [d["id"] for d in one.collection("c").find()] == ["x1", "x2", "x3"]
        mine.update("x2", {"v": 1}, expected_version=1)
        two.check(repair=True)  # a new journal that follows no generation of ours
        assert one.collection("c").get("x2")["v"] == 1
        one.collection("c").insert({"id": "x4"})
        assert mine.count() == 4
    finally:
        one.close()
        two.close()


def test_a_load_reads_one_snapshot_while_another_process_rewrites_it(store_dir, monkeypatch):
    """A compaction may fold one collection without starting a new journal; a reader that is
    loading that collection meanwhile must read the record and the documents of one file."""
    from crmcore_storage_tinydb import files

    one, two = TinyStore(store_dir), TinyStore(store_dir)
    try:
        mine = two.collection("c")
        mine.insert({"id": "x1"})
        two.compact()
        mine.insert({"id": "x2"})
        two.collection("other").insert({"id": "big", "text": "y" * 20_000})
        one.collection("other").count()  # ``one`` is up to date; "c" is not loaded yet
        real = files.read_meta
        folded = []

        def read_meta_then_fold(path, handle=None):
            meta = real(path, handle)
            if path.name.startswith("c.") and handle is not None and not folded:
                folded.append("running")
                with two.transaction():
                    # "c" fits the budget, "other" does not: "c" alone is rewritten in
                    # place and the journal stays (as at a clean close with a budget).
                    assert two._compact_locked(limit=5_000) is False
                folded[:] = [real(path).count]
            return meta

        monkeypatch.setattr(files, "read_meta", read_meta_then_fold)
        assert [d["id"] for d in one.collection("c").find()] == ["x1", "x2"]
        assert folded == [2]  # the file was rewritten under the reader
    finally:
        one.close()
        two.close()
