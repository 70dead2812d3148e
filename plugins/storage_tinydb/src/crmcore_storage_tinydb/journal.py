"""The journal: ``journal.log``, one checksummed line per committed write group, and this
process's position in it; and the write group that becomes one line.

A ``Journal`` knows the file it follows (by descriptor, so that a compaction elsewhere that
replaces the file by name is noticed), the generation and header of that file, how far it has
read (``end``: the byte after the last good line) and which collections each line wrote. The
commit record in the lock file (``StoreLock.write_mark``) is updated with every line it writes.
It knows nothing of collections: the store applies the records it hands out.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from crmcore.logs import get_logger
from crmcore_storage_tinydb import files
from crmcore_storage_tinydb.files import JOURNAL, RECOVERED, damaged, encode_json
from crmcore_storage_tinydb.locking import StoreLock

log = get_logger("storage_tinydb")

_NAME_LISTS: dict[frozenset[str], str] = {}  # collection names -> a journal line's JSON list


class WriteGroup:
    """The writes of one transaction (or one lone write): the journal operations, how to undo
    each, and the collections they touch. Committed as one journal line, or rolled back.
    ``thread`` is the thread that opened it (only it may add to it)."""

    __slots__ = ("names", "ops", "thread", "undo")

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.undo: list[Callable[[], None]] = []
        self.names: set[str] = set()
        self.thread = threading.get_ident()

    def record(self, name: str, op: str, undo: Callable[[], None]) -> None:
        """Add operation ``op`` (journal JSON) on collection ``name``, undone by ``undo``."""
        self.ops.append(op)
        self.undo.append(undo)
        self.names.add(name)

    def record_many(self, name: str, ops: list[str], undo: Callable[[], None]) -> None:
        """Add operations ``ops`` on collection ``name``, all undone by ``undo``."""
        self.ops.extend(ops)
        self.undo.append(undo)
        self.names.add(name)

    def rollback(self) -> None:
        """Undo every operation, last first."""
        for undo in reversed(self.undo):
            undo()

    def payload(self) -> str:
        """The journal line's payload: the collections written, a tab, the operations."""
        names = frozenset(self.names)
        listed = _NAME_LISTS.get(names)
        if listed is None:  # a store writes the same few sets of collections over and over
            listed = encode_json(sorted(names))
            if len(_NAME_LISTS) < 1024:
                _NAME_LISTS[names] = listed
        return listed + "\t[" + ",".join(self.ops) + "]"


class Journal:
    """The journal file of the store in ``folder`` and how far this process has read it."""

    def __init__(self, folder: Path, lock: StoreLock, durability: str) -> None:
        self.folder = folder
        self.path = folder / JOURNAL
        self.lock = lock
        self.durability = durability
        self.fd = -1
        self.ino = 0
        self.generation = 0
        self.start = 0  # the byte after the header: the first record
        self.end = 0  # the byte after the last good line read
        self.seen_size = 0  # the file's size at our last look
        self.count = 0  # good lines up to ``end`` (see files.Mark)
        self.has_manifest = False  # the header says the store keeps a manifest
        self.format = files.JOURNAL_FORMAT  # of the file we follow
        self.append_op = "a"  # how appends to logs are journalled (format 1: plain puts)
        self.last_op: dict[str, int] = {}  # collection -> offset of its last record
        self.first_op: dict[str, int] = {}  # ... and of its first

    # -- the file ------------------------------------------------------------------------------

    def create(self, generation: int, prev_generation: int, prev_end: int) -> None:
        """Start a new journal file (atomically replacing any current one) and record it as
        the last commit. Follow it with ``adopt``."""
        tmp = self.folder / f".tmp-{os.getpid()}-{JOURNAL}"
        header = files.header_line(generation, prev_generation, prev_end)
        fd = files.open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            files.write_all(fd, header)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        files.fsync_dir(self.folder)
        self.lock.write_mark(generation, len(header), 0)

    def open_current(self) -> tuple[int, files.Header]:
        """Open the file the name points to now, with its header."""
        fd = files.open_private(self.path, os.O_RDWR | os.O_APPEND)
        try:
            return fd, files.read_header(fd, self.path)
        except BaseException:
            os.close(fd)
            raise

    def adopt(self, fd: int | None = None, header: files.Header | None = None) -> None:
        """Follow the journal open on ``fd`` (default: the current file) from its start."""
        if fd is None or header is None:
            fd, header = self.open_current()
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd
        self.ino = os.fstat(fd).st_ino
        self.generation = header.generation
        self.format = header.format
        self.append_op = "a" if header.format >= 2 else "p"
        self.has_manifest = header.manifest
        self.start = self.end = header.end
        self.count = 0
        self.last_op = {}
        self.first_op = {}

    def moved(self, ino: int) -> bool:
        """Whether the name no longer points to the file with inode ``ino``."""
        try:
            return os.stat(self.path).st_ino != ino
        except FileNotFoundError:
            return True

    def size(self) -> int:
        """The size of the file we follow."""
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    # -- reading -------------------------------------------------------------------------------

    def records(self, start: int, stop: int) -> files.JournalReader:
        """The good records between two offsets of the file we follow."""
        return files.JournalReader(self.fd, start, stop)

    def read_new(self, *, strict: bool = True) -> Iterator[files.Record]:
        """The good lines after our position, each counted as read once the caller is done
        with it. An unfinished or bad last line is left alone: it is being written, or a crash
        tore it. ``strict``: a bad line followed by good ones raises ``DamageError``."""
        size = self.size()
        if size <= self.end:
            return
        reader = files.JournalReader(self.fd, self.end, size)
        for record in reader:
            yield record
            self.end = record.end
            self.count += 1
        if strict and reader.bad_in_middle:
            raise damaged(
                self.path,
                f"the line at byte {reader.bad} fails its checksum and later lines are intact",
                location=self.folder,
            )

    def noted(self, names: Iterable[str], start: int) -> None:
        """Remember that the record at ``start`` wrote the collections ``names``."""
        for name in names:
            self.last_op[name] = start
            self.first_op.setdefault(name, start)

    def complete_lines_after(self, offset: int, size: int) -> int:
        """How many newline-terminated lines the file holds after ``offset``: a torn write
        (never acknowledged) has no newline, so each of these is a lost acknowledged write."""
        count = 0
        pos = offset
        while pos < size:
            data = os.pread(self.fd, min(files.READ_CHUNK, size - pos), pos)
            if not data:
                break
            count += data.count(b"\n")
            pos += len(data)
        return count

    def copy_to(self, fd: int) -> None:
        """Write the file up to our position into ``fd``."""
        pos = 0
        while pos < self.end:
            chunk = os.pread(self.fd, min(files.READ_CHUNK, self.end - pos), pos)
            files.write_all(fd, chunk)
            pos += len(chunk)

    # -- writing -------------------------------------------------------------------------------

    def append(self, line: bytes) -> int:
        """Write one line after our position and record it as the last commit; returns where
        it starts. On failure nothing of it stays and ``OSError`` is raised."""
        start = self.end
        try:
            files.write_all(self.fd, line)
            if self.durability == "fsync":
                os.fdatasync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, start)
            raise
        self.end = start + len(line)
        self.count += 1
        self.lock.write_mark(self.generation, self.end, self.count)
        return start

    def cut_torn_tail(self) -> None:
        """Under the exclusive lock: set aside bytes after the last good line (a write that a
        crash interrupted, never acknowledged) so that new lines follow good ones. Raises
        ``DamageError`` if the commit record says those bytes were acknowledged."""
        if self.seen_size <= self.end:
            return  # the usual case: what the last look saw ends with a good line
        size = self.size()
        if size <= self.end:
            return
        mark = self.lock.mark()
        if (
            isinstance(mark, files.Mark)
            and mark.generation == self.generation
            and mark.count > self.count
        ):
            # Not a torn write: these lines were acknowledged, and are damaged.
            raise damaged(
                self.path,
                f"{mark.count - self.count} acknowledged write(s) after "
                f"byte {self.end} fail their checksum",
                location=self.folder,
            )
        torn = os.pread(self.fd, size - self.end, self.end)
        aside = self.folder / RECOVERED
        files.make_private_dir(aside)
        keep = aside / f"journal-{self.generation}-tail-at-{self.end}.bin"
        fd = files.open_private(keep, os.O_WRONLY | os.O_TRUNC)
        try:
            files.write_all(fd, torn)
        finally:
            os.close(fd)
        os.ftruncate(self.fd, self.end)
        if self.durability == "fsync":
            os.fsync(self.fd)
        log.warning("set aside an interrupted journal write", bytes=len(torn), kept=str(keep))
