"""Documents' text kept compressed (``texts.Texts``): the same answers as a plain dict whatever
mix of plain and compressed values random puts, replacements and removals leave; a store that
compresses answers as one that does not, loaded from its files or written through the API."""

from __future__ import annotations

import json
import random
import sys
import threading

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions, open_tinydb_store
from crmcore_storage_tinydb.texts import SHORT, Texts, train

from crmcore.errors import ConfigError
from crmcore.storage.base import IndexSpec


def _text(rng: random.Random, i: int) -> str:
    doc = {
        "id": f"int_{i:08d}",
        "customer_id": f"cus_{rng.randrange(500):06d}",
        "kind": rng.choice(["purchase", "visit", "consultation"]),
        "occurred_at": f"2026-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T10:00:00Z",
        "note": rng.choice(["", "送货上门", "called back", "a" * rng.randrange(0, 200)]),
    }
    if rng.random() < 0.1:
        return f'"{i}"'  # a short text: kept as it is
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _check(texts: Texts, model: dict[str, str]) -> None:
    assert len(texts) == len(model)
    assert set(texts) == set(model)
    assert dict(texts.items()) == model
    assert sorted(texts.values()) == sorted(model.values())
    for id, text in model.items():
        assert texts[id] == text
        assert texts.get(id) == text
        assert id in texts
    assert texts.get("absent") is None
    assert texts.get("absent", "x") == "x"
    with pytest.raises(KeyError):
        texts["absent"]


@pytest.mark.parametrize("seed", range(4))
def test_texts_answer_as_a_plain_dict_through_random_writes(seed: int) -> None:
    rng = random.Random(seed)
    texts = Texts(compress_from=150)
    model: dict[str, str] = {}
    for step in range(1200):
        roll = rng.random()
        if roll < 0.6 or not model:
            i = rng.randrange(2000)
            text = _text(rng, i)
            texts[f"d{i}"] = text
            model[f"d{i}"] = text
        elif roll < 0.85:
            id = rng.choice(list(model))
            text = _text(rng, int(id[1:]))
            texts[id] = text
            model[id] = text
        else:
            id = rng.choice(list(model))
            del texts[id]
            del model[id]
        if step % 200 == 0:
            _check(texts, model)
    _check(texts, model)
    stored = list(dict.values(texts))
    assert texts.codec is not None
    # every text long enough is held compressed, the short ones as they are
    assert all(
        type(v) is bytes for v, t in zip(stored, model.values(), strict=True) if len(t) >= SHORT
    )
    assert all(
        type(v) is str for v, t in zip(stored, model.values(), strict=True) if len(t) < SHORT
    )


def test_texts_below_the_threshold_or_never_stay_plain() -> None:
    rng = random.Random(9)
    never, later = Texts(0), Texts(500)
    for i in range(400):
        never[f"d{i}"] = later[f"d{i}"] = _text(rng, i)
    assert never.codec is None and later.codec is None
    assert all(type(v) is str for v in dict.values(later))


def test_compressed_texts_take_a_fraction_of_the_memory() -> None:
    rng = random.Random(3)
    texts = Texts(compress_from=1000)
    plain = 0
    for i in range(3000):
        text = _text(rng, i)
        texts[f"d{i}"] = text
        plain += sys.getsizeof(text)
    assert texts.stored_bytes() * 2.5 < plain


def test_few_samples_fall_back_to_a_raw_dictionary() -> None:
    texts = Texts(compress_from=2)
    texts["a"] = '{"id":"a","name":"' + "x" * 60 + '"}'
    texts["b"] = '{"id":"b","name":"' + "y" * 60 + '"}'
    assert texts.codec is not None
    assert texts["a"].endswith('x"}') and texts["b"].endswith('y"}')
    assert train([b"tiny"]).as_bytes() == b"tiny"


def test_threads_read_compressed_texts_at_once() -> None:
    rng = random.Random(5)
    texts = Texts(compress_from=100)
    model = {}
    for i in range(2000):
        model[f"d{i}"] = texts[f"d{i}"] = _text(rng, i)
    wrong: list[str] = []

    def read() -> None:
        for _ in range(3):
            for id, text in model.items():
                if texts[id] != text:
                    wrong.append(id)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def _fill(store: TinyStore, rng: random.Random, n: int) -> None:
    coll = store.collection("things")
    coll.ensure_index(IndexSpec([("kind", 1)]))
    coll.ensure_index(IndexSpec([("owner", 1), ("at", 1)]))
    for i in range(n):
        coll.insert(
            {
                "id": f"t{i:05d}",
                "kind": rng.choice(["a", "b", "c"]),
                "owner": rng.choice(["ann", "bob", None]),
                "at": rng.randrange(10_000),
                "note": rng.choice(["", "回访", "x" * rng.randrange(80)]),
            }
        )
    for _ in range(n // 5):
        id = f"t{rng.randrange(n):05d}"
        found = coll.find({"id": id})
        if not found:
            continue
        if rng.random() < 0.5:
            changes = {"kind": rng.choice(["a", "b", "d"]), "at": rng.randrange(10_000)}
            coll.update(id, changes, expected_version=found[0]["version"])
        else:
            coll.delete(id)


def _answers(store: TinyStore) -> list:
    coll = store.collection("things")
    return [
        coll.find({}, sort=[("id", 1)]),
        coll.find({"kind": "b"}, sort=[("at", -1)], limit=7),
        coll.find({"owner": "ann", "at": {"$gte": 5000}}),
        coll.find({"note": "回访"}, sort=[("id", -1)], limit=5),
        coll.count({"kind": {"$in": ["a", "d"]}}),
        coll.get("t00003"),
    ]


@pytest.mark.parametrize("seed", range(2))
def test_a_compressing_store_answers_as_a_plain_one(tmp_path, seed: int) -> None:
    """Written through the API, then loaded from its files (compacted and with a journal),
    a store that keeps its texts compressed answers every query as one that does not."""
    options = {
        "plain": TinyStoreOptions(compress_from=0),
        "small": TinyStoreOptions(compress_from=50),
    }
    answers = {}
    for name, opts in options.items():
        store = TinyStore(tmp_path / name, opts)
        _fill(store, random.Random(seed), 400)
        written = _answers(store)
        table = store.collection("things").table()
        assert (table.docs.codec is not None) == (name == "small")
        store.close()  # folds the journal into the files
        store = TinyStore(tmp_path / name, opts)
        loaded = _answers(store)
        assert loaded == written
        assert (store.collection("things").table().docs.codec is not None) == (name == "small")
        store.close()
        answers[name] = loaded
    assert answers["plain"] == answers["small"]
    assert answers["plain"][0]  # not vacuous


def test_the_option_is_checked(tmp_path) -> None:
    with pytest.raises(ConfigError, match="compress_from: must not be negative"):
        open_tinydb_store(tmp_path / "db", {"compress_from": -1})


def test_a_small_store_does_not_import_zstandard(tmp_path) -> None:
    """zstandard is imported when a collection grows large enough, not by every CLI call."""
    import subprocess

    code = (
        "import sys\n"
        "from crmcore_storage_tinydb import TinyStore\n"
        "s = TinyStore(sys.argv[1])\n"
        "c = s.collection('things')\n"
        "[c.insert({'id': f't{i}', 'n': 'x' * 60}) for i in range(50)]\n"
        "s.close(); s = TinyStore(sys.argv[1]); s.collection('things').count()\n"
        "print('zstandard' in sys.modules)\n"
    )
    small = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "db")], capture_output=True, text=True
    )
    assert small.returncode == 0, small.stderr
    assert small.stdout.strip() == "False"
    large = subprocess.run(
        [sys.executable, "-c", code.replace("range(50)", "range(2100)"), str(tmp_path / "db2")],
        capture_output=True,
        text=True,
    )
    assert large.returncode == 0, large.stderr
    assert large.stdout.strip() == "True"  # the probe can see it
