"""Callbacks in a real browser (Debian's chromium, the web plugin's harness): record an
unsatisfied answer from the script and see the recovery work it created."""

from __future__ import annotations

import pytest

pytest.importorskip("selenium")

from crmcore_web.browser import sign_in, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from crmcore import open_crm

PASSWORD = "correct horse battery"
TEAMS = """
[followup.teams.north]
lead = "wu"
"""


def test_an_unsatisfied_callback_creates_the_recovery_task(workspace_server, browser):
    server = workspace_server
    with server.config.open("a", encoding="utf-8") as handle:
        handle.write(TEAMS)  # the team lead who recovers unhappy customers
    server.add_user("ann", "agent", PASSWORD, "--team", "north")
    server.add_user("wu", "shift_lead", PASSWORD, "--team", "north")
    server.cli("reps", "add", "ann", "--team", "north")
    server.cli("reps", "add", "wu", "--team", "north")
    with open_crm(str(server.config)) as crm:
        customer = crm.customers.add(
            actor="system", name="Wang Wei", phone="13812345678", owner="ann"
        )
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="purchase", amount=299.0)
        [callback] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    assert callback.assignee == "ann"
    server.start()
    sign_in(browser, server, "ann", PASSWORD)

    browser.get(f"{server.url}/followup/callbacks")
    row = browser.find_element(By.CSS_SELECTOR, f'tr.callback[data-task="{callback.id}"]')
    assert "Wang Wei" in row.text
    row.find_element(By.LINK_TEXT, "Open the script").click()
    wait_for(browser, lambda d: d.current_url.endswith(f"/followup/callbacks/{callback.id}"))
    script = browser.find_element(By.CSS_SELECTOR, "section.script").text
    assert "recent purchase" in script and "If not satisfied" in script
    browser.find_element(By.ID, "cb-satisfied-0").click()
    Select(browser.find_element(By.ID, "cb-score")).select_by_value("2")
    browser.find_element(By.ID, "cb-notes").send_keys("The parcel came a week late")
    browser.find_element(By.CSS_SELECTOR, "form[action$='" + callback.id + "'] button").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "section.outcome"))
    outcome = browser.find_element(By.CSS_SELECTOR, "section.outcome").text
    assert "not satisfied" in outcome and "A recovery task was created for wu." in outcome

    with open_crm(str(server.config)) as crm:
        [recovery] = crm.tasks.find({"kind": "recovery", "customer_id": customer.id})
        done = crm.tasks.get(callback.id)
    assert recovery.assignee == "wu" and recovery.priority.name == "HIGH"
    assert done.status.value == "done" and done.completed_by == "ann"
