"""The first documents of a sorted answer, decoding only those (and the ties at the edge).

``top`` answers ``find(filter, sort=..., limit=k)`` and ``claim`` without decoding and sorting
every match. Two ways, tried in this order:

- sorted by ``id``: walk the ids in order (the filter's plan's candidates when an index narrows
  it, sorted as ids, else every id), decoding until ``k`` match;
- sorted by fields an index holds right after fields the filter fixes to one value each (task
  urgency, ``status = open`` then ``priority``, ``due_at``): walk that index in the order asked,
  one group of equal leading values at a time, each direction on its own (the index stores
  every field ascending; a descending field walks its groups from the top). A range on the last
  sort field is a slice of each group, found by bisection, so a group costs O(log n) plus what
  it returns. The walk stops once ``k`` documents match and the last one's ties are in.

Every document taken is checked with the filter, so answers are exactly those of a full sort
(``sort_found``): the index only chooses the order in which documents are looked at. An index
is walked only when it narrows the filter at least as much as the planner's choice would, so a
walk never looks at more documents than ``select`` would have decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from crmcore.storage.base import Doc
from crmcore.storage.query import MISSING, resolve
from crmcore_storage_tinydb.files import decode_doc
from crmcore_storage_tinydb.indexes import (
    _EXACT_INT,
    TOP,
    Index,
    Plan,
    _point_values,
    _range,
    encode,
    entry_id,
    is_inexact,
    plan,
    prefix_end,
)
from crmcore_storage_tinydb.sortedlist import SortedList
from crmcore_storage_tinydb.table import has_needles, needles_of

if TYPE_CHECKING:
    from crmcore_storage_tinydb.table import Table

Match = Callable[[Doc], bool]


def top(
    table: Table,
    normal: Mapping[str, Any],
    match: Match,
    order: list[tuple[str, int]],
    want: int,
    also: Match | None = None,
) -> tuple[list[Doc], bool] | None:
    """``(docs, in_order)``: at least the first ``want`` documents matching in ``order`` (ties
    by id), fewer only if fewer match, and whether they are in that order already (else the
    caller sorts them with ``sort_found``) before cutting them to ``want``; or None when
    neither way applies (the caller selects and sorts). ``match`` is the filter's predicate;
    ``also``, if given, must hold too (a claim: the lease is free)."""
    if also is not None:
        check, only = (lambda d: match(d) and also(d)), also
    else:
        check, only = match, None
    if want <= 0 or not order:
        return None
    if order[0][0] == "id":  # ids are unique: later fields never matter
        narrowed = plan(normal, table.indexes.values(), table.ids)
        return _by_id(table, normal, check, order[0][1] == -1, want, narrowed), True
    chosen: Plan | None = None
    planned = False
    for index in table.indexes.values():
        walk = _Walk.over(index, normal, order)
        if walk is None:
            continue
        # A walk narrowing by every field of a filter without $and/$or narrows at least as
        # much as any plan could (a plan narrows by some of those fields): no plan needed.
        if len(walk.covered) < len(normal):
            if not planned:
                chosen, planned = plan(normal, table.indexes.values(), table.ids), True
            if chosen is not None and (
                chosen.covered is None or not chosen.covered <= walk.covered
            ):
                continue  # the planner's index narrows more: select and sort its candidates
        # a walk whose keys decide the whole filter asks only ``also``
        return walk.run(table, check, only, want)
    return None


def _by_id(
    table: Table,
    normal: Mapping[str, Any],
    match: Match,
    descending: bool,
    want: int,
    chosen: Plan | None,
) -> list[Doc]:
    """The first ``want`` matches in id order: the ids walked in order, or a plan's candidates
    collected and sorted when that reads less.

    A plan's candidates are all read and sorted before the first is returned; a walk in id
    order stops at the ``want``-th match, reading about ``want * total / size`` ids when the
    plan's ``size`` candidates are spread over the ``total`` evenly (``status = active`` beside
    a sort by id: most customers, the first 50 near the start). So the walk goes first unless
    the plan is narrower than that; a walk that has passed as many ids as the plan has
    candidates without finishing (matches bunched late in id order) gives way to the plan."""
    ids: Iterator[str] = reversed(table.ids) if descending else iter(table.ids)
    needles = needles_of(normal)
    if chosen is not None:
        size, total = chosen.size(), len(table.ids)
        if want * total < size * size:
            walked = _first(table, ids, needles, match, want, budget=size + want)
            if walked is not None:
                return walked
        # ``match`` may ask more than the filter (a claim: a free lease), so it is asked
        ids = iter(sorted(set(chosen.ids()) | chosen.check, reverse=descending))
    return _first(table, ids, needles, match, want) or []  # no budget: never None


def _first(
    table: Table,
    ids: Iterator[str],
    needles: list[list[str]],
    match: Match,
    want: int,
    budget: int | None = None,
) -> list[Doc] | None:
    """The first ``want`` documents of ``ids`` that match (fewer if ``ids`` runs out); None if
    ``budget`` ids were passed before that."""
    docs = table.docs
    out: list[Doc] = []
    for passed, id in enumerate(ids):
        if budget is not None and passed >= budget:
            return None
        text = docs.get(id)
        if text is None or (needles and not has_needles(text, needles)):
            continue
        doc = decode_doc(text)
        if match(doc):
            out.append(doc)
            if len(out) >= want:
                break
    return out


class _Walk:
    """How to walk one index for a filter and a sort (see the module's docstring)."""

    __slots__ = (
        "covered",
        "descending",
        "exact",
        "fields",
        "high",
        "index",
        "low",
        "prefix",
        "start",
    )

    def __init__(
        self,
        index: Index,
        prefix: bytes,
        start: int,
        descending: list[bool],
        low: bytes,
        high: bytes,
        covered: set[str],
        exact: bool,
    ) -> None:
        self.index = index
        self.fields = index.paths[start : start + len(descending)]  # the sort fields
        self.prefix = prefix  # the encoded values of the fixed leading fields
        self.start = start  # how many leading fields are fixed
        self.descending = descending  # per sort field
        self.low, self.high = low, high  # bounds of the last sort field's encoding
        self.covered = covered  # the filter's fields the walk narrows by
        # every document walked matches the filter (but those with a list in a field, which
        # are not walked): the filter is those fields, exactly placed by their encodings
        self.exact = exact

    @classmethod
    def over(
        cls, index: Index, normal: Mapping[str, Any], order: list[tuple[str, int]]
    ) -> _Walk | None:
        """The walk of ``index`` for this filter and order, or None if it cannot give it."""
        if index.spec.sparse:
            return None  # documents without a value are not in it, yet they sort first
        fields = [f for f, _d in order]
        paths = index.paths
        # the sort fields must be a run of the index's fields: checked before anything is
        # encoded (most indexes of a collection do not hold them so)
        first = paths.index(fields[0]) if fields[0] in paths else -1
        if first < 0 or list(paths[first : first + len(fields)]) != fields:
            return None
        prefix = b""
        start = 0
        covered: set[str] = set()
        while start < len(paths) and paths[start] not in fields:
            points = (
                _point_values(normal.get(paths[start], MISSING)) if paths[start] in normal else None
            )
            if points is None or len(points) != 1 or is_inexact(points[0]):
                return None
            prefix += encode(points[0])
            covered.add(paths[start])
            start += 1
        if list(paths[start : start + len(fields)]) != fields:
            return None
        low, high = b"", TOP
        last = fields[-1]
        rng = _range(normal[last]) if last in normal else None
        exact = True
        if rng is not None:
            lo, lo_inc, hi, hi_inc, rank, exact = rng
            low = rank if lo is None else lo if lo_inc else lo + TOP
            high = bytes([rank[0] + 1]) if hi is None else hi + TOP if hi_inc else hi
            covered.add(last)
        exact = exact and covered == set(normal)
        return cls(index, prefix, start, [d == -1 for _f, d in order], low, high, covered, exact)

    def entries(self) -> Iterator[bytes]:
        """The index's entries under ``prefix`` in the order asked, within the range."""
        return self._level(self.index.entries, self.prefix, 0)

    def _level(self, entries: SortedList, prefix: bytes, level: int) -> Iterator[bytes]:
        descending = self.descending[level]
        if level == len(self.descending) - 1:
            lo, hi = prefix + self.low, prefix + self.high
            yield from (entries.irange_reversed(lo, hi) if descending else entries.irange(lo, hi))
            return
        width = self.start + level + 1
        if descending:
            cursor = prefix + TOP
            while (entry := entries.lower(cursor)) is not None and entry.startswith(prefix):
                group = entry[: prefix_end(entry, width)]
                yield from self._level(entries, group, level + 1)
                cursor = group
        else:
            cursor = prefix
            while (entry := entries.ceiling(cursor)) is not None and entry.startswith(prefix):
                group = entry[: prefix_end(entry, width)]
                yield from self._level(entries, group, level + 1)
                cursor = group + TOP

    def run(
        self, table: Table, check: Match, only: Match | None, want: int
    ) -> tuple[list[Doc], bool]:
        """The first ``want`` matches in order, with the last one's ties (unsorted among them),
        plus every match among documents the index cannot place (a list in an indexed field);
        and whether they are in order (no ties read, nothing added from those documents).
        ``check`` tells the matches; for the documents walked, when the walk is exact, ``only``
        does (None: each one matches)."""
        match = only if self.exact else check
        docs = table.docs
        multi = self.index.multi
        width = self.start + len(self.descending)
        # Ties come in id order when the sort fields end the index and the last one ascends
        # (entries end with the id), for ids whose bytes sort as the text does (see _plain).
        id_order = width == len(self.index.paths) and not self.descending[-1]
        fields = self.fields
        out: list[Doc] = []
        boundary: bytes | None = None
        in_order = False
        for entry in self.entries():
            if boundary is not None and not entry.startswith(boundary):
                break
            id = entry_id(entry)
            if id in multi:
                continue
            doc = decode_doc(docs[id])
            if match is None or match(doc):
                out.append(doc)
                # equal encodings are equal values unless a number is too large to place
                id_order = id_order and _plain(id) and not _any_inexact(doc, fields)
                if boundary is None and len(out) >= want:
                    if id_order:
                        in_order = True
                        break  # no tie left can come before these
                    boundary = entry[: prefix_end(entry, width)]  # finish these ties
        for id in multi:
            doc = decode_doc(docs[id])
            if check(doc):
                out.append(doc)
                in_order = False
        return out, in_order


def _any_inexact(doc: Doc, fields: tuple[str, ...]) -> bool:
    """Whether a sort field of ``doc`` holds a number too large for an index to place."""
    for field in fields:
        value = doc.get(field, MISSING) if "." not in field else resolve(doc, field)
        kind = type(value)
        if kind is str or value is None or (kind is int and -_EXACT_INT < value < _EXACT_INT):
            continue  # text, null and the integers a float holds exactly (priorities, counts)
        if is_inexact(value):
            return True
    return False


def _plain(id: str) -> bool:
    """Whether index entries order ``id`` among other ids as the text does: an entry ends with
    the id's UTF-8 bytes and their length in two bytes, which sorts a prefix first (as the
    text does) unless the id holds a NUL or runs to 256 bytes."""
    return len(id) < 64 and "\x00" not in id
