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
