"""crmcore-nps: a Net Promoter Score survey after each callback.

Python API: ``record_answer`` stores a customer's 0-10 answer; ``compute_nps`` and
``build_report`` do the arithmetic. The hooks live in ``crmcore_nps.plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_nps.score import NpsResult, category, compute_nps, satisfaction
    from crmcore_nps.surveys import build_report, record_answer

__all__ = ["NpsResult", "build_report", "category", "compute_nps", "record_answer", "satisfaction"]

# Imported on first use (PEP 562), as the bundled plugins do: registering the plugin with
# ``crm`` imports only ``crmcore_nps.plugin``, not the surveys (and with them the core's API).
_EXPORTS = {
    "NpsResult": "crmcore_nps.score",
    "category": "crmcore_nps.score",
    "compute_nps": "crmcore_nps.score",
    "satisfaction": "crmcore_nps.score",
    "build_report": "crmcore_nps.surveys",
    "record_answer": "crmcore_nps.surveys",
}

__getattr__ = exports_on_first_use(__name__, _EXPORTS)
