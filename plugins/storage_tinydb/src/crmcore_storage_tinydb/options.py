"""``[storage.options]`` for the embedded store."""

from __future__ import annotations

from typing import Any

import attrs

from crmcore.errors import ValidationError

DURABILITY = ("os", "fsync")


def _durability(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in DURABILITY:
        raise ValidationError(
            f"expected one of {', '.join(DURABILITY)}, got {value!r}", field=attribute.name
        )


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValidationError(f"must be greater than 0, got {value!r}", field=attribute.name)


def _not_negative(_inst: object, attribute: attrs.Attribute, value: Any) -> None:
    if value < 0:
        raise ValidationError(f"must not be negative, got {value!r}", field=attribute.name)


@attrs.frozen
class TinyStoreOptions:
    """How the embedded store writes and shares its files.

    - ``durability``: ``"os"`` (a write is in the operating system before it is acknowledged:
      it survives a killed process) or ``"fsync"`` (also flushed to the disk: it survives a
      power cut as far as the disk honours fsync).
    - ``lock_timeout``: seconds to wait for another process's write or transaction before
      giving up with an error that names it.
    - ``compact_on_close_mb``: a clean close folds the journal into the collection files when
      that rewrites at most this many megabytes, or when the journal is at least a quarter of
      what it would rewrite (``crm compact`` always folds).
    - ``allow_network_filesystem``: open a store on NFS, SMB and the like, where file locks
      cannot be trusted; then only one process on one machine may use it at a time.
    - ``compress_from``: a loaded collection of at least this many documents keeps their text
      in memory compressed with a dictionary trained on its own documents (4-7x less memory
      for the text, about a microsecond more per document read); 0 never compresses. The
      files are the same either way.
    """

    durability: str = attrs.field(default="os", validator=_durability)
    lock_timeout: float = attrs.field(default=30.0, validator=_positive)
    compact_on_close_mb: int = attrs.field(default=64, validator=_not_negative)
    allow_network_filesystem: bool = False
    compress_from: int = attrs.field(default=2000, validator=_not_negative)
