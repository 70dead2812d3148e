"""Customer grading for crmcore: the A-E pipeline grade, value tiers and churn risk.

Host applications use ``crmcore_grading.api``; scheme authors return
``crmcore_grading.scheme.GradingScheme`` objects from the ``crm_grading_schemes`` hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_grading.scheme import Facts, Grade, GradingScheme, Scheme, SchemeContext
    from crmcore_grading.signals import Signals

__all__ = ["Facts", "Grade", "GradingScheme", "Scheme", "SchemeContext", "Signals"]

# Imported on first use (PEP 562): registering the plugin with ``crm`` imports only its
# ``plugin`` module, not the whole package.
_EXPORTS = {
    "Facts": "crmcore_grading.scheme",
    "Grade": "crmcore_grading.scheme",
    "GradingScheme": "crmcore_grading.scheme",
    "Scheme": "crmcore_grading.scheme",
    "SchemeContext": "crmcore_grading.scheme",
    "Signals": "crmcore_grading.signals",
}


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
