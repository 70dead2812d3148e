"""What ``crm report`` and ``crm customer show`` are made of: the shapes plugins return from
``crm_report_sections`` and ``crm_customer_summary`` (exported by ``crmcore.registry`` too)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.charts import Chart, chart_tuple

if TYPE_CHECKING:
    from crmcore.app import CRM


@attrs.frozen
class SummaryLine:
    """One labelled line on ``crm customer show``."""

    label: str
    text: str


def _columns(columns: Iterable[str]) -> tuple[str, ...]:
    return tuple(columns)


@attrs.frozen
class ReportSection:
    """A section of ``crm report``: a title, a table, and optionally charts.

    ``rows`` are tuples matching ``columns``. ``charts`` (:class:`crmcore.charts.Chart`) are
    drawn in the HTML report and on the dashboard, with axes and units, and as bars in the
    terminal: give one where a trend or a comparison says more than the table. ``chart``, the
    older form (``{label: number}``), is drawn in the terminal only.
    """

    title: str
    columns: tuple[str, ...] = attrs.field(converter=_columns)
    rows: tuple[tuple[Any, ...], ...] = attrs.field(converter=lambda rs: tuple(map(tuple, rs)))
    chart: dict[str, float] | None = None
    note: str = ""
    order: int = 100  # lower comes first
    charts: tuple[Chart, ...] = attrs.field(default=(), converter=chart_tuple)


@attrs.frozen
class ReportWindow:
    """What ``crm report`` looks at: a period [``since``, ``until``) (None: from the start /
    up to now) and a team or a rep (None: everyone). Sections count what happened in the
    period; a rep's team is what ``crm.actor(rep).team`` says.

    ``brief``: only what the dashboard shows is wanted, the figures of a source's first
    two-column table (its key figures) and its charts; a source may then leave out its other
    sections and compute the rest by cheaper means. The figures it gives stay those of the
    full report."""

    since: datetime | None = None
    until: datetime | None = None
    team: str | None = None
    rep: str | None = None
    brief: bool = False

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` falls in the period."""
        return (self.since is None or when >= self.since) and (
            self.until is None or when < self.until
        )

    @property
    def everyone(self) -> bool:
        return self.team is None and self.rep is None

    def rep_filter(self, crm: CRM) -> Callable[[str | None], bool]:
        """``counts(rep)``: whether work done by (or owned by) ``rep`` belongs to the window:
        the window's rep, or a rep of its team (``crm.actor(rep).team``, looked up once per
        rep); everyone's when the window names neither. Unowned work (None) belongs only to
        everyone."""
        teams: dict[str, str | None] = {}

        def counts(rep: str | None) -> bool:
            if self.rep is not None and rep != self.rep:
                return False
            if self.team is None:
                return True
            if rep is None:
                return False
            if rep not in teams:
                actor = crm.actor(rep)
                teams[rep] = actor.team if actor is not None else None
            return teams[rep] == self.team

        return counts

    def reps(self, crm: CRM) -> list[str] | None:
        """The reps whose work the window counts, listed (sorted), for indexed counts:
        ``[rep]`` for a rep (none if they are not of the window's team), a team's members
        (the known actors ``crm.actor`` places in it: ``[security.actors]`` and every
        plugin's ``crm_actor_names``). None for everyone, and for a team while a plugin that
        describes actors cannot list them: count with :meth:`rep_filter` then."""
        if self.rep is not None:
            return [self.rep] if self.rep_filter(crm)(self.rep) else []
        if self.team is None:
            return None
        names = crm.plugins.crm_actor_names(crm=crm)
        if names is None:
            return None
        known = set(names) | set(crm.config.security.actors)
        members = []
        for name in sorted(known):
            actor = crm.actor(name)
            if actor is not None and actor.team == self.team:
                members.append(name)
        return members

    def label(self) -> str:
        """One line saying what the window is, for notes."""
        parts = []
        if self.since or self.until:
            parts.append(
                f"{self.since.isoformat()[:16] if self.since else 'start'} to "
                f"{self.until.isoformat()[:16] if self.until else 'now'}"
            )
        if self.team:
            parts.append(f"team {self.team}")
        if self.rep:
            parts.append(f"rep {self.rep}")
        return ", ".join(parts) or "everything"
