"""A sorted list kept in chunks: O(log n) search, cheap insertion and removal at any size.

The same idea as ``sortedcontainers.SortedList``, cut to what the indexes need. Items are
compared with ``<`` only (the indexes store ``bytes`` keys, the tables ``str`` ids).

A chunk of ``bytes`` items that is not being written is held *packed* (``Packed``): the items
end to end in one ``bytes`` object with their offsets in an array, about 4 bytes per item
beyond its own, where a list holds a pointer and a ``bytes`` object (33 bytes of header,
rounded up to 8) for each. Chunks are packed when built from many items at once (loading a
collection, an index file) and, every ``REPACK_EVERY`` changes, those not written since the
previous round; a write to a packed chunk unpacks it first (one copy of the chunk). Reads
take either form: a packed chunk bisects and slices its buffer.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import accumulate, pairwise
from typing import Any

CHUNK = 1000
FENCE = 32  # a packed run keeps every FENCE-th item as an object, to bisect them in C
REPACK_EVERY = 8192  # changes between two rounds of packing the chunks left alone since


class Packed:
    """A sorted run of ``bytes`` items held as one buffer and the items' offsets in it
    (``offsets[k]`` to ``offsets[k + 1]``): read-only, a sequence as a list of them is."""

    __slots__ = ("blob", "fences", "offsets")

    def __init__(self, items: list[bytes]) -> None:
        self.blob = b"".join(items)
        offsets = array("I", [0])
        offsets.extend(accumulate(map(len, items)))
        self.offsets = offsets
        self.fences = items[::FENCE]

    @classmethod
    def of(cls, blob: bytes, offsets: array) -> Packed:
        """A run from its buffer and offsets (``offsets[0] == 0``, the last ``len(blob)``)."""
        run = cls.__new__(cls)
        run.blob, run.offsets = blob, offsets
        run.fences = [blob[offsets[k] : offsets[k + 1]] for k in range(0, len(offsets) - 1, FENCE)]
        return run

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, key: Any) -> Any:
        offsets = self.offsets
        n = len(offsets) - 1
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                return self.unpack()[key]
            if stop <= start:
                return []
            blob = self.blob
            bounds = offsets[start : stop + 1]
            return [blob[a:b] for a, b in pairwise(bounds)]
        if key < 0:
            key += n
        if not 0 <= key < n:
            raise IndexError("packed run index out of range")
        return self.blob[offsets[key] : offsets[key + 1]]

    def __iter__(self) -> Iterator[bytes]:
        blob = self.blob
        offsets = self.offsets
        return (blob[a:b] for a, b in pairwise(offsets))

    def __reversed__(self) -> Iterator[bytes]:
        return self.walk_back(0, len(self.offsets) - 1)

    def walk(self, start: int, stop: int) -> Iterator[bytes]:
        """Items ``start`` to ``stop`` (excluded), in order, cut in growing batches: a walk
        that stops early cuts few, a long one runs at list speed."""
        blob, offsets = self.blob, self.offsets
        batch = 16
        while start < stop:
            end = min(start + batch, stop)
            yield from [blob[a:b] for a, b in pairwise(offsets[start : end + 1])]
            start = end
            batch = min(batch * 4, 1024)

    def walk_back(self, start: int, stop: int) -> Iterator[bytes]:
        """Items ``stop - 1`` down to ``start``, in growing batches (see ``walk``)."""
        blob, offsets = self.blob, self.offsets
        batch = 16
        while start < stop:
            begin = max(stop - batch, start)
            yield from reversed([blob[a:b] for a, b in pairwise(offsets[begin : stop + 1])])
            stop = begin
            batch = min(batch * 4, 1024)

    def unpack(self) -> list[bytes]:
        """The items as a list of ``bytes``."""
        return self[:]

    def bisect_left(self, item: bytes) -> int:
        """Where ``item`` would go before any equal item (as ``bisect.bisect_left``)."""
        blob, offsets = self.blob, self.offsets
        f = bisect_left(self.fences, item)  # fences[f - 1] < item <= fences[f]
        lo = (f - 1) * FENCE + 1 if f else 0
        hi = min(f * FENCE, len(offsets) - 1)
        while lo < hi:
            mid = (lo + hi) // 2
            if blob[offsets[mid] : offsets[mid + 1]] < item:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def bisect_right(self, item: bytes) -> int:
        """Where ``item`` would go after any equal item (as ``bisect.bisect_right``)."""
        blob, offsets = self.blob, self.offsets
        f = bisect_right(self.fences, item)  # fences[f - 1] <= item < fences[f]
        lo = (f - 1) * FENCE + 1 if f else 0
        hi = min(f * FENCE, len(offsets) - 1)
        while lo < hi:
            mid = (lo + hi) // 2
            if item < blob[offsets[mid] : offsets[mid + 1]]:
                hi = mid
            else:
                lo = mid + 1
        return lo


def _left(chunk: Any, item: Any) -> int:
    return bisect_left(chunk, item) if type(chunk) is list else chunk.bisect_left(item)


def _right(chunk: Any, item: Any) -> int:
    return bisect_right(chunk, item) if type(chunk) is list else chunk.bisect_right(item)


def _packable(items: list[Any]) -> bool:
    return bool(items) and type(items[0]) is bytes


class SortedList:
    """Sorted items in a list of chunks, each at most ``2 * CHUNK`` long: a ``list``, or a
    ``Packed`` run of ``bytes`` items while nothing writes to it."""

    __slots__ = ("_changes", "_chunks", "_counts", "_len", "_maxes", "_pending", "_written")

    def __init__(self, items: Iterable[Any] = (), *, presorted: bool = False) -> None:
        data = list(items)
        if not presorted:
            data.sort()
        self._set(data)

    def _set(self, data: list[Any]) -> None:
        pack = _packable(data)
        self._chunks: list[Any] = [
            Packed(data[i : i + CHUNK]) if pack else data[i : i + CHUNK]
            for i in range(0, len(data), CHUNK)
        ]
        self._maxes: list[Any] = [data[i] for i in range(CHUNK - 1, len(data), CHUNK)]
        if len(data) % CHUNK:
            self._maxes.append(data[-1])
        self._len = len(data)
        self._counts: list[int] | None = None  # items before each chunk, when known
        self._written: set[int] = set()  # ids of the list chunks written since the last round
        self._changes = 0
        self._pending: dict[Any, int] | None = None  # changes held back (``defer``)

    @classmethod
    def from_packed(cls, runs: Iterable[Packed]) -> SortedList:
        """A list holding ``runs`` (non-empty, each sorted and all in order) as its chunks."""
        self = cls()
        for run in runs:
            if len(run) > 2 * CHUNK:
                for start in range(0, len(run), CHUNK):
                    part = Packed(run[start : start + CHUNK])
                    self._chunks.append(part)
                    self._maxes.append(part[-1])
                    self._len += len(part)
            elif len(run):
                self._chunks.append(run)
                self._maxes.append(run[-1])
                self._len += len(run)
        return self

    def __len__(self) -> int:
        return self._len

    def _list(self, i: int) -> list[Any]:
        """Chunk ``i`` as a list (unpacked first if it is packed), marked as written."""
        chunk = self._chunks[i]
        if type(chunk) is not list:
            chunk = self._chunks[i] = chunk.unpack()
        self._written.add(id(chunk))
        return chunk

    def _changed(self, n: int) -> None:
        self._counts = None
        self._changes += n
        if self._changes >= REPACK_EVERY:
            self.repack()

    def repack(self) -> int:
        """Pack the list chunks of ``bytes`` not written since the last round; how many."""
        written = self._written
        chunks = self._chunks
        packed = 0
        for i, chunk in enumerate(chunks):
            if type(chunk) is list and id(chunk) not in written and _packable(chunk):
                chunks[i] = Packed(chunk)
                packed += 1
        written.clear()
        self._changes = 0
        return packed

    def defer(self) -> None:
        """Hold changes back until ``merge_pending`` (a load's journal replay): the list is
        not to be read meanwhile. Each change counts +1 (added) or -1 (removed) per item."""
        self._pending = {}

    def merge_pending(self) -> None:
        """Apply the changes held back since ``defer``, chunk by chunk: each chunk they touch
        is unpacked, changed and packed again before the next, so that only one is ever
        unpacked (where applying them one by one would leave every touched chunk a list)."""
        pending, self._pending = self._pending, None
        if not pending:
            return
        adds = sorted(x for x, n in pending.items() for _ in range(n))
        removes = sorted(x for x, n in pending.items() if n < 0)
        if not self._maxes:
            self._set(adds)
            return
        chunks, maxes = self._chunks, self._maxes
        out_chunks: list[Any] = []
        out_maxes: list[Any] = []
        a = r = 0
        last = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            top = maxes[i]
            a2 = len(adds) if i == last else bisect_right(adds, top, a)
            r2 = bisect_right(removes, top, r)
            if a2 == a and r2 == r:
                out_chunks.append(chunk)
                out_maxes.append(top)
                continue
            packed = type(chunk) is not list
            items = chunk.unpack() if packed else chunk
            chunks[i] = None  # the old form goes as the new one is made
            for x in removes[r:r2]:
                j = bisect_left(items, x)
                if j < len(items) and items[j] == x:
                    del items[j]
            for x in adds[a:a2]:
                insort(items, x)
            a, r = a2, r2
            step = CHUNK if len(items) > 2 * CHUNK else max(1, len(items))
            for start in range(0, len(items), step):
                piece = items[start : start + step]
                out_chunks.append(Packed(piece) if packed else piece)
                out_maxes.append(piece[-1])
        self._chunks, self._maxes = out_chunks, out_maxes
        self._len = sum(map(len, out_chunks))
        self._counts = None

    def _hold(self, item: Any, n: int) -> None:
        pending = self._pending
        assert pending is not None
        count = pending.get(item, 0) + n
        if count:
            pending[item] = count
        else:
            del pending[item]

    def pack(self) -> int:
        """Pack every list chunk of ``bytes`` now, written lately or not; how many."""
        self._written.clear()
        return self.repack()

    def add(self, item: Any) -> None:
        """Insert ``item`` in order (duplicates are kept)."""
        if self._pending is not None:
            self._hold(item, 1)
            return
        maxes = self._maxes
        chunks = self._chunks
        if not maxes:
            chunks.append([item])
            maxes.append(item)
        else:
            i = bisect_right(maxes, item)
            if i == len(maxes):
                i -= 1
                maxes[i] = item
            chunk = chunks[i]
            if type(chunk) is not list:  # (``_list``, inline: the hottest write path)
                chunk = chunks[i] = chunk.unpack()
            self._written.add(id(chunk))
            insort(chunk, item)
            if len(chunk) > 2 * CHUNK:
                self._split(i, chunk)
        self._len += 1
        self._counts = None
        self._changes += 1
        if self._changes >= REPACK_EVERY:
            self.repack()

    def _split(self, i: int, chunk: list[Any]) -> None:
        low, high = chunk[:CHUNK], chunk[CHUNK:]
        self._chunks[i : i + 1] = [low, high]
        self._maxes[i : i + 1] = [low[-1], high[-1]]
        self._written.update((id(low), id(high)))

    def add_sorted(self, items: list[Any]) -> None:
        """Insert ``items``, given in ascending order, in one pass: each is looked for from
        where the one before it went (a document's index entries, added together)."""
        if self._pending is not None:
            for item in items:
                self._hold(item, 1)
            return
        maxes = self._maxes
        if not maxes:
            for item in items:
                self.add(item)
            return
        limit = 2 * CHUNK
        last = len(maxes) - 1
        i = 0
        for item in items:
            i = bisect_right(maxes, item, i)
            if i > last:
                i = last
                chunk = self._list(i)
                chunk.append(item)
                maxes[i] = item
            else:
                chunk = self._list(i)
                insort(chunk, item)
            if len(chunk) > limit:
                self._split(i, chunk)
                last += 1
        self._len += len(items)
        self._changed(len(items))

    def discard_sorted(self, items: list[Any]) -> int:
        """Remove one occurrence of each of ``items``, given in ascending order, in one pass;
        returns how many were there (while deferred: how many were given)."""
        if self._pending is not None:
            for item in items:
                self._hold(item, -1)
            return len(items)
        maxes = self._maxes
        chunks = self._chunks
        removed = 0
        i = 0
        for item in items:
            i = bisect_left(maxes, item, i)
            if i == len(maxes):
                break  # every item from here on is beyond the largest
            chunk = chunks[i]
            j = _left(chunk, item)
            if j == len(chunk) or chunk[j] != item:
                continue
            chunk = self._list(i)
            del chunk[j]
            removed += 1
            if not chunk:
                del chunks[i]
                del maxes[i]
            elif j == len(chunk):
                maxes[i] = chunk[-1]
        self._len -= removed
        if removed:
            self._changed(removed)
        return removed

    def discard(self, item: Any) -> bool:
        """Remove one occurrence of ``item``; False if it was not there (while deferred:
        True)."""
        if self._pending is not None:
            self._hold(item, -1)
            return True
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i == len(maxes):
            return False
        chunk = self._chunks[i]
        j = _left(chunk, item)
        if j == len(chunk) or chunk[j] != item:
            return False
        chunk = self._list(i)
        del chunk[j]
        self._len -= 1
        if not chunk:
            del self._chunks[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]
        self._changed(1)
        return True

    def __contains__(self, item: Any) -> bool:
        i = bisect_left(self._maxes, item)
        if i == len(self._maxes):
            return False
        chunk = self._chunks[i]
        j = _left(chunk, item)
        return j < len(chunk) and chunk[j] == item

    def count(self, lo: Any, hi: Any) -> int:
        """How many items ``x`` have ``lo <= x < hi`` (O(log n); after a change, one step
        per chunk once)."""
        return max(0, self._below(hi) - self._below(lo))

    def _below(self, item: Any) -> int:
        """How many items are ``< item``."""
        i = bisect_left(self._maxes, item)
        if i == len(self._maxes):
            return self._len
        counts = self._counts
        if counts is None:
            counts = self._counts = [0, *accumulate(map(len, self._chunks))]
        return counts[i] + _left(self._chunks[i], item)

    def irange(self, lo: Any | None = None, hi: Any | None = None) -> Iterator[Any]:
        """Items ``x`` with ``lo <= x < hi`` in order (None: unbounded on that side)."""
        maxes = self._maxes
        i = 0 if lo is None else bisect_left(maxes, lo)
        first = True
        while i < len(maxes):
            chunk = self._chunks[i]
            j = _left(chunk, lo) if first and lo is not None else 0
            first = False
            packed = type(chunk) is not list
            if hi is not None and maxes[i] >= hi:
                k = _left(chunk, hi)
                yield from chunk.walk(j, k) if packed else chunk[j:k]
                return
            yield from chunk.walk(j, len(chunk)) if packed else chunk[j:]
            i += 1

    def segments(self, lo: Any, hi: Any) -> Iterator[tuple[Any, int, int]]:
        """The items ``x`` with ``lo <= x < hi`` as ``(chunk, start, stop)`` runs in order, for
        readers that take a packed chunk's items without cutting them out (``Index.scan``)."""
        maxes = self._maxes
        i = bisect_left(maxes, lo)
        j = _left(self._chunks[i], lo) if i < len(maxes) else 0
        while i < len(maxes):
            chunk = self._chunks[i]
            if maxes[i] >= hi:
                yield chunk, j, _left(chunk, hi)
                return
            yield chunk, j, len(chunk)
            j = 0
            i += 1

    def ceiling(self, item: Any) -> Any | None:
        """The first item ``>= item``, or None."""
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i == len(maxes):
            return None
        chunk = self._chunks[i]
        return chunk[_left(chunk, item)]

    def lower(self, item: Any) -> Any | None:
        """The last item ``< item``, or None."""
        maxes = self._maxes
        i = bisect_left(maxes, item)
        if i < len(maxes):
            chunk = self._chunks[i]
            j = _left(chunk, item)
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
            j = _left(chunk, hi) if first and hi is not None else len(chunk)
            first = False
            packed = type(chunk) is not list
            if lo is not None and chunk[0] < lo:
                k = _left(chunk, lo)
                yield from chunk.walk_back(k, j) if packed else reversed(chunk[k:j])
                return
            yield from chunk.walk_back(0, j) if packed else reversed(chunk[:j])
            i -= 1

    def after(self, item: Any | None, count: int) -> list[Any]:
        """Up to ``count`` items strictly greater than ``item`` (None: from the start)."""
        out: list[Any] = []
        maxes = self._maxes
        i = 0 if item is None else bisect_right(maxes, item)
        first = True
        while i < len(maxes) and len(out) < count:
            chunk = self._chunks[i]
            j = _right(chunk, item) if first and item is not None else 0
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
        if self._pending is not None:
            self.add_sorted(new)
            return
        if not self._maxes:
            self._set(new)
            return
        self.add_sorted(new)
