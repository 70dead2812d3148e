"""Hooks this plugin offers to other plugins (registered from ``crm_addhooks``).

Implement them with ``@crmcore.hookimpl(optionalhook=True)``, so that your plugin still loads
in a stack without crmcore-nps. Never import this package from another plugin: the ``answer``
you receive has at least ``id``, ``customer_id``, ``score`` (0-10), ``answered_at``,
``survey_task_id`` and ``comment`` (personal data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore import CRM, Effects


class NpsHookSpecs:
    @hookspec
    def crm_nps_answered(self, crm: CRM, answer: Any, category: str, actor: str) -> Effects | None:
        """A customer answered an NPS survey; ``category`` is ``promoter``, ``passive`` or
        ``detractor``.

        Called on every plugin (no first result), inside the answer's transaction: return
        ``Effects`` (say, a retention task for a detractor) or None. Raising a crmcore error
        refuses the answer, and nothing of it is written.
        """
