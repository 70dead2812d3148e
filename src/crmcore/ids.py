"""Time-ordered string ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32).

Ids sort by creation time, are unique across processes and machines, and do not depend on any
backend's row numbers, so records move between backends unchanged.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0
_last_head = ""  # the id's first 24 characters: _last_ms and _last_rand >> 10, encoded


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two characters


def _encode(value: int, length: int) -> str:
    """``value`` as ``length`` (even) base32 characters, most significant first."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(5 * (length - 2), -1, -10)])


def new_id(prefix: str, when: datetime) -> str:
    """Return ``prefix`` + a 26-character id ordered by ``when`` (then by call order)."""
    global _last_ms, _last_rand, _last_head
    ms = int(when.timestamp() * 1000)
    with _lock:
        if ms <= _last_ms:
            # Same (or earlier) millisecond: stay monotonic within this process.
            _last_rand += 1
            if not _last_rand & 1023:  # into the next 1,024: the bits above the last 10 moved
                _last_head = _last_head[:10] + _encode(_last_rand >> 10, 14)
        else:
            _last_ms = ms
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
            _last_head = _encode(ms, 10) + _encode(_last_rand >> 10, 14)
        rand, head = _last_rand, _last_head
    # The time and all but the last 10 random bits are encoded once per millisecond (or per
    # 1,024 ids): this is on every write.
    return prefix + head + _PAIRS[rand & 1023]


def _reset_after_fork() -> None:
    # A forked child must not continue the parent's random sequence, or both would mint equal ids.
    global _last_ms, _last_rand, _last_head
    _last_ms, _last_rand, _last_head = -1, 0, ""


os.register_at_fork(after_in_child=_reset_after_fork)
