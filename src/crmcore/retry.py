"""Running an operation again when a concurrent transaction rolled it back.

On a backend with optimistic transactions (MongoDB replica sets), two transactions that write
the same document or index key at once cannot both commit: one is rolled back whole and
raises ``TransientConflict``. The audit trail makes that common, since every audited write
appends the entry after the same head. Such an operation left nothing behind, so it is simply
run again, after a short randomised pause, up to ``ATTEMPTS`` times in all.

Only the outermost operation retries: inside a ``crm.transaction()`` block the conflict
rolls back the whole block, which the code that opened it must run again (``retrying``).
Stale versions (``ConflictError``: someone changed the record you read) are never retried:
the caller has to look at the record again.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar, cast

from crmcore.errors import TransientConflict
from crmcore.logs import get_logger

ATTEMPTS = 5  # tries in all
FIRST_PAUSE = 0.005  # seconds before the second try; doubled for each further one (±50%)

P = ParamSpec("P")
R = TypeVar("R")
log = get_logger("retry")


class Transactional(Protocol):
    """What retrying asks of its owner (the CRM, or a service's kernel)."""

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this thread."""
        ...


def retrying(crm: Transactional, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)``, run again when it raises ``TransientConflict`` and no
    transaction is open around it in this thread. Use it for a block of several writes::

        def move(crm):
            with crm.transaction("ann"):
                ...

        retrying(crm, move, crm)

    ``fn`` must be safe to run again from the start: it sees the store as it is now.
    """
    try:
        return fn(*args, **kwargs)
    except TransientConflict as exc:
        first = exc
    return _retry_after(crm, fn, first, *args, **kwargs)


def _retry_after(
    crm: Transactional,
    fn: Callable[P, R],
    first: TransientConflict,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """``retrying`` once the first attempt has failed with ``first``."""
    _pause_or_raise(crm, fn, 1, first)
    for attempt in range(2, ATTEMPTS + 1):
        try:
            return fn(*args, **kwargs)
        except TransientConflict as exc:
            _pause_or_raise(crm, fn, attempt, exc)
    raise AssertionError("unreachable")  # pragma: no cover: the last attempt re-raises


def _pause_or_raise(
    crm: Transactional, fn: Callable[..., object], attempt: int, exc: TransientConflict
) -> None:
    if attempt >= ATTEMPTS or crm.in_transaction():
        raise exc  # out of tries, or inside a transaction: its opener runs it again
    log.info(
        "transaction rolled back by a concurrent one; running it again",
        operation=getattr(fn, "__qualname__", repr(fn)),
        attempt=attempt,
        error=str(exc),
    )
    time.sleep(FIRST_PAUSE * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))


def retried(method: Callable[P, R]) -> Callable[P, R]:
    """Make an API method run as ``retrying`` does: a method of the CRM, or of a class
    holding a ``Kernel`` as ``self._kernel`` (or the CRM as ``self._crm``)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:  # the first attempt directly: API methods are on every write's path
            return method(*args, **kwargs)
        except TransientConflict as exc:
            first = exc
        owner = args[0]
        holder = getattr(owner, "_kernel", None) or getattr(owner, "_crm", owner)
        return _retry_after(cast(Transactional, holder), method, first, *args, **kwargs)

    return wrapper
