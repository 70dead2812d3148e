"""``Collection.sum`` answered from an index's entries: each entry holds the indexed fields'
values (numbers as 8 order-preserving bytes), so a sum over a field an index holds, for a
filter the index covers exactly, reads no document."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from crmcore.storage.query import resolve
from crmcore_storage_tinydb.files import decode_doc
from crmcore_storage_tinydb.indexes import (
    R_NUM,
    TOP,
    Index,
    entry_id,
    plan_index,
    prefix_end,
)

_BITS = struct.Struct(">Q")
_DOUBLE = struct.Struct(">d")
_EXACT = 2.0**53  # beyond this a number's entry may not be the stored value (a huge int)
_SIGN = 0x8000000000000000
_ALL = 0xFFFFFFFFFFFFFFFF


def decode_number(raw: bytes) -> float:
    """The number whose 8-byte index encoding is ``raw`` (the inverse of ``_number``)."""
    (bits,) = _BITS.unpack(raw)
    bits = bits ^ _SIGN if bits & _SIGN else bits ^ _ALL
    (value,) = _DOUBLE.unpack(_BITS.pack(bits))
    return float(value)


def covering(
    indexes: Iterator[Index] | list[Index], field: str, normal: dict[str, Any]
) -> tuple[Index, list[tuple[bytes, bytes]]] | None:
    """An index holding ``field`` whose entries in the returned ranges are exactly the
    documents matching ``normal`` (one entry each), or None when no index does."""
    if any(key.startswith("$") for key in normal):
        return None  # $or / $and / $not: the matcher's
    for index in indexes:
        if field not in index.paths or index.multi or index.residual:
            continue  # a list in an indexed field: entries per element, not per document
        if normal:
            chosen = plan_index(index, normal)
            if chosen is None or not chosen.exact or chosen.check:
                continue
            return index, chosen.ranges
        if index.spec.sparse and index.paths != (field,):
            continue  # would miss documents where another indexed field is null
        return index, [(b"", TOP)]
    return None


def values(
    index: Index, ranges: list[tuple[bytes, bytes]], field: str, docs: dict[str, str]
) -> Iterator[Any]:
    """The values of ``field`` in ``index``'s entries within ``ranges``: numbers decoded from
    the entries, a document read only where its number is not exact in an entry (beyond
    2**53, NaN); other values (null, text, booleans) are skipped, as ``sum`` skips them."""
    position = index.paths.index(field)
    for lo, hi in ranges:
        for entry in index.entries.irange(lo, hi):
            start = prefix_end(entry, position) if position else 0
            if entry[start : start + 1] != R_NUM:
                continue
            number = decode_number(entry[start + 1 : start + 9])
            if number != number or abs(number) >= _EXACT:
                text = docs.get(entry_id(entry))
                if text is not None:
                    yield resolve(decode_doc(text), field)
                continue
            yield number
