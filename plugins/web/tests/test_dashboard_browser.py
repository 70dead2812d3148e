"""The manager dashboard in a real browser: a manager switches period and team and the charts
follow the data (read from the SVG's data attributes, not pixels); a rep is refused."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from crmcore_web.browser import sign_in, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

PASSWORD = "correct horse battery"


def _seed(server):
    """North (ann): 2 customers served this week, 1 bought. South (bo): 3 served five weeks
    ago, all bought, and 1 served this week who did not."""
    crm = server.open()
    try:
        # in the store's time zone: the custom dates below are its days, not UTC's (from
        # 16:00 UTC on, Asia/Shanghai is a day ahead)
        now = crm.now().astimezone(ZoneInfo(crm.config.core.timezone))
        for i, (rep, kind, days_ago) in enumerate(
            [
                ("ann", "purchase", 0),
                ("ann", "consultation", 0),
                ("bo", "purchase", 35),
                ("bo", "purchase", 35),
                ("bo", "purchase", 36),
                ("bo", "consultation", 0),
            ]
        ):
            customer = crm.customers.add(actor="system", name=f"Customer {i}", owner=rep)
            crm.interactions.log(
                actor="system",
                customer_id=customer.id,
                kind=kind,
                rep=rep,
                amount=50.0 if kind == "purchase" else None,
                occurred_at=now - timedelta(days=days_ago, minutes=5),
            )
        return now
    finally:
        crm.close()


def bars(browser, chart: str) -> dict[str, float]:
    """The bars the chart ``chart`` draws: {x label: value}."""
    return {
        rect.get_attribute("data-x"): float(rect.get_attribute("data-value"))
        for rect in browser.find_elements(By.CSS_SELECTOR, f'svg[data-chart="{chart}"] rect.bar')
    }


def points(browser, chart: str, series: str) -> list[float]:
    return [
        float(c.get_attribute("data-value"))
        for c in browser.find_elements(
            By.CSS_SELECTOR, f'svg[data-chart="{chart}"] circle[data-series="{series}"]'
        )
    ]


def show(browser, **fields: str) -> None:
    """Fill the dashboard's form and submit it; wait for the new page."""
    form = browser.find_element(By.CSS_SELECTOR, "form.dashboard-filter")
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            browser.execute_script("arguments[0].value = arguments[1]", element, value)
    old = browser.find_element(By.TAG_NAME, "html")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda d: old.id != d.find_element(By.TAG_NAME, "html").id)


def test_a_manager_switches_period_and_team_and_the_charts_follow(workspace_server, browser):
    server = workspace_server
    server.add_user("mia", "manager", PASSWORD)
    for rep, team in (("ann", "north"), ("bo", "south")):
        server.add_user(rep, "agent", PASSWORD, "--team", team)
        server.cli("reps", "add", rep, "--team", team)  # the roster: whose work is whose
    now = _seed(server)
    server.start()
    sign_in(browser, server, "mia", PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "nav a[href='/dashboard']").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "form.dashboard-filter"))
    # this week, everyone: ann 1 of 2 bought, bo 0 of 1
    assert bars(browser, "conversion_rep") == {"ann": 50.0, "bo": 0.0}
    assert sum(points(browser, "contacts_trend", "all contacts")) == 3
    assert browser.find_element(By.CSS_SELECTOR, ".dashboard-scope .scope").text == "Everyone"
    # the last sixty days: bo's three purchases five weeks ago count, by week
    since = (now - timedelta(days=60)).date().isoformat()
    show(browser, period="custom", since=since, until=now.date().isoformat())
    assert bars(browser, "conversion_rep") == {"ann": 50.0, "bo": 75.0}
    assert sum(points(browser, "contacts_trend", "all contacts")) == 6
    labels = [
        t.text
        for t in browser.find_elements(
            By.CSS_SELECTOR, 'svg[data-chart="contacts_trend"] text.x-label'
        )
    ]
    assert labels == ["Week from"]
    assert since in browser.find_element(By.CSS_SELECTOR, ".dashboard-scope .period").text
    # team south only
    show(browser, team="south")
    assert bars(browser, "conversion_rep") == {"bo": 75.0}
    assert bars(browser, "conversion_team") == {"south": 75.0}
    assert browser.find_element(By.CSS_SELECTOR, ".dashboard-scope .scope").text == "Team: south"
    # every bundled plugin that reports has its card
    sources = {
        s.get_attribute("data-source")
        for s in browser.find_elements(By.CSS_SELECTOR, "section.dashboard-card[data-source]")
    }
    assert {"core", "complaints", "followup", "grading", "loyalty"} <= sources
    # in Chinese (the language switch lands on the page without its query: ask again)
    chosen = browser.current_url
    browser.find_element(By.CSS_SELECTOR, "form.lang button[value='zh_CN']").click()
    wait_for(
        browser, lambda d: d.execute_script("return document.documentElement.lang") == "zh-CN"
    )  # read in the page: an element of the old page goes stale
    browser.get(chosen)
    assert browser.find_element(By.TAG_NAME, "h1").text == "管理看板"
    assert browser.find_element(By.CSS_SELECTOR, ".dashboard-scope .scope").text == "团队: south"
    assert bars(browser, "conversion_rep") == {"bo": 75.0}  # same data, other words
    caption = browser.find_element(
        By.CSS_SELECTOR, 'figure[data-chart="conversion_rep"] figcaption'
    ).text
    assert caption == "各代表转化率"


def test_a_rep_is_refused_the_dashboard_and_does_not_see_it_in_the_menu(workspace_server, browser):
    server = workspace_server
    server.add_user("ann", "agent", PASSWORD, "--team", "north")
    server.start()
    sign_in(browser, server, "ann", PASSWORD)
    assert not browser.find_elements(By.CSS_SELECTOR, "nav a[href='/dashboard']")
    browser.get(server.url + "/dashboard")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "The dashboard is for shift leads and managers." in body
    assert not browser.find_elements(By.CSS_SELECTOR, "svg[data-chart]")
