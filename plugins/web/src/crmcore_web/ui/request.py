"""The request object workspace pages, panels and cards receive (``crmcore.registry.
PageRequest``), and the helpers the web plugin's own pages use on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
from markupsafe import Markup

from crmcore.app import CRM
from crmcore.registry import Render

if TYPE_CHECKING:
    from crmcore_web.ui.templating import Clock
    from crmcore_web.ui.workspace import Workspace


@attrs.define
class WebRequest:
    """One request to a workspace page, signed in as ``actor`` with ``role``."""

    crm: CRM
    actor: str
    role: str
    team: str | None
    locale: str
    method: str
    path: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, str]
    now: datetime
    url_path: str
    csrf_token: str
    clock: Clock
    workspace: Workspace
    _lists: Mapping[str, list[str]] = attrs.field(factory=dict)
    _gettext: Callable[[str], str] = str

    def form_list(self, name: str) -> list[str]:
        """Every value POSTed under ``name``."""
        return list(self._lists.get(name, ()))

    def gettext(self, message: str) -> str:
        """``message`` in the page's language."""
        return self._gettext(message)

    def fragment(self, result: Render | None) -> Markup:
        """A panel's or card's :class:`Render` as HTML (empty for None), with the same base
        context (``_``, ``csrf_token``, time filters) pages get."""
        if result is None:
            return Markup("")
        return Markup(self.workspace.render_template(self, result.template, dict(result.context)))

    def base_context(self) -> dict[str, Any]:
        return self.workspace.base_context(self)
