"""Grading's contract: scheme registration and the grade and churn-risk events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.effects import Effects
    from crmcore.entities import Customer


class SchemeRegistration(Protocol):
    """What ``crm_grading_schemes`` returns: a scheme's name, the factory that builds it from
    the scheme's context, and a one-line description (``crmcore_grading.GradingScheme``)."""

    @property
    def name(self) -> str: ...

    @property
    def factory(self) -> Callable[[Any], Any]: ...

    @property
    def description(self) -> str: ...


class GradingContract:
    """``crm_grading_schemes``, ``crm_grade_changed`` and ``crm_churn_risk_changed``."""

    @hookspec
    def crm_grading_schemes(self) -> list[SchemeRegistration]:  # type: ignore[empty-body]
        """Register grading schemes: return ``GradingScheme(name, factory, description)``
        objects. Called when grading first runs in a CRM; every plugin contributes. Two plugins
        registering one name is an error naming both. ``[grading] schemes`` picks which run."""

    @hookspec
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
        """A customer's stored grade in ``scheme`` changed from ``old`` to ``new`` (None: no
        grade), for ``reason``. Fired through ``crm.events`` after the change is stored, so
        ``customer.ext["grading"]`` already holds the new grades; once per scheme that changed,
        on events, on ``crm grade`` commands and on population runs; never when nothing
        changed. Every plugin is called."""

    @hookspec
    def crm_churn_risk_changed(
        self,
        crm: CRM,
        customer: Customer,
        old: str | None,
        new: str,
        reasons: list[str],
        actor: str,
    ) -> Effects | None:
        """A valuable customer's churn risk ROSE from ``old`` to ``new`` (levels none < low <
        medium < high), with the warning signs in ``reasons``. Not fired when the risk falls.
        Every plugin is called (e.g. for a manager alert or a retention offer)."""
