"""Documents as stored without the fields that hold their default: a null, an empty text, list
or mapping is left out of the stored document of a record whose class gives that default back
(``from_doc`` fills it in), as every backend's queries read a missing field as null."""

from __future__ import annotations

from functools import cache
from typing import Any

import attrs

_EMPTY_FACTORIES = (list, dict, tuple)


@cache
def blank_defaults(cls: type) -> dict[str, Any]:
    """The fields of attrs class ``cls`` whose default is None, ``""`` or an empty container,
    with that default as a document holds it (an empty tuple as ``[]``)."""
    out: dict[str, Any] = {}
    for a in attrs.fields(cls):
        default = a.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.factory in _EMPTY_FACTORIES and not default.takes_self:
                out[a.name] = default.factory()
        elif default is None or (type(default) is str and not default):
            out[a.name] = default
        elif type(default) is tuple and not default:
            out[a.name] = []  # an empty tuple as a document holds it
    return out


def without_defaults(cls: type, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (``to_doc`` of a ``cls``) without the fields that hold their blank default."""
    blank = blank_defaults(cls)
    return {
        k: v
        for k, v in doc.items()
        if k not in blank or v != blank[k] or type(v) is not type(blank[k])
    }
