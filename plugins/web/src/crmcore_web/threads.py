"""The threads the API's handlers run in (the core's API is synchronous).

A plain ``ThreadPoolExecutor`` behind ``loop.run_in_executor``: the trip there and back costs
about 40-50 µs less than Starlette's ``run_in_threadpool`` (anyio's worker threads, capacity
limiter and cancel scope), measured with uvloop on the W13 machine. Like anyio's, the trip is
not abandoned: a request cancelled while its handler runs (the client went away) still lets the
handler finish, so a write either completes or leaves nothing, never half of it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: As many handlers at once per process as anyio allows by default.
MAX_THREADS = 40


class HandlerThreads:
    """A bounded pool started on first use; ``close`` waits for running handlers and lets a
    later request start a new pool (a test client may run the app's lifespan twice)."""

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self.max_threads = max_threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a pool thread, in a copy of the caller's context variables."""
        pool = self._pool or self._start()
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(pool, context.run, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # the handler cannot be interrupted: let it finish before giving up the request
            await asyncio.wait([future])
            raise

    def _start(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="crmcore-web")
            return self._pool

    def close(self) -> None:
        """Wait for the handlers running now, then stop the threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
