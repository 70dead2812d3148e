"""The service plugin's hook implementations (registered as the ``service`` plugin)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore import Kinds, LazyCommand, SettingsSpec, hookimpl

if TYPE_CHECKING:
    import click

    from crmcore import CRM, Action, Effects, ReportSection, ReportWindow
    from crmcore.registry import ApiRoute, CustomerPanel, TemplateFolder, TranslationCatalog
    from crmcore.storage import CollectionSpec
    from crmcore_service.model import Order

from crmcore.markers import N_
from crmcore.messages import msg, term

#: The shipped departments, marked for the catalog: a task title names them in the reader's
#: language (in English as configured; other departments as configured everywhere).
DEPARTMENTS = {
    "customer_service": N_("customer_service"),
    "billing": N_("billing"),
    "network": N_("network"),
}


@hookimpl
def crm_settings() -> SettingsSpec:
    """``[service]``; its class is imported when the section is first structured."""
    return SettingsSpec(section="service", type="crmcore_service.settings:ServiceSettings")


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    """The record classes named (``crmcore_service.model``), with their personal fields, so
    that opening a CRM does not define them (a test holds names and fields equal)."""
    from crmcore.storage import CollectionSpec, IndexSpec

    model = "crmcore_service.model"
    return [
        CollectionSpec(
            "service.orders",
            (
                IndexSpec([("wake_at", 1)], sparse=True),
                IndexSpec([("type", 1), ("state", 1)]),
                IndexSpec([("customer_id", 1), ("opened_at", 1)]),
                IndexSpec([("opened_at", 1)]),
                IndexSpec([("assignee", 1), ("closed_at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:Order",
            personal=("summary", "fields"),
        ),
        CollectionSpec(
            "service.transitions",
            (
                IndexSpec([("order_id", 1), ("at", 1)]),
                IndexSpec([("action", 1), ("at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:Transition",
            personal=("note",),
        ),
        CollectionSpec(
            "service.charges",
            (
                IndexSpec([("order_id", 1)]),
                IndexSpec([("kind", 1), ("at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:Charge",
            personal=("reason",),
        ),
        CollectionSpec(
            "service.care",
            (IndexSpec([("campaign", 1), ("customer_id", 1)], unique=True),),
            customer_key="customer_id",
            record_type=f"{model}:CareTarget",
            personal=(),
        ),
        CollectionSpec(
            "service.qa_reviews",
            (
                IndexSpec([("month", 1), ("rep", 1)]),
                IndexSpec([("reviewed_at", 1), ("sampled_at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:QaReview",
            personal=("comment",),
        ),
        CollectionSpec(
            "service.staff_complaints",
            (
                IndexSpec([("staff", 1), ("at", 1)]),
                IndexSpec([("interaction_id", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:StaffComplaint",
            personal=(),
        ),
    ]


@hookimpl
def crm_kinds() -> Kinds:
    return Kinds(
        tasks=("service", "survey", "qa_review"),
        task_labels={
            "service": N_("Service order step"),
            "survey": N_("Satisfaction survey"),
            "qa_review": N_("QA review"),
        },
    )


@hookimpl
def crm_service_step_entered(
    crm: CRM, order: Order, from_state: str | None, actor: str
) -> Effects | None:
    """Whoever acted at the step left has done their task; whoever acts next gets one."""
    from crmcore import Action, Effects, TaskDraft
    from crmcore.entities import Priority
    from crmcore_service.api import SECTION, TASK_SOURCE, Service, step_key

    done: list[Action] = []
    if from_state is not None:
        previous = crm.tasks.open_by_key(step_key(order.id, order.visit - 1))
        if previous is not None:
            done.append(
                Action(
                    lambda: crm.tasks.complete(
                        previous.id, actor=actor, outcome=f"moved to {order.state}"
                    ),
                    "service: the step left is done",
                )
            )
    if not order.is_open:
        return Effects(actions=done)
    api = Service(crm)
    order_type = api.order_type(order.type)
    step = order_type.step(order.state)
    due = order.step_due_at or order.advance_at or order.step_entered_at + timedelta(days=1)
    return Effects(
        actions=done,
        tasks=[
            TaskDraft(
                kind="service",
                title=msg(
                    "%(type)s: %(step)s (%(department)s), order %(order)s",
                    type=term(order_type.title),
                    step=term(step.label),
                    department=term(DEPARTMENTS.get(step.department, step.department)),
                    order=order.id,
                )
                if step.department
                else msg(
                    "%(type)s: %(step)s, order %(order)s",
                    type=term(order_type.title),
                    step=term(step.label),
                    order=order.id,
                ),
                due_at=due,
                customer_id=order.customer_id,
                assignee=order.assignee,
                priority=Priority.NORMAL,
                dedupe_key=step_key(order.id, order.visit),
                source=TASK_SOURCE,
                ref=order.id,
                ext={
                    SECTION: {
                        "purpose": "step",
                        "order_type": order.type,
                        "step": step.name,
                        "department": step.department,
                        "role": step.role,
                    }
                },
            )
        ],
    )


@hookimpl
def crm_service_order_ended(crm: CRM, order: Order, actor: str) -> Effects | None:
    """The ending event: a finished order logs its interaction (``end_interaction``) and gets
    its satisfaction callback (``callback_days``; shared with followup's callback key)."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_service_order_ended(crm, order, actor), "service: service order ended"
    )


def _crm_service_order_ended(crm: CRM, order: Order, actor: str) -> Effects | None:
    from crmcore import Effects, TaskDraft
    from crmcore.contracts import callback_key
    from crmcore_service.api import SECTION, TASK_SOURCE, Service

    if order.outcome != "done":
        return None
    order_type = Service(crm).order_type(order.type)
    ref = order.id
    if order_type.end_interaction:
        logged = crm.interactions.log(
            actor=actor,
            customer_id=order.customer_id,
            kind=order_type.end_interaction,
            occurred_at=order.closed_at,
            rep=order.owner,
            ref=order.id,
            summary=f"{order_type.title}: {order_type.step(order.state).label}"[:500],
            ext={SECTION: {"order_id": order.id, "order_type": order.type}},
        )
        ref = logged.id
    if order_type.callback_days <= 0:
        return None
    ended = order.closed_at or crm.now()
    return Effects(
        tasks=[
            TaskDraft(
                kind="callback",
                title=msg(
                    "Satisfaction callback: %(type)s done (order %(order)s)",
                    type=term(order_type.title),
                    order=order.id,
                ),
                due_at=ended + timedelta(days=order_type.callback_days),
                customer_id=order.customer_id,
                assignee=order.owner,
                dedupe_key=callback_key(ref),
                source=TASK_SOURCE,
                ref=ref,
                ext={SECTION: {"purpose": "callback", "order_id": order.id}},
            )
        ]
    )


@hookimpl
def crm_tick(crm: CRM, now: datetime, worker: str) -> Effects | None:
    """Record step SLA breaches, escalate stalled steps, end notice periods."""
    from crmcore import Effects

    return Effects.run(lambda: _crm_tick(crm, now, worker), "service: tick")


def _crm_tick(crm: CRM, now: datetime, worker: str) -> Effects | None:
    from crmcore_service.api import Service

    Service(crm).sweep(now, worker)
    return None


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm service``, imported when it runs."""
    return [
        LazyCommand(
            "service",
            "crmcore_service.cli:service_group",
            "Service orders: business acceptance, changes, cancellations, billing, faults, 工单.",
        )
    ]


@hookimpl
def crm_api_routes(crm: CRM) -> list[ApiRoute]:
    from crmcore_service.routes import routes

    return routes()


@hookimpl
def crm_customer_panels(crm: CRM) -> list[CustomerPanel]:
    """The customer's open service orders on the workspace's customer page."""
    from crmcore_service import web_panel

    return web_panel.panels()


@hookimpl
def crm_web_templates() -> list[TemplateFolder]:
    """The template of the customer page's orders panel (``service/panel.html``)."""
    from crmcore_service import web_panel

    return web_panel.templates()


@hookimpl
def crm_translations() -> list[TranslationCatalog]:
    """The panel's strings (``locale/<locale>/LC_MESSAGES/crmcore_service.po``)."""
    from crmcore_service import web_panel

    return web_panel.translations()


@hookimpl
def crm_report_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    from crmcore_service.api import Service
    from crmcore_service.reports import sections

    return sections(Service(crm), now, window)


@hookimpl
def crm_simulate(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    from crmcore_service.api import Service
    from crmcore_service.simulate import simulate_day

    simulate_day(Service(crm), now, rng, actor)
