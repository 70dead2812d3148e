"""Small typed objects that registration hooks return (conda's pattern)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class SettingsSpec:
    """A plugin's configuration section: ``[section]`` in crm.toml, structured into ``type``."""

    section: str
    type: type


@attrs.frozen
class Kinds:
    """Interaction and task kinds a plugin adds to the core's."""

    interactions: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    tasks: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class SummaryLine:
    """One labelled line on ``crm customer show``."""

    label: str
    text: str


@attrs.frozen
class ReportSection:
    """A section of ``crm report``: a title, a table, and optionally a bar chart.

    ``rows`` are tuples matching ``columns``; ``chart`` maps labels to numbers and is drawn as
    bars in the terminal and as an inline SVG in the HTML report.
    """

    title: str
    columns: tuple[str, ...] = attrs.field(converter=tuple)
    rows: tuple[tuple[Any, ...], ...] = attrs.field(converter=lambda rs: tuple(map(tuple, rs)))
    chart: dict[str, float] | None = None
    note: str = ""
    order: int = 100  # lower comes first
