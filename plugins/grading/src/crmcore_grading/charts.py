"""Charts for the grading report sections, built from their tables (kept apart from the
sections' own code so either can change alone)."""

from __future__ import annotations

import attrs

from crmcore import ReportSection
from crmcore.charts import Chart, Series
from crmcore.i18n import N_

CHURN_WATCH = "Churn watch (valuable customers)"
LEVELS = ("high", "medium", "low")
LEVEL_LABELS = {"high": N_("high risk"), "medium": N_("medium risk"), "low": N_("low risk")}


def churn_chart(section: ReportSection) -> Chart:
    """Valuable customers at each churn-risk level, from the churn watch's rows
    (``risk high``, ``risk medium``, ``risk low``)."""
    rows = {str(row[0]): row[1] for row in section.rows}
    return Chart(
        N_("Valuable customers at risk of churning"),
        [LEVEL_LABELS[level] for level in LEVELS],
        [Series(N_("customers"), [rows.get(f"risk {level}", 0) for level in LEVELS])],
        unit=N_("customers"),
        y_label=N_("Customers"),
        x_label=N_("Churn risk"),
        key="churn_risk",
    )


def with_charts(sections: list[ReportSection]) -> list[ReportSection]:
    """The sections, the churn watch with its chart added."""
    return [
        attrs.evolve(s, charts=(*s.charts, churn_chart(s))) if s.title == CHURN_WATCH else s
        for s in sections
    ]
