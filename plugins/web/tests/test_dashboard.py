"""The dashboard's rules without a browser: who sees what, and when figures are recomputed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from crmcore_web.ui.pages import dashboard

from crmcore import PermissionDenied, ValidationError

ACTORS = {
    "ann": {"role": "agent", "team": "north"},
    "bo": {"role": "agent", "team": "south"},
    "lee": {"role": "shift_lead", "team": "north"},
    "mia": {"role": "manager"},
}


@pytest.fixture
def crm(make_crm):
    return make_crm(settings={"security": {"actors": ACTORS}}, plugins=["web"])


def request(crm, actor, role, **query):
    return SimpleNamespace(
        crm=crm,
        actor=actor,
        role=role,
        team=ACTORS[actor].get("team"),
        query=query,
        now=crm.now(),
        gettext=lambda m: m,
    )


def test_agents_are_refused_and_shift_leads_see_their_team_only(crm):
    with pytest.raises(PermissionDenied, match="shift leads and managers"):
        dashboard.scope(request(crm, "ann", "agent"))
    team, rep, teams, reps = dashboard.scope(request(crm, "lee", "shift_lead"))
    assert (team, rep, teams) == ("north", None, ["north"]) and reps == ["ann", "lee"]
    with pytest.raises(ValidationError) as caught:
        dashboard.scope(request(crm, "lee", "shift_lead", team="south"))
    assert caught.value.field == "team"
    with pytest.raises(ValidationError) as caught:
        dashboard.scope(request(crm, "lee", "shift_lead", rep="bo"))
    assert caught.value.field == "rep"


def test_managers_choose_any_team_or_rep(crm):
    assert dashboard.scope(request(crm, "mia", "manager", team="south"))[:2] == ("south", None)
    assert dashboard.scope(request(crm, "mia", "manager", rep="bo"))[:2] == (None, "bo")
    with pytest.raises(ValidationError):
        dashboard.scope(request(crm, "mia", "manager", team="west"))


def test_figures_are_recomputed_after_a_write(crm):
    calls = []
    key = lambda: ("k", dashboard._store_version(request(crm, "mia", "manager")))  # noqa: E731
    dashboard.CACHE.clear()
    dashboard.CACHE.get(key(), lambda: calls.append(1))
    dashboard.CACHE.get(key(), lambda: calls.append(1))
    assert len(calls) == 1  # kept
    crm.customers.add(actor="mia", name="New")
    dashboard.CACHE.get(key(), lambda: calls.append(1))
    assert len(calls) == 2  # the store was written: computed again


def test_a_workspace_users_team_counts_for_the_team_filter(crm):
    """A rep known only as a workspace user (``crm user add --team``, no roster entry, not in
    ``[security.actors]``) is in their record's team for the report, and for the dashboard."""
    from crmcore_web.users import Users

    from crmcore import ReportWindow
    from crmcore.report import build_report

    Users(crm).add("zoe", "a long enough password 1", actor="mia", role="agent", team="north")
    Users(crm).add("old", "a long enough password 2", actor="mia", role="agent", team="north")
    Users(crm).disable("old", actor="mia")
    for rep in ("zoe", "old", "bo"):
        customer = crm.customers.add(actor="mia", name=f"Customer of {rep}", owner=rep)
        crm.interactions.log(
            actor="mia", customer_id=customer.id, kind="purchase", rep=rep, amount=10.0
        )
    assert crm.actor("zoe").team == "north" and crm.actor("zoe").role.value == "agent"
    assert crm.actor("old") is None  # a disabled user is nobody
    north = build_report(crm, window=ReportWindow(team="north"))
    [per_rep] = [s.rows for s in north if s.title == "Conversion rate per rep"]
    assert [row[0] for row in per_rep] == ["zoe"]
    [per_team] = [s.rows for s in build_report(crm) if s.title == "Conversion rate per team"]
    assert dict((row[0], row[1]) for row in per_team) == {"north": 1, "south": 1, "(no team)": 1}
    team, _rep, _teams, reps = dashboard.scope(request(crm, "mia", "manager", team="north"))
    assert team == "north" and "zoe" in reps
