"""What grading shows in the workspace: a panel of grades with their reasons and the churn
risk on the customer page, and the pipeline grade and value tier beside names in queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmcore.app import CRM
from crmcore.entities import Customer
from crmcore.i18n import lazy, restored, term
from crmcore.registry import (
    Badge,
    CustomerPanel,
    PageRequest,
    Render,
    TemplateFolder,
    TranslationCatalog,
)
from crmcore_grading.engine import NAMESPACE
from crmcore_grading.records import HISTORY, HistoryRecord

HERE = Path(__file__).parent
SCHEMES = {
    "pipeline": lazy("Grade"),
    "rfm": lazy("RFM segment"),
    "pyramid": lazy("Value tier"),
    "hospital": lazy("Big-customer tier"),
}
CHANGED = {"churn": lazy("Churn risk")}
CHURN = {"none": lazy("none"), "low": lazy("low"), "medium": lazy("medium"), "high": lazy("high")}
PIPELINE_RANK = {"A": 10, "B": 20, "C": 30, "D": 40, "E": 50}
TIER_SCHEMES = ("hospital", "pyramid")


def shown_grade(value: str) -> str:
    """A grade or tier as people read it: ``potential_loyalist`` -> "potential loyalist", a
    message of the catalog (translated on the page); ``A`` as it is."""
    return term(value.replace("_", " ")) if len(value) > 1 else value


def _stored(customer: Customer) -> dict[str, Any]:
    return customer.ext.get(NAMESPACE) or {}


def badges(customer: Customer) -> list[Badge]:
    """The pipeline grade (ranked A first) and the value tier, when graded."""
    stored = _stored(customer)
    grades, reasons = stored.get("grades") or {}, stored.get("reasons") or {}
    out = []
    grade = grades.get("pipeline")
    if grade:
        out.append(
            Badge(
                SCHEMES["pipeline"],
                grade,
                restored(reasons.get("pipeline", "")),
                PIPELINE_RANK.get(grade, 60),
            )
        )
    tier = next((s for s in TIER_SCHEMES if grades.get(s)), None)
    if tier is not None:
        out.append(
            Badge(SCHEMES[tier], shown_grade(grades[tier]), restored(reasons.get(tier, "")), 100)
        )
    return out


#: How many of a customer's latest grade changes the panel lists.
RECENT = 5


def _shown_value(scheme: str, value: str | None) -> str | None:
    """A history record's grade (or churn level) as the panel shows it."""
    if value is None:
        return None
    return str(CHURN.get(value, value)) if scheme == "churn" else shown_grade(value)


def recent_changes(crm: CRM, customer_id: str) -> list[dict[str, Any]]:
    """The customer's latest grade and churn changes, newest first, with their reasons (in
    the reader's language where stored with their message ids)."""
    found = crm.records(HISTORY, HistoryRecord).find(
        {"customer_id": customer_id}, sort=[("at", -1), ("id", -1)], limit=RECENT
    )
    return [
        {
            "at": r.at,
            "scheme": str(CHANGED.get(r.scheme) or SCHEMES.get(r.scheme) or r.scheme),
            "old": _shown_value(r.scheme, r.old),
            "new": _shown_value(r.scheme, r.new),
            "reason": r.reason,
        }
        for r in found
    ]


def panel(request: PageRequest, customer: Customer) -> Render | None:
    stored = _stored(customer)
    grades, reasons = stored.get("grades") or {}, stored.get("reasons") or {}
    churn = stored.get("churn") or {}
    if not grades and not churn:
        return None
    order = [s for s in SCHEMES if s in grades] + sorted(s for s in grades if s not in SCHEMES)
    rows = [
        {
            "scheme": str(SCHEMES.get(s, s)),
            "grade": shown_grade(grades[s]),
            "reason": restored(reasons.get(s, "")),
        }
        for s in order
    ]
    level = churn.get("level", "none")
    return Render(
        "grading/panel.html",
        {
            "grades": rows,
            "churn_level": level,
            "churn_label": str(CHURN.get(level, level)),
            "churn_reasons": [restored(r) for r in churn.get("reasons") or []],
            "changes": recent_changes(request.crm, customer.id),
        },
    )


def customer_panels(crm: CRM) -> list[CustomerPanel]:
    return [CustomerPanel("grading", lazy("Grades and churn risk"), panel, order=10)]


def template_folders() -> list[TemplateFolder]:
    return [TemplateFolder(HERE / "templates")]


def catalogs() -> list[TranslationCatalog]:
    return [TranslationCatalog(HERE / "locale", "crmcore_grading")]
