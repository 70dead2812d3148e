# ruff: noqa: RUF001  (the expected Chinese text uses full-width punctuation)
"""``crm report --html --lang zh_CN`` as shipped, on demo stores: every section of every bundled
plugin in Chinese (titles, columns, notes), none left in English; ``--lang en`` stays English.
Also the report messages themselves (``crmcore.i18n.msg``, ``joined``, ``term``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from crmcore import i18n
from crmcore.i18n import N_, joined, msg, term
from crmcore.registry import ReportSection, ReportWindow
from crmcore.render import cell_text, note_text

#: English title -> Chinese title of each section, by where it comes from.
RETAIL = {
    # core
    "Customers and contacts": "客户与联系",
    "Conversion rate per rep": "代表转化率",
    # grading
    "Pipeline grades (A-E)": "商机等级（A-E）",
    "Value tiers: RFM segment": "价值分层：RFM 分群",
    "Value tiers: pyramid tier": "价值分层：金字塔分层",
    "Churn watch (valuable customers)": "流失预警（重要客户）",
    "Churn outcomes (last 90 days)": "流失结果（近 90 天）",
    # followup
    "Follow-ups by grade": "各等级跟进情况",
    "Callback coverage": "回访覆盖率",
    "Callback satisfaction": "回访满意度",
    "Unsatisfied callbacks by department": "各部门回访不满意情况",
    "Rep load": "客服工作量",
    # loyalty
    "Loyalty points": "会员积分",
    "Loyalty tiers": "会员等级",
    "Referrals (old brings new)": "转介绍（老带新）",
    "Top referrers": "推荐人排行",
    # complaints
    "Complaints (last 30 days)": "投诉（近 30 天）",
}
SERVICE = {
    "Service orders open, by type and step": "未结服务工单（按类型和环节）",
    "Service orders opened and closed": "服务工单新建与关闭",
    "Service SLA breaches": "服务工单超时",
    "Service cycle time per step (hours)": "各环节处理时长（小时）",
    "Cancellation requests by reason": "各原因的退订申请",
    "First response to enquiries": "咨询首次响应",
    "Care campaigns": "关怀活动",
}
#: Fixed words of notes, rows and charts that must not stay English in Chinese.
ENGLISH_WORDS = (
    "follow-up cadence follows the grade",
    "customers graded",
    "the balance is always the ledger",
    "rewards credited in all",
    "satisfaction after each callback",
    "key customers should reach",
    "details: crm complaints report",
    "watched (hold a valuable tier)",
    "points outstanding",
    "first-response SLA met",
    "overdue up to a day",
    "Complaints opened",
    "Week from",
    "a rep's team from the roster",
    "Project-Id-Version",  # gettext("") is the catalog's header: never asked for
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def crm(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CRMCORE_PLUGINS"},
    )


def demo(folder, profile, customers, days):
    done = crm(
        "demo",
        "--profile",
        profile,
        "--customers",
        str(customers),
        "--days",
        str(days),
        "--dir",
        str(folder / profile),
        "--seed",
        "5",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return folder / profile / "crm.toml"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zh-demo")
    return {
        "retail": demo(folder, "retail", 40, 21),
        "telecom": demo(folder, "telecom", 20, 14),
    }


def report(config, lang, folder):
    out = folder / f"{config.parent.name}-{lang}.html"
    done = crm("--config", str(config), "report", "--html", str(out), "--lang", lang, cwd=folder)
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


def headings(page):
    return re.findall(r"<h2>(.*?)</h2>", page)


@pytest.mark.parametrize(("store", "titles"), [("retail", RETAIL), ("telecom", SERVICE)])
def test_every_plugin_section_is_chinese_in_the_chinese_report(stores, tmp_path, store, titles):
    page = report(stores[store], "zh_CN", tmp_path)
    shown = headings(page)
    for english, chinese in titles.items():
        assert any(h.startswith(chinese) for h in shown), (chinese, shown)
        assert not any(h.startswith(english) for h in shown), english
    for words in ENGLISH_WORDS:
        assert words.lower() not in page.lower(), words
    # every heading, column header and note is Chinese
    assert shown and all(CJK.search(h) for h in shown), shown
    columns = re.findall(r"<th>(.*?)</th>", page)
    assert columns and [c for c in columns if not CJK.search(c)] == []
    notes = re.findall(r'<p class="note">(.*?)</p>', page)
    assert notes and [n for n in notes if not CJK.search(n)] == []
    assert "；" in page  # parts of a note joined the Chinese way


@pytest.mark.parametrize(("store", "titles"), [("retail", RETAIL), ("telecom", SERVICE)])
def test_english_stays_english(stores, tmp_path, store, titles):
    page = report(stores[store], "en", tmp_path)
    shown = headings(page)
    for english in titles:
        assert any(h.startswith(english.replace("'", "&#x27;")) for h in shown), english
    assert not CJK.search(page)


def test_the_terminal_report_is_english_unless_lang_is_given(stores, tmp_path):
    done = crm("--config", str(stores["retail"]), "report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Churn watch (valuable customers)" in done.stdout and not CJK.search(done.stdout)
    done = crm("--config", str(stores["retail"]), "report", "--lang", "zh_CN", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for english, chinese in RETAIL.items():
        assert chinese in done.stdout and english not in done.stdout, english


# -- the messages themselves --------------------------------------------------------------


@pytest.fixture
def zh(tmp_path):
    folder = tmp_path / "loc"
    po = folder / "zh_CN" / "LC_MESSAGES" / "t.po"
    po.parent.mkdir(parents=True)
    entries = {
        "%(n)s of %(total)s customers graded": "已分级 %(n)s 位（共 %(total)s 位客户）",
        "as of %(when)s": "截至 %(when)s",
        "now": "当前",
        "revenue": "营收",
        "Value tiers: %(scheme)s": "价值分层：%(scheme)s",
        "pyramid tier": "金字塔分层",
        "; ": "；",
    }
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        + "".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in entries.items()),
        "utf-8",
    )
    i18n.clear_cache()
    from babel.support import Translations

    from crmcore.i18n import _compile

    trans = _compile(po, "zh_CN", "t")
    assert isinstance(trans, Translations)
    yield trans.gettext
    i18n.clear_cache()


def test_a_message_is_english_as_a_str_and_translated_with_its_parameters(zh):
    graded = msg("%(n)s of %(total)s customers graded", n=3, total=9)
    assert graded == "3 of 9 customers graded" and isinstance(graded, str)
    assert i18n.translate(graded, zh) == "已分级 3 位（共 9 位客户）"
    title = msg("Value tiers: %(scheme)s", scheme=term(N_("pyramid tier")))
    assert title == "Value tiers: pyramid tier"
    assert i18n.translate(title, zh) == "价值分层：金字塔分层"
    # a plain str parameter is data: shown as given even when it happens to be a message
    assert i18n.translate(msg("as of %(when)s", when="now"), zh) == "截至 now"
    note = joined(graded, term(N_("now")), "", N_("revenue"))
    assert note == "3 of 9 customers graded; now; revenue"
    assert i18n.translate(note, zh) == "已分级 3 位（共 9 位客户）；当前；营收"
    assert i18n.translate("", zh) == ""  # never the catalog's header


def test_notes_and_cells_of_a_section_translate_part_by_part(zh):
    window = ReportWindow(team="north")
    section = ReportSection(
        "t",
        ("measure",),
        [(msg("%(n)s of %(total)s customers graded", n=1, total=2),)],
        note=joined(N_("revenue"), window.label(), "DOMAIN §7"),
    )
    assert note_text(section, window, zh) == "营收"  # the window's words and the handbook go
    assert cell_text(section.rows[0][0], zh) == "已分级 1 位（共 2 位客户）"
    assert cell_text("now", zh) == "当前" and cell_text("", zh) == ""
    plain = ReportSection("t", ("m",), [], note="revenue; DOMAIN §7")
    assert note_text(plain, ReportWindow(), zh) == "营收"  # a plain note, handbook gone
