"""The workspace in a real browser: Debian's chromium, driven by selenium, against a real
``crm serve`` over a store made by ``crm init --profile retail``."""

from __future__ import annotations

from datetime import timedelta

from selenium.webdriver.common.by import By

from crmcore_web.browser import sign_in, wait_for

PASSWORD = "correct horse battery"


def _seed(server):
    crm = server.open()
    try:
        customer = crm.customers.add(actor="system", name="Wang Wei", phone="13812345678",
                                     owner="ann")
        task = crm.tasks.create(actor="system", kind="follow_up", title="Ask about the order",
                                due_at=crm.now() - timedelta(hours=1), customer_id=customer.id,
                                assignee="ann")
    finally:
        crm.close()
    return customer, task


def test_sign_in_see_my_day_and_complete_a_task_with_one_click(workspace_server, browser):
    server = workspace_server
    server.add_user("ann", "agent", PASSWORD, "--team", "north")
    customer, task = _seed(server)
    server.start()
    sign_in(browser, server, "ann", PASSWORD)
    assert browser.current_url.rstrip("/") == server.url
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-task="{task.id}"]')
    assert "Wang Wei" in row.text
    row.find_element(By.CSS_SELECTOR, "form[action$='/complete'] button").click()
    wait_for(browser, lambda d: not d.find_elements(By.CSS_SELECTOR,
                                                     f'tr[data-task="{task.id}"]'))
    assert "Task completed" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    crm = server.open()
    try:
        done = crm.tasks.get(task.id)
    finally:
        crm.close()
    assert done.status.value == "done" and done.completed_by == "ann"
