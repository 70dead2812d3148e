"""Draw a :class:`~crmcore.charts.Chart` as inline SVG: axes, ticks, units, legend, a title and
description for screen readers, and the numbers again as an HTML table beside it. No script,
no external asset: the markup opens anywhere, offline."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from crmcore.charts import Chart
from crmcore.markers import N_

# Okabe-Ito: told apart with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")
WIDTH, HEIGHT = 640, 280
CHAR_W = 6.6  # average width of a character at the 11px font drawn, for label layout

Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def nice_ticks(peak: float, count: int = 5) -> list[float]:
    """Tick values from 0 to a round number at or above ``peak``, in steps of 1, 2 or 5
    times a power of ten (about ``count`` steps)."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / count
    power = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 2.5, 5, 10) if power >= 10 or power < 1 else (1, 2, 5, 10)
    step = next(m * power for m in steps if m * power >= raw)
    if step < 1 and peak >= 1:  # counts of whole things never tick at 0.5
        step = 1.0
    top = math.ceil(peak / step - 1e-9) * step
    n = round(top / step)
    return [round(i * step, 10) for i in range(n + 1)]


def format_value(value: float | None, unit: str = "") -> str:
    """A value as people read it: thousands separated, at most one decimal, ``%`` attached."""
    if value is None:
        return "-"
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if unit == "%":
        return text + "%"
    return text


def axis_title(chart: Chart) -> str:
    """The y axis's title: its label with the unit in brackets, unless already named."""
    label, unit = chart.y_label, chart.unit
    if unit and unit.lower() not in label.lower():
        return f"{label} ({unit})" if label else unit
    return label


def render_svg(
    chart: Chart,
    *,
    ident: str = "chart",
    width: int = WIDTH,
    height: int = HEIGHT,
    translate: Translate = _same,
) -> str:
    """The chart as one ``<svg>`` element (``ident`` makes its ids unique on a page).

    Bars carry ``data-series``, ``data-x`` and ``data-value`` so pages and tests can read what
    is drawn; each has a ``<title>`` tooltip with its label and value.
    """
    n = len(chart.x)
    many = len(chart.series) > 1
    widest = max((len(x) for x in chart.x), default=0)
    left = (
        16
        + max(len(format_value(t, chart.unit)) for t in nice_ticks(chart.peak())) * 7
        + (18 if chart.y_label or chart.unit else 0)
    )
    right, top = 16, 14
    band = (width - left - right) / max(n, 1)
    rotate = widest * CHAR_W > band * 0.95
    label_room = min(110.0, widest * CHAR_W * 0.72 + 14) if rotate else 20.0
    bottom = label_room + (18 if chart.x_label else 0) + (24 if many else 0) + 8
    x0, x1, y0, y1 = float(left), float(width - right), float(top), float(height - bottom)
    ticks = nice_ticks(chart.peak())
    high = ticks[-1]

    def y_of(value: float) -> float:
        return y1 - (y1 - y0) * value / high

    title_id, desc_id = f"{ident}-title", f"{ident}-desc"
    described = "; ".join(
        f"{s.name}: "
        + ", ".join(
            f"{x} {format_value(v, chart.unit)}" for x, v in zip(chart.x, s.values, strict=True)
        )
        for s in chart.series
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{chart.kind}" '
        f'id="{_a(ident)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{_a(title_id)} {_a(desc_id)}" '
        f'data-chart="{_a(chart.key)}" font-family="system-ui,sans-serif" font-size="11">',
        f'<title id="{_a(title_id)}">{escape(chart.title)}</title>',
        f'<desc id="{_a(desc_id)}">{escape(axis_title(chart))}. {escape(described)}</desc>',
    ]
    # grid and y ticks
    for tick in ticks:
        y = y_of(tick)
        out.append(
            f'<line class="grid" x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" '
            'stroke="#e3e7ec"/>'
        )
        out.append(
            f'<text class="tick y-tick" x="{x0 - 6:.1f}" y="{y + 4:.1f}" '
            f'text-anchor="end" fill="#4a5663">{escape(format_value(tick, chart.unit))}'
            "</text>"
        )
    out.append(
        f'<line class="axis y-axis" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x0:.1f}" '
        f'y2="{y1:.1f}" stroke="#4a5663"/>'
    )
    out.append(
        f'<line class="axis x-axis" x1="{x0:.1f}" y1="{y1:.1f}" x2="{x1:.1f}" '
        f'y2="{y1:.1f}" stroke="#4a5663"/>'
    )
    if axis_title(chart):
        cy = (y0 + y1) / 2
        out.append(
            f'<text class="axis-label y-label" x="14" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {cy:.1f})" fill="#1d2733">'
            f"{escape(axis_title(chart))}</text>"
        )
    # x labels: every one that fits
    room = band if not rotate else 16.0
    step = (
        max(1, math.ceil(16.0 / band))
        if rotate
        else max(1, math.ceil(widest * CHAR_W / max(room, 1.0)))
    )
    for i, label in enumerate(chart.x):
        if i % step and i != n - 1:
            continue
        cx = x0 + band * (i + 0.5)
        if rotate:
            out.append(
                f'<text class="tick x-tick" x="{cx:.1f}" y="{y1 + 12:.1f}" '
                f'text-anchor="end" transform="rotate(-40 {cx:.1f} {y1 + 12:.1f})" '
                f'fill="#4a5663">{escape(label)}</text>'
            )
        else:
            out.append(
                f'<text class="tick x-tick" x="{cx:.1f}" y="{y1 + 15:.1f}" '
                f'text-anchor="middle" fill="#4a5663">{escape(label)}</text>'
            )
    if chart.x_label:
        out.append(
            f'<text class="axis-label x-label" x="{(x0 + x1) / 2:.1f}" '
            f'y="{y1 + label_room + 12:.1f}" text-anchor="middle" fill="#1d2733">'
            f"{escape(chart.x_label)}</text>"
        )
    out.extend(_marks(chart, x0, band, y_of))
    if chart.empty:
        nothing = translate(N_("No data in this period"))
        out.append(
            f'<text class="empty" x="{(x0 + x1) / 2:.1f}" y="{(y0 + y1) / 2:.1f}" '
            f'text-anchor="middle" fill="#5b6876">'
            f"{escape(nothing)}</text>"
        )
    if many:
        out.extend(_legend(chart, x0, float(height - 10)))
    out.append("</svg>")
    return "".join(out)


def _marks(chart: Chart, x0: float, band: float, y_of: Callable[[float], float]) -> list[str]:
    out: list[str] = []
    k = len(chart.series)
    if chart.kind == "line":
        for s_i, series in enumerate(chart.series):
            colour = PALETTE[s_i % len(PALETTE)]
            points = [
                (x0 + band * (i + 0.5), y_of(v), x, v)
                for i, (x, v) in enumerate(zip(chart.x, series.values, strict=True))
                if v is not None
            ]
            if len(points) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
                out.append(
                    f'<polyline class="line series-{s_i}" data-series="{_a(series.name)}"'
                    f' points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
            for px, py, x, v in points:
                out.append(
                    f'<circle class="point series-{s_i}" cx="{px:.1f}" cy="{py:.1f}" '
                    f'r="3.5" fill="{colour}" data-series="{_a(series.name)}" '
                    f'data-x="{_a(x)}" data-value="{v:g}"><title>{escape(series.name)}, '
                    f"{escape(x)}: {escape(format_value(v, chart.unit))}</title></circle>"
                )
        return out
    stacked = chart.kind == "stacked"
    group = band * 0.72
    width = group if stacked else group / k
    base = y_of(0)
    for i, x in enumerate(chart.x):
        left = x0 + band * i + (band - group) / 2
        floor = 0.0
        for s_i, series in enumerate(chart.series):
            value = series.values[i]
            if value is None:
                continue
            colour = PALETTE[s_i % len(PALETTE)]
            lower = floor if stacked else 0.0
            y_top, y_bottom = y_of(lower + value), (y_of(lower) if stacked else base)
            bx = left if stacked else left + width * s_i
            out.append(
                f'<rect class="bar series-{s_i}" x="{bx:.2f}" y="{y_top:.2f}" '
                f'width="{max(width - 1, 1):.2f}" height="{y_bottom - y_top:.2f}" '
                f'fill="{colour}" data-series="{_a(series.name)}" data-x="{_a(x)}" '
                f'data-value="{value:g}"><title>{escape(series.name)}, {escape(x)}: '
                f"{escape(format_value(value, chart.unit))}</title></rect>"
            )
            if stacked:
                floor += value
            elif k == 1 and band >= 28:
                out.append(
                    f'<text class="value" x="{bx + width / 2:.1f}" y="{y_top - 3:.1f}" '
                    f'text-anchor="middle" fill="#1d2733">'
                    f"{escape(format_value(value, chart.unit))}</text>"
                )
    return out


def _legend(chart: Chart, x: float, y: float) -> list[str]:
    out = ['<g class="legend">']
    for s_i, series in enumerate(chart.series):
        colour = PALETTE[s_i % len(PALETTE)]
        out.append(
            f'<rect class="swatch" x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" '
            f'fill="{colour}"/><text class="legend-label" x="{x + 14:.1f}" y="{y:.1f}" '
            f'fill="#1d2733">{escape(series.name)}</text>'
        )
        x += 14 + len(series.name) * CHAR_W + 18
    out.append("</g>")
    return out


def render_table(chart: Chart) -> str:
    """The chart's numbers as an HTML table: x labels down, one column per series."""
    head = "".join(f'<th scope="col">{escape(s.name)}</th>' for s in chart.series)
    rows = []
    for i, x in enumerate(chart.x):
        cells = "".join(
            f'<td class="num">{escape(format_value(s.values[i], chart.unit))}</td>'
            for s in chart.series
        )
        rows.append(f'<tr><th scope="row">{escape(x)}</th>{cells}</tr>')
    return (
        f'<table class="chart-data"><thead><tr><th scope="col">'
        f"{escape(chart.x_label)}</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )


def render_figure(chart: Chart, *, ident: str = "chart", translate: Translate = _same) -> str:
    """A ``<figure>``: the chart's title as caption, the SVG, and its data table folded
    under it (for screen readers, copying, and printing without colour)."""
    data_table = translate(N_("Data table"))
    return (
        f'<figure class="chart" data-chart="{_a(chart.key)}">'
        f"<figcaption>{escape(chart.title)}</figcaption>"
        f"{render_svg(chart, ident=ident, translate=translate)}"
        f"<details><summary>{escape(data_table)}</summary>"
        f"{render_table(chart)}</details></figure>"
    )
