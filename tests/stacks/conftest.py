"""The acceptance suite's harness: each profile exactly as ``crm init --profile X`` writes it.

``init_profile`` runs the installed ``crm`` in a subprocess to write ``crm.toml`` (and create
its store) in a fresh folder; ``open_profile`` opens that very file with an injected clock, so a
test can simulate weeks in a second. ``fill_in`` edits the written file the way its comments
tell an integrator to (uncomment a block, set a value).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmcore import CRM
from crmcore.app import open_crm
from crmcore.clock import ManualClock

# A Monday 09:00 in Shanghai (01:00 UTC): every China profile's business day starts here.
MONDAY = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
CRM_BIN = str(Path(sys.executable).parent / "crm")


def crm_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``crm ARGS`` in ``folder`` with the environment cleared of crmcore overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    return subprocess.run(
        [CRM_BIN, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def init_profile(tmp_path: Path) -> Callable[[str], Path]:
    def init(name: str) -> Path:
        result = crm_run(tmp_path, "init", "--profile", name)
        assert result.returncode == 0, result.stderr
        return tmp_path / "crm.toml"

    return init


@pytest.fixture
def open_profile() -> Iterator[Callable[..., tuple[CRM, ManualClock]]]:
    opened: list[CRM] = []

    def open_(path: Path, start: datetime = MONDAY) -> tuple[CRM, ManualClock]:
        for crm in opened:
            crm.close()
        opened.clear()
        clock = ManualClock(start)
        crm = open_crm(path, clock=clock)
        opened.append(crm)
        return crm, clock

    yield open_
    for crm in opened:
        crm.close()


def fill_in(path: Path, replacements: dict[str, str]) -> None:
    """Replace each exact text of the written file (it must be there) by its value."""
    text = path.read_text("utf-8")
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in the written {path.name}"
        text = text.replace(old, new)
    path.write_text(text, "utf-8")


def uncomment_block(path: Path, first_line: str, count: int) -> None:
    """Uncomment ``count`` lines starting at the commented ``first_line``."""
    lines = path.read_text("utf-8").splitlines()
    at = lines.index(first_line)
    for i in range(at, at + count):
        assert lines[i].startswith("#"), lines[i]
        lines[i] = lines[i][2:] if lines[i].startswith("# ") else lines[i][1:]
    path.write_text("\n".join(lines) + "\n", "utf-8")
