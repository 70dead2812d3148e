"""``crm.stash``: typed per-CRM state for plugins (pytest's ``Stash``/``StashKey``).

A plugin keeps what it builds once per open CRM (its API object, a scheduler, record handles)
under a module-level key instead of setting attributes on the CRM::

    _API: StashKey[Complaints] = StashKey()

    def complaints_of(crm: CRM) -> Complaints:
        return crm.stash.get_or_build(_API, lambda: Complaints(crm))

Keys are compared by identity, so two plugins can never overwrite each other's entries, and a
type checker knows what each key holds. The stash lives and dies with its CRM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, overload

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """A key into a ``Stash``; create one per kind of value, at module level."""

    __slots__ = ()


class Stash:
    """A mapping from ``StashKey[T]`` to ``T``; thread-safe where values are built."""

    __slots__ = ("_lock", "_storage")

    def __init__(self) -> None:
        self._storage: dict[StashKey[Any], object] = {}
        self._lock = threading.RLock()

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        with self._lock:
            self._storage[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        """The value of ``key``; ``KeyError`` if it was never set."""
        return cast(T, self._storage[key])

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...

    @overload
    def get(self, key: StashKey[T], default: D) -> T | D: ...

    def get(self, key: StashKey[T], default: object = None) -> object:
        """The value of ``key``, or ``default`` if it was never set."""
        return self._storage.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value of ``key``, storing ``default`` first if it was never set."""
        with self._lock:
            return cast(T, self._storage.setdefault(key, default))

    def get_or_build(self, key: StashKey[T], build: Callable[[], T]) -> T:
        """The value of ``key``, built by ``build()`` (once, even across threads) if unset.

        If ``build`` raises, nothing is stored and the next call builds again.
        """
        try:
            return cast(T, self._storage[key])
        except KeyError:
            pass
        with self._lock:
            if key not in self._storage:
                self._storage[key] = build()
            return cast(T, self._storage[key])

    def __delitem__(self, key: StashKey[T]) -> None:
        with self._lock:
            del self._storage[key]

    def __contains__(self, key: StashKey[T]) -> bool:
        return key in self._storage

    def __len__(self) -> int:
        return len(self._storage)


__all__ = ["Stash", "StashKey"]
