"""``crm.stash``: typed per-CRM state for plugins (pytest's Stash)."""

from __future__ import annotations

import threading

import pytest

from crmcore.stash import Stash, StashKey


def test_keys_are_distinct_by_identity_and_values_typed():
    a: StashKey[int] = StashKey()
    b: StashKey[int] = StashKey()
    stash = Stash()
    stash[a] = 1
    assert stash[a] == 1 and b not in stash and stash.get(b) is None
    assert stash.get(b, 7) == 7
    assert stash.setdefault(b, 2) == 2 and stash.setdefault(b, 3) == 2
    assert len(stash) == 2
    del stash[a]
    assert a not in stash
    with pytest.raises(KeyError):
        stash[a]


def test_get_or_build_builds_once_even_across_threads():
    key: StashKey[object] = StashKey()
    stash = Stash()
    built: list[object] = []
    start = threading.Barrier(4)

    def build() -> object:
        built.append(object())
        return built[-1]

    def worker(out: list[object]) -> None:
        start.wait(timeout=10)
        out.append(stash.get_or_build(key, build))

    got: list[object] = []
    threads = [threading.Thread(target=worker, args=(got,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(built) == 1 and got == built * 4


def test_a_failed_build_stores_nothing():
    key: StashKey[int] = StashKey()
    stash = Stash()

    def boom() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        stash.get_or_build(key, boom)
    assert key not in stash
    assert stash.get_or_build(key, lambda: 5) == 5


def test_each_crm_has_its_own_stash(make_crm):
    key: StashKey[str] = StashKey()
    one, two = make_crm(), make_crm()
    one.stash[key] = "one"
    assert key not in two.stash
    assert not any(k.startswith("_crmcore") for k in vars(one))
