"""The sorted list's packed chunks: the same answers as a plain sorted list, whatever mix of
packed and list chunks random inserts, removals and rounds of packing leave."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right

import pytest
from crmcore_storage_tinydb import sortedlist
from crmcore_storage_tinydb.sortedlist import Packed, SortedList


def _item(rng: random.Random) -> bytes:
    # index-entry-like: shared beginnings, varied lengths, NULs and high bytes inside
    head = rng.choice([b"\x03ann\x00\x00", b"\x02\x80\x00", b"\x03b\x00\xff\x00\x00", b""])
    return head + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 6)))


def _kinds(items: SortedList) -> set[str]:
    return {type(chunk).__name__ for chunk in items._chunks}


def _check(items: SortedList, model: list[bytes], rng: random.Random) -> None:
    assert len(items) == len(model)
    assert list(items) == model
    assert list(reversed(items)) == model[::-1]
    assert all(
        len(c) and c[-1] == m and len(c) <= 2 * sortedlist.CHUNK
        for c, m in zip(items._chunks, items._maxes, strict=True)
    )
    for _ in range(30):
        a, b = sorted((_item(rng), _item(rng)))
        assert list(items.irange(a, b)) == [x for x in model if a <= x < b]
        assert list(items.irange(a)) == [x for x in model if a <= x]
        assert list(items.irange(None, b)) == [x for x in model if x < b]
        assert list(items.irange_reversed(a, b)) == [x for x in model if a <= x < b][::-1]
        assert list(items.irange_reversed(None, b)) == [x for x in model if x < b][::-1]
        assert items.count(a, b) == sum(1 for x in model if a <= x < b)
        assert (a in items) == (a in model)
        i = bisect_left(model, a)
        assert items.ceiling(a) == (model[i] if i < len(model) else None)
        assert items.lower(a) == (model[i - 1] if i else None)
        k = rng.randrange(1, 9)
        assert items.after(a, k) == model[bisect_right(model, a) :][:k]
        assert items.after(None, k) == model[:k]


@pytest.mark.parametrize("seed", range(4))
def test_packed_chunks_answer_as_a_plain_sorted_list(monkeypatch, seed):
    monkeypatch.setattr(sortedlist, "CHUNK", 8)  # many chunks: splits, empties, boundaries
    monkeypatch.setattr(sortedlist, "REPACK_EVERY", 40)
    monkeypatch.setattr(sortedlist, "FENCE", 3)  # bisection between fences, at every offset
    rng = random.Random(seed)
    model = sorted(_item(rng) for _ in range(300))
    items = SortedList(model)  # built at once: every chunk packed
    assert _kinds(items) == {"Packed"}
    _check(items, model, rng)
    seen: set[str] = set()
    for step in range(1500):
        r = rng.random()
        if r < 0.4:
            x = _item(rng)
            items.add(x)
            model.insert(bisect_right(model, x), x)
        elif r < 0.55:
            run = sorted(_item(rng) for _ in range(rng.randrange(1, 12)))
            items.add_sorted(run)
            for x in run:
                model.insert(bisect_right(model, x), x)
        elif r < 0.8 and model:
            x = rng.choice(model) if rng.random() < 0.8 else _item(rng)
            assert items.discard(x) == (x in model)
            if x in model:
                model.remove(x)
        elif r < 0.9 and model:
            run = sorted({rng.choice(model) for _ in range(rng.randrange(1, 10))} | {b"\x07"})
            assert items.discard_sorted(run) == len(run) - (b"\x07" not in model)
            for x in run:
                if x in model:
                    model.remove(x)
        else:
            items.update(_item(rng) for _ in range(rng.randrange(0, 30)))
            model = sorted(list(items))  # the list is the model's reference for update
        seen |= _kinds(items)
        if step % 100 == 0:
            _check(items, model, rng)
    _check(items, model, rng)
    assert seen == {"Packed", "list"}  # both forms were met along the way


def test_a_round_of_packing_spares_the_chunks_being_written(monkeypatch):
    monkeypatch.setattr(sortedlist, "CHUNK", 4)
    items = SortedList(bytes([i]) for i in range(0, 200, 2))
    assert _kinds(items) == {"Packed"}
    items.add(b"\x03")  # unpacks the first chunk
    assert type(items._chunks[0]) is list and _kinds(items) == {"Packed", "list"}
    assert items.repack() == 0  # written since the last round: left as a list
    assert items.repack() == 1  # left alone for a whole round: packed again
    assert _kinds(items) == {"Packed"}
    assert list(items) == sorted([*(bytes([i]) for i in range(0, 200, 2)), b"\x03"])


def test_lists_of_other_items_are_never_packed():
    items = SortedList(f"id{i:05d}" for i in range(5000))
    items.add("id00001x")
    assert items.repack() == 0
    assert {type(c) for c in items._chunks} == {list}


@pytest.mark.parametrize("fence", [1, 2, 3, 32])
def test_a_packed_run_is_a_read_only_sequence(monkeypatch, fence):
    monkeypatch.setattr(sortedlist, "FENCE", fence)
    values = [b"", b"a", b"a\x00", b"ab", b"ab", b"b\xff"]
    run = Packed(values)
    assert Packed.of(run.blob, run.offsets).fences == run.fences == values[::fence]
    assert len(run) == 6 and list(run) == values and list(reversed(run)) == values[::-1]
    assert run[0] == b"" and run[-1] == b"b\xff" and run[1:3] == values[1:3]
    assert run[3:1] == [] and run[::2] == values[::2] and run[:] == values
    for probe in [b"", b"a", b"a\x00", b"aa", b"ab", b"b", b"c", b"\x00"]:
        assert run.bisect_left(probe) == bisect_left(values, probe)
        assert run.bisect_right(probe) == bisect_right(values, probe)
    with pytest.raises(IndexError):
        run[6]


def test_an_index_read_from_its_file_is_packed_and_equal_to_one_built_afresh(tmp_path):
    from crmcore_storage_tinydb import TinyStore, indexfile
    from crmcore_storage_tinydb.indexes import Index

    from crmcore.storage import IndexSpec

    folder = tmp_path / "db"
    store = TinyStore(folder)
    things = store.collection("things")
    things.ensure_index(IndexSpec([("kind", 1), ("n", 1)]))
    things.ensure_index(IndexSpec([("tags", 1)]))
    n = indexfile.BLOCK + 700  # more than one block: chunks cut at block boundaries too
    docs = [
        {"id": f"t{i:06d}", "kind": f"k{i % 7}", "n": i, "tags": [f"t{i % 5}", "all"]}
        for i in range(n)
    ]
    things.insert_many(docs)
    store.close()
    again = TinyStore(folder)
    try:
        things = again.collection("things")
        table = things.table()
        for index in table.indexes.values():
            assert {type(c) for c in index.entries._chunks} == {Packed}
            fresh = Index(index.spec)
            fresh.build((d["id"], d) for d in docs)
            assert list(index.entries) == list(fresh.entries)
        assert [d["id"] for d in things.find({"kind": "k3", "n": {"$gte": n - 50}})] == [
            d["id"] for d in docs if d["kind"] == "k3" and d["n"] >= n - 50
        ]
        things.delete("t000003")
        things.insert({"id": "t999999", "kind": "k3", "n": -1, "tags": ["all"]})
        assert things.count({"tags": "all"}) == n
        assert [
            d["id"] for d in things.find({"kind": "k3", "n": {"$lt": 20}}, sort=[("n", 1)])
        ] == [
            "t999999",
            "t000010",
            "t000017",
        ]
    finally:
        again.close()


def test_walks_over_a_long_run_cut_in_batches_give_every_item_once():
    values = sorted(i.to_bytes(3, "big") + b"x" * (i % 7) for i in range(3000))
    run = Packed(values)
    for start, stop in [(0, 3000), (0, 17), (5, 5), (1, 2999), (100, 1500), (2990, 3000)]:
        assert list(run.walk(start, stop)) == values[start:stop]
        assert list(run.walk_back(start, stop)) == values[start:stop][::-1]


@pytest.mark.parametrize("packed", [True, False])
def test_an_index_scan_reads_ids_from_packed_chunks_as_from_lists(monkeypatch, packed):
    from crmcore_storage_tinydb.indexes import Index, encode, entry_id

    from crmcore.storage import IndexSpec

    monkeypatch.setattr(sortedlist, "CHUNK", 50)
    rng = random.Random(5)
    ids = [f"d{i:04d}" for i in range(400)] + ["d\ud800x", "é\u4e2d", "d\x00z"]
    index = Index(IndexSpec([("g", 1)]))
    index.build((id, {"g": rng.randrange(9)}) for id in ids)
    if not packed:
        index.entries._chunks = [list(c) for c in index.entries._chunks]
    assert {type(c) is Packed for c in index.entries._chunks} == {packed}
    for g in range(-1, 10):
        lo, hi = encode(g), encode(g) + b"\xff"
        assert list(index.scan(lo, hi)) == [entry_id(e) for e in index.entries.irange(lo, hi)]
    everything = list(index.scan(b"", b"\xff"))
    assert sorted(everything) == sorted(ids) and len(everything) == len(ids)


def test_a_collection_loaded_with_journal_writes_ends_packed(tmp_path):
    from crmcore_storage_tinydb import TinyStore, TinyStoreOptions

    from crmcore.storage import IndexSpec

    folder = tmp_path / "db"
    store = TinyStore(folder)
    things = store.collection("things")
    things.ensure_index(IndexSpec([("g", 1)]))
    things.insert_many({"id": f"t{i:05d}", "g": i % 97} for i in range(5000))
    store.close()  # folded: the snapshot and its index file
    writer = TinyStore(folder, TinyStoreOptions(compact_on_close_mb=0))  # writes stay journalled
    for i in range(0, 5000, 7):
        writer.collection("things").update(f"t{i:05d}", {"g": -i}, expected_version=1)
    writer.close()
    again = TinyStore(folder)
    try:
        table = again.collection("things").table()
        assert (folder / "journal.log").stat().st_size > 10_000
        assert {type(c) for c in next(iter(table.indexes.values())).entries._chunks} == {Packed}
        assert again.collection("things").count({"g": {"$lt": 0}}) == len(range(7, 5000, 7))
    finally:
        again.close()


@pytest.mark.parametrize("seed", range(3))
def test_changes_held_back_then_merged_equal_changes_applied_one_by_one(monkeypatch, seed):
    monkeypatch.setattr(sortedlist, "CHUNK", 8)
    rng = random.Random(seed)
    start = sorted(_item(rng) for _ in range(rng.choice([0, 5, 300])))
    direct, held = SortedList(start), SortedList(start)
    held.defer()
    present = list(start)
    for _ in range(400):
        if present and rng.random() < 0.45:
            x = present.pop(rng.randrange(len(present)))
            assert direct.discard(x)
            held.discard(x)
        elif rng.random() < 0.2:
            run = sorted(_item(rng) for _ in range(rng.randrange(1, 6)))
            direct.add_sorted(run)
            held.add_sorted(run)
            present.extend(run)
        else:
            x = _item(rng)
            direct.add(x)
            held.add(x)
            present.append(x)
    assert len(held._chunks) == len(SortedList(start)._chunks)  # nothing applied yet
    held.merge_pending()
    assert list(held) == list(direct) == sorted(present) and len(held) == len(direct)
    assert all(
        len(c) and c[-1] == m and len(c) <= 2 * sortedlist.CHUNK
        for c, m in zip(held._chunks, held._maxes, strict=True)
    )
    if start:
        assert {type(c) for c in held._chunks} == {Packed}  # packed as it was loaded
    _check(held, sorted(present), rng)
