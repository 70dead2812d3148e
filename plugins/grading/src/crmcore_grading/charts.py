"""Charts for the grading report sections, built from their tables (kept apart from the
sections' own code so either can change alone)."""

from __future__ import annotations

import attrs

from crmcore import ReportSection
from crmcore.charts import Chart, Series

CHURN_WATCH = "Churn watch (valuable customers)"
LEVELS = ("high", "medium", "low")


def churn_chart(section: ReportSection) -> Chart:
    """Valuable customers at each churn-risk level, from the churn watch's rows
    (``risk high``, ``risk medium``, ``risk low``)."""
    rows = {str(row[0]): row[1] for row in section.rows}
    return Chart("Valuable customers at risk of churning", [f"{level} risk" for level in LEVELS],
                 [Series("customers", [rows.get(f"risk {level}", 0) for level in LEVELS])],
                 unit="customers", y_label="Customers", x_label="Churn risk",
                 key="churn_risk")


def with_charts(sections: list[ReportSection]) -> list[ReportSection]:
    """The sections, the churn watch with its chart added."""
    return [attrs.evolve(s, charts=(*s.charts, churn_chart(s))) if s.title == CHURN_WATCH
            else s for s in sections]
