"""Secondary indexes over in-memory documents, and the planner that uses them.

Each declared ``IndexSpec`` becomes a ``SortedList`` of ``bytes`` entries: the order-preserving
encoding of the document's key (one self-delimiting component per field) followed by the
document id and its length (held packed, many entries to a buffer: see ``sortedlist``).
Equality on a prefix of the fields plus one range on the next field is a contiguous slice of
that list, found by bisection, so lookups are O(log n + matches).

Values encode by type rank, in the order ``crmcore.storage.query`` sorts them: missing/null,
numbers, strings, lists and objects, booleans. A range never crosses ranks, because the filter
language only compares numbers with numbers, strings with strings and booleans with booleans.

The planner only ever narrows the documents the shared matcher has to look at: when a plan is
not exact (documents holding a list in an indexed field, integers beyond float precision), the
candidates are still checked with the filter, so results are those of ``compile_filter``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from crmcore.storage.base import IndexSpec
from crmcore.storage.query import MISSING, _is_operator_map, resolve
from crmcore_storage_tinydb.sortedlist import SortedList

R_NULL, R_NUM, R_STR, R_OTHER, R_BOOL = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
TOP = b"\xff"  # never occurs in UTF-8, nor as a rank byte: an upper bound for any prefix
_EXACT_INT = 2**53
_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
CACHE_LIMIT = 20_000  # string encodings remembered while loading
MAX_POINTS = 256  # beyond this many $in combinations, stop extending a plan
MAX_KEYS = 1024  # beyond this many entries for one document (lists in several fields), none


def encode_text(value: str) -> bytes:
    """A string as an index key's bytes (after its rank byte)."""
    # Escape NUL so that the terminator \x00\x00 sorts below every continuation.
    try:
        raw = value.encode()
    except UnicodeEncodeError:  # lone surrogates: keep code point order all the same
        raw = value.encode("utf-8", "surrogatepass")
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"\x00\xff")
    return raw + b"\x00\x00"


_PACK = struct.Struct(">d").pack
_UNPACK = struct.Struct(">Q").unpack
_REPACK = struct.Struct(">Q").pack


def _number(value: float) -> bytes:
    if value == 0:
        value = 0.0  # -0.0 equals 0.0
    (bits,) = _UNPACK(_PACK(float(value)))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 0x8000000000000000
    return _REPACK(bits)


def encode(value: Any) -> bytes:
    """The order-preserving, self-delimiting encoding of one field value."""
    kind = type(value)
    if kind is str:
        return R_STR + encode_text(value)
    if value is None or value is MISSING:
        return R_NULL
    if kind is bool:
        return R_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return R_STR + encode_text(value)
    if isinstance(value, int | float):
        return R_NUM + _number(value)
    return R_OTHER + encode_text(json.dumps(value, sort_keys=True, default=str))


def element_keys(value: list[Any]) -> list[bytes]:
    """The encodings a list field's elements give in a multikey index, sorted and distinct:
    one per non-null element, or the whole list's when there is none (``[]``, ``[None]``)."""
    if value and type(value[0]) is str:
        keys = _text_keys(value)
        if keys is not None:
            return keys
    encs = {encode(v) for v in value if v is not None}
    return sorted(encs) if encs else [encode(value)]


def _text_keys(value: list[Any]) -> list[bytes] | None:
    """``element_keys`` of a list of strings (a customer's search keys), encoded together;
    None if an element is not a string or needs escaping (NUL, lone surrogates)."""
    try:
        raw = "\x00".join(value).encode()
    except (TypeError, UnicodeEncodeError):
        return None
    parts = raw.split(b"\x00")
    if len(parts) != len(value):
        return None  # a NUL inside an element: encode_text escapes it
    keys = [R_STR + part + b"\x00\x00" for part in parts]
    # UTF-8 keeps code point order: strings already ascending (as search keys are stored)
    # give their encodings ascending and distinct without sorting them
    if all(map(str.__lt__, value, value[1:])):
        return keys
    return sorted(set(keys))


def prefix_end(entry: bytes, components: int) -> int:
    """The length of the first ``components`` encoded values at the start of ``entry``."""
    pos = 0
    for _ in range(components):
        rank = entry[pos : pos + 1]
        pos += 1
        if rank == R_NUM:
            pos += 8
        elif rank == R_BOOL:
            pos += 1
        elif rank in (R_STR, R_OTHER):
            while True:
                pos = entry.index(b"\x00", pos)
                if entry[pos + 1] == 0:
                    pos += 2
                    break
                pos += 2  # an escaped NUL inside the text
    return pos


def is_inexact(value: Any) -> bool:
    """True for numbers an index cannot place exactly (huge ints, NaN)."""
    if isinstance(value, float):
        return value != value  # NaN compares with nothing
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _EXACT_INT


def entry_id(entry: bytes) -> str:
    """The document id stored at the end of an index entry."""
    raw = entry[-2 - (entry[-2] << 8 | entry[-1]) : -2]
    try:
        return raw.decode()
    except UnicodeDecodeError:  # an id with lone surrogates
        return raw.decode("utf-8", "surrogatepass")


def id_suffix(id: str) -> bytes:
    raw = id.encode("utf-8", "surrogatepass")
    return raw + len(raw).to_bytes(2, "big")


class Index:
    """One declared index: a sorted list of entries, the ids of documents holding a list in
    an indexed field (``multi``) and those whose lists make too many entries (``residual``).

    A document holding a list in an indexed field gets one entry per element (a *multikey*
    index, as MongoDB's): equality on any element is a slice of the list like any other. An
    empty list (or one of nulls only) gets one entry for the whole value, so a walk over a
    prefix still meets it; null elements get none (a list never equals null). Lists in
    several fields of a compound index give one entry per combination, up to ``MAX_KEYS``;
    beyond that the document is not placed at all and is a candidate of every plan.
    """

    __slots__ = ("_steps", "entries", "fields", "multi", "paths", "residual", "spec")

    def __init__(self, spec: IndexSpec) -> None:
        self.spec = spec
        self.fields = spec.fields
        self.paths = tuple(path for path, _direction in spec.fields)
        self._steps = tuple((path, "." in path) for path in self.paths)
        self.entries = SortedList()
        # ids of documents with a list in an indexed field: their entries are per element, so
        # a walk in key order and a range (a list never falls in a range) must skip them
        self.multi: set[str] = set()
        # ids of documents with no entry because their lists make more than MAX_KEYS
        self.residual: set[str] = set()

    def key(self, doc: Mapping[str, Any]) -> bytes | None:
        """The encoded key of ``doc`` (its first, for a document holding lists), or None if a
        sparse index skips it."""
        keys, _listy = self.keys(doc)
        return keys[0] if keys else None

    def keys(
        self, doc: Mapping[str, Any], cache: dict[str, bytes] | None = None
    ) -> tuple[list[bytes], bool]:
        """(the encoded keys of ``doc``, ascending and distinct: none if a sparse index skips
        it, one per element combination when fields hold lists; whether a field holds a list).
        Keys are self-delimiting, so entries (key + id suffix) keep the keys' order.

        ``cache`` remembers the encodings of strings (bulk loads see the same values often).
        """
        parts: list[bytes] = []
        choices: list[tuple[int, list[bytes]]] = []  # (position, encodings) of list fields
        sparse = self.spec.sparse
        for path, dotted in self._steps:
            value = resolve(doc, path) if dotted else doc.get(path)
            if type(value) is str:
                if cache is None:
                    parts.append(R_STR + encode_text(value))
                else:
                    encoded = cache.get(value)
                    if encoded is None:
                        encoded = R_STR + encode_text(value)
                        if len(cache) < CACHE_LIMIT:
                            cache[value] = encoded
                    parts.append(encoded)
            elif value is None or value is MISSING:
                if sparse:
                    return [], False
                parts.append(R_NULL)
            elif type(value) is list:
                choices.append((len(parts), element_keys(value)))
                parts.append(b"")
            else:
                parts.append(encode(value))
        if not choices:
            return [b"".join(parts)], False
        if len(parts) == 1:  # one list field alone: its elements' encodings are the keys
            return choices[0][1], True
        total = 1
        for _position, encs in choices:
            total *= len(encs)
        if total > MAX_KEYS:
            return [], True
        combos: list[list[bytes]] = [parts]
        for position, encs in choices:
            combos = [[*c[:position], e, *c[position + 1 :]] for c in combos for e in encs]
        return [b"".join(c) for c in combos], True

    def entry(
        self, doc: Mapping[str, Any], cache: dict[str, bytes] | None = None
    ) -> tuple[bytes | None, bool]:
        """(the first encoded key, or None; whether a field is a list): see ``keys``."""
        keys, listy = self.keys(doc, cache)
        return (keys[0] if keys else None), listy

    def build(self, docs: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        entries: list[bytes] = []
        for id, doc in docs:
            keys, listy = self.keys(doc)
            suffix = id_suffix(id)
            entries.extend(key + suffix for key in keys)
            if listy:
                self.multi.add(id)
                if not keys:
                    self.residual.add(id)
        self.entries = SortedList(entries)

    def add(self, id: str, doc: Mapping[str, Any], suffix: bytes | None = None) -> None:
        """Index ``doc`` under ``id`` (``suffix``: ``id_suffix(id)``, if the caller has it).
        A document's entries (one per search key of a customer) go in together, in order."""
        keys, listy = self.keys(doc)
        if suffix is None:
            suffix = id_suffix(id)
        if len(keys) == 1:
            self.entries.add(keys[0] + suffix)
        elif keys:
            self.entries.add_sorted([key + suffix for key in keys])
        if listy:
            self.multi.add(id)
            if not keys:
                self.residual.add(id)

    def remove(self, id: str, doc: Mapping[str, Any], suffix: bytes | None = None) -> None:
        """Take ``doc``'s entries under ``id`` out of the index."""
        keys, listy = self.keys(doc)
        if keys:
            if suffix is None:
                suffix = id_suffix(id)
            if len(keys) == 1:
                self.entries.discard(keys[0] + suffix)
            else:
                self.entries.discard_sorted([key + suffix for key in keys])
        if listy:
            self.multi.discard(id)
            self.residual.discard(id)

    def replace(
        self, id: str, old: Mapping[str, Any], new: Mapping[str, Any], suffix: bytes
    ) -> None:
        """Re-index ``id`` from ``old`` to ``new``: only the entries that differ change (none
        when the indexed fields did not, as for a customer's search keys on most updates)."""
        old_keys, old_listy = self.keys(old)
        new_keys, new_listy = self.keys(new)
        if old_keys != new_keys:
            if len(old_keys) == 1 and len(new_keys) == 1:
                self.entries.discard(old_keys[0] + suffix)
                self.entries.add(new_keys[0] + suffix)
            else:
                kept = set(old_keys).intersection(new_keys)
                gone = [key + suffix for key in old_keys if key not in kept]
                if gone:
                    self.entries.discard_sorted(gone)
                added = [key + suffix for key in new_keys if key not in kept]
                if added:
                    self.entries.add_sorted(added)
        if old_listy and not new_listy:
            self.multi.discard(id)
        elif new_listy:
            self.multi.add(id)
        if new_listy and not new_keys:
            self.residual.add(id)
        elif old_listy and not old_keys:
            self.residual.discard(id)

    def duplicate(self) -> tuple[str, str] | None:
        """Two ids sharing one key (for unique indexes), or None."""
        previous: bytes | None = None
        previous_id = ""
        for entry in self.entries:
            n = int.from_bytes(entry[-2:], "big")
            key = entry[: -2 - n]
            id = entry_id(entry)
            if key == previous:
                return previous_id, id
            previous, previous_id = key, id
        return None

    def holders(self, key: bytes) -> Iterator[str]:
        """Ids of documents whose key is exactly ``key``."""
        for entry in self.entries.irange(key, key + TOP):
            yield entry_id(entry)

    def scan(self, lo: bytes, hi: bytes) -> Iterator[str]:
        """Ids of the entries ``lo <= entry < hi``, in order; from a packed chunk, read from
        its buffer directly (no object for the entry), in growing batches."""
        for chunk, start, stop in self.entries.segments(lo, hi):
            if type(chunk) is list:
                for entry in chunk[start:stop]:
                    yield entry_id(entry)
                continue
            blob, offsets = chunk.blob, chunk.offsets
            batch = 16
            while start < stop:
                end = min(start + batch, stop)
                ends = offsets[start + 1 : end + 1]
                try:
                    yield from [
                        blob[e - 2 - (blob[e - 2] << 8 | blob[e - 1]) : e - 2].decode()
                        for e in ends
                    ]
                except UnicodeDecodeError:  # an id with lone surrogates: one at a time
                    for e in ends:
                        yield entry_id(blob[offsets[start] : e])
                        start += 1
                start = end
                batch = min(batch * 4, 1024)

    def add_many(
        self, docs: Iterable[tuple[str, Mapping[str, Any], bytes]], cache: dict[str, bytes]
    ) -> None:
        """Index new documents together: ``(id, doc, id_suffix(id))`` each, their entries
        merged into the index at once (``cache``: string encodings, as in ``keys``)."""
        entries: list[bytes] = []
        for id, doc, suffix in docs:
            keys, listy = self.keys(doc, cache)
            for key in keys:
                entries.append(key + suffix)
            if listy:
                self.multi.add(id)
                if not keys:
                    self.residual.add(id)
        self.entries.update(entries)


# -- planning ------------------------------------------------------------------------------


class Plan:
    """Candidate ids for a filter. ``exact``: every candidate matches, no check needed;
    ``check``: ids that must still be checked with the filter even when ``exact``;
    ``covered``: the top-level fields the candidates are narrowed by (None: not known)."""

    __slots__ = ("check", "covered", "exact", "ranges", "score", "source")

    def __init__(
        self,
        source: Any,
        ranges: list[tuple[bytes, bytes]],
        exact: bool,
        check: set[str],
        score: int,
        covered: set[str] | None = None,
    ) -> None:
        self.covered = covered
        self.source = source
        self.ranges = ranges
        self.exact = exact
        self.check = check
        self.score = score

    def size(self) -> int:
        """How many ids ``ids()`` yields (plus the ids to check), counted without reading them."""
        if isinstance(self.source, Index):
            entries = self.source.entries
            return sum(entries.count(lo, hi) for lo, hi in self.ranges) + len(self.check)
        return len(self.source)

    def ids(self) -> Iterator[str]:
        """The candidate ids, each once."""
        if isinstance(self.source, Index):
            if not self.source.multi:
                for lo, hi in self.ranges:
                    yield from self.source.scan(lo, hi)
                return
            seen: set[str] = set()  # a document holding a list has an entry per element
            for lo, hi in self.ranges:
                for id in self.source.scan(lo, hi):
                    if id not in seen:
                        seen.add(id)
                        yield id
        else:
            yield from self.source  # a list of ids: the primary key, or a union


def _point_values(cond: Any) -> list[Any] | None:
    """The values a field must equal, or None if ``cond`` is not an equality."""
    if not _is_operator_map(cond):
        values = [cond]
    elif set(cond) <= {"$eq", "$in"} and ("$eq" in cond) != ("$in" in cond):
        values = [cond["$eq"]] if "$eq" in cond else list(cond["$in"])
    else:
        return None
    if any(isinstance(v, list | dict) for v in values):
        return None  # list and object literals compare whole values: leave them to the matcher
    return values


def _range(cond: Any) -> tuple[bytes | None, bool, bytes | None, bool, bytes, bool] | None:
    """(low, low inclusive, high, high inclusive, rank, exact) for a pure range condition."""
    if not _is_operator_map(cond) or not set(cond) <= set(_RANGE_OPS):
        return None
    ranks = set()
    lo = hi = None
    lo_inc = hi_inc = True
    exact = True
    for op, operand in cond.items():
        if operand is None or isinstance(operand, list | dict):
            return None
        enc = encode(operand)
        ranks.add(enc[:1])
        fuzzy = is_inexact(operand)  # equal encodings may hide larger or smaller values
        exact = exact and not fuzzy
        if op in ("$gt", "$gte"):
            inc = op == "$gte" or fuzzy
            if lo is None or enc > lo or (enc == lo and not inc):
                lo, lo_inc = enc, inc
        else:
            inc = op == "$lte" or fuzzy
            if hi is None or enc < hi or (enc == hi and not inc):
                hi, hi_inc = enc, inc
    if len(ranks) != 1:
        return None  # mixed types: no value compares with all operands; the matcher says so
    return lo, lo_inc, hi, hi_inc, ranks.pop(), exact


def plan_index(index: Index, conds: Mapping[str, Any]) -> Plan | None:
    """A plan over ``index`` for the top-level field conditions ``conds``, or None."""
    prefixes = [b""]
    ranges: list[tuple[bytes, bytes]] | None = None
    used = 0
    exact = True
    ranged = False
    covered: set[str] = set()
    for path in index.paths:
        cond = conds.get(path, MISSING)
        if cond is MISSING:
            break
        points = _point_values(cond)
        if points is not None:
            if index.spec.sparse and any(v is None for v in points):
                break
            if len(prefixes) * len(points) > MAX_POINTS:
                break
            encs = sorted({encode(v) for v in points})
            prefixes = [p + e for p in prefixes for e in encs]
            exact = exact and not any(is_inexact(v) for v in points)
            used += 2
            covered.add(path)
            continue
        rng = _range(cond)
        if rng is not None:
            lo, lo_inc, hi, hi_inc, rank, rng_exact = rng
            ranges = []
            for p in prefixes:
                low = p + (rank if lo is None else lo if lo_inc else lo + TOP)
                high = p + (bytes([rank[0] + 1]) if hi is None else hi + TOP if hi_inc else hi)
                if low < high:
                    ranges.append((low, high))
            used += 1
            covered.add(path)
            exact = exact and rng_exact
            ranged = True
        break
    if not used:
        return None
    if index.spec.sparse and len(covered) < len(index.paths):
        return None  # a sparse index misses documents where an uncovered field is null
    if ranges is None:
        ranges = [(p, p + TOP) for p in prefixes]
    exact = exact and covered == set(conds)
    score = used * 4 + (2 if index.spec.unique else 0)
    # A list's elements may fall in a range the list itself is not in: documents holding
    # lists are then checked apart; equality on an element is placed exactly by its entry.
    check = set(index.multi) if ranged else set(index.residual)
    return Plan(index, ranges, exact, check, score, covered)


def plan(
    normal: Mapping[str, Any], indexes: Iterable[Index], ids: SortedList | None = None
) -> Plan | None:
    """The best plan for a normalised filter, or None if only a full scan will do.

    ``ids``, the collection's ids in order, lets a range on ``id`` be answered from it."""
    conds = {k: v for k, v in normal.items() if not k.startswith("$")}
    best: Plan | None = None
    ident = conds.get("id", MISSING)
    only_id = set(conds) == {"id"} and len(normal) == 1
    if ident is not MISSING:
        points = _point_values(ident)
        if points is not None and all(isinstance(v, str) for v in points):
            return Plan(sorted(set(points)), [], only_id, set(), 1000, {"id"})
    indexes = list(indexes)
    candidates = [c for c in (plan_index(index, conds) for index in indexes) if c is not None]
    if len(candidates) > 1:
        # the fewest candidates wins (counted by bisection), then the better score
        best = min(candidates, key=lambda c: (c.size(), -c.score))
    elif candidates:
        best = candidates[0]
    if best is None and ident is not MISSING and ids is not None:
        # Only when no declared index narrows the filter: a range of ids may be most of them,
        # so the list is built only for a plan that will be used.
        bounds = _id_range(ident)
        if bounds is not None:
            best = Plan(list(ids.irange(*bounds)), [], only_id, set(), 3, {"id"})
    if best is not None and len(normal) != len(conds):
        best.exact = False  # $or / $and alongside: the matcher has the last word
    subs = normal.get("$and", ())
    if subs:
        # a branch of $and may narrow more than the top-level fields (a search key beside
        # the status): the fewest candidates win, counted without reading them
        inner = [c for c in (plan(sub, indexes, ids) for sub in subs) if c is not None]
        if inner:
            narrowest = min(inner, key=lambda c: (c.size(), -c.score))
            if best is None or narrowest.size() < best.size():
                best = narrowest
                best.exact = False
                best.covered = None
    if "$or" in normal:
        # an $or whose every branch is narrowed by an index may narrow more than the
        # top-level fields beside it (search keys beside the status): the fewest wins
        branches = [plan(sub, indexes, ids) for sub in normal["$or"]]
        if all(b is not None for b in branches):
            union = _union(branches)  # type: ignore[arg-type]
            if best is None or union.size() < best.size():
                return union
    return best


def _id_range(cond: Any) -> tuple[str | None, str | None] | None:
    """``(low, high)`` for ``SortedList.irange`` (low included, high not) from a pure range
    on string ids, or None. The next string after ``s`` is ``s + "\\0"``."""
    if not _is_operator_map(cond) or not cond or not set(cond) <= set(_RANGE_OPS):
        return None
    if not all(isinstance(v, str) for v in cond.values()):
        return None
    lows = [v + "\0" if op == "$gt" else v for op, v in cond.items() if op in ("$gt", "$gte")]
    highs = [v + "\0" if op == "$lte" else v for op, v in cond.items() if op in ("$lt", "$lte")]
    return (max(lows) if lows else None, min(highs) if highs else None)


class _Union:
    """The ids of several plans, in order, each once: collected only when iterated (a plan
    may be weighed by its size and not chosen); ``len`` is the sum of the branches' sizes."""

    __slots__ = ("branches",)

    def __init__(self, branches: list[Plan]) -> None:
        self.branches = branches

    def __len__(self) -> int:
        return sum(b.size() for b in self.branches)

    def __iter__(self) -> Iterator[str]:
        ids: set[str] = set()
        for b in self.branches:
            ids.update(b.ids())
            ids |= b.check
        return iter(sorted(ids))


def _union(branches: list[Plan]) -> Plan:
    return Plan(_Union(branches), [], False, set(), min(b.score for b in branches))
