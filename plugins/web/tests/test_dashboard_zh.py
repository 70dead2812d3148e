# ruff: noqa: RUF001  (the expected Chinese text uses full-width punctuation)
"""The manager dashboard in Chinese on a demo store, served as shipped: every bundled plugin's
card (title, key figures, charts, note) in Chinese, none of their English words; in English,
English."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from crmcore_web import create_app

PASSWORD = "correct horse battery"
#: English -> Chinese card and chart titles, one or more per bundled plugin with sections.
TITLES = {
    "Customers and contacts": "客户与联系",  # core
    "Churn watch (valuable customers)": "流失预警（重要客户）",  # grading
    "Valuable customers at risk of churning": None,  # grading's chart: translated, any words
    "Callback satisfaction": "回访满意度",  # followup
    "Overdue follow-ups by grade": "各等级逾期跟进",
    "Callback coverage": "回访覆盖率",
    "Loyalty points": "会员积分",  # loyalty
    "Customers brought by referral": None,
    "Complaints (": "投诉（",  # complaints, with its period
    "Complaints opened": "新增投诉",
    "SLA breaches": "超时情况",
}
ENGLISH_WORDS = (
    "points outstanding",
    "callbacks recorded",
    "watched (hold a valuable tier)",
    "complaint rate",
    "overdue up to a day",
    "first response late",
    "the balance is always the ledger",
    "Project-Id-Version",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def crm(*args, cwd, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("CRM")},
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dash")
    done = crm(
        "demo",
        "--customers",
        "40",
        "--days",
        "21",
        "--dir",
        str(folder / "s"),
        "--seed",
        "5",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    config = folder / "s" / "crm.toml"
    done = crm(
        "--config",
        str(config),
        "user",
        "add",
        "boss",
        "--role",
        "manager",
        "--password-stdin",
        cwd=folder,
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    return config


def dashboard(config, lang):
    with TestClient(create_app(str(config)), headers={"Accept-Language": lang}) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        home = client.post(
            "/login", data={"username": "boss", "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert home.status_code == 200, home.text
        page = client.get("/dashboard", params={"period": "month"})
        assert page.status_code == 200, page.text
        return page.text


def test_every_plugin_card_is_chinese_on_the_chinese_dashboard(store):
    page = dashboard(store, "zh-CN,zh;q=0.9")
    cards = re.findall(r'<h2 id="card-\d+">(.*?)</h2>', page)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    shown = cards + captions
    for english, chinese in TITLES.items():
        assert not any(s.startswith(english) for s in shown), english
        if chinese is not None:
            assert any(s.startswith(chinese) for s in shown), (chinese, shown)
    assert cards and all(CJK.search(c) for c in cards), cards
    assert captions and all(CJK.search(c) for c in captions), captions
    for words in ENGLISH_WORDS:
        assert words.lower() not in page.lower(), words


def test_the_english_dashboard_stays_english(store):
    page = dashboard(store, "en")
    cards = re.findall(r'<h2 id="card-\d+">(.*?)</h2>', page)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    for english in TITLES:
        assert any(s.startswith(english) for s in cards + captions), english
    assert not [c for c in cards + captions if CJK.search(c)]
