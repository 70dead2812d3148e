"""Fixtures for the grading plugin's tests. Helpers shared by the test modules live in
``grading_helpers.py`` next to this file (importable: this directory is put on sys.path)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crmcore import CRM

sys.path.insert(0, str(Path(__file__).parent))

from grading_helpers import ALL_SCHEMES


@pytest.fixture
def grading_crm(make_crm: Callable[..., CRM]) -> Callable[..., CRM]:
    """``grading_crm(settings={...}, plugins=[...])``: a CRM with grading (all four built-in
    schemes unless ``settings`` says otherwise) and any extra plugin objects."""

    def factory(
        settings: dict[str, Any] | None = None, plugins: list[Any] | None = None, **kwargs: Any
    ) -> CRM:
        grading = {"schemes": list(ALL_SCHEMES), **(settings or {})}
        return make_crm(["grading", *(plugins or [])], settings={"grading": grading}, **kwargs)

    return factory
