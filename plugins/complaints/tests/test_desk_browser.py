"""The complaint desk in a real browser (Debian's chromium, the web plugin's harness): open a
complaint at intake, let it escalate, see the ladder's state; switch the desk to Chinese."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("selenium")

from crmcore_complaints.api import Complaints
from crmcore_web.browser import sign_in, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from crmcore import ManualClock, open_crm

PASSWORD = "correct horse battery"
ROTA = """
[[complaints.shifts]]
lead = "wu"
start = "00:00"
end = "24:00"
"""


def test_open_a_complaint_at_intake_escalate_it_and_read_the_ladder(workspace_server, browser):
    server = workspace_server
    with server.config.open("a", encoding="utf-8") as handle:
        handle.write(ROTA)  # a shift lead on duty around the clock
    server.add_user("ann", "agent", PASSWORD, "--team", "north")
    server.add_user("wu", "shift_lead", PASSWORD, "--team", "north")
    crm = server.open()
    try:
        customer = crm.customers.add(
            actor="system", name="Wang Wei", phone="13812345678", owner="ann"
        )
    finally:
        crm.close()
    server.start()
    sign_in(browser, server, "ann", PASSWORD)

    browser.get(f"{server.url}/complaints/new?customer_id={customer.id}")
    Select(browser.find_element(By.ID, "c-channel")).select_by_value("phone")
    Select(browser.find_element(By.ID, "c-category")).select_by_value("product_quality")
    Select(browser.find_element(By.ID, "c-claim")).select_by_value("repair_replace_redo")
    browser.find_element(By.ID, "c-emotion-angry").click()
    browser.find_element(By.ID, "c-content").send_keys("The kettle leaks after two days")
    browser.find_element(By.CSS_SELECTOR, "button[name='register']").click()
    wait_for(browser, lambda d: "/complaints/tkt_" in d.current_url)
    ticket_id = browser.current_url.rsplit("/", 1)[-1]
    assert "Complaint registered" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    first = browser.find_element(By.CSS_SELECTOR, 'tr.step[data-level="1"]')
    assert "not reached" in first.text or "next" in first.text

    # a day and an hour later the worker's sweep escalates it to the shift lead on duty
    with open_crm(str(server.config)) as crm:
        ticket = Complaints(crm).get(ticket_id)
    assert (ticket.customer_id, ticket.owner, ticket.category) == (
        customer.id,
        "ann",
        "product_quality",
    )
    with open_crm(
        str(server.config), clock=ManualClock(ticket.opened_at + timedelta(hours=25))
    ) as worker:
        worker.tick("w1")
    browser.get(f"{server.url}/complaints/{ticket_id}")
    step = browser.find_element(By.CSS_SELECTOR, 'tr.step.reached[data-level="1"]')
    assert "Escalated to wu" in step.text
    escalation = browser.find_element(By.CSS_SELECTOR, 'tr.chase[data-kind="escalation"]')
    assert "wu" in escalation.text and "Shift lead" in escalation.text

    # the desk, then in Chinese
    browser.get(f"{server.url}/complaints?scope=all")
    row = browser.find_element(By.CSS_SELECTOR, f'tr.ticket[data-ticket="{ticket_id}"]')
    assert "Wang Wei" in row.text and "wu" in row.text
    browser.find_element(By.CSS_SELECTOR, "form.lang button[value='zh_CN']").click()
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "投诉台")
    row = browser.find_element(By.CSS_SELECTOR, f'tr.ticket[data-ticket="{ticket_id}"]')
    assert "产品质量" in row.text and "已登记" in row.text
