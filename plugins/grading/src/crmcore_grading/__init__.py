"""Customer grading for crmcore: the A-E pipeline grade, value tiers and churn risk.

Host applications use ``crmcore_grading.api``; scheme authors return
``crmcore_grading.scheme.GradingScheme`` objects from the ``crm_grading_schemes`` hook.
"""

from crmcore_grading.scheme import Facts, Grade, GradingScheme, Scheme, SchemeContext
from crmcore_grading.signals import Signals

__all__ = ["Facts", "Grade", "GradingScheme", "Scheme", "SchemeContext", "Signals"]
