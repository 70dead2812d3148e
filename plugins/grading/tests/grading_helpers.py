"""Helpers for the grading plugin's tests: log activity, read grades, record events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from crmcore import CRM, Customer, Effects, hookimpl
from crmcore.i18n import restored

ALL_SCHEMES = ["pipeline", "rfm", "pyramid", "hospital"]


def add_customer(crm: CRM, name: str = "Li Lei", **fields: Any) -> str:
    return crm.customers.add(actor="ann", name=name, **fields).id


def log(crm: CRM, customer_id: str, kind: str, at: datetime | None = None, **fields: Any) -> None:
    crm.interactions.log(actor="ann", customer_id=customer_id, kind=kind, occurred_at=at, **fields)


def grading_of(crm: CRM, customer_id: str) -> dict[str, Any]:
    return crm.customers.get(customer_id).ext.get("grading", {})


def churn_of(crm: CRM, customer_id: str) -> dict[str, Any]:
    """The stored churn risk with its reasons as English text (they are stored with their
    message ids: ``crmcore.i18n.stored``)."""
    churn = grading_of(crm, customer_id).get("churn") or {"level": "none", "reasons": []}
    return {**churn, "reasons": [str(restored(r)) for r in churn.get("reasons", [])]}


def grades_of(crm: CRM, customer_id: str) -> dict[str, str]:
    return dict(grading_of(crm, customer_id).get("grades", {}))


class Recorder:
    """A plugin recording grading's events; optionally answers with Effects."""

    def __init__(self, answer: Callable[..., Effects | None] | None = None) -> None:
        self.grades: list[tuple[str, str, str | None, str | None, str]] = []
        self.churn: list[tuple[str, str | None, str, list[str]]] = []
        self.seen_stored: list[str | None] = []
        self.answer = answer

    @hookimpl
    def crm_grade_changed(
        self,
        crm: CRM,
        customer: Customer,
        scheme: str,
        old: str | None,
        new: str | None,
        reason: str,
        actor: str,
    ) -> Effects | None:
        self.grades.append((customer.id, scheme, old, new, reason))
        self.seen_stored.append(customer.ext.get("grading", {}).get("grades", {}).get(scheme))
        return (
            self.answer(crm=crm, customer=customer, scheme=scheme, new=new) if self.answer else None
        )

    @hookimpl
    def crm_churn_risk_changed(
        self,
        crm: CRM,
        customer: Customer,
        old: str | None,
        new: str,
        reasons: list[str],
        actor: str,
    ) -> Effects | None:
        self.churn.append((customer.id, old, new, list(reasons)))
        return None


def signals_dict(**fields: Any) -> dict[str, Any]:
    """A stored signals mapping: money in currency units, times as datetimes."""
    from crmcore.converter import iso

    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in ("spend", "profit"):
            out[key] = round(value * 100)
        elif isinstance(value, datetime):
            out[key] = iso(value)
        else:
            out[key] = value
    if "spend" in out and "profit" not in out:
        out["profit"] = out["spend"]
    return out


def make_facts(
    customer_id: str = "cus_1",
    now: datetime | None = None,
    inputs: dict[str, Any] | None = None,
    open_complaints: int = 0,
    **signals: Any,
) -> Any:
    from crmcore_grading.scheme import Facts
    from crmcore_grading.signals import Signals

    from crmcore.testing import START

    when = now or START
    return Facts(
        customer_id,
        when,
        when.date(),
        inputs or {},
        Signals(signals_dict(**signals)),
        open_complaints,
    )
