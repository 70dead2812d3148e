"""Followup's contract: a rep left, move their open work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore.app import CRM


class FollowupContract:
    """``crm_rep_left``."""

    @hookspec
    def crm_rep_left(self, crm: CRM, rep: str, successor: str, actor: str) -> int | None:
        """``rep`` left (``crm reps leave``): their customers have new owners already and
        their open tasks have moved. Move the open work you keep for ``rep`` (a ticket they
        own or handle …) to the customer's new owner, else to ``successor``, in the same
        transaction, and return how many records moved. Every plugin is called."""
