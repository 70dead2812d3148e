"""Churn counted (DOMAIN §9): lost customers with type and reason, won back by a purchase,
and churn, win-back and repeat-purchase rates over a period."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from crmcore_grading import api
from crmcore_grading.outcomes import mark_lost, measures
from grading_helpers import add_customer, grading_of, log

from crmcore import ValidationError
from crmcore.testing import START

DAY = timedelta(days=1)


def test_a_lost_customer_is_won_back_by_their_next_purchase(grading_crm, clock):
    crm = grading_crm()
    cid = add_customer(crm)
    log(crm, cid, "purchase", amount=50.0)
    clock.advance(10 * DAY)
    lost = mark_lost(
        crm,
        cid,
        actor="ann",
        churn_type="competitive",
        reason="moved to a rival with cheaper plans",
    )
    stored = grading_of(crm, cid)
    assert stored["lost"] == lost and lost["type"] == "competitive" and lost["by"] == "ann"
    assert [o["type"] for o in stored["outcomes"]] == ["competitive"]
    with pytest.raises(ValidationError, match="already marked lost"):
        mark_lost(crm, cid, actor="ann", churn_type="natural", reason="again")
    clock.advance(5 * DAY)
    log(crm, cid, "consultation")  # not spend: still lost
    assert grading_of(crm, cid)["lost"]
    log(crm, cid, "purchase", amount=20.0)
    stored = grading_of(crm, cid)
    assert stored["lost"] is None
    assert stored["outcomes"][0]["won_back_at"].startswith((START + 15 * DAY).date().isoformat())
    api.grade_all(crm, actor="nightly")  # the batch keeps the outcomes
    assert grading_of(crm, cid)["outcomes"][0]["won_back_at"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"churn_type": "bored", "reason": "x"}, "unknown churn type 'bored'"),
        ({"churn_type": "natural", "reason": "  "}, "say why the customer left"),
    ],
)
def test_bad_outcomes_are_refused(grading_crm, kwargs, message):
    crm = grading_crm()
    cid = add_customer(crm)
    with pytest.raises(ValidationError, match=message):
        mark_lost(crm, cid, actor="ann", **kwargs)
    assert "lost" not in grading_of(crm, cid)


def test_rates_over_a_period(grading_crm, clock):
    crm = grading_crm()
    ids = [add_customer(crm, f"C{i}") for i in range(5)]
    for cid in ids:
        log(crm, cid, "purchase", amount=10.0)
    clock.advance(10 * DAY)
    mark_lost(crm, ids[0], actor="ann", churn_type="natural", reason="moved away")
    start = clock.now() + DAY
    clock.advance(2 * DAY)  # the period starts: 4 active (one was lost before), 1 open loss
    mark_lost(crm, ids[1], actor="ann", churn_type="competitive", reason="rival")
    mark_lost(crm, ids[2], actor="ann", churn_type="negligent", reason="never called back")
    clock.advance(DAY)
    log(crm, ids[0], "purchase", amount=10.0)  # won back
    log(crm, ids[3], "purchase", amount=10.0)
    log(crm, ids[3], "purchase", amount=10.0)
    m = measures(crm, start, clock.now() + DAY)
    assert (m.active_at_start, m.lost, m.by_type) == (4, 2, {"competitive": 1, "negligent": 1})
    assert (m.losses_open, m.won_back) == (3, 1)
    assert (m.buyers, m.repeat_buyers) == (2, 1)
    assert (m.churn_rate, m.win_back_rate, m.repeat_purchase_rate) == (0.5, 1 / 3, 0.5)
    with pytest.raises(ValidationError, match="must end after it starts"):
        measures(crm, start, start)


def test_cli_lost_and_churn(crm_cli):
    cli = crm_cli("grading")
    crm = cli.open()
    cid = crm.customers.add(actor="ann", name="Li").id
    crm.close()
    code, out, err = cli(
        "--as",
        "ann",
        "--json",
        "grade",
        "lost",
        cid,
        "--type",
        "malicious",
        "--reason",
        "spread false reviews",
    )
    assert code == 0, err
    assert json.loads(out)["type"] == "malicious"
    code, out, err = cli("--json", "grade", "churn", "--since", "-1d", "--until", "+1d")
    assert code == 0, err
    data = json.loads(out)
    assert (data["lost"], data["lost_malicious"]) == (1, 1)
    code, _out, err = cli("--as", "ann", "grade", "lost", cid, "--type", "bored", "--reason", "x")
    assert code != 0 and "Traceback" not in err


def test_report_shows_the_last_90_days(grading_crm, clock):
    from crmcore.report import build_report

    crm = grading_crm()
    cid = add_customer(crm)
    clock.advance(100 * DAY)  # a customer from before the window
    mark_lost(crm, cid, actor="ann", churn_type="negligent", reason="no callback")
    clock.advance(DAY)
    [section] = [s for s in build_report(crm) if s.title == "Churn outcomes (last 90 days)"]
    rows = dict(section.rows)
    assert (
        rows["active at the start"],
        rows["lost"],
        rows["lost: negligent"],
        rows["churn rate"],
    ) == (1, 1, 1, "100.0%")


def test_report_window_sets_the_churn_period(grading_crm, clock):
    from crmcore import ReportWindow
    from crmcore.report import build_report

    crm = grading_crm()
    cid = add_customer(crm)
    clock.advance(10 * DAY)
    mark_lost(crm, cid, actor="ann", churn_type="natural", reason="moved away")
    clock.advance(10 * DAY)
    window = ReportWindow(since=START + 5 * DAY, until=START + 15 * DAY)
    [section] = [
        s for s in build_report(crm, window=window) if s.title.startswith("Churn outcomes")
    ]
    assert section.title == "Churn outcomes (2026-01-10 to 2026-01-20)"
    assert dict(section.rows)["lost"] == 1
    window = ReportWindow(since=START + 12 * DAY)
    [section] = [
        s for s in build_report(crm, window=window) if s.title.startswith("Churn outcomes")
    ]
    assert dict(section.rows)["lost"] == 0
