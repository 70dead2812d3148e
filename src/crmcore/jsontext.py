"""Compact JSON encoding on the write path (each stored document is encoded once or twice)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    from json.encoder import c_make_encoder
except ImportError:  # pragma: no cover - CPython always has the C accelerator
    c_make_encoder = None


def compact_encoder(*, sort_keys: bool = False, ensure_ascii: bool = True
                    ) -> Callable[[Any], str]:
    """``json.JSONEncoder(separators=(",", ":"), check_circular=False, ...).encode``, with
    the C encoder built once instead of on every call (a sixth of the time of encoding a
    small document). Falls back to the plain method if the C encoder is unavailable or
    does not answer as the pure one does."""
    encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys,
                               ensure_ascii=ensure_ascii, check_circular=False)
    plain = encoder.encode
    if c_make_encoder is None:  # pragma: no cover
        return plain
    strings = json.encoder.encode_basestring_ascii if ensure_ascii else \
        json.encoder.encode_basestring
    try:
        chunks = c_make_encoder(None, encoder.default, strings, None, ":", ",", sort_keys,
                                False, True)
        sample = {"b": [1, 2.5, None, True, "é\n"], "a": {"c": -1}}
        if "".join(chunks(sample, 0)) != plain(sample):
            return plain  # pragma: no cover
    except Exception:  # pragma: no cover - a Python whose C encoder takes other arguments
        return plain

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode
