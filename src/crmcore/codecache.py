"""Generated methods compiled once and cached between processes, like bytecode.

attrs writes the source of each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
… and compiles it when the class is defined; cattrs and ``crmcore.converter`` do the same for
the functions that build records from documents. A ``crm`` command defines about a hundred
such classes, and compiling their 190 KB of generated source was a sixth of ``crm customer
list``'s CPU. ``install()`` (done by the ``crm`` command line before it imports anything that
defines a class) makes those libraries compile through ``compile_cached``, which keeps the
compiled code in one file beside crmcore's own bytecode (where Python caches it: the package's
``__pycache__``, or ``PYTHONPYCACHEPREFIX``; nothing is written where Python would write no
bytecode). The file holds generated source's code only, never data.

The code is the same code object the builtin ``compile`` returns for the same source, file
name and flags (``tests/test_codecache.py`` compares them): entries are keyed by a digest of
all three. attrs puts a per-process random number in each ``__hash__`` (the hash of a string);
it is compiled as a placeholder of the same length (nines) and put back in the cached code's
constants, so that those classes hit the cache too (once a number of that length was seen).
A file that cannot be read or does not hold what this module writes is ignored (and replaced
on exit); one that cannot be written is not.
"""

from __future__ import annotations
import __future__

import atexit
import builtins
import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import re
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType
from typing import Any

_FORMAT = importlib.util.MAGIC_NUMBER + b"crmcore generated code 2\n"
# Every ``from __future__`` flag: what ``compile`` inherits from its caller's code.
_FUTURE_FLAGS = functools.reduce(
    lambda flags, name: flags | getattr(__future__, name).compiler_flag,
    __future__.all_feature_names,
    0,
)
# attrs' ``__hash__``: ``hash((`` then the class's random number on a line of its own.
_TYPE_HASH = re.compile(r"(hash\(\(\n[ \t]+)(-?\d+)(,\n)")
_MAX_ENTRIES = 4096  # a file that grew past this (many versions of the classes) starts over

_loaded: dict[bytes, bytes | memoryview] | None = None
_added: dict[bytes, bytes] = {}
_used: set[bytes] = set()
_installed = False


def cache_file() -> str | None:
    """Where the compiled code is kept for this interpreter (None: Python caches no
    bytecode here, e.g. an interpreter without a cache tag)."""
    try:
        beside = importlib.util.cache_from_source(os.path.abspath(__file__))
    except (NotImplementedError, ValueError):
        return None
    return os.path.splitext(beside)[0] + ".generated"


def compile_cached(
    source: Any,
    filename: Any,
    mode: str,
    flags: int = 0,
    dont_inherit: bool = False,
    optimize: int = -1,
    **kwargs: Any,
) -> Any:
    """``compile`` with the result cached between processes (source text compiled to code,
    default optimisation); anything else is compiled as the builtin does."""
    if not dont_inherit:  # what the builtin inherits: the caller's ``from __future__`` flags
        flags |= sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS
    if (
        not isinstance(source, str)
        or not isinstance(filename, str)
        or optimize != -1
        or kwargs
        or flags & ~_FUTURE_FLAGS
    ):
        return builtins.compile(source, filename, mode, flags, True, optimize, **kwargs)
    found = list(_TYPE_HASH.finditer(source))
    if not found:
        return _cached(source, filename, mode, flags)
    digits = found[0].group(2)
    start, end = found[0].span(2)
    placeholder = _nines(digits)
    if len(found) > 1 or len(placeholder) < 16 or "9" * 16 in source:
        return builtins.compile(source, filename, mode, flags, True)  # a placeholder could clash
    known = len(_added)
    code = _cached(source[:start] + placeholder + source[end:], filename, mode, flags)
    if len(_added) > known:  # new: compiled for the other usual lengths while at it
        for other in {_nines(number) for number in _COMMON_HASHES} - {placeholder}:
            _cached(source[:start] + other + source[end:], filename, mode, flags)
    return _put_back(code, int(placeholder), int(digits))


# Numbers as long as most hashes of a string (17 to 19 digits, either sign): a class is
# compiled for each the first time, so that the next process finds its length in the cache.
_COMMON_HASHES = tuple(sign + "1" * size for sign in ("", "-") for size in (17, 18, 19))


def _nines(digits: str) -> str:
    """The placeholder for ``digits``: as long, so that the code's column positions are the
    same (``-`` kept, every digit a nine)."""
    return digits[: digits.startswith("-")] + "9" * len(digits.lstrip("-"))


def _cached(source: str, filename: str, mode: str, flags: int) -> CodeType:
    key = hashlib.sha256(f"{mode}\0{flags}\0{filename}\0{source}".encode()).digest()
    _used.add(key)
    code = _lookup(key)
    if code is None:
        code = builtins.compile(source, filename, mode, flags, True)
        _added[key] = marshal.dumps(code)
    return code


def _lookup(key: bytes) -> CodeType | None:
    global _loaded
    if _loaded is None:
        _loaded = _read()
    data = _loaded.get(key) or _added.get(key)
    if data is None:
        return None
    try:
        code = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _put_back(value: Any, stand_in: int, number: int) -> Any:
    """``value`` (code, or a constant in it) with ``stand_in`` replaced by ``number``."""
    if isinstance(value, CodeType):
        consts = tuple(_put_back(c, stand_in, number) for c in value.co_consts)
        return value.replace(co_consts=consts)
    if isinstance(value, tuple):
        return tuple(_put_back(item, stand_in, number) for item in value)
    if type(value) is int and value == stand_in:
        return number
    return value


def _read() -> dict[bytes, bytes | memoryview]:
    """The file's entries: an index (digest -> offset, length) read whole, each code's bytes
    a view into the file's content, unmarshalled only when asked for."""
    path = cache_file()
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if not data.startswith(_FORMAT):
            return {}
        start = len(_FORMAT) + 8
        size = int.from_bytes(data[len(_FORMAT) : start], "little")
        index = marshal.loads(data[start : start + size])
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    blob = memoryview(data)[start + size :]
    entries: dict[bytes, bytes | memoryview] = {}
    for key, where in index.items() if isinstance(index, dict) else ():
        if not (isinstance(key, bytes) and isinstance(where, tuple) and len(where) == 2):
            return {}
        offset, length = where
        if not (isinstance(offset, int) and isinstance(length, int)):
            return {}
        if offset < 0 or length < 0 or offset + length > len(blob):
            return {}
        entries[key] = blob[offset : offset + length]
    return entries


def _encode(entries: dict[bytes, bytes | memoryview]) -> bytes:
    """What ``_read`` reads: the format line, the index's size, the index, the codes."""
    index: dict[bytes, tuple[int, int]] = {}
    parts: list[bytes] = []
    offset = 0
    for key, value in entries.items():
        code = bytes(value)
        index[key] = (offset, len(code))
        parts.append(code)
        offset += len(code)
    encoded = marshal.dumps(index)
    return b"".join([_FORMAT, len(encoded).to_bytes(8, "little"), encoded, *parts])


def save() -> None:
    """Write what this process compiled and did not find (at exit, once installed)."""
    path = cache_file()
    if not _added or path is None or sys.dont_write_bytecode:
        return
    entries = {**_read(), **_added}
    if len(entries) > _MAX_ENTRIES:
        entries = {k: v for k, v in entries.items() if k in _used}
    import tempfile  # only here: importing it costs a start-up more than the rest of the cache

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".generated-")  # owner-only
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_encode(entries))
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return  # a read-only install: compiled each time, as without the cache
    _added.clear()


def install() -> None:
    """Compile attrs', cattrs' and ``crmcore.converter``'s generated code through the cache
    in this process (the ``crm`` command line does this first). Only their module-level
    name ``compile`` is shadowed; nothing else changes."""
    global _installed
    if _installed:
        return
    if "attr._make" not in sys.modules:  # attrs' own classes too, made as attrs is imported
        sys.meta_path.insert(0, _AttrsFinder())
    import attr._make

    attr._make.compile = compile_cached  # type: ignore[attr-defined]
    # each patched before the next is imported: importing one defines classes
    import cattrs.gen
    import cattrs.gen.typeddicts

    cattrs.gen.compile = compile_cached  # type: ignore[attr-defined]
    cattrs.gen.typeddicts.compile = compile_cached  # type: ignore[attr-defined]
    from crmcore import converter

    converter.compile = compile_cached  # type: ignore[attr-defined]
    _installed = True
    atexit.register(save)


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Loads ``attr._make`` as Python does, its ``compile`` the cache's from the start."""

    def exec_module(self, module: ModuleType) -> None:
        module.compile = compile_cached  # type: ignore[attr-defined]
        super().exec_module(module)


class _AttrsFinder:
    """Finds ``attr._make`` once (then leaves ``sys.meta_path``), to load it with
    ``_SourceLoader``; a module not loaded from source is left to Python's own loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "attr._make":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _SourceLoader(spec.loader.name, spec.loader.path)
        return spec
