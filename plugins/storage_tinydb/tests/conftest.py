"""Helpers for the embedded store's tests: child processes that use a store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PRELUDE = """
import json, os, sys, time
from datetime import UTC, datetime, timedelta
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions
def say(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\\n")
    sys.stdout.flush()
"""


def _start(code: str, *args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + code, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def child():
    """Start ``python -c <prelude + code> args...`` with text pipes; killed after the test."""
    started: list[subprocess.Popen] = []

    def start(code: str, *args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
        proc = _start(code, *args, stdin=stdin)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream is not None:
                stream.close()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "db"
