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
_last_time = ""  # _last_ms encoded


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two characters


def _encode(value: int, length: int) -> str:
    """``value`` as ``length`` (even) base32 characters, most significant first."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023]
                    for shift in range(5 * (length - 2), -1, -10)])


def new_id(prefix: str, when: datetime) -> str:
    """Return ``prefix`` + a 26-character id ordered by ``when`` (then by call order)."""
    global _last_ms, _last_rand, _last_time
    ms = int(when.timestamp() * 1000)
    with _lock:
        if ms <= _last_ms:
            # Same (or earlier) millisecond: stay monotonic within this process.
            _last_rand += 1
        else:
            _last_ms = ms
            _last_time = _encode(ms, 10)  # encoded once per millisecond
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        rand, time = _last_rand, _last_time
    p = _PAIRS  # the 80 random bits as 16 characters, unrolled: this is on every write
    return "".join((prefix, time, p[rand >> 70], p[(rand >> 60) & 1023], p[(rand >> 50) & 1023],
                    p[(rand >> 40) & 1023], p[(rand >> 30) & 1023], p[(rand >> 20) & 1023],
                    p[(rand >> 10) & 1023], p[rand & 1023]))


def _reset_after_fork() -> None:
    # A forked child must not continue the parent's random sequence, or both would mint equal ids.
    global _last_ms, _last_rand, _last_time
    _last_ms, _last_rand, _last_time = -1, 0, ""


os.register_at_fork(after_in_child=_reset_after_fork)
