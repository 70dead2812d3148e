"""Hooks the grading plugin offers to other plugins.

Implement the event hooks with ``@crmcore.hookimpl(optionalhook=True)`` so a stack without
grading still loads. They are fired through ``crm.emit`` after the change is stored, so the
``customer`` argument already carries the new grades in ``customer.ext["grading"]``; return
``crmcore.Effects`` (tasks, task updates, ext patches, records) and the core applies them in the
same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore import CRM, Customer, Effects
    from crmcore_grading.scheme import GradingScheme


class GradingHookSpecs:
    """``crm_grading_schemes``, ``crm_grade_changed`` and ``crm_churn_risk_changed``."""

    @hookspec
    def crm_grading_schemes(self) -> list[GradingScheme]:
        """Register grading schemes: return ``GradingScheme(name, factory, description)``
        objects. Called when grading first runs in a CRM; every plugin contributes. Two plugins
        registering one name is an error naming both. ``[grading] schemes`` picks which run."""

    @hookspec
    def crm_grade_changed(self, crm: CRM, customer: Customer, scheme: str, old: str | None,
                          new: str | None, reason: str, actor: str) -> Effects | None:
        """A customer's stored grade in ``scheme`` changed from ``old`` to ``new`` (None: no
        grade), for ``reason``. Fired once per scheme that changed, on events, on ``crm grade``
        commands and on population runs; never when nothing changed. Every plugin is called
        (the followup plugin changes the follow-up cadence on the "pipeline" scheme)."""

    @hookspec
    def crm_churn_risk_changed(self, crm: CRM, customer: Customer, old: str | None, new: str,
                               reasons: list[str], actor: str) -> Effects | None:
        """A valuable customer's churn risk ROSE from ``old`` to ``new`` (levels none < low <
        medium < high), with the warning signs in ``reasons``. Not fired when the risk falls.
        Every plugin is called (e.g. for a manager alert or a retention offer)."""
