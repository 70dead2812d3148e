"""A sorted list kept in chunks: O(log n) search, cheap insertion and removal at any size.

The same idea as ``sortedcontainers.SortedList``, cut to what the indexes need. Items are
compared with ``<`` only (the indexes store ``bytes`` keys and ``str`` ids).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from typing import Any

CHUNK = 1000


class SortedList:
    """Sorted items in a list of chunks, each at most ``2 * CHUNK`` long."""

    __slots__ = ("_chunks", "_len", "_maxes")

    def __init__(self, items: Iterable[Any] = (), *, presorted: bool = False) -> None:
        data = list(items)
        if not presorted:
            data.sort()
        self._chunks: list[list[Any]] = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        self._maxes: list[Any] = [c[-1] for c in self._chunks]
        self._len = len(data)

    def __len__(self) -> int:
        return self._len

    def add(self, item: Any) -> None:
        """Insert ``item`` in order (duplicates are kept)."""
        maxes = self._maxes
        if not maxes:
            self._chunks.append([item])
            maxes.append(item)
        else:
            i = bisect_right(maxes, item)
            if i == len(maxes):
                i -= 1
                self._chunks[i].append(item)
                maxes[i] = item
            else:
                insort(self._chunks[i], item)
            if len(self._chunks[i]) > 2 * CHUNK:
                chunk = self._chunks[i]
                self._chunks[i : i + 1] = [chunk[:CHUNK], chunk[CHUNK:]]
                maxes[i : i + 1] = [chunk[CHUNK - 1], chunk[-1]]
        self._len += 1

    def add_sorted(self, items: list[Any]) -> None:
        """Insert ``items``, given in ascending order, in one pass: each is looked for from
        where the one before it went (a document's index entries, added together)."""
        maxes = self._maxes
        if not maxes:
            for item in items:
                self.add(item)
            return
        chunks = self._chunks
        limit = 2 * CHUNK
        last = len(maxes) - 1
        i = 0
        for item in items:
            i = bisect_right(maxes, item, i)
            if i > last:
                i = last
                chunk = chunks[i]
                chunk.append(item)
                maxes[i] = item
            else:
                chunk = chunks[i]
                insort(chunk, item)
            if len(chunk) > limit:
                chunks[i : i + 1] = [chunk[:CHUNK], chunk[CHUNK:]]
                maxes[i : i + 1] = [chunk[CHUNK - 1], chunk[-1]]
                last += 1
        self._len += len(items)

    def discard_sorted(self, items: list[Any]) -> int:
        """Remove one occurrence of each of ``items``, given in ascending order, in one pass;
        returns how many were there."""
        maxes = self._maxes
        chunks = self._chunks
        removed = 0
        i = 0
        for item in items:
            i = bisect_left(maxes, item, i)
            if i == len(maxes):
                break  # every item from here on is beyond the largest
            chunk = chunks[i]
            j = bisect_left(chunk, item)
            if j == len(chunk) or chunk[j] != item:
                continue
            del chunk[j]
            removed += 1
            if not chunk:
                del chunks[i]
                del maxes[i]
            elif j == len(chunk):
                maxes[i] = chunk[-1]
        self._len -= removed
        return removed

    def discard(self, item: Any) -> bool:
        """Remove one occurrence of ``item``; False if it was not there."""
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i == len(maxes):
            return False
        chunk = self._chunks[i]
        j = bisect_left(chunk, item)
        if j == len(chunk) or chunk[j] != item:
            return False
        del chunk[j]
        self._len -= 1
        if not chunk:
            del self._chunks[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]
        return True

    def __contains__(self, item: Any) -> bool:
        i = bisect_left(self._maxes, item)
        if i == len(self._maxes):
            return False
        chunk = self._chunks[i]
        j = bisect_left(chunk, item)
        return j < len(chunk) and chunk[j] == item

    def count(self, lo: Any, hi: Any) -> int:
        """How many items ``x`` have ``lo <= x < hi`` (O(log n) plus one step per chunk)."""
        return max(0, self._below(hi) - self._below(lo))

    def _below(self, item: Any) -> int:
        """How many items are ``< item``."""
        i = bisect_left(self._maxes, item)
        if i == len(self._maxes):
            return self._len
        return sum(map(len, self._chunks[:i])) + bisect_left(self._chunks[i], item)

    def irange(self, lo: Any | None = None, hi: Any | None = None) -> Iterator[Any]:
        """Items ``x`` with ``lo <= x < hi`` in order (None: unbounded on that side)."""
        maxes = self._maxes
        i = 0 if lo is None else bisect_left(maxes, lo)
        first = True
        while i < len(maxes):
            chunk = self._chunks[i]
            j = bisect_left(chunk, lo) if first and lo is not None else 0
            first = False
            if hi is not None and maxes[i] >= hi:
                yield from chunk[j : bisect_left(chunk, hi)]
                return
            yield from chunk[j:]
            i += 1

    def ceiling(self, item: Any) -> Any | None:
        """The first item ``>= item``, or None."""
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i == len(maxes):
            return None
        chunk = self._chunks[i]
        return chunk[bisect_left(chunk, item)]

    def lower(self, item: Any) -> Any | None:
        """The last item ``< item``, or None."""
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i < len(maxes):
            chunk = self._chunks[i]
            j = bisect_left(chunk, item)
            if j:
                return chunk[j - 1]
        return self._chunks[i - 1][-1] if i else None

    def irange_reversed(self, lo: Any | None = None, hi: Any | None = None) -> Iterator[Any]:
        """Items ``x`` with ``lo <= x < hi`` from the largest down (None: unbounded)."""
        maxes = self._maxes
        i = len(maxes) - 1 if hi is None else min(bisect_left(maxes, hi), len(maxes) - 1)
        first = True
        while i >= 0:
            chunk = self._chunks[i]
            j = bisect_left(chunk, hi) if first and hi is not None else len(chunk)
            first = False
            if lo is not None and chunk[0] < lo:
                k = bisect_left(chunk, lo)
                yield from reversed(chunk[k:j])
                return
            yield from reversed(chunk[:j])
            i -= 1

    def after(self, item: Any | None, count: int) -> list[Any]:
        """Up to ``count`` items strictly greater than ``item`` (None: from the start)."""
        out: list[Any] = []
        maxes = self._maxes
        i = 0 if item is None else bisect_right(maxes, item)
        first = True
        while i < len(maxes) and len(out) < count:
            chunk = self._chunks[i]
            j = bisect_right(chunk, item) if first and item is not None else 0
            first = False
            out.extend(chunk[j : j + count - len(out)])
            i += 1
        return out

    def __iter__(self) -> Iterator[Any]:
        for chunk in self._chunks:
            yield from chunk

    def __reversed__(self) -> Iterator[Any]:
        for chunk in reversed(self._chunks):
            yield from reversed(chunk)

    def update(self, items: Iterable[Any]) -> None:
        """Insert many items in order (duplicates are kept), sorted first so that each is
        looked for from where the one before it went (``add_sorted``)."""
        new = sorted(items)
        if not new:
            return
        if not self._maxes:
            self._chunks = [new[i : i + CHUNK] for i in range(0, len(new), CHUNK)]
            self._maxes = [c[-1] for c in self._chunks]
            self._len = len(new)
            return
        self.add_sorted(new)
