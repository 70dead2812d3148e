"""crmcore-nps: a Net Promoter Score survey after each callback.

Python API: ``record_answer`` stores a customer's 0-10 answer; ``compute_nps`` and
``build_report`` do the arithmetic. The hooks live in ``crmcore_nps.plugin``.
"""

from crmcore_nps.score import NpsResult, category, compute_nps, satisfaction
from crmcore_nps.surveys import build_report, record_answer

__all__ = ["NpsResult", "build_report", "category", "compute_nps", "record_answer", "satisfaction"]
