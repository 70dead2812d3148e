"""Files and folders the user names for output (exports, backups, reports, the demo's folder).

Every command that writes where the user says goes through here, so that all of them:

- refuse a path inside the store's folder or onto the configuration file (compared as real
  paths, symlinks resolved), a path with a NUL character, and a target that is a folder or a
  device rather than a regular file;
- never truncate what is there before the new content is complete: the content goes to a
  private temporary file in the target's folder, is flushed and fsynced, and is then renamed
  over the target (the old file stays whole if anything fails, and the temporary one is
  removed);
- create files 0600 and folders 0700 whatever the umask (customer data is confidential).

A path that cannot be written is a ``ValidationError`` that names it and says why.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from crmcore.errors import ValidationError

PathLike = str | os.PathLike[str]


def protected_paths(config: Any) -> list[Path]:
    """What output must never land on or in: the configuration file and, when the store is a
    local folder, that folder (``config`` is a ``crmcore.config.Config``)."""
    out: list[Path] = []
    if getattr(config, "path", None):
        out.append(Path(config.path))
    location = getattr(getattr(config, "storage", None), "location", None)
    if location and "://" not in location:
        out.append(Path(location).expanduser())
    return out


def configured_paths(explicit: str | None) -> list[Path]:
    """``protected_paths`` of the configuration in use (``--config``, ``$CRM_CONFIG`` or
    ./crm.toml), for commands that write before or without opening a store: ``demo --dir``,
    ``init --path``, ``encryption new-key``. A configuration that does not load protects
    itself; one that does not exist yet protects nothing."""
    from crmcore.config import Config, find_config
    from crmcore.errors import CrmError

    path = find_config(explicit)
    if path is None or not Path(path).exists():  # ``--config`` naming the file init writes
        return []
    try:
        return protected_paths(Config.load(path))
    except CrmError:
        return [Path(path)]


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _check_name(path: PathLike, what: str) -> str:
    text = os.fspath(path)
    if not text or not text.strip():
        raise ValidationError(f"{what}: an empty path; name a file to write")
    if "\x00" in text:
        raise ValidationError(
            f"{what}: {text.split(chr(0))[0]!r}... contains a NUL character; "
            "name a file without one"
        )
    return text


def check_target(
    path: PathLike,
    *,
    protected: Iterable[PathLike] = (),
    folder: bool = False,
    what: str = "output",
) -> Path:
    """The real path to write ``path`` at, after refusing what must not be written there.

    ``protected`` lists files and folders the output must not be, nor be inside of (the
    configuration and the store); with ``folder`` the target is a folder to create.
    """
    text = _check_name(path, what)
    target = _real(text)
    for item in protected:
        guard = _real(item)
        if target == guard or guard in target.parents:
            kind = "the configuration file" if guard.is_file() else "the store's folder"
            raise ValidationError(
                f"{what}: {text} is {'inside ' if target != guard else ''}"
                f"{kind} ({guard}); write somewhere else"
            )
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ValidationError(f"{what}: cannot use {text}: {exc.strerror}") from None
    if info is not None:
        if folder and not stat.S_ISDIR(info.st_mode):
            raise ValidationError(f"{what}: {text} exists and is not a folder")
        if not folder and stat.S_ISDIR(info.st_mode):
            raise ValidationError(f"{what}: {text} is a folder; name a file inside it")
        if not folder and not stat.S_ISREG(info.st_mode):
            raise ValidationError(
                f"{what}: {text} is not a regular file (a device, pipe or socket); name a file"
            )
    if not folder and not target.parent.is_dir():
        raise ValidationError(f"{what}: the folder {target.parent} does not exist; create it first")
    return target


def _cannot(what: str, text: str, exc: OSError) -> ValidationError:
    return ValidationError(
        f"{what}: cannot write {text}: {exc.strerror or exc}; nothing was written"
    )


@contextlib.contextmanager
def atomic_output(
    path: PathLike,
    *,
    protected: Iterable[PathLike] = (),
    binary: bool = False,
    encoding: str = "utf-8",
    newline: str | None = "",
    what: str = "output",
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing whole or not at all (see the module docstring).

    The handle writes a private temporary file beside the target; leaving the block without an
    exception fsyncs it and renames it into place (mode 0600). An exception leaves the target
    as it was and removes the temporary file.
    """
    text = os.fspath(path)
    target = check_target(path, protected=protected, what=what)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:
        raise _cannot(what, text, exc) from None
    done = False
    try:
        os.fchmod(fd, 0o600)
        opened: IO[Any] = (
            os.fdopen(fd, "wb")
            if binary
            else os.fdopen(fd, "w", encoding=encoding, newline=newline)
        )
        with opened as handle:
            try:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise _cannot(what, text, exc) from None
        try:
            os.replace(tmp, target)
            done = True
            _fsync_dir(target.parent)
        except OSError as exc:
            raise _cannot(what, text, exc) from None
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_output(
    path: PathLike,
    content: str | bytes,
    *,
    protected: Iterable[PathLike] = (),
    what: str = "output",
) -> Path:
    """Write ``content`` to ``path`` whole or not at all; returns the real path written."""
    binary = isinstance(content, bytes)
    with atomic_output(path, protected=protected, binary=binary, what=what) as handle:
        handle.write(content)
    return _real(path)


def check_new(path: PathLike, *, protected: Iterable[PathLike] = (), what: str = "output") -> Path:
    """``check_target`` for a file that must not exist yet (an anchor, a key: never replaced)."""
    target = check_target(path, protected=protected, what=what)
    if os.path.lexists(target):
        raise ValidationError(
            f"{os.fspath(path)} exists and is never overwritten: choose a new file name"
        )
    return target


def write_new(
    path: PathLike,
    content: str | bytes,
    *,
    protected: Iterable[PathLike] = (),
    what: str = "output",
) -> Path:
    """Write ``content`` (text in UTF-8, or bytes) to the new file ``path`` (0600): to a
    private temporary file beside it, fsynced, then linked into place, so it is whole or
    absent and nothing that exists is replaced, even by a file created meanwhile."""
    target = check_new(path, protected=protected, what=what)
    text = os.fspath(path)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, target)
    except FileExistsError:
        raise ValidationError(
            f"{text} exists and is never overwritten: choose a new file name"
        ) from None
    except OSError as exc:
        raise _cannot(what, text, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return target


def private_folder(
    path: PathLike, *, protected: Iterable[PathLike] = (), empty: bool = True, what: str = "folder"
) -> Path:
    """Create the folder ``path`` (0700 whatever the umask, parents as needed), refusing what
    ``check_target`` refuses and, with ``empty``, an existing folder that is not empty."""
    text = os.fspath(path)
    target = check_target(path, protected=protected, folder=True, what=what)
    try:
        if target.exists():
            if empty and any(target.iterdir()):
                raise ValidationError(f"{what}: {text} is not empty; choose a new folder")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(target, 0o700)
        os.chmod(target, 0o700)
    except OSError as exc:
        raise ValidationError(f"{what}: cannot create {text}: {exc.strerror or exc}") from None
    return target


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def output_to(
    crm: Any, path: PathLike | None, *, binary: bool = False, what: str = "--output"
) -> Iterator[IO[Any]]:
    """Standard output when ``path`` is None, else ``atomic_output`` guarding ``crm``'s
    configuration file and store folder (``binary``: a bytes handle, for xlsx say)."""
    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        return
    with atomic_output(
        path, protected=protected_paths(crm.config), binary=binary, what=what
    ) as handle:
        yield handle
