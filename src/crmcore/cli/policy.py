"""Administrative commands under the permission policy (``crmcore.security.ADMIN_ACTIONS``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from crmcore.cli.context import actor, open_crm_from
from crmcore.security import Resource

if TYPE_CHECKING:
    from crmcore.app import CRM


def require(ctx: click.Context, action: str, kind: str) -> CRM:
    """The CRM of this command, once the acting actor may do ``action`` on ``kind`` (a
    refusal is ``PermissionDenied``, audited, with nothing done)."""
    crm = open_crm_from(ctx)
    crm.authorize(actor(ctx), action, Resource(kind))
    return crm
