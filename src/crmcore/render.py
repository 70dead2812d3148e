"""Render report sections: tables and bars in the terminal, one self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from crmcore.outputs import write_output
from crmcore.registry import ReportSection

BAR_WIDTH = 30


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def render_terminal(console: Console, sections: Sequence[ReportSection]) -> None:
    """Each section as a table, followed by its chart as horizontal bars."""
    for section in sections:
        table = Table(title=section.title, title_justify="left", header_style="bold",
                      caption=section.note or None, caption_justify="left")
        for column in section.columns:
            table.add_column(column, overflow="fold")
        for row in section.rows:
            table.add_row(*(_fmt(v) for v in row))
        if not section.rows:
            table.add_row(*(["(none yet)"] + [""] * (len(section.columns) - 1)))
        console.print(table)
        if section.chart:
            peak = max(section.chart.values()) or 1
            label_width = max(len(str(k)) for k in section.chart)
            for label, value in section.chart.items():
                bar = "█" * max(0, round(BAR_WIDTH * value / peak))
                console.print(f"  {label!s:<{label_width}} {bar} {_fmt(value)}")
        console.print()


def _svg_bars(chart: dict[str, float]) -> str:
    row_h, label_w, bar_w = 22, 180, 360
    peak = max(chart.values()) or 1
    height = row_h * len(chart) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" '
             f'height="{height}" role="img">']
    for i, (label, value) in enumerate(chart.items()):
        y = 4 + i * row_h
        width = max(1.0, bar_w * value / peak) if value else 0
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
                     f"{html.escape(str(label))}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="16" '
                     'rx="3" class="bar"/>')
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 15}">'
                     f"{html.escape(_fmt(value))}</text>")
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:980px;
color:#1d2733;background:#fafbfc;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} .meta{color:#5b6876;margin-top:0}
section{background:#fff;border:1px solid #e1e5ea;border-radius:8px;padding:1rem 1.2rem;
margin:1rem 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
h2{font-size:1.15rem;margin:.2rem 0 .8rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #eef0f3}
th{background:#f3f5f8;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#5b6876;font-size:.85rem} svg{margin-top:.8rem;font-size:12px;fill:#1d2733}
svg .bar{fill:#3b7dd8}
"""


def render_html(sections: Sequence[ReportSection], path: str | Path, *, title: str,
                generated: datetime, protected: Iterable[str | Path] = ()) -> None:
    """Write one page with inline CSS and SVG: no external assets, opens anywhere (whole or
    not at all, mode 0600, never onto a ``protected`` path: see ``crmcore.outputs``)."""
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">generated {html.escape(generated.strftime("%Y-%m-%d %H:%M UTC"))}'
            "</p>"]
    for section in sections:
        body.append(f"<section><h2>{html.escape(section.title)}</h2>")
        body.append("<table><thead><tr>"
                    + "".join(f"<th>{html.escape(c)}</th>" for c in section.columns)
                    + "</tr></thead><tbody>")
        for row in section.rows:
            cells = "".join(
                f'<td class="num">{html.escape(_fmt(v))}</td>' if isinstance(v, int | float)
                else f"<td>{html.escape(_fmt(v))}</td>" for v in row)
            body.append(f"<tr>{cells}</tr>")
        if not section.rows:
            body.append(f'<tr><td colspan="{len(section.columns)}">(none yet)</td></tr>')
        body.append("</tbody></table>")
        if section.note:
            body.append(f'<p class="note">{html.escape(section.note)}</p>')
        if section.chart:
            body.append(_svg_bars(section.chart))
        body.append("</section>")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>")
    write_output(path, page, protected=protected, what="--html")
