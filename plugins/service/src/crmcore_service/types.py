"""The order types shipped with the plugin (DOMAIN §9). ``[service.types.<name>]`` replaces one
by name or adds another; ``disabled_types`` drops one. Titles and step labels are marked for the
catalog: task titles that name them are shown in the reader's language."""

from __future__ import annotations

from crmcore.i18n import N_
from crmcore_service.settings import OrderType, StepSpec

S = StepSpec
CS, BILLING, NETWORK = "customer_service", "billing", "network"

BUSINESS = OrderType(
    title=N_("Business acceptance (业务受理)"),
    category="business",
    end_interaction="business",
    callback_days=3.0,
    steps=[
        S(
            "application",
            N_("application received"),
            ["document_review", "withdrawn"],
            department=CS,
            requires=["product"],
            sla_hours=4,
        ),
        S(
            "document_review",
            N_("review of the customer's documents"),
            ["contract", "rejected", "withdrawn"],
            department=CS,
            requires=[],
            sla_hours=8,
            clock="business",
        ),
        S(
            "contract",
            N_("contract signed"),
            ["provisioning", "withdrawn"],
            department=CS,
            requires=["documents_checked"],
            sla_hours=24,
            clock="business",
        ),
        S(
            "provisioning",
            N_("service provisioned"),
            ["completed"],
            department=NETWORK,
            requires=["contract_no"],
            sla_hours=24,
        ),
        S("completed", N_("business handled"), requires=["service_number"]),
        S("rejected", N_("documents refused"), requires=["reason"], outcome="rejected"),
        S("withdrawn", N_("withdrawn by the customer"), requires=["reason"], outcome="cancelled"),
    ],
)

CHANGE = OrderType(
    title=N_("Change of service (upgrade, downgrade, adjust)"),
    category="change",
    end_interaction="business",
    callback_days=3.0,
    choices={"change": ["upgrade", "downgrade", "adjust"]},
    steps=[
        S(
            "request",
            N_("change requested"),
            ["review", "withdrawn"],
            department=CS,
            requires=["change", "target_plan"],
            sla_hours=4,
        ),
        S(
            "review",
            N_("change reviewed"),
            ["apply", "rejected"],
            department=CS,
            sla_hours=8,
            clock="business",
        ),
        S(
            "apply",
            N_("change being applied"),
            ["completed"],
            department=NETWORK,
            requires=["effective_date"],
            sla_hours=24,
        ),
        S("completed", N_("change in force")),
        S("rejected", N_("change refused"), requires=["reason"], outcome="rejected"),
        S("withdrawn", N_("withdrawn by the customer"), requires=["reason"], outcome="cancelled"),
    ],
)

CANCELLATION = OrderType(
    title=N_("Cancellation"),
    category="cancellation",
    choices={"reason": ["price", "quality", "moving", "competitor", "no_longer_needed", "other"]},
    steps=[
        S(
            "request",
            N_("cancellation requested"),
            ["fee_settlement", "retained"],
            department=CS,
            requires=["reason"],
            sla_hours=4,
        ),
        S(
            "fee_settlement",
            N_("fees settled per the contract"),
            ["notice"],
            department=BILLING,
            sla_hours=24,
            clock="business",
        ),
        S(
            "notice",
            N_("notice period running"),
            [],
            department=CS,
            requires=["amount", "contract_no"],
            record="fee_settlement",
            wait_days=30.0,
            then="closed",
        ),
        S("closed", N_("service closed")),
        S(
            "retained",
            N_("customer kept (cancellation withdrawn)"),
            requires=["offer"],
            outcome="cancelled",
        ),
    ],
)

BILLING_QUERY = OrderType(
    title=N_("Billing query"),
    category="billing",
    end_interaction="billing",
    steps=[
        S("query", N_("query received"), ["answered"], department=BILLING, sla_hours=24),
        S("answered", N_("answer given to the customer"), requires=["answer"]),
    ],
)

BILLING_DISPUTE = OrderType(
    title=N_("Billing dispute"),
    category="billing",
    end_interaction="billing",
    callback_days=3.0,
    choices={"decision": ["upheld", "partly_upheld", "rejected"]},
    steps=[
        S(
            "report",
            N_("dispute reported"),
            ["investigate"],
            department=BILLING,
            requires=["disputed_amount"],
            sla_hours=4,
        ),
        S(
            "investigate",
            N_("charges investigated"),
            ["mediate", "decision"],
            department=BILLING,
            sla_hours=24,
            clock="business",
        ),
        S(
            "mediate",
            N_("mediation with the customer"),
            ["decision"],
            department=BILLING,
            requires=["findings"],
            sla_hours=24,
            clock="business",
        ),
        S(
            "decision",
            N_("decision taken"),
            ["adjustment", "lessons"],
            department=BILLING,
            role="shift_lead",
            requires=["findings"],
            sla_hours=8,
            clock="business",
        ),
        S(
            "adjustment",
            N_("charges adjusted"),
            ["lessons"],
            department=BILLING,
            role="shift_lead",
            requires=["decision", "amount", "reason"],
            record="charge_adjustment",
            sla_hours=24,
        ),
        S(
            "lessons",
            N_("lessons learnt"),
            ["closed"],
            department=BILLING,
            role="manager",
            requires=["decision"],
            sla_hours=72,
        ),
        S("closed", N_("dispute closed"), requires=["lessons"]),
    ],
)

FAULT = OrderType(
    title=N_("Fault report and repair"),
    category="fault",
    callback_days=3.0,
    steps=[
        S(
            "reported",
            N_("fault reported"),
            ["diagnosis"],
            department=CS,
            requires=["symptom"],
            sla_hours=2,
        ),
        S(
            "diagnosis",
            N_("fault diagnosed"),
            ["repair", "no_fault"],
            department=NETWORK,
            sla_hours=8,
        ),
        S(
            "repair",
            N_("repair under way"),
            ["verification"],
            department=NETWORK,
            requires=["diagnosis"],
            sla_hours=24,
        ),
        S(
            "verification",
            N_("repair checked with the customer"),
            ["closed", "repair"],
            department=CS,
            requires=["fix"],
            sla_hours=8,
        ),
        S("closed", N_("fault fixed")),
        S("no_fault", N_("no fault found"), requires=["explanation"], outcome="rejected"),
    ],
)

WORK_ORDER = OrderType(
    title=N_("Work order (工单): suggestion or request"),
    category="work_order",
    choices={"kind": ["suggestion", "request", "other"]},
    steps=[
        S(
            "submitted",
            N_("submitted"),
            ["handling", "declined"],
            department=CS,
            requires=["kind"],
            sla_hours=24,
        ),
        S(
            "handling",
            N_("being handled"),
            ["feedback"],
            department=CS,
            sla_hours=48,
            clock="business",
        ),
        S(
            "feedback",
            N_("fed back to the customer"),
            ["closed", "handling"],
            department=CS,
            requires=["result"],
            sla_hours=24,
        ),
        S("closed", N_("closed")),
        S("declined", N_("declined"), requires=["reason"], outcome="rejected"),
    ],
)

SHIPPED: dict[str, OrderType] = {
    "business": BUSINESS,
    "change": CHANGE,
    "cancellation": CANCELLATION,
    "billing_query": BILLING_QUERY,
    "billing_dispute": BILLING_DISPUTE,
    "fault": FAULT,
    "work_order": WORK_ORDER,
}
