"""Killing a writer at random moments loses no acknowledged write and never a readable store."""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore

sys.path.insert(0, str(Path(__file__).parent))
import tinydb_store_children as children


@pytest.fixture(scope="module")
def forkserver():
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["crmcore_storage_tinydb", "tinydb_store_children"])
    return ctx


def _acknowledged(notes: Path) -> int:
    """Complete acknowledgement lines in ``notes`` (after the "ready" line)."""
    if not notes.exists():
        return 0
    return sum(1 for line in notes.read_text().splitlines()[1:] if len(line) == 8)


def _wait_for_work(notes: Path, proc, writes: int, limit: float = 300.0) -> None:
    """Wait until the writer is ready and has acknowledged ``writes`` writes. The limit only
    stops a hung writer from hanging the suite: how fast it works is never asserted."""
    deadline = time.monotonic() + limit
    while not (notes.exists() and notes.stat().st_size) or _acknowledged(notes) < writes:
        assert proc.is_alive(), "the writer died before it was killed"
        assert time.monotonic() < deadline, f"the writer made no progress in {limit:.0f}s"
        time.sleep(0.001)


@pytest.mark.parametrize(("durability", "kills_wanted"), [("os", 50), ("fsync", 20)])
def test_sigkill_at_random_moments_loses_no_acknowledged_write(
    store_dir, tmp_path, forkserver, durability, kills_wanted
):
    rng = random.Random(20260105)
    acknowledged: set[str] = set()
    touched: set[str] = set()
    next_id = 0
    kills = 0
    waited = 0
    while kills < kills_wanted:
        notes = tmp_path / f"notes-{kills}"
        proc = forkserver.Process(
            target=children.writer, args=(str(store_dir), next_id, str(notes), durability)
        )
        proc.start()
        # Kill after a chosen number of acknowledged writes (0: right at start-up), then at a
        # random moment of the next ones: the kills land after real work however fast the
        # machine is.
        writes = rng.randint(0, 12)
        _wait_for_work(notes, proc, writes)
        waited += writes
        time.sleep(rng.uniform(0.0, 0.005))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        kills += 1
        for line in notes.read_text().splitlines()[1:]:
            if len(line) == 8:  # a complete note; the kill may cut the last one short
                acknowledged.add(line)
                if int(line[1:]) % 40 == 39:
                    touched.add(line)
        store = TinyStore(store_dir)  # it opens, whatever moment the kill hit
        try:
            a, b = store.collection("a"), store.collection("b")
            present = {d["id"] for d in a.iter()}
            missing = acknowledged - present
            assert not missing, f"kill {kills}: acknowledged writes lost: {sorted(missing)[:5]}"
            pairs = {d["id"] for d in b.iter()}
            assert {k for k in present if int(k[1:]) % 3 == 0} == pairs  # transactions whole
            assert all(a.get(k).get("touched") for k in touched)
            next_id = max((int(k[1:]) for k in present), default=-1) + 1
        finally:
            store.close()
    assert len(acknowledged) >= waited > kills  # the kills landed after real work
