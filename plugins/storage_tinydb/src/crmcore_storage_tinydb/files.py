"""The on-disk formats: the journal, the stock-TinyDB snapshots, and safe file handling.

Journal (``journal.log``): one line per committed write group (a transaction, or one write)::

    <crc32 as 8 hex digits> <JSON list of collection names>\\t<JSON list of operations>\\n

The first line is a header (``<crc> {"crmcore_tinydb_journal": 2, "generation": …}``). The
checksum covers everything between the space and the newline. Operations are ``["p", name, doc]``
(put), ``["a", name, doc]`` (an append to a log: a put of a new document, see
``TinyCollection.append``; journal format 2, so that format 1 readers refuse it instead of
skipping it), ``["d", name, id]`` (delete), ``["x", name, index]`` and ``["c", name]`` (create).

A line is written with one ``write()`` to a file opened with ``O_APPEND``, so a killed writer
leaves at most one torn line at the very end: it was never acknowledged and is set aside. A bad
line followed by good ones is damage.

Snapshot (``<collection>.json``): a file stock ``TinyDB(path)`` opens, one document per line::

    {"_default": {
    "1": {"id": "cus_…", …},
    "2": {…}
    },
    "_crmcore": {"1": {"collection": "customers", "generation": 3, "journal_offset": 0, …}}}

The ``_crmcore`` table records which journal writes the snapshot already holds, its declared
indexes, and a count and CRC-32 of the document lines, checked on every load. A log's
record also names its ``sequence`` field and holds its ``last`` document, so that appends need not
load the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

import attrs
import orjson

from crmcore.errors import StorageError
from crmcore.jsontext import compact_encoder
from crmcore.storage.base import IndexSpec

FORMAT = 1  # of snapshots
JOURNAL_FORMAT = 2  # format 1 had no "a" (append) operations
JOURNAL_FORMATS = (1, 2)  # read both; a format 1 journal gets no "a" operations
# A log's last document goes in the snapshot record only below this: one audit entry holds a
# whole transaction (a history import's batch is hundreds of writes), and without the record a
# process that only appends must load the whole log.
LAST_LIMIT = 4 * 1024 * 1024
JOURNAL = "journal.log"
LOCK = "store.lock"
BACKUPS = "backups.log"  # the backups made of this store, and their temporary folders
SUFFIX = ".json"
RECOVERED = "recovered"
REPAIR_HINT = (
    "run 'crm check --repair' to salvage what can be read (it keeps the damaged "
    "files in {where}) or restore a backup"
)
HEADER_KEY = "crmcore_tinydb_journal"
META_TABLE = "_crmcore"
_FIRST = '{"_default": {\n'
_SEPARATOR = "},\n"
_META_PREFIX = f'"{META_TABLE}": {{"1": '
_META_SUFFIX = "}}\n"

encode_json = compact_encoder()  # ASCII: what stock TinyDB writes, byte for byte
decode_json = json.JSONDecoder().decode
# set by JSONDecoder.__init__ (the C scanner); typeshed does not declare it
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
# Every digit as "0", so that one substring search finds a run of WIDE digits.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# orjson reads an integer beyond 64 bits as a float (silently). Such an integer has at least
# 20 digits; 19 (the width of the largest 64-bit ones) errs on the safe side.
WIDE = b"0" * 19


def decode_doc(text: str) -> Any:
    """Decode a document's compact JSON text as this store wrote it.

    orjson, two to three times faster than the standard library, unless the text may hold an
    integer orjson would turn into a float (a run of 19 digits or more anywhere, strings
    included: a cheap test that errs on the safe side) or is text orjson refuses that the
    standard library reads (a lone surrogate escape, a number beyond the float range, text
    after the document): those go through the standard library's scanner, as every document
    did before. Either way the result is the document ``json.loads`` gives."""
    if WIDE not in text.encode().translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return _scan_once(text, 0)[0]
    except StopIteration:
        raise ValueError(f"not JSON: {text[:40]!r}") from None


NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse.sshfs",
        "sshfs",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.davfs2",
        "fuse.glusterfs",
        "fuse.cephfs",
        "fuse.juicefs",
    }
)


class DamageError(StorageError):
    """A store file is damaged; the message names it and the command that recovers it."""


def damaged(path: Path | str, detail: str, *, location: Path | str | None = None) -> DamageError:
    """The error for a damaged file: names the file and the command that recovers it."""
    where = Path(location) / RECOVERED if location is not None else f"<store>/{RECOVERED}"
    return DamageError(f"{path} is damaged: {detail}; " + REPAIR_HINT.format(where=where))


@contextlib.contextmanager
def os_errors(what: str) -> Iterator[None]:
    """Turn an operating-system error into a ``StorageError`` saying what failed and where."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise StorageError(f"{what}: {exc.strerror or exc}{where}") from exc


# -- names ---------------------------------------------------------------------------------


def snapshot_file(collection: str) -> str:
    """The snapshot file name for a collection (unsafe characters percent-encoded)."""
    name = quote(collection, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]  # never a hidden file, never taken for a temporary one
    return name + SUFFIX


def collection_of(filename: str) -> str | None:
    """The collection a snapshot file belongs to, or None for other files."""
    if not filename.endswith(SUFFIX) or filename.startswith(".tmp"):
        return None
    return unquote(filename[: -len(SUFFIX)])


# -- safe files ----------------------------------------------------------------------------


def make_private_dir(path: Path) -> bool:
    """Create ``path`` (and parents) with mode 0700 whatever the umask; True if created."""
    if path.is_dir():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    os.chmod(path, 0o700)
    return True


def open_private(path: Path, flags: int) -> int:
    """``os.open`` creating the file 0600 whatever the umask."""
    fd = os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fsync_dir(path: Path) -> None:
    """Make a rename or creation in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_private(source: Path, target: Path) -> None:
    """Copy a file into a new private (0600) file and fsync it."""
    fd = open_private(target, os.O_WRONLY | os.O_TRUNC)
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                write_all(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(target: Path, text: str) -> None:
    """Write a new private (0600) text file."""
    fd = open_private(target, os.O_WRONLY | os.O_TRUNC)
    try:
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written == len(data):
        return  # the usual case, in one call
    view = memoryview(data)[written:]
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def atomic_file(path: Path, *, binary: bool = False) -> Iterator[Any]:
    """Write ``path`` through a private temporary file, fsync it, then rename it into place
    (text in ASCII, or bytes with ``binary``)."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", encoding=None if binary else "ascii", buffering=1 << 20
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (Linux ``/proc/mounts``), if known."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


# -- journal -------------------------------------------------------------------------------


def journal_line(payload: str) -> bytes:
    data = payload.encode("ascii")
    return b"%08x %b\n" % (zlib.crc32(data), data)


def header_line(generation: int, prev_generation: int, prev_end: int) -> bytes:
    return journal_line(
        encode_json(
            {
                HEADER_KEY: JOURNAL_FORMAT,
                "generation": generation,
                "prev_generation": prev_generation,
                "prev_end": prev_end,
                "manifest": 1,
            }
        )
    )


@attrs.frozen
class Header:
    generation: int
    prev_generation: int
    prev_end: int
    end: int  # byte offset of the first record
    format: int = JOURNAL_FORMAT
    manifest: bool = False  # the store keeps a manifest (written since this version)


def read_header(fd: int, path: Path) -> Header:
    head = os.pread(fd, 4096, 0)
    newline = head.find(b"\n")
    payload = check_line(head[:newline]) if newline > 0 else None
    try:
        data = decode_json(payload) if payload is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or HEADER_KEY not in data:
        raise damaged(path, "its first line is not a journal header", location=path.parent)
    if data[HEADER_KEY] not in JOURNAL_FORMATS:
        raise StorageError(
            f"{path} was written by a different version of "
            f"crmcore-storage-tinydb (journal format {data[HEADER_KEY]}, this "
            f"one reads formats {', '.join(map(str, JOURNAL_FORMATS))}); "
            "refusing to touch it"
        )
    return Header(
        int(data["generation"]),
        int(data["prev_generation"]),
        int(data["prev_end"]),
        newline + 1,
        int(data[HEADER_KEY]),
        bool(data.get("manifest")),
    )


def check_line(line: bytes) -> str | None:
    """The payload of a journal line if its checksum holds, else None."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    data = line[9:]
    if zlib.crc32(data) != crc:
        return None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return None


@attrs.frozen
class Record:
    start: int
    end: int
    collections: list[str]
    payload: str  # "<collections>\t<ops>"

    def ops(self) -> list[list[Any]]:
        return decode_json(self.payload[self.payload.index("\t") + 1 :])


@attrs.frozen
class Scan:
    records: list[Record]
    end: int  # offset after the last good record
    bad: int | None  # offset of the first bad complete line, if any
    bad_in_middle: bool  # a good record follows the bad line: damage, not a torn tail


def scan(data: bytes, base: int) -> Scan:
    """Split journal bytes read from offset ``base`` into records."""
    records: list[Record] = []
    pos = 0
    end = base
    bad: int | None = None
    middle = False
    size = len(data)
    while pos < size:
        newline = data.find(b"\n", pos)
        if newline < 0:
            break  # an unfinished line: being written now, or torn by a crash
        payload = check_line(data[pos:newline])
        record = None
        if payload is not None:
            tab = payload.find("\t")
            try:
                names = decode_json(payload[:tab]) if tab > 0 else None
            except ValueError:
                names = None
            if isinstance(names, list):
                record = Record(base + pos, base + newline + 1, names, payload)
        if record is None:
            if bad is None:
                bad = base + pos
        elif bad is not None:
            middle = True
            break
        else:
            records.append(record)
            end = record.end
        pos = newline + 1
    return Scan(records, end, bad, middle)


READ_CHUNK = 8 * 1024 * 1024


class JournalReader:
    """Read journal records between two offsets a bounded chunk at a time (a large journal
    never sits in memory whole). After iterating, ``end`` is the offset after the last good
    record, ``bad`` the offset of a bad complete line (if any) and ``bad_in_middle`` whether a
    good line follows it (damage) rather than nothing (a torn tail)."""

    def __init__(self, fd: int, start: int, stop: int) -> None:
        self.fd = fd
        self.start = start
        self.stop = stop
        self.end = start
        self.bad: int | None = None
        self.bad_in_middle = False

    def __iter__(self) -> Iterator[Record]:
        pos = self.start
        want = READ_CHUNK
        while pos < self.stop:
            size = min(want, self.stop - pos)
            data = os.pread(self.fd, size, pos)
            if not data:
                return
            result = scan(data, pos)
            yield from result.records
            self.end = result.end
            if result.bad is not None:
                self.bad = result.bad
                self.bad_in_middle = result.bad_in_middle or self._good_line_after(result.bad)
                return
            if result.end == pos:  # no complete line in the window
                if pos + size >= self.stop:
                    return  # an unfinished last line
                want *= 2  # one line longer than the window: look further
                continue
            pos = result.end
            want = READ_CHUNK

    def _good_line_after(self, offset: int) -> bool:
        """Whether any good record follows the bad line starting at ``offset``."""
        pos = self._line_end(offset)
        while pos is not None and pos < self.stop:
            data = os.pread(self.fd, min(READ_CHUNK, self.stop - pos), pos)
            result = scan(data, pos)
            if result.records:
                return True
            if result.bad is None:
                if pos + len(data) >= self.stop:
                    return False  # only an unfinished line remains
                pos = self._line_end(pos)  # a line longer than the window: step over it
            else:
                pos = self._line_end(result.bad)
        return False

    def _line_end(self, offset: int) -> int | None:
        pos = offset
        while pos < self.stop:
            data = os.pread(self.fd, min(READ_CHUNK, self.stop - pos), pos)
            newline = data.find(b"\n")
            if newline >= 0:
                return pos + newline + 1
            pos += len(data)
        return None


# -- snapshots -----------------------------------------------------------------------------


def spec_to_json(spec: IndexSpec) -> dict[str, Any]:
    return {"fields": [list(f) for f in spec.fields], "unique": spec.unique, "sparse": spec.sparse}


def spec_from_json(data: Any) -> IndexSpec:
    return IndexSpec(
        tuple((str(f), int(d)) for f, d in data["fields"]),
        unique=bool(data.get("unique", False)),
        sparse=bool(data.get("sparse", False)),
    )


@attrs.frozen
class SnapshotMeta:
    collection: str
    generation: int
    journal_offset: int
    count: int
    crc32: int
    indexes: tuple[IndexSpec, ...]
    size: int = 0
    token: str = ""  # ties the snapshot to its index cache file
    sequence: str | None = None  # a log's sequence field (see TinyCollection.append) ...
    last: str | None = None  # ... and its last document, as compact JSON (None: empty log)


def write_snapshot(path: Path, meta: dict[str, Any], docs: Iterable[str]) -> SnapshotMeta:
    """Write a snapshot atomically; ``docs`` are compact JSON documents, in id order but for
    a log's appended ones. ``meta`` may carry a log's ``sequence`` field and ``last`` document
    (compact JSON, at most ``LAST_LIMIT`` characters, or the log is recorded without them).

    The recorded CRC-32 covers the document lines exactly as written."""
    meta = dict(meta)
    last = meta.pop("last", None)
    if not meta.get("sequence") or (last is not None and len(last) > LAST_LIMIT):
        meta.pop("sequence", None)
        last = None
    else:
        meta["last"] = None if last is None else decode_json(last)
    crc = 0
    count = 0
    with atomic_file(path) as handle:
        handle.write(_FIRST)
        pending = None
        for text in docs:
            if pending is not None:
                line = pending + ",\n"
                crc = zlib.crc32(line.encode("ascii"), crc)
                handle.write(line)
            count += 1
            pending = f'"{count}": {text}'
        if pending is not None:
            line = pending + "\n"
            crc = zlib.crc32(line.encode("ascii"), crc)
            handle.write(line)
        handle.write(_SEPARATOR)
        full = {
            **meta,
            "format": FORMAT,
            "count": count,
            "crc32": crc,
            "token": secrets.token_hex(8),
        }
        handle.write(_META_PREFIX + encode_json(full) + _META_SUFFIX)
    return SnapshotMeta(
        full["collection"],
        full["generation"],
        full["journal_offset"],
        count,
        crc,
        tuple(spec_from_json(s) for s in full.get("indexes", ())),
        path.stat().st_size,
        full["token"],
        full.get("sequence"),
        last,
    )


def read_meta(path: Path, handle: BinaryIO | None = None) -> SnapshotMeta:
    """The ``_crmcore`` record at the end of a snapshot, read without loading the documents
    (from ``handle``, the snapshot opened for reading, when given)."""
    with contextlib.nullcontext(handle) if handle is not None else open(path, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        window = 65536
        while True:  # back from the end until the record's whole line is read
            start = max(0, size - window)
            source.seek(start)
            tail = source.read().rstrip(b"\n")
            if start == 0 or b"\n" in tail or window > LAST_LIMIT * 2:
                break
            window *= 4
    last = tail.rsplit(b"\n", 1)[-1].decode("ascii", "replace") + "\n" if tail else ""
    if not (last.startswith(_META_PREFIX) and last.endswith(_META_SUFFIX)):
        raise damaged(
            path,
            "its last line is not the _crmcore record (the file is truncated "
            "or was rewritten by another program)",
            location=path.parent,
        )
    try:
        data = decode_json(last[len(_META_PREFIX) : -len(_META_SUFFIX)])
        if data.get("format") != FORMAT:
            raise StorageError(
                f"{path} was written by a different version of "
                f"crmcore-storage-tinydb (format {data.get('format')}); "
                "refusing to touch it"
            )
        sequence, end = data.get("sequence"), data.get("last")
        if not isinstance(sequence, str) or not (end is None or isinstance(end, dict)):
            sequence = end = None  # not a log, or not one this version can follow
        return SnapshotMeta(
            str(data["collection"]),
            int(data["generation"]),
            int(data["journal_offset"]),
            int(data["count"]),
            int(data["crc32"]),
            tuple(spec_from_json(s) for s in data["indexes"]),
            size,
            str(data.get("token", "")),
            sequence,
            None if end is None else encode_json(end),
        )
    except StorageError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise damaged(
            path, f"its _crmcore record does not read ({exc})", location=path.parent
        ) from None


def read_documents(path: Path, meta: SnapshotMeta, handle: BinaryIO | None = None) -> Iterator[str]:
    """Stream the documents of a snapshot as compact JSON, verifying layout, count and CRC.

    Reads large blocks and splits them in C (this is the bulk of opening a big store). Raises
    ``StorageError`` (naming the file and the repair command) at the first problem. Pass the
    ``handle`` that ``meta`` was read from when another process may replace the file
    meanwhile (a compaction): the documents then come from the same file as ``meta``.
    """
    crc = 0
    count = 0
    first = _FIRST.encode("ascii")
    separator = _SEPARATOR.encode("ascii")
    with contextlib.nullcontext(handle) if handle is not None else open(path, "rb") as handle:
        handle.seek(0)
        if handle.readline() != first:
            raise damaged(path, "line 1 is not the start of a TinyDB table", location=path.parent)
        carry = b""
        while True:
            chunk = handle.read(READ_CHUNK)
            data = carry + chunk if carry else chunk
            if data.startswith(separator):
                end = 0
            else:
                found = data.find(b"\n" + separator)
                end = found + 1 if found >= 0 else -1
            if end >= 0:
                region, carry = data[:end], b""
            else:
                if not chunk:
                    raise damaged(
                        path,
                        "it ends before the end of its document table (truncated)",
                        location=path.parent,
                    )
                cut = data.rfind(b"\n") + 1
                region, carry = data[:cut], data[cut:]
            crc = zlib.crc32(region, crc)
            try:
                text = region.decode("ascii")
            except UnicodeDecodeError:
                raise damaged(
                    path, "it holds bytes that are not ASCII JSON", location=path.parent
                ) from None
            lines = text.split("\n")
            lines.pop()  # the region ends with a newline
            for line in lines:
                colon = line.find('": {', 0, 24)
                if line[:1] != '"' or colon < 0:
                    raise damaged(
                        path, f"line {count + 2} is not a document line", location=path.parent
                    )
                count += 1
                yield line[colon + 3 : -1] if line[-1] == "," else line[colon + 3 :]
            if end >= 0:
                break
    if count != meta.count or crc != meta.crc32:
        raise damaged(
            path,
            f"its documents do not match their checksum ({count} read, {meta.count} recorded)",
            location=path.parent,
        )


def _doc_text(line: str) -> str | None:
    if not line.startswith('"') or not line.endswith("\n"):
        return None
    colon = line.find('": {')
    if colon < 0:
        return None
    end = -2 if line.endswith(",\n") else -1
    return line[colon + 3 : end]


def salvage_documents(path: Path) -> tuple[list[str], int]:
    """Every document line of a damaged snapshot that still parses, and how many did not."""
    good: list[str] = []
    lost = 0
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return good, 0
    try:  # a whole file that still parses (perhaps rewritten by stock TinyDB)
        table = json.loads(raw).get("_default")
        if isinstance(table, dict):
            for doc in table.values():
                if isinstance(doc, dict) and isinstance(doc.get("id"), str):
                    good.append(encode_json(doc))
                else:
                    lost += 1
            return good, lost
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    for raw_line in raw.split(b"\n"):
        try:
            line = raw_line.decode("ascii") + "\n"
        except UnicodeDecodeError:
            lost += 1
            continue
        if line in (_FIRST, _SEPARATOR, "\n") or line.startswith(_META_PREFIX):
            continue
        text = _doc_text(line)
        doc = None
        if text is not None:
            try:
                doc = decode_json(text)
            except ValueError:
                doc = None
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            good.append(encode_json(doc))
        else:
            lost += 1
    return good, lost


# -- manifest ------------------------------------------------------------------------------

MANIFEST = "store.manifest"
MANIFEST_KEY = "crmcore_tinydb_manifest"


def manifest_entry(meta: SnapshotMeta) -> dict[str, Any]:
    """What the manifest records of one collection file."""
    return {
        "count": meta.count,
        "crc32": meta.crc32,
        "token": meta.token,
        "generation": meta.generation,
        "journal_offset": meta.journal_offset,
    }


def write_manifest(folder: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Replace the manifest: every collection file with its count, checksum and token, in
    one checksummed line (written through a temporary file, fsynced, renamed)."""
    payload = encode_json({MANIFEST_KEY: 1, "collections": entries})
    with atomic_file(folder / MANIFEST, binary=True) as handle:
        handle.write(journal_line(payload))


def read_manifest(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The manifest's entries, or None if there is none; ``DamageError`` if it is damaged."""
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    payload = check_line(data[:-1]) if data.endswith(b"\n") and data.count(b"\n") == 1 else None
    try:
        parsed = decode_json(payload) if payload is not None else None
        entries = parsed["collections"] if isinstance(parsed, dict) else None
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("count"), int) for e in entries.values()
    ):
        raise damaged(
            path,
            "it fails its checksum (changed or truncated), so the store "
            "cannot tell whether a collection file is missing",
            location=folder,
        )
    return entries


# -- the commit mark -------------------------------------------------------------------------


@attrs.frozen
class Mark:
    """What the last committed write left in ``store.lock``: the journal's generation, the
    offset after its last acknowledged line, and how many lines it holds."""

    generation: int
    end: int
    count: int


def mark_bytes(generation: int, end: int, count: int) -> bytes:
    data = b"%d %d %d" % (generation, end, count)
    return b"%08x %b\n" % (zlib.crc32(data), data)


def read_mark(fd: int) -> Mark | str | None:
    """The mark in the lock file open on ``fd``: a ``Mark``, None when there is none (a new
    lock file, or one from an older version), or a description of why it does not read."""
    data = os.pread(fd, 128, 0)
    if not data:
        return None
    newline = data.find(b"\n")
    payload = check_line(data[:newline]) if newline > 0 else None
    if payload is None:
        return "its commit record fails its checksum (changed or truncated)"
    try:
        generation, end, count = (int(x) for x in payload.split())
    except ValueError:
        return "its commit record does not read"
    return Mark(generation, end, count)


def now_stamp() -> str:
    """A file-name-safe local time stamp for folders of set-aside files."""
    return time.strftime("%Y%m%dT%H%M%S")
