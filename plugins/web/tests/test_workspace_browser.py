"""The workspace in a real browser: Debian's chromium, driven by selenium, against a real
``crm serve`` over a store made by ``crm init --profile retail`` (one server for the module,
a fresh browser per test; a failing test keeps its screenshot)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crmcore_web.browser import WorkspaceServer, browser_missing, sign_in, wait_for

PASSWORD = "correct horse battery"

if browser_missing() is None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkspaceServer]:
    why = browser_missing()
    if why is not None:
        pytest.skip(f"browser test skipped: {why}")
    made = WorkspaceServer(Path(tmp_path_factory.mktemp("workspace")))
    try:
        made.add_user("ann", "agent", PASSWORD, "--team", "north")
        made.start()
        yield made
    finally:
        made.stop()


def seed(
    server: WorkspaceServer, name: str, phone: str, *, task: str | None = None
) -> tuple[Any, Any]:
    crm = server.open()
    try:
        customer = crm.customers.add(
            actor="system", name=name, phone=phone, owner="ann", timezone="UTC"
        )
        made = None
        if task:
            made = crm.tasks.create(
                actor="system",
                kind="follow_up",
                title=task,
                due_at=crm.now() - timedelta(hours=1),
                customer_id=customer.id,
                assignee="ann",
            )
    finally:
        crm.close()
    return customer, made


def css(driver: Any, selector: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, selector)


def test_sign_in_see_my_day_and_complete_a_task_with_one_click(server, browser):
    _customer, task = seed(server, "Wang Wei", "13812345001", task="Ask about the order")
    sign_in(browser, server, "ann", PASSWORD)  # typed, submitted with Enter
    assert browser.current_url.rstrip("/") == server.url
    assert css(browser, "h1").text == "My day"
    row = css(browser, f'tr[data-task="{task.id}"]')
    assert "Wang Wei" in row.text
    row.find_element(By.CSS_SELECTOR, "form[action$='/complete'] button").click()
    wait_for(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-task="{task.id}"]'))
    assert "Task completed: Ask about the order" in css(browser, ".notice").text
    crm = server.open()
    try:
        done = crm.tasks.get(task.id)
    finally:
        crm.close()
    assert done.status.value == "done" and done.completed_by == "ann"


def test_open_a_customer_and_log_a_purchase(server, browser):
    customer, _task = seed(server, "Li Na", "13812345002", task="Offer the new range")
    sign_in(browser, server, "ann", PASSWORD)
    css(browser, f'tr a[href="/customers/{customer.id}"]').click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text.startswith("Li Na"))
    assert "+8613812345002" in browser.page_source
    browser.find_element(By.ID, "contact-kind").send_keys("Purchase")
    browser.find_element(By.ID, "contact-summary").send_keys("a rice cooker")
    browser.find_element(By.ID, "contact-amount").send_keys("399" + Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".notice"))
    assert "Recorded: Purchase" in css(browser, ".notice").text
    assert "a rice cooker" in css(browser, "#h-history").find_element(By.XPATH, "..").text
    crm = server.open()
    try:
        logged = crm.interactions.for_customer(customer.id)
    finally:
        crm.close()
    assert [(i.kind, i.amount, i.created_by) for i in logged] == [("purchase", 399.0, "ann")]


def test_edit_with_a_version_conflict_then_redo(server, browser):
    customer, _ = seed(server, "Zhou Min", "13812345003")
    sign_in(browser, server, "ann", PASSWORD)
    browser.get(f"{server.url}/customers/{customer.id}/edit")
    region = browser.find_element(By.ID, "f-region")
    region.send_keys("East")
    crm = server.open()  # a colleague saves first
    try:
        crm.customers.update(customer.id, actor="system", region="West")
    finally:
        crm.close()
    region.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".conflict"))
    row = css(browser, 'tr[data-field="region"]')
    assert row.find_element(By.CSS_SELECTOR, ".stored").text == "West"
    assert row.find_element(By.CSS_SELECTOR, ".mine").text == "East"
    css(browser, "form.form-grid button[type=submit]").click()  # redo: keep mine
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".notice"))
    crm = server.open()
    try:
        assert crm.customers.get(customer.id).region == "East"
    finally:
        crm.close()


def test_search_by_phone_from_the_box_on_every_page(server, browser):
    customer, _ = seed(server, "Sun Jing", "13812345004")
    sign_in(browser, server, "ann", PASSWORD)
    box = browser.find_element(By.ID, "search-q")
    box.send_keys("138-1234-5004" + Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.result"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.result")
    assert len(rows) == 1 and "Sun Jing" in rows[0].text
    assert "+86138****5004" in rows[0].text
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    wait_for(browser, lambda d: d.current_url.endswith(f"/customers/{customer.id}"))


def test_switch_to_chinese_and_back(server, browser):
    sign_in(browser, server, "ann", PASSWORD)
    assert css(browser, "h1").text == "My day"
    css(browser, 'form.lang button[value="zh_CN"]').click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "我的一天")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert "退出" in css(browser, ".who").text
    browser.get(f"{server.url}/search")  # the choice stays
    assert css(browser, "h1").text == "查找客户"
    css(browser, 'form.lang button[value="en"]').click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1").text == "Find a customer")


def test_every_field_has_a_label_and_the_keyboard_reaches_the_search(server, browser):
    customer, _ = seed(server, "Wu Lei", "13812345005", task="Say hello")
    browser.get(f"{server.url}/login")
    pages = [f"{server.url}/login"]
    unlabelled = []
    script = """return Array.from(document.querySelectorAll('input,select,textarea'))
        .filter(e => e.type !== 'hidden' && e.type !== 'submit')
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map(e => e.name || e.id);"""
    unlabelled += browser.execute_script(script)
    sign_in(browser, server, "ann", PASSWORD)
    pages += [
        f"{server.url}/",
        f"{server.url}/customers/{customer.id}",
        f"{server.url}/customers/{customer.id}/edit",
        f"{server.url}/search?q=wu",
    ]
    for url in pages[1:]:
        browser.get(url)
        unlabelled += [f"{url}: {name}" for name in browser.execute_script(script)]
    assert unlabelled == []
    browser.get(f"{server.url}/")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link first, then the navigation
    for _ in range(10):
        if browser.switch_to.active_element.get_attribute("id") == "search-q":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "search-q"
