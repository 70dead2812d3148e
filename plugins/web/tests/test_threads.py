"""The handler threads: context carried over, bounded, a cancelled request's handler finishes,
restartable after close; the request log line is built only when it would be written."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading

import pytest
import structlog
from crmcore_web.app import _logs_requests
from crmcore_web.threads import HandlerThreads

from crmcore.logs import configure_logging

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_handler_runs_off_the_loop_in_the_callers_context():
    threads = HandlerThreads()

    async def main() -> tuple[str, str]:
        WHO.set("ann")
        return await threads.run(lambda: (WHO.get(), threading.current_thread().name))

    try:
        who, thread = asyncio.run(main())
    finally:
        threads.close()
    assert who == "ann" and thread.startswith("crmcore-web")


def test_at_most_max_threads_handlers_run_at_once():
    threads = HandlerThreads(max_threads=2)
    lock, running, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    def handler() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1

    async def main() -> None:
        tasks = [asyncio.ensure_future(threads.run(handler)) for _ in range(5)]
        await asyncio.sleep(0.2)
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert peak[0] == 2


def test_a_cancelled_request_waits_for_its_handler_to_finish():
    threads = HandlerThreads()
    started, go, done = threading.Event(), threading.Event(), []

    def write() -> str:
        started.set()
        go.wait(10)
        done.append("written")
        return "ok"

    async def main() -> bool:
        task = asyncio.ensure_future(threads.run(write))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        waiting = not task.done()  # still waiting for the handler, not given up
        go.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return waiting

    try:
        assert asyncio.run(main()) is True
    finally:
        threads.close()
    assert done == ["written"]


def test_close_waits_for_running_handlers_and_a_later_request_starts_afresh():
    threads = HandlerThreads()
    started, done = threading.Event(), []

    def slow() -> None:
        started.set()
        threading.Event().wait(0.2)
        done.append(1)

    async def main() -> list[int]:
        task = asyncio.ensure_future(threads.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        await asyncio.to_thread(threads.close)  # as the lifespan's end does
        seen = list(done)
        await task
        return seen

    assert asyncio.run(main()) == [1]
    assert asyncio.run(threads.run(lambda: 7)) == 7
    threads.close()


def test_the_request_line_is_built_only_when_info_is_written():
    try:
        configure_logging("warning", "console")
        assert _logs_requests() is False
        configure_logging("info", "console")
        assert _logs_requests() is True
        # a host's structlog set-up without level filtering: always build the line
        structlog.configure(wrapper_class=structlog.BoundLogger)
        assert _logs_requests() is True
    finally:
        configure_logging("warning", "console")
        logging.getLogger().handlers.clear()
