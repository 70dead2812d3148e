"""``crm demo --profile telecom``: the demo fills the profile's rota (shift leads, department
managers, team leads) with its own staff (``profiles/demo/telecom.toml``), so the 24-hour
ladder names people and nothing warns that it has no one to go to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmcore_complaints.api import Complaints

from crmcore.app import open_crm
from crmcore.clock import ManualClock
from crmcore.demo import demo_config, demo_overlay, merged
from tests.stacks.conftest import crm_run


def test_the_telecom_demo_escalates_to_named_people(tmp_path):
    folder = tmp_path / "demo"
    result = crm_run(
        tmp_path,
        "demo",
        "--profile",
        "telecom",
        "--customers",
        "30",
        "--days",
        "4",
        "--dir",
        str(folder),
        "--seed",
        "5",
    )
    assert result.returncode == 0, result.stderr
    assert "no one to go to" not in result.stderr
    assert "rota is empty" not in result.stderr
    # the store as the demo left it, opened with the configuration the demo ran with, a
    # Monday 09:00 in Shanghai after the demo's days
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday())
    clock = ManualClock(datetime(monday.year, monday.month, monday.day, 1, 0, tzinfo=UTC))
    with open_crm(demo_config(folder / "crm.toml", "telecom"), clock=clock) as crm:
        assert not [
            w for w in crm.plugins.flat("crm_config_warnings", crm=crm) if "complaints" in w
        ]
        api = Complaints(crm)
        for trace in api.escalation_traces():  # any the demo's own days escalated
            assert trace.details["assignee"] is not None
        customer = crm.customers.add(
            actor="ann", name="Zhao Lei", owner="ann", phone="138 0013 8000"
        )
        ticket = api.open(
            actor="ann",
            customer_id=customer.id,
            content="charged twice",
            category="billing_dispute",
        )
        ticket = api.dispatch(api.judge(ticket, actor="ann", valid=True), actor="ann")
        for hour in range(1, 73):
            clock.set(ticket.opened_at + timedelta(hours=hour))
            crm.tick("w1")
        traces = sorted(
            (t.details for t in api.escalation_traces(ticket_id=ticket.id)),
            key=lambda d: d["level"],
        )
        # 24 h after Monday 09:00 is the day shift, led by the demo's "lead"; then the
        # billing department's manager
        assert [(d["level"], d["assignee"]) for d in traces] == [(1, "lead"), (2, "manager")]
        assert all(crm.tasks.get(d["task_id"]).assignee != ticket.owner for d in traces)


def test_the_overlay_fills_what_the_profile_leaves_commented_out():
    overlay = demo_overlay("telecom")
    assert [s["lead"] for s in overlay["complaints"]["shifts"]] == ["lead", "dana"]
    # every shipped profile escalates to shift leads and department managers it leaves unnamed
    assert [s["lead"] for s in demo_overlay("retail")["complaints"]["shifts"]] == ["lead", "dana"]
    assert demo_overlay("no-such-profile") == {}  # a profile without an overlay runs as written
    base = {
        "complaints": {
            "departments": {"billing": {"categories": ["price"], "capacity": 30}},
            "shifts": [{"lead": "x"}],
        }
    }
    assert merged(base, overlay)["complaints"]["departments"]["billing"] == {
        "categories": ["price"],
        "capacity": 30,
        "manager": "manager",
    }
    assert merged(base, overlay)["complaints"]["shifts"] == overlay["complaints"]["shifts"]
