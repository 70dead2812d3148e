"""The built-in grading schemes, registered through ``crm_grading_schemes`` like any other."""

from __future__ import annotations

from crmcore_grading import hospital, pipeline, pyramid, rfm
from crmcore_grading.scheme import GradingScheme

BUILTIN = (
    GradingScheme("pipeline", pipeline.make, "A-E by demand and expected closing date (DOMAIN §2)"),
    GradingScheme("rfm", rfm.make, "RFM segments from recency/frequency/monetary quantile scores"),
    GradingScheme(
        "pyramid", pyramid.make, "VIP / major / ordinary / small by revenue or profit share"
    ),
    GradingScheme(
        "hospital",
        hospital.make,
        "big / major / potential big / ordinary / general from 8 weighted signals",
    ),
)
