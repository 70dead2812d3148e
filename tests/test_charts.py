"""Charts as data (crmcore.charts) and as SVG (crmcore.chart_svg), read back with xml.etree."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from crmcore.chart_svg import format_value, nice_ticks, render_figure, render_svg, render_table
from crmcore.charts import Chart, Series, axis_name, bucket_index, buckets, grain_for, percent

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(chart: Chart) -> ElementTree.Element:
    return ElementTree.fromstring(render_svg(chart, ident="c"))


def bars(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [r for r in root.findall(".//s:rect", NS) if "bar" in r.get("class", "").split()]


def texts(root: ElementTree.Element, cls: str) -> list[str]:
    return [
        t.text or "" for t in root.findall(".//s:text", NS) if cls in t.get("class", "").split()
    ]


WEEKLY = Chart(
    "Complaints per week",
    ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"],
    [Series("tickets opened", [3, 7, 12, 0])],
    unit="tickets",
    y_label="Tickets",
    x_label="Week from",
    key="complaints_week",
)


def test_one_bar_per_value_with_heights_proportional_to_the_data():
    root = parse(WEEKLY)
    drawn = bars(root)
    assert [b.get("data-x") for b in drawn] == list(WEEKLY.x)
    assert [float(b.get("data-value")) for b in drawn] == [3, 7, 12, 0]
    heights = [float(b.get("height")) for b in drawn]
    assert heights[3] == 0
    assert heights[1] / heights[0] == pytest.approx(7 / 3, rel=1e-3)
    assert heights[2] / heights[0] == pytest.approx(12 / 3, rel=1e-3)
    # every bar stands on the x axis
    axis = root.find(".//s:line[@class='axis x-axis']", NS)
    base = float(axis.get("y1"))
    for bar in drawn:
        assert float(bar.get("y")) + float(bar.get("height")) == pytest.approx(base, abs=0.02)


def test_y_ticks_cover_the_peak_and_the_scale_spans_the_axis():
    root = parse(WEEKLY)
    labels = texts(root, "y-tick")
    assert labels == ["0", "5", "10", "15"]
    y_axis = root.find(".//s:line[@class='axis y-axis']", NS)
    top, bottom = float(y_axis.get("y1")), float(y_axis.get("y2"))
    grid = [float(g.get("y1")) for g in root.findall(".//s:line[@class='grid']", NS)]
    assert grid[0] == pytest.approx(bottom) and grid[-1] == pytest.approx(top)
    twelve = next(b for b in bars(root) if b.get("data-value") == "12")
    assert float(twelve.get("height")) == pytest.approx((bottom - top) * 12 / 15, abs=0.02)


def test_axes_labels_title_and_accessible_names():
    root = parse(WEEKLY)
    assert root.get("role") == "img"
    title = root.find("s:title", NS)
    assert title.text == "Complaints per week"
    assert title.get("id") in root.get("aria-labelledby").split()
    assert texts(root, "x-tick") == list(WEEKLY.x)
    assert texts(root, "y-label") == ["Tickets"]
    assert texts(root, "x-label") == ["Week from"]
    assert root.get("data-chart") == "complaints_week"
    desc = root.find("s:desc", NS).text
    assert "2026-11-16 12" in desc


def test_percent_unit_on_ticks_and_in_the_axis_title():
    chart = Chart(
        "Conversion per rep",
        ["ann", "bo"],
        [Series("conversion", [50.0, 12.5])],
        unit="%",
        y_label="Customers who bought",
        x_label="Rep",
    )
    root = parse(chart)
    assert all(t.endswith("%") for t in texts(root, "y-tick"))
    assert texts(root, "y-label") == ["Customers who bought (%)"]
    assert texts(root, "value") == ["50%", "12.5%"]


def test_grouped_bars_and_legend_for_several_series():
    chart = Chart(
        "SLA breaches",
        ["w1", "w2"],
        [Series("first response", [2, 4]), Series("resolution", [1, 0])],
    )
    root = parse(chart)
    drawn = bars(root)
    assert len(drawn) == 4
    assert {b.get("data-series") for b in drawn} == {"first response", "resolution"}
    assert texts(root, "legend-label") == ["first response", "resolution"]
    w1 = [b for b in drawn if b.get("data-x") == "w1"]
    assert float(w1[0].get("x")) < float(w1[1].get("x"))  # side by side


def test_stacked_bars_sit_on_each_other():
    chart = Chart(
        "Overdue by grade",
        ["A", "B"],
        [Series("overdue", [2, 1]), Series("due now", [3, 0])],
        kind="stacked",
    )
    root = parse(chart)
    a = [b for b in bars(root) if b.get("data-x") == "A"]
    lower, upper = a
    assert float(upper.get("y")) + float(upper.get("height")) == pytest.approx(
        float(lower.get("y")), abs=0.02
    )
    assert float(upper.get("height")) / float(lower.get("height")) == pytest.approx(1.5)
    assert chart.peak() == 5


def test_line_chart_points_and_gaps():
    chart = Chart(
        "Coverage",
        ["d1", "d2", "d3"],
        [Series("key customers", [100, None, 50])],
        kind="line",
        unit="%",
    )
    root = parse(chart)
    points = root.findall(".//s:circle", NS)
    assert [p.get("data-x") for p in points] == ["d1", "d3"]
    assert float(points[1].get("cy")) > float(points[0].get("cy"))  # 50 lower than 100
    assert root.find(".//s:polyline", NS) is not None


def test_labels_are_escaped_and_empty_charts_say_so():
    chart = Chart("A <b> & c", ["x<y"], [Series("s&t", [0])])
    root = parse(chart)  # parses: everything escaped
    assert root.find("s:title", NS).text == "A <b> & c"
    assert texts(root, "empty") == ["No data in this period"]
    assert "x&lt;y" in render_table(chart)


def test_figure_has_a_data_table_fallback():
    html = render_figure(WEEKLY, ident="f", translate=lambda s: {"Data table": "数据表"}.get(s, s))
    assert "<summary>数据表</summary>" in html
    table = ElementTree.fromstring(render_table(WEEKLY))
    rows = [[c.text for c in tr] for tr in table.iter("tr")]
    assert rows[0] == ["Week from", "tickets opened"]
    assert rows[3] == ["2026-11-16", "12"]


def test_chart_rejects_mismatched_series_and_unknown_kinds():
    with pytest.raises(ValueError, match="3 values for 2 x labels"):
        Chart("t", ["a", "b"], [Series("s", [1, 2, 3])])
    with pytest.raises(ValueError, match="kind"):
        Chart("t", ["a"], [Series("s", [1])], kind="pie")


def test_nice_ticks_and_values():
    assert nice_ticks(12) == [0, 5, 10, 15]
    assert nice_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0.7)[-1] >= 0.7
    assert nice_ticks(3) == [0, 1, 2, 3]  # whole things never tick at 0.5
    assert format_value(1234) == "1,234" and format_value(12.25, "%") == "12.2%"
    assert percent(1, 3) == 33.3 and percent(1, 0) is None


def test_buckets_by_week_in_the_business_time_zone():
    since = datetime(2026, 11, 4, 3, tzinfo=UTC)  # a Wednesday
    until = datetime(2026, 11, 20, tzinfo=UTC)
    weeks = buckets(since, until, "Asia/Shanghai", "week")
    assert [b.label for b in weeks] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert weeks[0].start == since and weeks[-1].end == until  # clipped to the period
    # Monday 00:00 in Shanghai is Sunday 16:00 UTC
    assert weeks[1].start == datetime(2026, 11, 8, 16, tzinfo=UTC)
    at = bucket_index(weeks)
    assert at(datetime(2026, 11, 8, 15, 59, tzinfo=UTC)) == 0
    assert at(datetime(2026, 11, 8, 16, tzinfo=UTC)) == 1
    assert at(until) is None and at(since - timedelta(seconds=1)) is None
    assert axis_name(weeks) == "Week from"


def test_grain_follows_the_length_of_the_period():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert grain_for(start, start + timedelta(days=7)) == "day"
    assert grain_for(start, start + timedelta(days=60)) == "week"
    assert grain_for(start, start + timedelta(days=365)) == "month"
    months = buckets(start, start + timedelta(days=365), "UTC")
    assert len(months) == 12 and months[1].label == "2026-02"
    assert axis_name(months) == "Month"
    with pytest.raises(ValueError, match="end after"):
        buckets(start, start, "UTC")


def test_the_core_catalog_translates_every_report_and_chart_string():
    from pathlib import Path

    import crmcore
    from crmcore.i18n_catalogs import problems

    src = Path(crmcore.__file__).parent
    assert problems(src, src / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore.po") == []
