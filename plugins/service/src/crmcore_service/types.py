"""The order types shipped with the plugin (DOMAIN §9). ``[service.types.<name>]`` replaces one
by name or adds another; ``disabled_types`` drops one."""

from __future__ import annotations

from crmcore_service.settings import OrderType, StepSpec

S = StepSpec
CS, BILLING, NETWORK = "customer_service", "billing", "network"

BUSINESS = OrderType(
    title="Business acceptance (业务受理)",
    category="business",
    end_interaction="business",
    callback_days=3.0,
    steps=[
        S(
            "application",
            "application received",
            ["document_review", "withdrawn"],
            department=CS,
            requires=["product"],
            sla_hours=4,
        ),
        S(
            "document_review",
            "review of the customer's documents",
            ["contract", "rejected", "withdrawn"],
            department=CS,
            requires=[],
            sla_hours=8,
            clock="business",
        ),
        S(
            "contract",
            "contract signed",
            ["provisioning", "withdrawn"],
            department=CS,
            requires=["documents_checked"],
            sla_hours=24,
            clock="business",
        ),
        S(
            "provisioning",
            "service provisioned",
            ["completed"],
            department=NETWORK,
            requires=["contract_no"],
            sla_hours=24,
        ),
        S("completed", "business handled", requires=["service_number"]),
        S("rejected", "documents refused", requires=["reason"], outcome="rejected"),
        S("withdrawn", "withdrawn by the customer", requires=["reason"], outcome="cancelled"),
    ],
)

CHANGE = OrderType(
    title="Change of service (upgrade, downgrade, adjust)",
    category="change",
    end_interaction="business",
    callback_days=3.0,
    choices={"change": ["upgrade", "downgrade", "adjust"]},
    steps=[
        S(
            "request",
            "change requested",
            ["review", "withdrawn"],
            department=CS,
            requires=["change", "target_plan"],
            sla_hours=4,
        ),
        S(
            "review",
            "change reviewed",
            ["apply", "rejected"],
            department=CS,
            sla_hours=8,
            clock="business",
        ),
        S(
            "apply",
            "change being applied",
            ["completed"],
            department=NETWORK,
            requires=["effective_date"],
            sla_hours=24,
        ),
        S("completed", "change in force"),
        S("rejected", "change refused", requires=["reason"], outcome="rejected"),
        S("withdrawn", "withdrawn by the customer", requires=["reason"], outcome="cancelled"),
    ],
)

CANCELLATION = OrderType(
    title="Cancellation",
    category="cancellation",
    choices={"reason": ["price", "quality", "moving", "competitor", "no_longer_needed", "other"]},
    steps=[
        S(
            "request",
            "cancellation requested",
            ["fee_settlement", "retained"],
            department=CS,
            requires=["reason"],
            sla_hours=4,
        ),
        S(
            "fee_settlement",
            "fees settled per the contract",
            ["notice"],
            department=BILLING,
            sla_hours=24,
            clock="business",
        ),
        S(
            "notice",
            "notice period running",
            [],
            department=CS,
            requires=["amount", "contract_no"],
            record="fee_settlement",
            wait_days=30.0,
            then="closed",
        ),
        S("closed", "service closed"),
        S(
            "retained",
            "customer kept (cancellation withdrawn)",
            requires=["offer"],
            outcome="cancelled",
        ),
    ],
)

BILLING_QUERY = OrderType(
    title="Billing query",
    category="billing",
    end_interaction="billing",
    steps=[
        S("query", "query received", ["answered"], department=BILLING, sla_hours=24),
        S("answered", "answer given to the customer", requires=["answer"]),
    ],
)

BILLING_DISPUTE = OrderType(
    title="Billing dispute",
    category="billing",
    end_interaction="billing",
    callback_days=3.0,
    choices={"decision": ["upheld", "partly_upheld", "rejected"]},
    steps=[
        S(
            "report",
            "dispute reported",
            ["investigate"],
            department=BILLING,
            requires=["disputed_amount"],
            sla_hours=4,
        ),
        S(
            "investigate",
            "charges investigated",
            ["mediate", "decision"],
            department=BILLING,
            sla_hours=24,
            clock="business",
        ),
        S(
            "mediate",
            "mediation with the customer",
            ["decision"],
            department=BILLING,
            requires=["findings"],
            sla_hours=24,
            clock="business",
        ),
        S(
            "decision",
            "decision taken",
            ["adjustment", "lessons"],
            department=BILLING,
            role="shift_lead",
            requires=["findings"],
            sla_hours=8,
            clock="business",
        ),
        S(
            "adjustment",
            "charges adjusted",
            ["lessons"],
            department=BILLING,
            role="shift_lead",
            requires=["decision", "amount", "reason"],
            record="charge_adjustment",
            sla_hours=24,
        ),
        S(
            "lessons",
            "lessons learnt",
            ["closed"],
            department=BILLING,
            role="manager",
            requires=["decision"],
            sla_hours=72,
        ),
        S("closed", "dispute closed", requires=["lessons"]),
    ],
)

FAULT = OrderType(
    title="Fault report and repair",
    category="fault",
    callback_days=3.0,
    steps=[
        S(
            "reported",
            "fault reported",
            ["diagnosis"],
            department=CS,
            requires=["symptom"],
            sla_hours=2,
        ),
        S("diagnosis", "fault diagnosed", ["repair", "no_fault"], department=NETWORK, sla_hours=8),
        S(
            "repair",
            "repair under way",
            ["verification"],
            department=NETWORK,
            requires=["diagnosis"],
            sla_hours=24,
        ),
        S(
            "verification",
            "repair checked with the customer",
            ["closed", "repair"],
            department=CS,
            requires=["fix"],
            sla_hours=8,
        ),
        S("closed", "fault fixed"),
        S("no_fault", "no fault found", requires=["explanation"], outcome="rejected"),
    ],
)

WORK_ORDER = OrderType(
    title="Work order (工单): suggestion or request",
    category="work_order",
    choices={"kind": ["suggestion", "request", "other"]},
    steps=[
        S(
            "submitted",
            "submitted",
            ["handling", "declined"],
            department=CS,
            requires=["kind"],
            sla_hours=24,
        ),
        S("handling", "being handled", ["feedback"], department=CS, sla_hours=48, clock="business"),
        S(
            "feedback",
            "fed back to the customer",
            ["closed", "handling"],
            department=CS,
            requires=["result"],
            sla_hours=24,
        ),
        S("closed", "closed"),
        S("declined", "declined", requires=["reason"], outcome="rejected"),
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
