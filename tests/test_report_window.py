"""``crm report`` over a period and for a team or a rep (values asserted, not only titles)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from crmcore import ReportWindow, ValidationError
from crmcore.report import build_report, period_window
from crmcore.testing import START

SECURITY = {
    "actors": {
        "ann": {"role": "agent", "team": "north"},
        "bo": {"role": "agent", "team": "north"},
        "cy": {"role": "agent", "team": "south"},
    }
}


def seeded(make_crm, clock):
    """Week 1: ann serves 2 (1 buys), cy serves 1 (buys). Week 2: bo serves 2 (2 buy)."""
    crm = make_crm(settings={"security": SECURITY})
    c = {name: crm.customers.add(actor="admin", name=name).id for name in "abcde"}
    crm.interactions.log(actor="ann", customer_id=c["a"], kind="inquiry", rep="ann")
    crm.interactions.log(actor="ann", customer_id=c["b"], kind="purchase", rep="ann", amount=5.0)
    crm.interactions.log(actor="cy", customer_id=c["c"], kind="purchase", rep="cy", amount=5.0)
    clock.advance(timedelta(days=7))
    for key in "de":
        crm.interactions.log(actor="bo", customer_id=c[key], kind="purchase", rep="bo", amount=5.0)
    clock.advance(timedelta(hours=1))
    return crm


def rows(sections, title):
    return [tuple(r) for s in sections if s.title == title for r in s.rows]


def test_conversion_per_rep_and_team_over_a_period(make_crm, clock):
    crm = seeded(make_crm, clock)
    everything = build_report(crm)
    assert rows(everything, "Conversion rate per rep") == [
        ("ann", 2, 1, "50.0%"),
        ("bo", 2, 2, "100.0%"),
        ("cy", 1, 1, "100.0%"),
    ]
    assert rows(everything, "Conversion rate per team") == [
        ("north", 4, 3, "75.0%"),
        ("south", 1, 1, "100.0%"),
    ]
    [per_rep] = [c for s in everything for c in s.charts if c.key == "conversion_rep"]
    assert per_rep.x == ("ann", "bo", "cy") and per_rep.unit == "%"
    assert per_rep.series[0].values == (50.0, 100.0, 100.0)
    [per_team] = [c for s in everything for c in s.charts if c.key == "conversion_team"]
    assert dict(zip(per_team.x, per_team.series[0].values, strict=True)) == {
        "north": 75.0,
        "south": 100.0,
    }
    week1 = build_report(crm, window=ReportWindow(since=START, until=START + timedelta(days=7)))
    [contacts] = [c for s in week1 for c in s.charts if c.key == "contacts_trend"]
    assert contacts.x_label == "Day" and contacts.x[0] == START.date().isoformat()
    assert contacts.series[0].values[0] == 3 and sum(contacts.series[0].values) == 3
    assert contacts.series[1].values[0] == 2  # two of week one's contacts were purchases
    assert rows(week1, "Conversion rate per team") == [
        ("north", 2, 1, "50.0%"),
        ("south", 1, 1, "100.0%"),
    ]
    north = build_report(crm, window=ReportWindow(team="north"))
    assert rows(north, "Conversion rate per rep") == [
        ("ann", 2, 1, "50.0%"),
        ("bo", 2, 2, "100.0%"),
    ]
    assert dict(rows(north, "Interactions by kind")) == {"purchase": 3, "inquiry": 1}
    bo = build_report(crm, window=ReportWindow(rep="bo", since=START + timedelta(days=7)))
    assert rows(bo, "Conversion rate per rep") == [("bo", 2, 2, "100.0%")]
    with pytest.raises(ValidationError, match="must end after it starts"):
        build_report(crm, window=ReportWindow(since=START + timedelta(days=30)))


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("day", datetime(2026, 1, 14, 0, tzinfo=UTC)),
        ("week", datetime(2026, 1, 12, 0, tzinfo=UTC)),  # Monday
        ("month", datetime(2026, 1, 1, 0, tzinfo=UTC)),
    ],
)
def test_periods_are_calendar_periods_up_to_now(period, start):
    now = datetime(2026, 1, 14, 15, tzinfo=UTC)  # a Wednesday
    assert period_window(now, period, "UTC") == (start, now + timedelta(microseconds=1))


def test_period_in_the_business_time_zone():
    now = datetime(2026, 1, 14, 20, tzinfo=UTC)  # already Thursday 04:00 in Shanghai
    assert period_window(now, "day", "Asia/Shanghai")[0] == datetime(2026, 1, 14, 16, tzinfo=UTC)


def test_cli_report_window(crm_cli):
    cli = crm_cli()
    crm = cli.open()
    a = crm.customers.add(actor="admin", name="A").id
    crm.interactions.log(actor="ann", customer_id=a, kind="purchase", rep="ann", amount=5.0)
    crm.close()
    code, out, err = cli("--json", "report", "--rep", "ann", "--since", "-1d")
    assert code == 0, err
    sections = {s["title"]: s for s in json.loads(out)}
    assert sections["Conversion rate per rep"]["rows"] == [["ann", 1, 1, "100.0%"]]
    code, out, err = cli("--json", "report", "--rep", "bo", "--period", "month")
    assert code == 0, err
    assert {s["title"]: s for s in json.loads(out)}["Conversion rate per rep"]["rows"] == []
    code, _out, err = cli("report", "--period", "week", "--since", "-1d")
    assert code == 2 and err.strip() == "error: give --period or --since/--until, not both"


def test_a_windows_rep_filter_is_the_one_rule_every_section_uses(make_crm):
    crm = make_crm(settings={"security": SECURITY})
    everyone = ReportWindow().rep_filter(crm)
    assert everyone("ann") and everyone(None) and everyone("stranger")
    north = ReportWindow(team="north").rep_filter(crm)
    assert north("ann") and not north(None) and not north("stranger")
    ann = ReportWindow(rep="ann").rep_filter(crm)
    assert ann("ann") and not ann(None) and not ann("bo")
    assert not ReportWindow(team="south", rep="ann").rep_filter(crm)("ann")


def test_a_windows_reps_are_listed_from_every_source_that_describes_actors(make_crm):
    """``ReportWindow.reps``: the team's members from ``[security.actors]`` and every
    plugin's ``crm_actor_names``, as ``crm.actor`` places them; None (count by the rep filter)
    while a plugin describes actors it does not list."""
    from crmcore import hookimpl
    from crmcore.security import Actor, Role

    class Roster:
        @hookimpl
        def crm_actor(self, crm, name):
            return Actor(name, Role.AGENT, team="north") if name in ("di", "cy") else None

        @hookimpl
        def crm_actor_names(self, crm):
            return ["di", "cy"]  # cy: [security.actors] is asked after, the plugin answers

    crm = make_crm([("roster", Roster())], settings={"security": SECURITY})
    assert ReportWindow(team="north").reps(crm) == ["ann", "bo", "cy", "di"]
    assert ReportWindow(team="south").reps(crm) == []
    assert ReportWindow(team="north", rep="di").reps(crm) == ["di"]
    assert ReportWindow(team="south", rep="di").reps(crm) == []
    assert ReportWindow(rep="zed").reps(crm) == ["zed"]
    assert ReportWindow().reps(crm) is None
    north = ReportWindow(team="north")
    assert all(north.rep_filter(crm)(n) for n in north.reps(crm))

    class Unlisted:
        @hookimpl
        def crm_actor(self, crm, name):
            return Actor(name, Role.AGENT, team="north") if name == "eve" else None

    crm = make_crm([("roster", Roster()), ("other", Unlisted())], settings={"security": SECURITY})
    assert ReportWindow(team="north").reps(crm) is None  # eve cannot be listed: scan instead
    assert ReportWindow(team="north").rep_filter(crm)("eve")


def test_the_dashboards_window_by_period_or_custom_dates():
    from crmcore.report import chosen_window

    now = datetime(2026, 1, 14, 20, tzinfo=UTC)  # Thursday 04:00 in Shanghai
    week = chosen_window(now, "Asia/Shanghai", "week", team="north")
    assert week.since == datetime(2026, 1, 11, 16, tzinfo=UTC) and week.team == "north"
    custom = chosen_window(now, "Asia/Shanghai", "custom", "2026-01-01", "2026-01-02", rep="ann")
    assert (custom.since, custom.until) == (
        datetime(2025, 12, 31, 16, tzinfo=UTC),
        datetime(2026, 1, 2, 16, tzinfo=UTC),
    )
    assert custom.rep == "ann" and custom.team is None
    assert chosen_window(now, "UTC", "custom", "2026-01-10").until == datetime(
        2026, 1, 15, tzinfo=UTC
    )  # up to today, included
    for args, field in (
        (("custom", "2026-02-30"), "since"),
        (("custom", ""), "since"),
        (("custom", "2026-01-05", "2026-01-01"), "until"),
        (("fortnight",), "period"),
    ):
        with pytest.raises(ValidationError) as caught:
            chosen_window(now, "UTC", *args)
        assert caught.value.field == field


def test_the_report_by_source_puts_the_core_first_and_names_each_plugin(make_crm, clock):
    from crmcore import hookimpl
    from crmcore.registry import ReportSection
    from crmcore.report import report_by_source

    class Extra:
        @hookimpl
        def crm_report_sections(self, crm, now):
            return [ReportSection("Extra", ("a",), [(1,)], order=5)]

    crm = seeded(make_crm, clock)
    crm.plugins.register(Extra(), "extra")
    groups = report_by_source(crm)
    assert groups[0][0] == "core" and groups[0][1][0].title == "Customers and contacts"
    assert ("extra", "Extra") in [(name, s.title) for name, sections in groups for s in sections]
