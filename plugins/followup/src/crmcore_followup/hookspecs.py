"""Hooks the followup plugin offers to other plugins.

Implement them with ``@crmcore.hookimpl(optionalhook=True)`` so a stack without followup still
loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore import CRM


class FollowupHookSpecs:
    """``crm_rep_*`` hooks."""

    @hookspec
    def crm_rep_left(self, crm: CRM, rep: str, successor: str, actor: str) -> int | None:
        """``rep`` left (``crm reps leave``): their customers have new owners already and
        their open tasks have moved. Move the open work you keep for ``rep`` (a ticket they
        own or handle …) to the customer's new owner, else to ``successor``, in the same
        transaction, and return how many records moved. Every plugin is called."""


def ensure_hookspecs(plugins: object) -> None:
    """Declare the ``crm_rep_*`` hooks unless ``crm_addhooks`` already did."""
    caller = getattr(plugins.hook, "crm_rep_left", None)  # type: ignore[attr-defined]
    if caller is None or not caller.has_spec():
        plugins.add_hookspecs(FollowupHookSpecs)  # type: ignore[attr-defined]
