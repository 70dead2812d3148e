"""One loaded collection in memory: documents as compact JSON text, ids in order, indexes.

Documents are kept as the JSON text they are stored as (not as dicts): a third of the memory,
and decoding one is as fast as copying a dict, which every read has to do anyway. A large
collection's text is kept compressed with a dictionary trained on its own documents
(``texts.Texts``): readers still get the text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from crmcore.errors import DuplicateKeyError
from crmcore.storage.base import Doc, IndexSpec
from crmcore.storage.query import (
    MISSING,
    _is_operator_map,
    _rank,
    index_key,
    resolve,
    validate_sort,
)
from crmcore_storage_tinydb import files, indexfile
from crmcore_storage_tinydb.files import SnapshotMeta, damaged, decode_doc, encode_json
from crmcore_storage_tinydb.indexes import (
    CACHE_LIMIT,
    R_NULL,
    R_STR,
    Index,
    Plan,
    encode,
    encode_text,
    id_suffix,
    is_inexact,
    plan,
)
from crmcore_storage_tinydb.sortedlist import SortedList
from crmcore_storage_tinydb.texts import Texts

_UNPLANNED: Any = object()  # ``Table.select``: no plan given, make one


@functools.lru_cache(maxsize=1024)
def _roots(paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(path.split(".", 1)[0] for path in paths))


def _same_fields(index: Index, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether every top-level field ``index`` reads holds the very same object in ``old``
    and ``new``: an update's new document shares the values it did not change, so its
    entries would not move (a customer's ~28 search keys are not computed twice when only
    its ``ext`` changes)."""
    for root in _roots(index.paths):  # noqa: SIM110 (a loop: no generator on every write)
        if old.get(root, MISSING) is not new.get(root, MISSING):
            return False
    return True


class Table:
    """One loaded collection: documents as compact JSON text by id, ids in order, indexes."""

    __slots__ = ("docs", "ids", "indexes", "size")

    def __init__(self, compress_from: int = 0) -> None:
        """``compress_from``: keep the documents compressed once there are this many (0:
        never; see ``texts.Texts``)."""
        self.docs = Texts(compress_from)
        self.ids = SortedList()
        self.indexes: dict[str, Index] = {}
        self.size = 0  # characters of document text: about the snapshot's size

    def put(self, id: str, doc: Doc | None, text: str | None, old: Doc | None = None) -> None:
        """Store ``text`` (the encoding of ``doc``) under ``id``; None removes the document."""
        prev = self.docs.get(id)
        if doc is None or text is None:
            if prev is not None:
                del self.docs[id]
                self.ids.discard(id)
                self.size -= len(prev)
                if self.indexes:
                    before = decode_doc(prev) if old is None else old
                    suffix = id_suffix(id)
                    for index in self.indexes.values():
                        index.remove(id, before, suffix)
            return
        self.docs[id] = text
        self.size += len(text)
        if prev is None:
            self.ids.add(id)
        else:
            self.size -= len(prev)
        if self.indexes:
            suffix = id_suffix(id)  # every index's entries end with it
            if prev is None:
                for index in self.indexes.values():
                    index.add(id, doc, suffix)
            else:
                before = decode_doc(prev) if old is None else old
                for index in self.indexes.values():
                    if not _same_fields(index, before, doc):
                        index.replace(id, before, doc, suffix)

    def replay(self, op: list[Any]) -> None:
        """Apply one journal operation on this collection (a put, an append, a delete, an
        index declared)."""
        kind = op[0]
        if kind == "p" or kind == "a":
            doc = op[2]
            self.put(doc["id"], doc, encode_json(doc))
        elif kind == "d":
            self.put(op[2], None, None)
        elif kind == "x":
            spec = files.spec_from_json(op[2])
            if spec.name not in self.indexes:
                index = Index(spec)
                index.build((id, decode_doc(t)) for id, t in self.docs.items())
                self.indexes[spec.name] = index

    def put_new(self, docs: list[tuple[str, Doc, str]]) -> None:
        """Store new documents ``(id, doc, text)`` (ids not stored yet, no unique index to
        check), indexed together: one pass per index (see ``put``)."""
        stored = self.docs
        size = 0
        for id, _doc, text in docs:
            stored[id] = text
            size += len(text)
        self.size += size
        self.ids.update(id for id, _doc, _text in docs)
        if self.indexes:
            suffixed = [(id, doc, id_suffix(id)) for id, doc, _text in docs]
            cache: dict[str, bytes] = {}
            for index in self.indexes.values():
                index.add_many(suffixed, cache)

    def defer(self) -> None:
        """Hold the indexes' changes back (a load's journal replay) until ``merge``."""
        for index in self.indexes.values():
            index.entries.defer()

    def merge(self) -> None:
        """Apply the changes held back since ``defer``, one chunk unpacked at a time."""
        for index in self.indexes.values():
            index.entries.merge_pending()

    def unique_claims(self) -> UniqueClaims | None:
        """For documents stored together (``put_new``): their unique keys, or None when no
        index is unique."""
        unique = [index for index in self.indexes.values() if index.spec.unique]
        return UniqueClaims(unique) if unique else None

    def fill(self, path: Path, meta: SnapshotMeta, handle: BinaryIO | None = None) -> None:
        """Load a snapshot into this (empty) table, building every declared index (from
        ``handle``, the file ``meta`` was read from, when given: see ``read_documents``).

        Each field an index reads is encoded once per document (indexes share fields), and
        string encodings are remembered, since bulk data repeats values a lot."""
        indexes = [Index(spec) for spec in meta.indexes]
        if not indexes or (
            meta.token and indexfile.read_index_file(path, meta.token, meta.count, indexes)
        ):
            self._fill_documents(path, meta, handle)
            for index in indexes:
                self.indexes[index.spec.name] = index
            return
        fields = sorted({p for index in indexes for p in index.paths})
        steps = [(f, "." in f) for f in fields]
        plans: list[tuple[list[int], bool, list[bytes], Index]] = [
            ([fields.index(p) for p in index.paths], index.spec.sparse, [], index)
            for index in indexes
        ]
        cache: dict[str, bytes] = {}
        docs = self.docs
        ids: list[str] = []
        size = 0
        for text in files.read_documents(path, meta, handle):
            try:
                doc = decode_doc(text)
                id = doc["id"]
            except (ValueError, KeyError, TypeError):
                raise damaged(
                    path, f"document {len(ids) + 1} does not read", location=path.parent
                ) from None
            if not isinstance(id, str) or id in docs:
                raise damaged(
                    path, f"document {len(ids) + 1} has a bad or repeated id", location=path.parent
                )
            docs[id] = text
            ids.append(id)
            size += len(text)
            if not plans:
                continue
            encoded: list[bytes | None] = []
            listy: list[bool] = []
            for field, dotted in steps:
                value = resolve(doc, field) if dotted else doc.get(field)
                if type(value) is str:
                    code = cache.get(value)
                    if code is None:
                        code = R_STR + encode_text(value)
                        if len(cache) < CACHE_LIMIT:
                            cache[value] = code
                    encoded.append(code)
                    listy.append(False)
                elif value is None or value is MISSING:
                    encoded.append(None)
                    listy.append(False)
                else:
                    encoded.append(encode(value))
                    listy.append(type(value) is list)
            suffix = id_suffix(id)
            for positions, sparse, bucket, index in plans:
                if any(listy[i] for i in positions):  # one entry per element: see Index
                    keys, _listy = index.keys(doc, cache)
                    bucket.extend(key + suffix for key in keys)
                    index.multi.add(id)
                    if not keys:
                        index.residual.add(id)
                    continue
                parts = [encoded[i] for i in positions]
                if None in parts:
                    if sparse:
                        continue
                    parts = [R_NULL if part is None else part for part in parts]
                bucket.append(b"".join(parts) + suffix)  # type: ignore[arg-type]
        in_order = all(ids[i] < ids[i + 1] for i in range(len(ids) - 1))
        self.ids = SortedList(ids, presorted=in_order)
        self.size = size
        for index, (_positions, _sparse, bucket, _index) in zip(indexes, plans, strict=True):
            index.entries = SortedList(bucket)
            self.indexes[index.spec.name] = index

    def _fill_documents(
        self, path: Path, meta: SnapshotMeta, handle: BinaryIO | None = None
    ) -> None:
        """Load the documents only (their indexes came from the index cache file): the id is
        read straight from the text where the document starts with it, as stored ones do."""
        docs = self.docs
        ids: list[str] = []
        size = 0
        for text in files.read_documents(path, meta, handle):
            id = None
            if text.startswith('{"id":"'):
                id = text[7 : text.find('"', 7)]
                if "\\" in id:
                    id = None  # an escape inside: let the decoder read it
            if id is None:
                try:
                    id = decode_doc(text)["id"]
                except (ValueError, KeyError, TypeError):
                    raise damaged(
                        path, f"document {len(ids) + 1} does not read", location=path.parent
                    ) from None
            if not isinstance(id, str) or id in docs:
                raise damaged(
                    path, f"document {len(ids) + 1} has a bad or repeated id", location=path.parent
                )
            docs[id] = text
            ids.append(id)
            size += len(text)
        in_order = all(ids[i] < ids[i + 1] for i in range(len(ids) - 1))
        self.ids = SortedList(ids, presorted=in_order)
        self.size = size

    def add_index(self, spec: IndexSpec, collection: str) -> Index:
        index = Index(spec)
        index.build((id, decode_doc(text)) for id, text in self.docs.items())
        if spec.unique:
            clash = index.duplicate()
            if clash is not None:
                raise DuplicateKeyError(
                    f"{collection}: cannot create unique index {spec.name}: "
                    f"{clash[0]} and {clash[1]} collide"
                )
        self.indexes[spec.name] = index
        return index

    def check_unique(self, collection: str, doc: Doc, replacing: str | None) -> None:
        for index in self.indexes.values():
            if not index.spec.unique:
                continue
            keys, _listy = index.keys(doc)
            for holder in (h for key in keys for h in index.holders(key)):
                if holder == replacing:
                    continue
                if any(is_inexact(v) for v in _key_values(doc, index)):
                    other = decode_doc(self.docs[holder])
                    if index_key(other, index.fields, sparse=index.spec.sparse) != index_key(
                        doc, index.fields, sparse=index.spec.sparse
                    ):
                        continue
                fields = ", ".join(f for f, _ in index.fields)
                raise DuplicateKeyError(
                    f"{collection}: another record already has this value of ({fields})"
                )

    def select(
        self,
        normal: dict[str, Any],
        match: Callable[[Doc], bool],
        stop: int | None = None,
        chosen: Plan | None = _UNPLANNED,
    ) -> list[Doc]:
        """Matching documents (decoded: fresh copies). With ``stop`` and no usable index, the
        first ``stop`` matches in id order. ``chosen``: the plan already made for ``normal``
        (None: a full scan), so that a caller who planned does not plan twice."""
        if chosen is _UNPLANNED:
            chosen = plan(normal, self.indexes.values(), self.ids)
        docs = self.docs
        out: list[Doc] = []
        if chosen is None:
            needles = needles_of(normal)
            if stop is not None:
                for id in self.ids:
                    text = docs[id]
                    if needles and not has_needles(text, needles):
                        continue
                    doc = decode_doc(text)
                    if match(doc):
                        out.append(doc)
                        if len(out) >= stop:
                            break
                return out
            for text in docs.values():
                if needles and not has_needles(text, needles):
                    continue
                doc = decode_doc(text)
                if match(doc):
                    out.append(doc)
            return out
        check = chosen.check
        for id in chosen.ids():
            if id in check:
                continue
            found = docs.get(id)
            if found is None:
                continue
            doc = decode_doc(found)
            if chosen.exact or match(doc):
                out.append(doc)
        for id in check:
            found = docs.get(id)
            if found is not None:
                doc = decode_doc(found)
                if match(doc):
                    out.append(doc)
        return out

    def count(self, normal: dict[str, Any], match: Callable[[Doc], bool]) -> int:
        if not normal:
            return len(self.docs)
        chosen = plan(normal, self.indexes.values(), self.ids)
        if chosen is None or not chosen.exact:
            return len(self.select(normal, match, chosen=chosen))  # planned once
        check = chosen.check
        if not check and isinstance(chosen.source, Index) and not chosen.source.multi:
            # one entry per document, every one a match: counted by bisection, none read
            return chosen.size()
        total = sum(1 for id in chosen.ids() if id not in check and id in self.docs)
        return total + sum(
            1 for id in check if id in self.docs and match(decode_doc(self.docs[id]))
        )


def _key_values(doc: Doc, index: Index) -> list[Any]:
    return [resolve(doc, p) for p in index.paths]


class UniqueClaims:
    """The unique keys of new documents about to be stored together: a document holding a
    key of one before it is refused as ``Table.check_unique`` refuses one already stored."""

    __slots__ = ("indexes", "seen")

    def __init__(self, indexes: list[Index]) -> None:
        self.indexes = indexes
        self.seen: list[dict[bytes, list[Doc]]] = [{} for _ in indexes]

    def claim(self, collection: str, doc: Doc) -> None:
        """Take ``doc``'s keys (``DuplicateKeyError`` when one is taken: nothing taken)."""
        found = []
        for index, seen in zip(self.indexes, self.seen, strict=True):
            keys, _listy = index.keys(doc)
            for key in keys:
                if any(_same_key(other, doc, index) for other in seen.get(key, ())):
                    fields = ", ".join(f for f, _ in index.fields)
                    raise DuplicateKeyError(
                        f"{collection}: another record already has this value of ({fields})"
                    )
            found.append(keys)
        for keys, seen in zip(found, self.seen, strict=True):
            for key in keys:
                seen.setdefault(key, []).append(doc)


def _same_key(other: Doc, doc: Doc, index: Index) -> bool:
    """Whether two documents with one encoded key hold the same key (``check_unique``)."""
    if any(is_inexact(v) for v in _key_values(doc, index)):
        sparse = index.spec.sparse
        return index_key(other, index.fields, sparse=sparse) == index_key(
            doc, index.fields, sparse=sparse
        )
    return True


def needles_of(normal: Mapping[str, Any]) -> list[list[str]]:
    """For each top-level equality on strings, the JSON texts one of which a match contains."""
    groups = []
    for key, cond in normal.items():
        if key.startswith("$"):
            continue
        if not _is_operator_map(cond):
            values = [cond]
        elif set(cond) == {"$eq"}:
            values = [cond["$eq"]]
        elif set(cond) == {"$in"}:
            values = list(cond["$in"])
        else:
            continue
        if values and all(isinstance(v, str) for v in values):
            groups.append([encode_json(v) for v in values])
    return groups


def has_needles(text: str, needles: list[list[str]]) -> bool:
    """Whether a document's ``text`` contains one JSON text of each group (see
    ``needles_of``): a cheap test before decoding it."""
    if len(needles) == 1 and len(needles[0]) == 1:  # one equality, the usual case
        return needles[0][0] in text
    return all(any(n in text for n in group) for group in needles)


def _fast_rank(value: Any) -> tuple[int, Any]:
    kind = type(value)
    if kind is str:
        return (2, value)
    if kind is int or kind is float:
        return (1, value)
    return _rank(value)


class _Mixed(Exception):
    """A descending sort field holds text: one composite key cannot express it."""


def _descending(value: Any) -> tuple[int, Any]:
    rank, plain = _fast_rank(value)
    if rank == 0:
        return (0, 0)
    if rank in (1, 5):  # numbers and booleans negate
        return (-rank, -plain)
    raise _Mixed


def _composite(order: list[tuple[str, int]]) -> Callable[[Doc], tuple[Any, ...]]:
    """One sort key for ``order`` then id; raises ``_Mixed`` on a descending text field."""
    getters = [
        (lambda d, f=f: resolve(d, f)) if "." in f else (lambda d, f=f: d.get(f, MISSING))
        for f, _direction in order
    ]
    directions = [direction for _f, direction in order]

    def composite(d: Doc) -> tuple[Any, ...]:
        parts: list[Any] = []
        for get, direction in zip(getters, directions, strict=True):
            value = get(d)
            parts.append(_fast_rank(value) if direction == 1 else _descending(value))
        parts.append(d["id"])
        return tuple(parts)

    return composite


def sort_found(docs: list[Doc], sort: Any) -> None:
    """``crmcore.storage.query.sort_docs``: the same order, ties by id. One sort on a
    composite key where every descending field holds numbers (task urgency does), else the
    same stable passes as ``sort_docs``."""
    order = validate_sort(sort)
    if not order:
        docs.sort(key=lambda d: d["id"])
        return
    try:
        docs.sort(key=_composite(order))
        return
    except _Mixed:
        pass
    docs.sort(key=lambda d: d["id"])
    for field, direction in reversed(order):
        if "." in field:

            def key(d: Doc, f: str = field) -> tuple[int, Any]:
                return _rank(resolve(d, f))
        else:

            def key(d: Doc, f: str = field) -> tuple[int, Any]:
                return _fast_rank(d.get(f, MISSING))

        docs.sort(key=key, reverse=direction == -1)


def first_found(docs: list[Doc], sort: Any) -> Doc:
    """The document ``sort_found`` would put first, in one pass where it can."""
    order = validate_sort(sort)
    try:
        return min(docs, key=_composite(order))
    except _Mixed:
        sort_found(docs, order)
        return docs[0]
