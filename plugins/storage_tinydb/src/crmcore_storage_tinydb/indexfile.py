"""``<collection>.idx``: the sorted index entries of a snapshot, so that opening a large store
need not decode every document to rebuild them.

A cache, never a source of truth: it is written next to each snapshot at compaction and tied
to it by a random token recorded in both; anything that does not match exactly (a missing or
stale file, other indexes, a bad checksum) is ignored and the indexes are rebuilt from the
documents. Deleting these files is always safe.

Layout: ``CRMIDX3\n``, a JSON header line (token, document count, index names), then per index
the entry count, the ids of documents holding lists (JSON), the ids of those with no entry
(JSON, ``Index.residual``) and the entries in blocks of at most ``BLOCK`` entries, each block
its compressed length and a zlib stream of the entries' lengths (big-endian unsigned 32-bit
integers) followed by the entries themselves; a CRC-32 of everything before it closes the
file. Sorted entries share long beginnings, so a block compresses 3-7x (format 2 kept them
raw, with an 8-byte offset each: a file of that format is rebuilt, as any stale cache).
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from array import array
from collections.abc import Sequence
from itertools import accumulate, islice
from pathlib import Path
from typing import BinaryIO

from crmcore_storage_tinydb.files import atomic_file, decode_json, encode_json
from crmcore_storage_tinydb.indexes import Index
from crmcore_storage_tinydb.sortedlist import CHUNK, Packed, SortedList

MAGIC = b"CRMIDX3\n"  # 3: entries in zlib blocks; 2: one entry per list element (multikey)
SUFFIX = ".idx"
BLOCK = 8192  # entries per compressed block: what reading holds decompressed at once
LEVEL = 1  # zlib's fastest: most of the size of 6 (within 10%) for a quarter of the time
_U32 = struct.Struct(">I")


def index_file(snapshot: Path) -> Path:
    """The cache file that goes with a snapshot file."""
    return snapshot.with_suffix(SUFFIX)


def write_index_file(snapshot: Path, token: str, count: int, indexes: Sequence[Index]) -> None:
    """Write the entries of ``indexes`` (as they are now) for the snapshot with ``token``."""
    with atomic_file(index_file(snapshot), binary=True) as handle:
        crc = 0

        def put(data: bytes) -> None:
            nonlocal crc
            crc = zlib.crc32(data, crc)
            handle.write(data)

        put(MAGIC)
        put(
            encode_json(
                {"token": token, "count": count, "indexes": [i.spec.name for i in indexes]}
            ).encode("ascii")
            + b"\n"
        )
        for index in indexes:
            multi = encode_json(sorted(index.multi)).encode("ascii")
            residual = encode_json(sorted(index.residual)).encode("ascii")
            put(_U32.pack(len(index.entries)) + _U32.pack(len(multi)) + multi)
            put(_U32.pack(len(residual)) + residual)
            entries = iter(index.entries)  # one block at a time: never all as objects
            while block := list(islice(entries, BLOCK)):
                lengths = array("I", map(len, block))
                if sys.byteorder != "big":
                    lengths.byteswap()
                packed = zlib.compress(lengths.tobytes() + b"".join(block), LEVEL)
                put(_U32.pack(len(packed)) + packed)
        handle.write(_U32.pack(crc))


def read_index_file(snapshot: Path, token: str, count: int, indexes: Sequence[Index]) -> bool:
    """Fill ``indexes`` (empty, in the snapshot's order) from the cache file when it matches
    the snapshot exactly; False, with the indexes left empty, when it does not."""
    try:
        with open(index_file(snapshot), "rb") as handle:
            if _read(handle, token, count, indexes):
                return True
    except (OSError, ValueError, KeyError, TypeError, struct.error, zlib.error):
        pass
    for index in indexes:
        index.entries = SortedList()
        index.multi.clear()
        index.residual.clear()
    return False


def _read(handle: BinaryIO, token: str, count: int, indexes: Sequence[Index]) -> bool:
    crc = 0
    size = os.fstat(handle.fileno()).st_size

    def take(n: int) -> bytes:
        nonlocal crc
        if n > size:  # a damaged length: never try to read (allocate) more than the file
            raise ValueError("the index file is short")
        data = handle.read(n)
        if len(data) != n:
            raise ValueError("the index file is short")
        crc = zlib.crc32(data, crc)
        return data

    if take(len(MAGIC)) != MAGIC:
        return False
    header_line = handle.readline()
    crc = zlib.crc32(header_line, crc)
    header = decode_json(header_line.decode("ascii"))
    if (
        header["token"] != token
        or header["count"] != count
        or header["indexes"] != [i.spec.name for i in indexes]
    ):
        return False
    for index in indexes:
        n = _U32.unpack(take(4))[0]
        multi = decode_json(take(_U32.unpack(take(4))[0]).decode("ascii"))
        residual = decode_json(take(_U32.unpack(take(4))[0]).decode("ascii"))
        runs: list[Packed] = []  # the blocks as the index's chunks: no object per entry
        have = 0
        while have < n:
            count = min(BLOCK, n - have)
            data = zlib.decompress(take(_U32.unpack(take(4))[0]))
            lengths = array("I")
            lengths.frombytes(data[: 4 * count])
            if sys.byteorder != "big":
                lengths.byteswap()
            ends = list(accumulate(lengths, initial=4 * count))
            if ends[-1] != len(data):
                raise ValueError("an index block does not add up")
            for start in range(0, count, CHUNK):
                stop = min(start + CHUNK, count)
                base = ends[start]
                offsets = array("I", [end - base for end in ends[start : stop + 1]])
                runs.append(Packed.of(data[base : ends[stop]], offsets))
            have += count
        index.entries = SortedList.from_packed(runs)
        index.multi.update(multi)
        index.residual.update(residual)
    return _U32.unpack(handle.read(4))[0] == crc and not handle.read(1)
