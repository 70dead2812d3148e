"""Imported first by ``crmcore.cli.main``: how ``crm`` starts.

The cyclic garbage collector does not look at what starting makes: importing the command line
and registering the plugins makes modules, classes and functions that live as long as the
process, and collecting among them cost ``crm customer list`` about a twelfth of its CPU.
Collection waits while they are made, then they are moved out of its sight (``gc.freeze``,
once per process) and it runs as before for what the command makes.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_was_enabled = gc.isenabled()
_settled = False
gc.disable()  # until ``imported()``, at the end of crmcore.cli.main's imports


def imported() -> None:
    """The command line's modules are imported: set them aside, collect again."""
    gc.freeze()
    if _was_enabled:
        gc.enable()


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """No cyclic collection inside the block; the first time in a process, what it made is
    set aside after it (later times only restore the collector: a process that runs several
    commands, such as a test, keeps collecting what each leaves)."""
    global _settled
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not _settled:
            gc.freeze()
            _settled = True
        if enabled:
            gc.enable()
