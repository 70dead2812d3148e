"""The manager dashboard (``/dashboard``): the report's trends and comparisons as charts, for a
period (today, this week, this month, custom dates) and a team or a rep, one card per source
(the core, then each plugin that reports), then the cards plugins contribute.

Shift leads see their own team; managers and admins choose. Agents are refused, and the role
policy (``report.read``) is asked too, so a plugin's policy can narrow it further.

The figures are the ``crm report`` sections (``crmcore.report.report_by_source``), asked for
in brief (``ReportWindow.brief``: each source computes only its key figures and charts, by
indexed counts where it can); each (window, team, rep) is kept for ``FRESH`` seconds and until
the store is written to, whichever comes first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from markupsafe import Markup

from crmcore.chart_svg import render_figure
from crmcore.charts import Chart, translated
from crmcore.errors import PermissionDenied, ValidationError
from crmcore.i18n import lazy, translate
from crmcore.registry import NavEntry, PageRequest, Render, ReportSection, ReportWindow, WebPage
from crmcore.render import cell_text, human_label, note_text, period_text
from crmcore.report import chosen_window, report_by_source
from crmcore.security import Resource
from crmcore_web.ui.pages import people

ROLES = ("shift_lead", "manager", "admin")
FRESH = 60.0  # seconds a computed dashboard is shown again for the same window
PERIODS = (
    ("day", lazy("Today")),
    ("week", lazy("This week")),
    ("month", lazy("This month")),
    ("custom", lazy("Custom dates")),
)
KEY_FIGURES = 6  # rows of a card's first table shown as its key figures


def pages() -> list[WebPage]:
    return [WebPage("/dashboard", dashboard, name="dashboard")]


def nav_entries() -> list[NavEntry]:
    return [NavEntry("/dashboard", lazy("Dashboard"), order=50, roles=ROLES)]  # type: ignore[arg-type]  # (converter=tuple)


@attrs.frozen
class Card:
    """One source's part of the dashboard: its key figures and its charts (SVG markup)."""

    source: str
    title: str
    figures: tuple[tuple[str, str], ...]
    charts: tuple[Markup, ...]
    note: str


class _Cache:
    """Computed report groups per (store, window, team, rep, store version), kept ``FRESH``
    seconds; at most ``size`` of them."""

    def __init__(self, size: int = 32) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._size = size

    def get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < FRESH:
                return hit[1]
        value = compute()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < FRESH}
            if len(self._items) >= self._size:
                self._items.pop(min(self._items, key=lambda k: self._items[k][0]))
            self._items[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = _Cache()


def _store_version(request: PageRequest) -> Any:
    """Something that changes with every write to the store (the audit trail's head), or
    None where the store keeps no trail (the cache then relies on ``FRESH`` alone)."""
    audit = request.crm.audit
    if audit is None:
        return None
    head = audit.head_record()
    return None if head is None else head.get("seq")


def scope(request: PageRequest) -> tuple[str | None, str | None, list[str], list[str]]:
    """The team and rep the dashboard shows, and the teams and reps one may choose from."""
    if request.role not in ROLES:
        raise PermissionDenied(request.gettext("The dashboard is for shift leads and managers."))
    staff = [
        attrs.evolve(p, team=p.team or _team_of(request, p.name))
        for p in people.staff(request.crm)
        if p.role in ("agent", "shift_lead")
    ]
    team = request.query.get("team") or None
    rep = request.query.get("rep") or None
    if request.role == "shift_lead":
        own = getattr(request, "team", None)
        if own is None:
            me = request.crm.actor(request.actor)
            own = me.team if me is not None else None
        if team is not None and team != own:
            raise ValidationError(request.gettext("You see your own team only."), field="team")
        team = own
        staff = [p for p in staff if p.team == own] if own else staff
    teams = sorted({p.team for p in staff if p.team})
    reps = sorted(p.name for p in staff if team is None or p.team == team)
    if team is not None and team not in teams and request.role != "shift_lead":
        raise ValidationError(request.gettext("There is no such team."), field="team")
    if rep is not None and rep not in reps:
        raise ValidationError(request.gettext("Choose one of the team's reps."), field="rep")
    request.crm.authorize(request.actor, "report.read", Resource("report", owner=rep))
    return team, rep, teams, reps


def _team_of(request: PageRequest, name: str) -> str | None:
    actor = request.crm.actor(name)  # the roster or [security.actors], as the report asks
    return actor.team if actor is not None else None


def dashboard(request: PageRequest) -> Render:
    """The dashboard page."""
    team, rep, teams, reps = scope(request)
    zone = request.crm.config.core.timezone
    period = request.query.get("period") or "week"
    since, until = request.query.get("since", ""), request.query.get("until", "")
    window = chosen_window(request.now, zone, period, since, until, team, rep)
    key = (
        id(request.crm),
        period,
        since,
        until,
        team,
        rep,
        request.now.astimezone(ZoneInfo(zone)).date() if period != "custom" else None,
        _store_version(request),
    )
    # brief: each source computes only what a card shows (key figures and charts)
    brief = attrs.evolve(window, brief=True)
    computed_at, groups = CACHE.get(
        key, lambda: (request.now, report_by_source(request.crm, request.now, brief))
    )
    _ = request.gettext
    cards = [
        card(source, sections, window, _, f"c{i}") for i, (source, sections) in enumerate(groups)
    ]
    cards = [c for c in cards if c.charts or c.figures]
    workspace = request.workspace  # type: ignore[attr-defined]
    contributed = [
        (name, item.title, request.fragment(item.render(request)))  # type: ignore[attr-defined]
        for name, item in workspace.contributions.cards
    ]
    return Render(
        "web/dashboard.html",
        {
            "periods": PERIODS,
            "period": period,
            "since": since,
            "until": until,
            "team": team or "",
            "rep": rep or "",
            "teams": teams,
            "reps": reps,
            "fixed_team": request.role == "shift_lead",
            "period_text": period_text(window, zone, _),
            "cards": cards,
            "contributed": [c for c in contributed if c[2]],
            "computed_at": computed_at,
        },
    )


def card(
    source: str,
    sections: Sequence[ReportSection],
    window: ReportWindow,
    gettext: Callable[[str], str],
    ident: str,
) -> Card:
    """A source's card: its key figures (the first rows of its first two-column table, whose
    title the card takes, else its first section's) and every chart of its sections,
    translated."""
    figures: tuple[tuple[str, str], ...] = ()
    table = next((s for s in sections if len(s.columns) == 2 and s.rows), None)
    first = table or sections[0]
    if table is not None:
        figures = tuple(
            (cell_text(row[0], gettext), _value(row[1])) for row in table.rows[:KEY_FIGURES]
        )
    charts: list[Chart] = [c for s in sections for c in s.charts]
    return Card(
        source,
        translate(first.title, gettext),
        figures,
        tuple(
            Markup(render_figure(translated(c, gettext), ident=f"{ident}-{n}", translate=gettext))
            for n, c in enumerate(charts)
        ),
        note_text(first, window, gettext) if first.note else "",
    )


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else human_label(str(value))


def window_of(request: PageRequest) -> ReportWindow:
    """The window the dashboard's query asks for (for cards that compute their own)."""
    return chosen_window(
        request.now,
        request.crm.config.core.timezone,
        request.query.get("period") or "week",
        request.query.get("since", ""),
        request.query.get("until", ""),
        request.query.get("team") or None,
        request.query.get("rep") or None,
    )
