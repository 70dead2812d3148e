"""Render report sections: tables and bars in the terminal, one self-contained HTML page."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crmcore.chart_svg import axis_title, format_value, render_figure
from crmcore.charts import Chart, translated
from crmcore.i18n import N_, Message, joined
from crmcore.i18n import translate as translate_message
from crmcore.outputs import write_output
from crmcore.registry import ReportSection, ReportWindow
from crmcore.text import for_terminal

BAR_WIDTH = 30
Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _terminal_chart(console: Console, chart: Chart) -> None:
    """A chart as horizontal bars, one line per label and series."""
    if chart.empty:
        return
    # styled, not marked up: the CLI's consoles read no markup (``SafeConsole``), which would
    # print "[bold]" as written
    heading = Text("  ")
    heading.append(for_terminal(chart.title), style="bold")
    heading.append(f" ({for_terminal(axis_title(chart))})")
    console.print(heading, highlight=False)
    peak = chart.peak() or 1
    label_width = max(len(x) for x in chart.x)
    many = len(chart.series) > 1
    for i, x in enumerate(chart.x):
        for series in chart.series:
            value = series.values[i]
            if value is None:
                continue
            bar = "█" * max(0, round(BAR_WIDTH * value / peak))
            name = f" {series.name}" if many else ""
            console.print(
                f"  {x:<{label_width}}{name} {bar} {format_value(value, chart.unit)}",
                markup=False,
                highlight=False,
            )


def render_terminal(
    console: Console, sections: Sequence[ReportSection], translate: Translate | None = None
) -> None:
    """Each section as a table, followed by its chart as horizontal bars; in English as the
    sections say it, or translated with ``translate`` (a gettext function)."""

    def words(text: str) -> str:
        return text if translate is None else translate_message(text, translate)

    def cell(value: Any) -> str:
        if translate is None or isinstance(value, int | float):
            return _fmt(value)
        return cell_text(value, translate)

    for section in sections:
        table = Table(
            title=words(section.title),
            title_justify="left",
            header_style="bold",
            caption=words(section.note) or None,
            caption_justify="left",
        )
        for column in section.columns:
            table.add_column(words(column), overflow="fold")
        for row in section.rows:
            table.add_row(*(cell(v) for v in row))
        if not section.rows:
            table.add_row(*([words(N_("(none yet)"))] + [""] * (len(section.columns) - 1)))
        console.print(table)
        for chart in section.charts:
            _terminal_chart(console, chart if translate is None else translated(chart, translate))
        if section.chart and not section.charts:
            peak = max(section.chart.values()) or 1
            label_width = max(len(str(k)) for k in section.chart)
            for label, value in section.chart.items():
                bar = "█" * max(0, round(BAR_WIDTH * value / peak))
                console.print(f"  {label!s:<{label_width}} {bar} {_fmt(value)}")
        console.print()


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
.note{color:#5b6876;font-size:.85rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;color:#3c4855;
margin:.4rem 0 1rem} dl.meta dt{font-weight:600} dl.meta dd{margin:0}
figure.chart{margin:1rem 0 0} figure.chart figcaption{font-weight:600;margin-bottom:.3rem}
figure.chart svg{max-width:100%;height:auto} details{margin-top:.3rem;font-size:.85rem}
summary{cursor:pointer;color:#3b5f8a}
@media print{details{display:none}}
"""


_HANDBOOK = re.compile(
    r"\s*\((?:see )?DOMAIN §[^)]*\)|;?\s*DOMAIN §[\d.]+(?:,\s*§[\d.]+)*"
    r"(?:\s+cadence)?;?"
)


_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def human_label(text: str) -> str:
    """A code name in a table cell ("follow_up", "return_refund") as words ("follow up");
    anything else as it is."""
    return text.replace("_", " ") if _CODE.fullmatch(text) else text


def _without_handbook(note: str) -> str:
    text = _HANDBOOK.sub("", note)
    return re.sub(r"\s*\(chart: [^)]*\)|(?<!\w)§[\d.]+\s*", "", text).strip(" ;")


def human_note(note: str) -> str:
    """A section's note without references to the internal handbook ("DOMAIN §7")."""
    text = _without_handbook(note)
    return text[:1].upper() + text[1:] if text else ""


def section_note(section: ReportSection, window: ReportWindow) -> str:
    """A section's note for a page whose header already says the window: without the
    window's own words and the handbook's references (a :class:`Message` keeps its parts,
    to be translated one by one)."""
    label = window.label()
    note = section.note
    if isinstance(note, Message) and note.parts:
        return joined(
            *(
                p if isinstance(p, Message) else _without_handbook(p)
                for p in note.parts
                if p != label or label == "everything"
            ),
            sep=note.sep,
        )
    if isinstance(note, Message):
        return note
    return _without_handbook(note.replace(label, "") if label != "everything" else note)


def note_text(section: ReportSection, window: ReportWindow, translate_: Translate) -> str:
    """A section's note as :func:`section_note` has it, translated, capitalised."""
    text = translate_message(section_note(section, window), translate_)
    return text[:1].upper() + text[1:]


def cell_text(value: Any, translate_: Translate) -> str:
    """A table cell that is not a number, as words a reader knows, translated."""
    if isinstance(value, Message):
        return translate_message(value, translate_)
    return translate_message(human_label(_fmt(value)), translate_)


def period_text(window: ReportWindow | None, zone: str, translate: Translate = _same) -> str:
    """The report's period in the business time zone, for the page's header."""
    tz = ZoneInfo(zone)
    window = window or ReportWindow()

    def day(when: datetime) -> str:
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    start = day(window.since) if window.since else translate(N_("the beginning"))
    end = day(window.until) if window.until else translate(N_("now"))
    span = translate(N_("%(start)s to %(end)s")) % {"start": start, "end": end}
    return f"{span} ({zone})"


def render_html(
    sections: Sequence[ReportSection],
    path: str | Path,
    *,
    title: str,
    generated: datetime,
    protected: Iterable[str | Path] = (),
    window: ReportWindow | None = None,
    zone: str = "UTC",
    translate: Translate = _same,
    lang: str = "en",
) -> None:
    """Write one page with inline CSS and SVG: no external assets, opens anywhere (whole or
    not at all, mode 0600, never onto a ``protected`` path: see ``crmcore.outputs``).

    The header says the period (in the business time zone ``zone``) and the team or rep the
    report covers; each section shows its table and its charts (``ReportSection.charts``).
    """
    _ = translate
    window = window or ReportWindow()
    scope = []
    if window.team:
        scope.append(_("Team") + f": {window.team}")
    if window.rep:
        scope.append(_("Rep") + f": {window.rep}")
    labels = {"period": _("Period"), "covers": _("Covers"), "generated": _("Generated")}
    covers = ", ".join(scope) or _("Everyone")
    none_yet = _("(none yet)")
    generated_at = generated.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    body = [
        f'<header><h1>{html.escape(title)}</h1><dl class="meta">'
        f"<dt>{html.escape(labels['period'])}</dt>"
        f'<dd class="period">{html.escape(period_text(window, zone, _))}</dd>'
        f'<dt>{html.escape(labels["covers"])}</dt><dd class="scope">'
        f"{html.escape(covers)}</dd>"
        f"<dt>{html.escape(labels['generated'])}</dt><dd>{html.escape(generated_at)}</dd>"
        "</dl></header><main>"
    ]
    for n, section in enumerate(sections):
        body.append(f"<section><h2>{html.escape(translate_message(section.title, _))}</h2>")
        body.append(
            "<table><thead><tr>"
            + "".join(
                f"<th>{html.escape(translate_message(c, _).capitalize())}</th>"
                for c in section.columns
            )
            + "</tr></thead><tbody>"
        )
        for row in section.rows:
            cells = "".join(
                f'<td class="num">{html.escape(_fmt(v))}</td>'
                if isinstance(v, int | float)
                else f"<td>{html.escape(cell_text(v, _))}</td>"
                for v in row
            )
            body.append(f"<tr>{cells}</tr>")
        if not section.rows:
            body.append(
                f'<tr><td colspan="{len(section.columns)}">{html.escape(none_yet)}</td></tr>'
            )
        body.append("</tbody></table>")
        note = note_text(section, window, _)
        if note:
            body.append(f'<p class="note">{html.escape(note)}</p>')
        for c, chart in enumerate(section.charts):
            body.append(render_figure(translated(chart, _), ident=f"chart-{n}-{c}", translate=_))
        body.append("</section>")
    body.append("</main>")
    page = (
        f'<!DOCTYPE html><html lang="{html.escape(lang.replace("_", "-"))}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    write_output(path, page, protected=protected, what="--html")
