"""A loaded collection's documents' text by id, compressed with a dictionary of its own.

A collection's documents repeat themselves: field names, id prefixes, timestamps, the same few
values. Once a collection holds ``compress_from`` documents, a zstandard dictionary is trained
on a sample of them and every document is kept as its text compressed against it (a
``bytes`` of about a quarter to a seventh of the text's size), compressed as it is stored and
decompressed as it is read (about a microsecond for a 400-byte document). Below that size the
text is kept as it is: a small store pays nothing. The dictionary lives in memory only (each
process trains its own when it loads the collection); the files are unchanged.

``Texts`` is a ``dict`` from id to text for its readers: ``[id]``, ``get``, ``values`` and
``items`` give the text; ``in``, ``len``, ``del`` and iteration over the ids are the dict's
own. ``dict.values(texts)`` gives the stored values (``str`` or ``bytes``), for measuring.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a collection first grows large enough (not at start-up)
    import zstandard

#: The dictionary's size in bytes: 16 KiB compresses these documents as well as 64 KiB does.
DICT_SIZE = 16_384
#: The most documents the dictionary is trained on (a spread sample of those stored): 500
#: compress as well as 2,000 on the W15 store, in a quarter of the time.
SAMPLE = 500
#: zstandard's trainer (fastCOVER) with fixed parameters: its search over parameters (the
#: default) compresses no better on these documents, takes 5-10x the CPU and leaves about
#: 7 MB behind in the allocator per collection; f=18 keeps its transient tables at ~3 MB.
TRAINER = {"k": 2000, "d": 8, "f": 18}
#: Texts shorter than this are kept as they are: compressing them saves nothing.
SHORT = 48
#: The compression level: with the dictionary, 1 compresses these documents as well as 3
#: (zstandard's default) and a little faster.
LEVEL = 1

_set: Any = dict.__setitem__  # a value stored as it is: compressed ``bytes`` or plain ``str``
_get: Any = dict.get


def train(samples: list[bytes | bytearray | memoryview]) -> zstandard.ZstdCompressionDict:
    """A dictionary for documents like ``samples``: trained when there is enough to train on,
    else their raw text used as the dictionary (always possible, compresses a little less)."""
    import zstandard

    total = sum(len(s) for s in samples)
    if len(samples) >= 64 and total >= 8 * DICT_SIZE:
        try:
            return zstandard.train_dictionary(DICT_SIZE, samples, **TRAINER)
        except zstandard.ZstdError:
            pass  # too uniform or too few to train on: the raw text below
    raw = b"".join(samples)[-DICT_SIZE:]
    return zstandard.ZstdCompressionDict(raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


class Codec:
    """Compresses and decompresses documents against one dictionary; each thread gets its
    own zstandard contexts (they are not safe to share between threads)."""

    def __init__(self, dictionary: zstandard.ZstdCompressionDict) -> None:
        import zstandard

        self._zstd = zstandard
        self._format = zstandard.FORMAT_ZSTD1_MAGICLESS  # no 4-byte magic on every document
        self.dictionary = dictionary
        # Tables sized for documents of a few KiB (a 16 KiB window, 4K-entry hash and chain
        # tables): each compression resets them, and level 1's defaults (a 512 KiB window,
        # 64K-entry tables) made that reset, not the compression, the cost inside a running
        # application (~100 µs a document with cold caches; ~17 µs so), for the same output.
        self._params = zstandard.ZstdCompressionParameters.from_level(
            LEVEL,
            window_log=14,
            hash_log=12,
            chain_log=12,
            format=self._format,
            write_content_size=1,
            write_checksum=0,
            write_dict_id=0,
        )
        self._local = threading.local()

    def compress(self, text: str) -> bytes:
        """``text`` compressed, as a ``bytes`` of its own size: zstandard returns the output
        in a buffer of the worst case's size shrunk in place, which for a text of 400 bytes
        or more is a ``malloc`` chunk whose freed tail the heap cannot reuse (the W15 store's
        serving peak rose by more than the compression saved); the copy costs ~0.1 µs."""
        local = self._local
        try:
            compressor = local.c
        except AttributeError:
            compressor = local.c = self._zstd.ZstdCompressor(
                dict_data=self.dictionary, compression_params=self._params
            )
        return bytes(memoryview(compressor.compress(text.encode())))

    def decompress(self, blob: bytes) -> str:
        local = self._local
        try:
            return local.d.decompress(blob).decode()
        except AttributeError:
            local.d = self._zstd.ZstdDecompressor(dict_data=self.dictionary, format=self._format)
            return local.d.decompress(blob).decode()


class Texts(dict[str, str]):
    """Documents' text by id, kept compressed once there are ``compress_from`` of them (0:
    never). Values are stored as ``str`` (plain) or ``bytes`` (compressed); readers always
    get the text."""

    __slots__ = ("codec", "compress_from")

    def __init__(self, compress_from: int = 0) -> None:
        super().__init__()
        self.compress_from = compress_from
        self.codec: Codec | None = None

    def __setitem__(self, id: str, text: str) -> None:
        codec = self.codec
        if codec is not None and len(text) >= SHORT:
            _set(self, id, codec.compress(text))
            return
        dict.__setitem__(self, id, text)
        if codec is None and self.compress_from and len(self) >= self.compress_from:
            self.compress_all()

    def __getitem__(self, id: str) -> str:
        value: Any = dict.__getitem__(self, id)
        if type(value) is str:
            return value
        return self.codec.decompress(value)  # type: ignore[union-attr]

    def get(self, id: str, default: Any = None) -> Any:
        value: Any = _get(self, id)
        if value is None:
            return default
        if type(value) is str:
            return value
        return self.codec.decompress(value)  # type: ignore[union-attr]

    def values(self) -> Iterator[str]:  # type: ignore[override]
        codec = self.codec
        for value in dict.values(self):
            yield value if type(value) is str else codec.decompress(value)  # type: ignore[union-attr,arg-type]

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        codec = self.codec
        for id, value in dict.items(self):
            yield id, value if type(value) is str else codec.decompress(value)  # type: ignore[union-attr,arg-type]

    def compress_all(self) -> None:
        """Train the dictionary on a sample of the documents stored and compress them all."""
        plain = [v for v in dict.values(self) if type(v) is str]
        step = max(1, len(plain) // SAMPLE)
        codec = Codec(train([t.encode() for t in plain[::step][:SAMPLE]]))
        self.codec = codec  # first: a reader in another thread may meet a compressed value
        for id, value in list(dict.items(self)):
            if type(value) is str and len(value) >= SHORT:
                _set(self, id, codec.compress(value))

    def stored_bytes(self) -> int:
        """What the stored values take (their ``sys.getsizeof``), the dictionary included."""
        import sys

        total = sum(sys.getsizeof(v) for v in dict.values(self))
        if self.codec is not None:
            total += len(self.codec.dictionary.as_bytes())
        return total
