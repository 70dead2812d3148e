"""The HTML report: one self-contained page, checked by rendering it in headless Chromium."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from crmcore.charts import Chart
from crmcore.registry import ReportSection
from crmcore.render import render_html
from crmcore.report import build_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture
def report(make_crm, tmp_path):
    crm = make_crm()
    for i, rep in enumerate(["ann", "bo", "ann"]):
        c = crm.customers.add(actor=rep, name=f"Customer {i}")
        crm.interactions.log(actor=rep, customer_id=c.id, kind="purchase" if i else "visit",
                             rep=rep, amount=10.0 if i else None)
    sections = [*build_report(crm),
                ReportSection("Grade pyramid", ("grade", "customers"),
                              [("A", 3), ("B", 7), ("C <&> D", 12)],
                              charts=[Chart.from_mapping("Customers per grade",
                                                         {"A": 3, "B": 7, "C <&> D": 12},
                                                         unit="customers", x_label="Grade")],
                              note="escaped <b>")]
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
        pytest.skip("headless Chromium is not installed (.ci/install-chromium installs it "
                    "where apt-get is available)")
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                          "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for title in ("Customers and contacts", "Conversion rate per rep", "Grade pyramid"):
        assert title in dom
    assert dom.count("<rect") >= 3
    shot = tmp_path / "report.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={shot}", "--window-size=1100,1400", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000  # a real rendering, not a blank page
