"""The store-wide lock: ``flock`` on ``store.lock``, with a timeout that names the holder.

``flock`` locks belong to an open file description, so two stores opened on one folder inside
one process exclude each other just as two processes do, and the kernel drops a dead process's
lock. Threads of one process are kept apart by the store's own mutex before they get here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from crmcore.errors import StorageError
from crmcore_storage_tinydb.files import Mark, mark_bytes, open_private, read_mark


def describe_process(pid: int) -> str:
    """``pid`` with its command line where the system tells it."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        command = " ".join(a.decode("utf-8", "replace") for a in argv if a)
    except OSError:
        command = ""
    if len(command) > 120:
        command = command[:117] + "..."
    return f"process {pid}" + (f" ({command})" if command else "")


def lock_holders(path: Path) -> list[int]:
    """Pids holding a ``flock`` on ``path``, from Linux ``/proc/locks`` (empty if unknown)."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; blocked waiters carry "->".
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            pid = int(fields[4])
            same = (
                int(inode) == st.st_ino
                and int(major, 16) == os.major(st.st_dev)
                and int(minor, 16) == os.minor(st.st_dev)
            )
        except ValueError:
            continue
        if same:
            pids.append(pid)
    return pids


class StoreLock:
    """Shared (readers loading files) or exclusive (writers, compaction) lock on the store."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        if path.is_symlink():
            raise StorageError(
                f"{path} is a symbolic link; the store's lock file must be a "
                "plain file in the store's folder (remove the link; the store "
                "creates the file)"
            )
        try:
            self.fd = open_private(path, os.O_RDWR | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError(f"{path} is a symbolic link; refusing to follow it") from None
            raise
        self.mode = 0  # 0, fcntl.LOCK_SH or fcntl.LOCK_EX

    def write_mark(self, generation: int, end: int, count: int) -> None:
        """Record the last committed journal line (under the exclusive lock; see ``Mark``)."""
        with contextlib.suppress(OSError):  # it only ever helps to detect damage
            os.pwrite(self.fd, mark_bytes(generation, end, count), 0)

    def mark(self) -> Mark | str | None:
        """The commit record (``files.read_mark``)."""
        return read_mark(self.fd)

    def acquire(self, exclusive: bool, *, timeout: float | None = None) -> bool:
        """Take the lock, waiting up to ``timeout`` (default: the store's); raises
        ``StorageError`` naming the holder when it does not come free. Returns False only
        when ``timeout`` is 0 and the lock is busy."""
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(self.fd, mode | fcntl.LOCK_NB)
            self.mode = mode
            return True
        except BlockingIOError:
            pass
        wait = self.timeout if timeout is None else timeout
        if wait <= 0:
            return False
        deadline = time.monotonic() + wait
        pause = 0.0002
        while True:
            time.sleep(pause)
            try:
                fcntl.flock(self.fd, mode | fcntl.LOCK_NB)
                self.mode = mode
                return True
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise self.busy_error(wait)
            pause = min(pause * 2, 0.01)

    def busy_error(self, waited: float) -> StorageError:
        holders = [p for p in lock_holders(self.path)]
        mine = os.getpid()
        if holders:
            who = ", ".join(
                "this process (another open store or transaction)"
                if p == mine
                else describe_process(p)
                for p in holders
            )
        else:
            who = "another process"
        return StorageError(
            f"the store at {self.path.parent} is held by {who}; waited "
            f"{waited:g} s. Let it finish, or stop it, and try again "
            "(storage.options.lock_timeout sets the wait)"
        )

    def release(self) -> None:
        if self.mode:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.mode = 0

    def close(self) -> None:
        self.release()
        os.close(self.fd)
