"""The embedded store: stock-TinyDB snapshot files, one checksummed journal, in-memory indexes.

Every write appends one line to ``journal.log`` under the store-wide lock (``os.write``, plus
``fdatasync`` in ``fsync`` mode) before it is acknowledged, so a single-record write is O(1) on
disk. Each process keeps the collections it has touched in memory (documents as compact JSON
text, plus sorted indexes) and, before every operation, looks at the journal: if it grew it
reads only the new lines; if it was replaced (another process compacted) it follows. Compaction
folds the journal into the per-collection files, which stock ``TinyDB(path)`` opens.

The parts: ``journal.Journal`` (the journal file and our position in it) and
``journal.WriteGroup`` (the writes of one transaction), ``collection.TinyCollection`` (a
collection's operations over its loaded ``table.Table``), ``recovery`` (``crm check
--repair``). This module holds the store: the lock, the collection files and their manifest,
following the journal, loading, committing, compaction, check and backup.

See ``docs/storage.md`` for the design, its guarantees and its limits.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from crmcore.errors import (
    StorageError,
    ValidationError,
)
from crmcore.logs import get_logger
from crmcore.storage.base import (
    Capabilities,
    Collection,
    CollectionSpec,
    Store,
)
from crmcore_storage_tinydb import files, indexfile, recovery
from crmcore_storage_tinydb.collection import TinyCollection, last_entry
from crmcore_storage_tinydb.files import (
    JOURNAL,
    LOCK,
    RECOVERED,
    SnapshotMeta,
    damaged,
    decode_doc,
    encode_json,
    now_stamp,
)
from crmcore_storage_tinydb.journal import Journal, WriteGroup
from crmcore_storage_tinydb.locking import StoreLock
from crmcore_storage_tinydb.options import TinyStoreOptions
from crmcore_storage_tinydb.table import Table

log = get_logger("storage_tinydb")

AUTO_COMPACT_MIN = 32 * 1024 * 1024  # never compact on the fly below this journal size
AUTO_COMPACT_RATIO = 0.5  # ... nor while it is under half of what compaction would rewrite
CLOSE_RATIO = 0.25  # a close folds everything, whatever the budget, past this journal share
MB = 1024 * 1024

T = TypeVar("T")
_open_stores: weakref.WeakSet[TinyStore] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_open_stores):
        store.forked()


os.register_at_fork(after_in_child=_after_fork)


class Reading:
    """The context manager of a read (a class: this is on every read's path)."""

    __slots__ = ("store",)

    def __init__(self, store: TinyStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store.begin_read()

    def __exit__(self, *_exc: object) -> None:
        self.store.end_read()


class Writing:
    """The context manager of a write group (a class: this is on every write's path)."""

    __slots__ = ("joined", "store")

    def __init__(self, store: TinyStore) -> None:
        self.store = store
        self.joined = False

    def __enter__(self) -> None:
        self.joined = self.store.begin_write()

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> None:
        self.store.end_write(joined=self.joined, failed=kind is not None)


class TinyStore(Store):
    """The embedded default store in a folder (see the module docstring and docs/storage.md)."""

    capabilities = Capabilities(persistent=True, transactions=True, multi_process=True)

    def __init__(
        self, location: str | os.PathLike[str], options: TinyStoreOptions | None = None
    ) -> None:
        self.path = Path(location).expanduser()
        self.options = options or TinyStoreOptions()
        self._mutex = threading.RLock()
        self._handles: dict[str, TinyCollection] = {}
        self._names: set[str] = set()  # collections on disk (files and journal)
        self._created: set[str] = set()  # opened here, journalled with the next write
        self._meta: dict[str, SnapshotMeta | StorageError] = {}
        self._group: WriteGroup | None = None
        self._damage: StorageError | None = None
        self._closed = False
        self._forked = False
        self._manifest: dict[str, dict[str, Any]] | None = None
        self._manifest_damage: StorageError | None = None
        self.check_notes: list[str] = []  # what the last check() found worth saying
        self._refuse_network_filesystem()
        if self.path.exists() and not self.path.is_dir():
            raise StorageError(
                f"{self.path} is not a folder; storage.location must name the "
                "folder that holds the store"
            )
        with files.os_errors(f"cannot open the store at {self.path}"):
            created = files.make_private_dir(self.path)
            if not created and ((self.path / JOURNAL).exists() or not any(self.path.iterdir())):
                os.chmod(self.path, 0o700)
            self._lock = StoreLock(self.path / LOCK, self.options.lock_timeout)
            #: The journal this store follows (read by its collections and tests).
            self.journal = Journal(self.path, self._lock, self.options.durability)
            try:
                self._open_journal()
            except BaseException:
                self._lock.close()
                self.journal.close()
                raise
        _open_stores.add(self)
        self._clean_partial_backups()

    # -- opening -------------------------------------------------------------------------------

    def _refuse_network_filesystem(self) -> None:
        probe = self.path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        kind = files.filesystem_type(probe)
        if kind in files.NETWORK_FILESYSTEMS and not self.options.allow_network_filesystem:
            raise StorageError(
                f"{self.path} is on a network file system ({kind}), where file locks cannot be "
                "trusted: two processes could corrupt the store. Keep the store on a local "
                "disk, or set storage.options.allow_network_filesystem = true if only one "
                "process on one machine will ever use it"
            )

    def _open_journal(self) -> None:
        """Follow the journal (no lock: opening never waits for another process's write)."""
        journal = self.journal
        if not journal.path.exists():
            self._lock.acquire(exclusive=True)
            try:
                if not journal.path.exists():
                    self._read_metas()
                    mark = self._lock.mark()
                    written = mark.count if isinstance(mark, files.Mark) else 0
                    if self._meta or self._manifest or written or self._manifest_damage is not None:
                        lost = (
                            f"; {written} acknowledged write(s) in it are lost" if written else ""
                        )
                        self._damage = damaged(
                            journal.path,
                            f"it is missing while the store holds collection files{lost}",
                            location=self.path,
                        )
                        return
                    self._write_manifest({})  # first: see _open_journal's test above
                    journal.create(1, 0, 0)
            finally:
                self._lock.release()
        self._read_metas()
        try:
            self._adopt_journal()
            self._check_mark()
        except files.DamageError as exc:
            self._damage = exc  # opened anyway, so that 'crm check --repair' can run
            # Every use raises it, naming the file and the remedy: no second copy on stderr.
            log.info("store damaged", location=str(self.path), error=str(exc))

    def _check_mark(self) -> None:
        """Raise ``DamageError`` if the journal lacks writes the lock file's commit record says
        were acknowledged (a cut, or damaged last lines). Call after reading the journal."""
        journal = self.journal
        mark = self._lock.mark()
        if not isinstance(mark, files.Mark):
            return
        if mark.generation != journal.generation:
            if mark.generation > journal.generation and not journal.moved(journal.ino):
                raise damaged(
                    journal.path,
                    f"it is generation {journal.generation}, older "
                    f"than the last write recorded in {LOCK} (generation "
                    f"{mark.generation}): it was replaced by an old copy, and "
                    f"{mark.count} acknowledged write(s) are missing",
                    location=self.path,
                )
            return  # a compaction since we looked: the newer journal is checked when followed
        for record in journal.read_new(strict=False):  # stopping quietly at a bad line
            self._apply(record)
        if mark.count > journal.count:
            lost = mark.count - journal.count
            raise damaged(
                journal.path,
                f"{lost} acknowledged write(s) after byte "
                f"{journal.end} are lost (the journal was cut or its last lines are "
                f"damaged; {mark.count} were committed, {journal.count} read)",
                location=self.path,
            )

    def _adopt_journal(self, fd: int | None = None, header: files.Header | None = None) -> None:
        """Follow the journal open on ``fd`` (default: open the current file) and read all of
        it (loaded tables follow it)."""
        self.journal.adopt(fd, header)
        for handle in self._handles.values():
            handle.forget_tail()  # log tails count appends since the snapshot: read them again
        self._read_tail()

    def _read_metas(self) -> None:
        metas: dict[str, SnapshotMeta | StorageError] = {}
        for entry in os.scandir(self.path):
            name = files.collection_of(entry.name)
            if name is None or not entry.is_file():
                continue
            try:
                metas[name] = files.read_meta(Path(entry.path))
            except StorageError as exc:
                metas[name] = exc
            self._names.add(name)
        try:
            self._manifest = files.read_manifest(self.path)
            self._manifest_damage = None
        except files.DamageError as exc:
            self._manifest, self._manifest_damage = None, exc
        for name, recorded in (self._manifest or {}).items():
            self._names.add(name)
            problem = self._against_manifest(metas.get(name), recorded)
            if problem is not None:
                metas[name] = damaged(
                    self.path / files.snapshot_file(name), problem, location=self.path
                )
        self._meta = metas

    @staticmethod
    def _against_manifest(
        meta: SnapshotMeta | StorageError | None, entry: dict[str, Any]
    ) -> str | None:
        """Why a collection file does not match its manifest entry, or None."""
        count = entry.get("count", 0)
        if meta is None:
            return (
                f"it is missing; the store's manifest records {count} document(s) in it, "
                "which are lost unless a backup holds them"
            )
        if not isinstance(meta, SnapshotMeta) or meta.token == entry.get("token"):
            return None
        recorded = (entry.get("generation", 0), entry.get("journal_offset", 0))
        if (meta.generation, meta.journal_offset) > recorded:
            return None  # written after the manifest (a crash between the two renames)
        return (
            f"it is not the file the store's manifest records (an older or other copy: "
            f"{meta.count} document(s) in it, {count} recorded); "
            f"{max(count - meta.count, 0)} document(s) may be missing"
        )

    def _write_manifest(self, entries: dict[str, dict[str, Any]] | None = None) -> None:
        """Record every collection file (after compaction or repair wrote some). A damaged
        manifest is left for 'crm check' to report and '--repair' to rebuild."""
        if entries is None:
            if self._manifest_damage is not None or (
                self.journal.has_manifest and self._manifest is None
            ):
                return
            entries = dict(self._manifest or {})
            for name, meta in self._meta.items():
                if isinstance(meta, SnapshotMeta):
                    entries[name] = files.manifest_entry(meta)
        files.write_manifest(self.path, entries)
        self._manifest, self._manifest_damage = entries, None

    # -- following the journal -----------------------------------------------------------------

    def _catch_up(self) -> None:
        """Apply what other processes committed since we last looked."""
        journal = self.journal
        if journal.fd >= 0:
            # Through our own descriptor (a third of the cost of a stat by name): a file
            # still linked is still the journal, since compactions and repairs elsewhere
            # replace it (``os.replace``, which unlinks this one); the same size means nobody
            # appended. Network file systems, where an unlinked open file may keep a link,
            # are refused for sharing (docs/storage.md §4).
            st = os.fstat(journal.fd)
            if st.st_nlink and st.st_size == journal.end:
                journal.seen_size = st.st_size
                return
        try:
            st = os.stat(journal.path)
        except FileNotFoundError:
            self._damage = damaged(journal.path, "it has disappeared", location=self.path)
            raise self._damage from None
        journal.seen_size = st.st_size
        if st.st_ino == journal.ino:
            if st.st_size == journal.end:
                return
            if st.st_size < journal.end:
                self._reload()
            else:
                self._read_tail()
            return
        self._read_tail()  # the rest of the old journal, through our open fd
        fd, header = journal.open_current()
        if header.prev_generation == journal.generation and header.prev_end == journal.end:
            # A compaction folded exactly what we hold: follow this very file (not whatever
            # the name points to by now, which may be a later generation).
            self._adopt_journal(fd, header)
            self._read_metas()
        else:
            os.close(fd)
            self._reload()

    def _read_tail(self) -> None:
        """Apply the good lines after our position. An unfinished or bad last line is left
        alone: it is being written, or a crash tore it (then the next writer sets it aside)."""
        try:
            for record in self.journal.read_new():
                self._apply(record)
        except files.DamageError as exc:  # a bad line with good ones after it
            self._damage = exc
            raise

    def _apply(self, record: files.Record) -> None:
        """Note what a journal record wrote, and replay it on the collections that follow the
        journal (loaded ones, and logs' tails)."""
        self.journal.noted(record.collections, record.start)
        self._names.update(record.collections)
        following = [
            handle
            for name in record.collections
            if (handle := self._handles.get(name)) is not None and handle.following
        ]
        if following:
            ops = record.ops()
            for handle in following:
                handle.replay(ops)

    def _reload(self) -> None:
        """Start over from the files (after a repair, or more than one compaction since we
        last looked): forget the loaded collections, which load again on their next use."""
        log.info("store changed under us; reloading", location=str(self.path))
        for handle in self._handles.values():
            handle.forget()
        self._adopt_journal()
        self._read_metas()

    def _cut_torn_tail(self) -> None:
        try:
            self.journal.cut_torn_tail()
        except files.DamageError as exc:  # acknowledged lines that fail their checksum
            self._damage = exc
            raise

    # -- loading a collection ------------------------------------------------------------------

    def load_table(self, name: str) -> Table:
        """Collection ``name`` read from the files: its snapshot, then its writes in the
        journal. Call with the store held (``reading``, ``transaction`` or ``holding``).

        Without a lock, so that readers never wait for a writer's transaction: a compaction
        that replaces the journal meanwhile is noticed (its inode changes) and the load is
        done again. A snapshot newer than what we read of the journal is harmless: replaying
        journal writes it already holds changes nothing (writes carry whole documents).
        """
        if self._group is not None or self._lock.mode:
            return self._load_locked(name)
        journal = self.journal
        for _attempt in range(3):
            self._catch_up()
            ino = journal.ino
            try:
                table = self._load_locked(name)
            except files.DamageError:
                if journal.moved(ino):
                    continue
                raise
            if not journal.moved(ino):
                return table
        self._lock.acquire(exclusive=False)  # compacted under our feet again and again
        try:
            self._catch_up()
            return self._load_locked(name)
        finally:
            self._lock.release()

    def _load_locked(self, name: str) -> Table:
        """Load collection ``name`` at our journal position (see ``load_table``)."""
        journal = self.journal
        path = self.path / files.snapshot_file(name)
        table = Table(self.options.compress_from)
        start = journal.start
        missing = self._meta.get(name)
        if isinstance(missing, files.DamageError) and not path.exists():
            raise missing  # the manifest records a file that is gone
        with files.os_errors(f"cannot read {path}"):
            if path.exists():
                # One open file for the record and the documents: a compaction in another
                # process may put a new snapshot in its place while we read.
                with open(path, "rb") as snapshot:
                    meta = files.read_meta(path, snapshot)
                    self._meta[name] = meta
                    if meta.collection != name:
                        raise damaged(
                            path,
                            f"it holds collection {meta.collection!r}, not {name!r}",
                            location=self.path,
                        )
                    if meta.generation > journal.generation:
                        raise damaged(
                            path,
                            f"it is newer (generation {meta.generation}) "
                            f"than the journal (generation {journal.generation})",
                            location=self.path,
                        )
                    if meta.generation == journal.generation:
                        start = max(start, meta.journal_offset)
                    table.fill(path, meta, snapshot)
        first = journal.first_op.get(name)
        start = journal.end if first is None else max(start, first)
        if start < journal.end:
            table.defer()  # the indexes change once, chunk by chunk, at the end
            try:
                for record in journal.records(start, journal.end):
                    if name in record.collections:
                        for op in record.ops():
                            if op[1] == name:
                                table.replay(op)
            finally:
                table.merge()
        return table

    def snapshot_meta(self, name: str) -> SnapshotMeta | StorageError | None:
        """What the collection file of ``name`` says of itself (or why it cannot be read);
        None if there is no file."""
        return self._meta.get(name)

    # -- reading and writing -------------------------------------------------------------------

    @property
    def damage(self) -> StorageError | None:
        """Why the store cannot be used until a repair, if it cannot."""
        return self._damage

    @property
    def group(self) -> WriteGroup | None:
        """The write group open now (a transaction, or a lone write), if any."""
        return self._group

    def forked(self) -> None:
        """Called in a child process after ``fork``: the store refuses every use there."""
        self._forked = True

    def _usable(self, *, allow_damage: bool = False) -> None:
        if self._closed:
            raise StorageError(f"the store at {self.path} is closed")
        if self._forked:
            raise StorageError(
                "this store was opened before the process forked; open it again "
                "in the child process"
            )
        if self._damage is not None and not allow_damage:
            raise self._damage

    @contextlib.contextmanager
    def holding(self, *, allow_damage: bool = False) -> Iterator[None]:
        """Hold the store (its threads' mutex), checking that it may be used, without
        catching up with the journal."""
        with self._mutex:
            self._usable(allow_damage=allow_damage)
            yield

    def reading(self) -> Reading:
        """Hold the store for a read: up to date with every committed write, no lock."""
        return Reading(self)

    def begin_read(self) -> None:
        """Enter a read (see ``reading``); pair with ``end_read``."""
        self._mutex.acquire()
        try:
            self._usable()
            if self._group is None:
                self._catch_up()
        except BaseException:
            self._mutex.release()
            raise

    def end_read(self) -> None:
        self._mutex.release()

    def begin_write(self) -> bool:
        """Enter a write group (see ``transaction``): join the one this thread holds (True),
        or open one under the exclusive lock (False). Pair with ``end_write``."""
        self._mutex.acquire()
        try:
            self._usable()
            if self._group is not None:
                return True  # inside this thread's transaction: just add to it
            self._open_group()
        except BaseException:
            self._mutex.release()
            raise
        return False

    def end_write(self, *, joined: bool, failed: bool) -> None:
        """Leave a write group: a group opened by ``begin_write`` is committed, or rolled
        back if ``failed``."""
        try:
            if not joined:
                self._close_group(failed=failed)
        finally:
            self._mutex.release()

    def _open_group(self) -> None:
        self._lock.acquire(exclusive=True)
        try:
            self._catch_up()
            self._cut_torn_tail()
        except BaseException:
            self._lock.release()
            raise
        self._group = WriteGroup()

    def _close_group(self, failed: bool) -> None:
        group = self._group
        assert group is not None
        self._group = None
        try:
            if failed:
                group.rollback()
                return
            self._commit(group)
            journal = self.journal
            if journal.end - journal.start > AUTO_COMPACT_MIN and self._journal_is_large():
                self._compact_quietly()
        finally:
            self._lock.release()

    def _commit(self, group: WriteGroup) -> None:
        """Append the group as one journal line: the moment it is committed."""
        created = sorted(self._created - self._names) if self._created else ()
        if not group.ops and not created:
            return
        for name in created:
            group.ops.append(f'["c",{encode_json(name)}]')
            group.names.add(name)
        line = files.journal_line(group.payload())
        try:
            start = self.journal.append(line)
        except OSError as exc:
            group.rollback()
            raise StorageError(
                f"could not write {self.journal.path}: {exc.strerror}; "
                "nothing of this write was kept"
            ) from None
        self._created.clear()
        self.journal.noted(group.names, start)
        self._names.update(group.names)

    def _journal_is_large(self) -> bool:
        """Worth compacting: the journal outgrew half of what compaction would rewrite."""
        rewrite = sum(self._estimate(name) for name in self._pending())
        return self.journal.end - self.journal.start > AUTO_COMPACT_RATIO * rewrite

    # -- compaction ----------------------------------------------------------------------------

    def _pending(self) -> list[str]:
        """Collections with journal writes their snapshot does not hold yet."""
        out = []
        for name, start in self.journal.last_op.items():
            meta = self._meta.get(name)
            if (
                not isinstance(meta, SnapshotMeta)
                or meta.generation != self.journal.generation
                or start >= meta.journal_offset
            ):
                out.append(name)
        return sorted(out)

    def _estimate(self, name: str) -> int:
        handle = self._handles.get(name)
        if handle is not None and handle.loaded is not None:
            return handle.loaded.size
        meta = self._meta.get(name)
        return meta.size if isinstance(meta, SnapshotMeta) else 0

    def _compact_locked(self, *, limit: int | None) -> bool:
        """Fold journal writes into snapshots (all, or those fitting in ``limit`` bytes) and,
        once every collection is folded, start a new journal. True if it did."""
        self._read_metas()
        pending = self._pending()
        chosen = pending
        if limit is not None:
            chosen, budget = [], limit
            for name in sorted(pending, key=self._estimate):
                if self._estimate(name) > budget:
                    break
                budget -= self._estimate(name)
                chosen.append(name)
        for stale in self.path.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                stale.unlink()
        for name in chosen:
            handle = self._handles.get(name) or self._handle(name)
            path = self.path / files.snapshot_file(name)
            field = handle.log_field or self._log_field_of(name)  # a log's sequence field
            if handle.loaded is None and field is not None and self._fold_log(handle, path, field):
                continue
            table = handle.table()
            meta = {
                "collection": name,
                "generation": self.journal.generation,
                "journal_offset": self.journal.end,
                "indexes": [files.spec_to_json(i.spec) for i in table.indexes.values()],
            }
            if field is not None:
                top = last_entry(table, field)
                meta["sequence"] = field
                meta["last"] = None if top is None else table.docs[top["id"]]
            docs = table.docs
            written = files.write_snapshot(path, meta, (docs[i] for i in table.ids))
            self._meta[name] = written
            indexfile.write_index_file(
                path, written.token, written.count, list(table.indexes.values())
            )
        if chosen or self._manifest is None:
            self._write_manifest()
        if len(chosen) < len(pending) or any(
            isinstance(m, StorageError) for m in self._meta.values()
        ):
            return False
        if self.journal.end == self.journal.start:
            return True
        self.journal.create(self.journal.generation + 1, self.journal.generation, self.journal.end)
        self._adopt_journal()
        log.debug(
            "compacted",
            location=str(self.path),
            generation=self.journal.generation,
            collections=len(chosen),
        )
        return True

    def _log_field_of(self, name: str) -> str | None:
        meta = self._meta.get(name)
        return meta.sequence if isinstance(meta, SnapshotMeta) else None

    def _fold_log(self, handle: TinyCollection, path: Path, field: str) -> bool:
        """Compact a log (numbered in ``field``) that is not loaded by streaming: its
        snapshot's documents, then its appends from the journal, into a new snapshot (no index
        file: a load builds them). False if its tail cannot be followed."""
        tail = handle.log_tail(field)
        if tail is None:
            return False
        old = self._meta.get(handle.name)
        docs: Iterable[str] = tail.texts
        indexes = {spec.name: spec for spec in tail.indexes}
        if isinstance(old, SnapshotMeta):
            indexes = {spec.name: spec for spec in old.indexes} | indexes
            docs = itertools.chain(files.read_documents(path, old), tail.texts)
        meta = {
            "collection": handle.name,
            "generation": self.journal.generation,
            "journal_offset": self.journal.end,
            "indexes": [files.spec_to_json(spec) for spec in indexes.values()],
            "sequence": field,
            "last": tail.last,
        }
        self._meta[handle.name] = files.write_snapshot(path, meta, docs)
        with contextlib.suppress(FileNotFoundError):
            indexfile.index_file(path).unlink()
        handle.forget_tail()  # what it counted since the snapshot is in the snapshot now
        return True

    def _compact_quietly(self) -> None:
        """Compact after a committed write: a failure must not look like the write failed."""
        try:
            self._compact_locked(limit=None)
        except (StorageError, OSError) as exc:
            log.warning(
                "could not compact; the journal keeps every write",
                location=str(self.path),
                error=str(exc),
            )

    def compact(self) -> None:
        """Fold the journal into the collection files and start a new one (``crm compact``).

        Afterwards each collection's file holds all its documents and opens with stock TinyDB.
        """
        with self._mutex:
            self._usable()
            if self._group is not None:
                raise StorageError("cannot compact inside a transaction")
            self._lock.acquire(exclusive=True)
            try:
                with files.os_errors(f"could not compact the store at {self.path}"):
                    self._catch_up()
                    self._cut_torn_tail()
                    done = self._compact_locked(limit=None)
                if not done:
                    bad = [m for m in self._meta.values() if isinstance(m, StorageError)]
                    raise bad[0] if bad else StorageError("compaction did not finish")
            finally:
                self._lock.release()

    # -- the contract --------------------------------------------------------------------------

    def _handle(self, name: str) -> TinyCollection:
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = TinyCollection(self, name)
        return handle

    def collection(self, name: str) -> Collection:
        if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
            raise ValidationError(f"a collection name must be 1 to 200 characters, got {name!r}")
        with self._mutex:
            self._usable(allow_damage=True)
            if name not in self._names:
                self._created.add(name)  # journalled with the next write, or at close
            return self._handle(name)

    def ensure_collection(self, spec: CollectionSpec) -> Collection:
        """Open the collection and create its indexes; a log (``spec.sequence``) is known as
        one from now on, so that compaction records its end even if nothing appends here."""
        coll = super().ensure_collection(spec)
        if spec.sequence is not None:
            self._handle(spec.name).log_field = spec.sequence
        return coll

    def collection_names(self) -> list[str]:
        with self.reading():
            return sorted(self._names | self._created)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Atomic across collections and processes: the writes are one journal line."""
        return Writing(self)

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in this thread's open write group, or in a new one."""
        group = self._group
        if group is not None and group.thread == threading.get_ident():
            return fn(*args)
        with Writing(self):
            return fn(*args)

    def close(self) -> None:
        """Fold the journal into the collection files where cheap, then release everything."""
        with self._mutex:
            if self._closed:
                return
            try:
                if self._damage is None and not self._forked and self._group is None:
                    self._compact_on_close()
            finally:
                self._closed = True
                _open_stores.discard(self)
                for handle in self._handles.values():
                    handle.forget()
                if not self._forked:
                    self._lock.close()
                    self.journal.close()
                else:
                    self.journal.fd = -1  # the parent's: neither closed nor used here

    def _compact_on_close(self) -> None:
        try:
            if not self._lock.acquire(exclusive=True, timeout=0):
                log.info(
                    "store busy at close; leaving the journal as it is", location=str(self.path)
                )
                return
        except OSError:
            return
        try:
            self._catch_up()
            self._cut_torn_tail()
            self._commit(WriteGroup())  # collections opened here but never written
            journal = self.journal
            if journal.end > journal.start and self.options.compact_on_close_mb > 0:  # 0: never
                rewrite = sum(self._estimate(name) for name in self._pending())
                big_journal = journal.end - journal.start >= CLOSE_RATIO * rewrite
                # A journal of an older format is replaced by a new one as soon as possible:
                # only a new one takes appends to logs without loading them.
                old_format = self.journal.format < files.JOURNAL_FORMAT
                self._compact_locked(
                    limit=None
                    if big_journal or old_format
                    else self.options.compact_on_close_mb * MB
                )
        except (StorageError, OSError) as exc:
            log.warning(
                "could not compact at close; the journal keeps every write",
                location=str(self.path),
                error=str(exc),
            )
        finally:
            self._lock.release()

    def describe(self) -> str:
        return f"tinydb (embedded) at {self.path}, durability={self.options.durability}"

    # -- check, repair, backup -----------------------------------------------------------------

    def check(
        self,
        *,
        repair: bool = False,
        validate: Callable[[str, dict[str, Any]], str | None] | None = None,
    ) -> dict[str, int]:
        """Verify every file (journal lines and the commit record, the manifest, each
        collection file's layout, count and checksum, unique indexes, and with ``validate``
        each document); return counts. Notes on caches and records that cannot be vouched
        for are left in ``check_notes``.

        Raises ``StorageError`` naming the damaged file, what is lost, and ``crm check
        --repair``. With ``repair=True``, salvage what can be read instead (see
        ``docs/storage.md``); ``validate`` then sets aside documents that would not load.
        """
        if repair:
            return self._repair(validate)
        with self._mutex:
            self._usable()
            held = self._group is not None
            if not held:
                self._lock.acquire(exclusive=False)
            try:
                return self._check_locked(validate)
            finally:
                if not held:
                    self._lock.release()

    def _repair(self, validate: recovery.Validator | None) -> dict[str, int]:
        """Rebuild the store from what can be read (``recovery``); returns the document count
        per collection. ``validate(collection, doc)`` says why a salvaged document would not
        load (the entity schema): those are set aside too."""
        with self._mutex:
            self._usable(allow_damage=True)
            if self._group is not None:
                raise StorageError("cannot repair inside a transaction")
            self._lock.acquire(exclusive=True)
            try:
                with files.os_errors(f"could not repair the store at {self.path}"):
                    rebuilt = recovery.rebuild(
                        self.path,
                        self._lock.mark(),
                        recorded=self._manifest,
                        deferred={
                            name: handle.deferred_indexes for name, handle in self._handles.items()
                        },
                        validate=validate,
                    )
                    self.journal.create(rebuilt.generation, -1, 0)
                    self._write_manifest(rebuilt.manifest)
                    self._damage = None
                    for handle in self._handles.values():
                        handle.reset()
                    self._names = set(rebuilt.counts)
                    self._adopt_journal()
                    self._read_metas()
                    self.check_notes = recovery.finish(rebuilt)
                    return rebuilt.counts
            finally:
                self._lock.release()

    def _check_locked(
        self,
        validate: Callable[[str, dict[str, Any]], str | None] | None,
    ) -> dict[str, int]:
        notes: list[str] = []
        self.check_notes = notes
        self._catch_up()
        size = self.journal.size()
        reader = self.journal.records(self.journal.start, size)
        good = sum(1 for _record in reader)
        if reader.bad is not None:
            complete = self.journal.complete_lines_after(reader.end, size)
            if reader.bad_in_middle:
                raise damaged(
                    self.journal.path,
                    f"the line at byte {reader.bad} fails its checksum and later lines are intact",
                    location=self.path,
                )
            if complete:
                raise damaged(
                    self.journal.path,
                    f"its last {complete} line(s), from byte "
                    f"{reader.bad}, fail their checksum: {complete} acknowledged "
                    "write(s) are lost",
                    location=self.path,
                )
        self._check_mark_against(good, reader.end)
        self._read_metas()
        if self._manifest_damage is not None:
            raise self._manifest_damage
        if self._manifest is None and self.journal.has_manifest:
            raise damaged(
                self.path / files.MANIFEST,
                "it is missing, so the store cannot tell whether a collection file is missing",
                location=self.path,
            )
        broken = [m for _n, m in sorted(self._meta.items()) if isinstance(m, StorageError)]
        if len(broken) == 1:
            raise broken[0]
        if broken:
            hint = "; " + files.REPAIR_HINT.format(where=self.path / RECOVERED)
            raise files.DamageError(
                f"{len(broken)} collection files are damaged: "
                + "; ".join(str(m).removesuffix(hint) for m in broken)
                + hint
            )
        for name, meta in sorted(self._meta.items()):
            assert isinstance(meta, SnapshotMeta)
            path = self.path / files.snapshot_file(name)
            for number, text in enumerate(files.read_documents(path, meta), start=1):
                try:
                    decode_doc(text)["id"]
                except (ValueError, KeyError, TypeError):
                    raise damaged(
                        path, f"document {number} does not read", location=self.path
                    ) from None
            if meta.indexes and meta.sequence is None:
                notes.extend(self._index_note(path, meta))
        counts = {}
        for name in sorted(self._names):
            table = self._handle(name).table()
            for index in table.indexes.values():
                clash = index.duplicate() if index.spec.unique else None
                if clash is not None:
                    raise damaged(
                        self.path / files.snapshot_file(name),
                        f"unique index {index.spec.name} holds {clash[0]} and "
                        f"{clash[1]} with one key",
                        location=self.path,
                    )
            if validate is not None:
                bad = [
                    (id, why)
                    for id in table.ids
                    if (why := validate(name, decode_doc(table.docs[id]))) is not None
                ]
                if bad:
                    id, why = bad[0]
                    raise damaged(
                        self.path / files.snapshot_file(name),
                        f"{len(bad)} document(s) do not load (first: {id}: {why})",
                        location=self.path,
                    )
            counts[name] = len(table.docs)
        return counts

    def _check_mark_against(self, good: int, end: int) -> None:
        """Compare the journal (``good`` lines up to ``end``) with the commit record."""
        mark = self._lock.mark()
        if isinstance(mark, str):
            raise damaged(
                self.path / LOCK,
                mark + "; the store cannot vouch for the journal's last writes",
                location=self.path,
            )
        if mark is None:
            if good:
                self.check_notes.append(
                    f"{self.path / LOCK} holds no commit record (it was deleted or emptied, or "
                    "written by an older version): the journal's last writes cannot be "
                    "vouched for until the next write"
                )
            return
        if mark.generation > self.journal.generation:
            raise damaged(
                self.journal.path,
                f"it is generation {self.journal.generation}, "
                f"older than the last write recorded in {LOCK} (generation "
                f"{mark.generation}): {mark.count} acknowledged write(s) are missing",
                location=self.path,
            )
        if mark.generation == self.journal.generation and mark.count > good:
            raise damaged(
                self.journal.path,
                f"{mark.count - good} acknowledged "
                f"write(s) are lost: {mark.count} were committed, {good} read (the "
                f"journal ends at byte {end}, the last write at {mark.end})",
                location=self.path,
            )

    @staticmethod
    def _index_note(path: Path, meta: SnapshotMeta) -> list[str]:
        from crmcore_storage_tinydb.indexes import Index

        cache = indexfile.index_file(path)
        if not cache.exists():
            return [
                f"{cache} is missing (a cache: the indexes are rebuilt from the documents "
                "on each load until the next compaction writes it)"
            ]
        indexes = [Index(spec) for spec in meta.indexes]
        if not indexfile.read_index_file(path, meta.token, meta.count, indexes):
            return [
                f"{cache} is damaged or stale (a cache: it is ignored and the indexes "
                "are rebuilt from the documents; 'crm compact' or deleting it is safe)"
            ]
        return []

    def backup(self, destination: str) -> None:
        """Copy the store to ``destination`` (a new folder) while it stays in use.

        The copy is taken under the shared lock, so it holds exactly the writes committed at
        one moment; then its journal is folded in as a clean close would.
        """
        with files.os_errors(f"could not back up the store to {destination}"):
            self._backup(Path(destination).expanduser().absolute())

    def _backup(self, dest: Path) -> None:
        if "\x00" in str(dest):
            raise ValidationError("the backup folder's name contains a NUL character")
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ValidationError(
                f"{dest} already exists and is not empty; back up into a new folder"
            )
        real = Path(os.path.realpath(dest))
        store = Path(os.path.realpath(self.path))
        if real == store or store in real.parents:
            raise ValidationError("back up to a folder outside the store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._clean_partial_backups(also_in=dest.parent)
        tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        self._note_backup({"partial": str(tmp), "pid": os.getpid()})
        files.make_private_dir(tmp)
        _IN_PROGRESS.add(tmp)
        try:
            self._copy_into(tmp)
            copy = TinyStore(
                tmp,
                TinyStoreOptions(
                    durability="fsync",
                    compact_on_close_mb=self.options.compact_on_close_mb,
                    allow_network_filesystem=True,
                ),
            )
            copy.close()
            with contextlib.suppress(FileNotFoundError):
                dest.rmdir()
            os.replace(tmp, dest)
            files.fsync_dir(dest.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            _IN_PROGRESS.discard(tmp)
        self._note_backup({"backup": str(dest), "at": now_stamp()})

    # -- backups the store knows of ---------------------------------------------------------------

    def _note_backup(self, entry: dict[str, Any]) -> None:
        """Record a backup (or a backup's temporary folder, before it is made) in
        ``backups.log``: that is how a killed backup's folder is found and removed later."""
        with contextlib.suppress(OSError):
            fd = files.open_private(self.path / files.BACKUPS, os.O_WRONLY | os.O_APPEND)
            try:
                files.write_all(fd, (encode_json(entry) + "\n").encode("ascii"))
            finally:
                os.close(fd)

    def known_backups(self) -> list[Path]:
        """The backups ``backup()`` made of this store that still exist (newest last)."""
        return [
            Path(e["backup"])
            for e in self._backup_log()
            if "backup" in e and Path(e["backup"]).is_dir()
        ]

    def _backup_log(self) -> list[dict[str, Any]]:
        try:
            lines = (self.path / files.BACKUPS).read_text("ascii", "replace").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = files.decode_json(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    def _clean_partial_backups(self, also_in: Path | None = None) -> None:
        """Remove the temporary folders of backups whose process died (killed mid-copy):
        they hold customer data that nothing else would ever delete. Those recorded in
        ``backups.log``, and with ``also_in`` the ``.NAME.partial-PID`` folders there."""
        found = [
            Path(e["partial"]) for e in self._backup_log() if isinstance(e.get("partial"), str)
        ]
        if also_in is not None:
            with contextlib.suppress(OSError):
                found += [p for p in also_in.iterdir() if _PARTIAL.fullmatch(p.name)]
        for folder in dict.fromkeys(found):
            match = _PARTIAL.fullmatch(folder.name)
            if match is None or not folder.is_dir() or _alive(int(match[1])):
                continue
            if folder in _IN_PROGRESS or not all(
                files.collection_of(p.name) is not None
                or p.name in _COPY_FILES
                or p.name.endswith(indexfile.SUFFIX)
                or p.name.startswith(".tmp-")
                for p in folder.iterdir()
            ):
                continue  # not what a backup writes: leave it alone
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the folder of an interrupted backup", folder=str(folder))

    def _copy_into(self, target: Path) -> None:
        with self._mutex:
            self._usable()
            held = self._group is not None
            if not held:
                self._lock.acquire(exclusive=False)
            try:
                self._catch_up()
                for entry in os.scandir(self.path):
                    if (
                        files.collection_of(entry.name) is not None or entry.name == files.MANIFEST
                    ) and entry.is_file():
                        files.copy_private(Path(entry.path), target / entry.name)
                fd = files.open_private(target / JOURNAL, os.O_WRONLY | os.O_TRUNC)
                try:
                    self.journal.copy_to(fd)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            finally:
                if not held:
                    self._lock.release()
        files.fsync_dir(target)


def open_tinydb_store(
    location: str | os.PathLike[str], options: Mapping[str, Any] | TinyStoreOptions | None = None
) -> TinyStore:
    """Open (creating if needed) the embedded store in the folder ``location``."""
    if options is None or isinstance(options, TinyStoreOptions):
        return TinyStore(location, options)
    from crmcore.config import structure_section

    return TinyStore(location, structure_section(options, TinyStoreOptions, "storage.options"))


_PARTIAL = re.compile(r"\..+\.partial-(\d+)")
_IN_PROGRESS: set[Path] = set()  # backups' temporary folders being written by this process
_COPY_FILES = frozenset({JOURNAL, LOCK, files.MANIFEST, files.BACKUPS, RECOVERED})


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a backup still running)."""
    if pid == os.getpid():
        return False  # ours, and not in _IN_PROGRESS: left by an earlier failure
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
