"""The HTML report: one self-contained page, checked by rendering it in headless Chromium."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest

from crmcore.charts import Chart
from crmcore.registry import ReportSection
from crmcore.render import render_html
from crmcore.report import build_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def report(make_crm, tmp_path):
    crm = make_crm()
    for i, rep in enumerate(["ann", "bo", "ann"]):
        c = crm.customers.add(actor=rep, name=f"Customer {i}")
        crm.interactions.log(
            actor=rep,
            customer_id=c.id,
            kind="purchase" if i else "visit",
            rep=rep,
            amount=10.0 if i else None,
        )
    sections = [
        *build_report(crm),
        ReportSection(
            "Grade pyramid",
            ("grade", "customers"),
            [("A", 3), ("B", 7), ("C <&> D", 12)],
            charts=[
                Chart.from_mapping(
                    "Customers per grade",
                    {"A": 3, "B": 7, "C <&> D": 12},
                    unit="customers",
                    x_label="Grade",
                )
            ],
            note="escaped <b>",
        ),
    ]
    path = tmp_path / "report.html"
    render_html(sections, path, title="crmcore report", generated=crm.now())
    return path


def test_page_is_self_contained_and_well_formed(report):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "external asset"
    assert "<svg" in text and "<style>" in text
    assert "C &lt;&amp;&gt; D" in text and "<b>" not in text

    class Balance(HTMLParser):
        void = {"meta", "br", "img"}

        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag not in self.void:
                self.stack.append(tag)

        def handle_startendtag(self, tag, attrs):
            pass

        def handle_endtag(self, tag):
            assert self.stack and self.stack.pop() == tag, tag

    parser = Balance()
    parser.feed(text)
    assert parser.stack == []


def test_chromium_renders_it(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(
            "headless Chromium is not installed (.ci/install-chromium installs it "
            "where apt-get is available)"
        )
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for title in ("Customers and contacts", "Conversion rate per rep", "Grade pyramid"):
        assert title in dom
    assert dom.count("<rect") >= 3
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1100,1400",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000  # a real rendering, not a blank page


# -- crm report --html as shipped: a demo store, the CLI in a subprocess -------------------

SVG = "{http://www.w3.org/2000/svg}"


def crm(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CRMCORE_PLUGINS"},
    )


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    done = crm(
        "demo",
        "--customers",
        "40",
        "--days",
        "21",
        "--dir",
        str(folder / "store"),
        "--seed",
        "5",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return folder / "store" / "crm.toml"


def charts_in(page: str) -> dict[str, ElementTree.Element]:
    return {
        svg.get("data-chart"): svg
        for svg in (ElementTree.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, re.S))
    }


def test_cli_html_report_shows_its_period_team_and_charts(demo_store, tmp_path):
    config = tomllib.loads(demo_store.read_text())
    zone = config["core"]["timezone"]
    out = tmp_path / "team.html"
    done = crm(
        "--config",
        str(demo_store),
        "report",
        "--html",
        str(out),
        "--period",
        "month",
        "--team",
        "north",
        "--lang",
        "en",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    period = re.search(r'<dd class="period">(.*?)</dd>', page).group(1)
    assert re.fullmatch(
        r"\d{4}-\d\d-01 00:00 to \d{4}-\d\d-\d\d \d\d:\d\d \(" + re.escape(zone) + r"\)", period
    ), period
    assert '<dd class="scope">Team: north</dd>' in page
    assert "DOMAIN" not in page and "§" not in page
    # code names never reach the reader: no snake_case in cells, chart labels or titles
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert cells and not [c for c in cells if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", c)]
    charts = charts_in(page)
    assert {
        "contacts_trend",
        "conversion_rep",
        "conversion_team",
        "complaints_trend",
        "sla_breaches_trend",
        "overdue_by_grade",
        "callback_coverage_trend",
        "churn_risk",
    } <= set(charts)
    sections = page.count("<section>")
    assert len(charts) < sections  # a chart where it helps, not one per table
    for key, svg in charts.items():
        shown = [t.text or "" for t in svg.iter(f"{SVG}text")] + [svg.find(f"{SVG}title").text]
        assert not [t for t in shown if "_" in t], key
        assert svg.find(f".//{SVG}line[@class='axis x-axis']") is not None, key
        assert svg.find(f".//{SVG}line[@class='axis y-axis']") is not None, key
    # conversion per rep draws only the team's reps
    reps = {r.get("data-x") for r in charts["conversion_rep"].iter(f"{SVG}rect") if r.get("data-x")}
    actors = config.get("security", {}).get("actors", {})
    teams = {name: a.get("team") for name, a in actors.items()}
    assert reps and all(teams.get(rep, "north") == "north" for rep in reps)


def test_cli_html_report_for_everyone_says_so(demo_store, tmp_path):
    out = tmp_path / "all.html"
    done = crm(
        "--config", str(demo_store), "report", "--html", str(out), "--lang", "en", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert '<dd class="scope">Everyone</dd>' in page
    assert re.search(r'<dd class="period">the beginning to ', page)
    referrers = charts_in(page).get("top_referrers")
    if referrers is not None:  # referrers by name, never by id
        names = [t.text for t in referrers.iter(f"{SVG}text") if "x-tick" in (t.get("class") or "")]
        assert names and not [n for n in names if re.fullmatch(r"[0-9a-f]{20,}", n or "")]


def test_cli_html_report_in_chinese(demo_store, tmp_path):
    out = tmp_path / "zh.html"
    done = crm(
        "--config",
        str(demo_store),
        "report",
        "--html",
        str(out),
        "--lang",
        "zh_CN",
        "--rep",
        "ann",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and "<title>crmcore 报表</title>" in page
    assert "<dt>期间</dt>" in page and re.search(r'<dd class="scope">\w*代表: ann</dd>', page)
    assert re.search(r'<dd class="period">开始 至 ', page)
    assert "<h2>客户与联系</h2>" in page and "<td>活跃客户</td>" in page
    conversion = charts_in(page)["conversion_rep"]
    assert conversion.find(f"{SVG}title").text == "各代表转化率"
    assert [
        t.text for t in conversion.iter(f"{SVG}text") if "y-label" in (t.get("class") or "")
    ] == ["购买客户占比 (%)"]
    done = crm(
        "--config",
        str(demo_store),
        "report",
        "--html",
        str(tmp_path / "x.html"),
        "--lang",
        "fr",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "fr" in done.stderr and not (tmp_path / "x.html").exists()


def test_cli_terminal_report_shows_chart_titles_without_markup(demo_store):
    """``crm report`` in a terminal: each chart's title in bold, never a literal
    ``[bold]…[/bold]`` (the CLI's console reads no markup)."""
    # the whole history: the demo's 21 days are not all in the calendar month (on the 8th of
    # a month, "--period month" held no complaint and so no complaints chart)
    done = crm("--config", str(demo_store), "report", cwd=demo_store.parent)
    assert done.returncode == 0, done.stderr
    assert "[bold]" not in done.stdout and "[/bold]" not in done.stdout
    titles = [line for line in done.stdout.splitlines() if line.startswith("  Complaints opened")]
    assert titles, done.stdout[-3000:]
