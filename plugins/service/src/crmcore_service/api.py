"""The service-order API: ``Service(crm)``, used by the CLI, the JSON API, the worker and the
demo. Each change reads the order, checks its type's state machine and who may act, and writes
with the version it read (a concurrent change raises ``ConflictError``); every change leaves a
``service.transitions`` line and goes through the core's audited writes in one transaction
with the hooks it fires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore import CRM, ConflictError, NotFoundError, PermissionDenied, ValidationError
from crmcore.customers import require_actor
from crmcore.entities import CustomerStatus, Priority
from crmcore.i18n import N_, msg, term
from crmcore.logs import get_logger
from crmcore.security import Resource, Role
from crmcore_service.model import CHARGES, ORDERS, TRANSITIONS, Charge, Order, Transition
from crmcore_service.settings import OrderType, ServiceSettings, StepSpec
from crmcore_service.timing import clock_for

SECTION = "service"
TASK_SOURCE = "service"
WAKE_BATCH = 500
ROLE_RANK = {"agent": 0, "shift_lead": 1, "manager": 2}
_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
FieldValue = str | int | float | bool


#: The escalation ladder's roles as a task title names them (in the reader's language).
ROLES = {"shift_lead": N_("shift lead"), "department_manager": N_("department manager")}


def step_key(order_id: str, visit: int) -> str:
    """The dedupe key of the task for an order's ``visit``-th step."""
    return f"service-step:{order_id}:{visit}"


def escalation_key(order: Order, level: int) -> str:
    return f"service-escalation:{order.id}:{order.visit}:{level}"


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


class Service:
    """Service orders from opening to their ending event (DOMAIN §9)."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.settings: ServiceSettings = crm.settings(SECTION)
        self.types: dict[str, OrderType] = self.settings.all_types
        self.orders = crm.records(ORDERS, Order)
        self.transitions = crm.records(TRANSITIONS, Transition)
        self.charges = crm.records(CHARGES, Charge)
        self.log = get_logger(SECTION)

    # -- reading ---------------------------------------------------------------------------

    def order_type(self, name: str) -> OrderType:
        """The order type called ``name`` or a ``ValidationError`` naming the known ones."""
        try:
            return self.types[name]
        except KeyError:
            raise ValidationError(
                f"unknown order type {name!r} (known: {', '.join(self.types)})", field="type"
            ) from None

    def get(self, order_id: str, *, actor: str | None = None) -> Order:
        """The order with this id (``NotFoundError`` if none); with ``actor``, checks that
        they may read it."""
        if not isinstance(order_id, str) or not order_id.strip():
            raise ValidationError("name an order by its id", field="order")
        try:
            order = self.orders.get(order_id.strip())
        except NotFoundError:
            raise NotFoundError(f"no service order {order_id!r}") from None
        if actor is not None and actor not in (order.owner, order.assignee):
            self.crm.authorize(actor, "service.read", self._resource(order))
        return order

    def find(
        self,
        *,
        type: str | None = None,
        state: str | None = None,
        customer_id: str | None = None,
        open_only: bool = False,
        department: str | None = None,
        assignee: str | None = None,
        limit: int | None = None,
        actor: str | None = None,
    ) -> list[Order]:
        """Orders matching every given criterion, oldest first; with ``actor``, only those
        they may read (under ``[security] enforce``: their scope's, or assigned to them)."""
        query: dict[str, Any] = {}
        if type is not None:
            order_type = self.order_type(type)
            if state is not None and state not in [s.name for s in order_type.steps]:
                raise ValidationError(
                    f"order type {type} has no step {state!r} (steps: "
                    f"{', '.join(s.name for s in order_type.steps)})",
                    field="state",
                )
            query["type"] = type
        for key, value in (
            ("state", state),
            ("customer_id", customer_id),
            ("department", department),
            ("assignee", assignee),
        ):
            if value is not None:
                query[key] = value
        if open_only:
            query["closed_at"] = None
        if actor is not None and self.crm.config.security.enforce:
            scope = self.crm.readable_filter(actor, {})
            query = (
                {"$and": [query, {"$or": [scope, {"assignee": actor}]}]}
                if query
                else {"$or": [scope, {"assignee": actor}]}
            )
        return self.orders.find(query, sort=[("opened_at", 1), ("id", 1)], limit=limit)

    def history(self, order_id: str) -> list[Transition]:
        """An order's transitions, oldest first."""
        return self.transitions.find({"order_id": order_id}, sort=[("at", 1), ("id", 1)])

    def charges_for(self, order_id: str) -> list[Charge]:
        """Fee settlements and charge adjustments recorded on an order."""
        return self.charges.find({"order_id": order_id}, sort=[("at", 1), ("id", 1)])

    def allowed_next(self, order: Order) -> list[str]:
        """The steps ``order`` may move to now (none once it has ended)."""
        if not order.is_open:
            return []
        return self.order_type(order.type).allowed_from(order.state)

    # -- changing --------------------------------------------------------------------------

    def open(
        self,
        *,
        actor: str,
        type: str,
        customer_id: str,
        fields: Mapping[str, FieldValue] | None = None,
        summary: str = "",
        owner: str | None = None,
        assignee: str | None = None,
    ) -> Order:
        """Open an order of ``type`` for a customer at its first step. The first step's
        ``requires`` must be given in ``fields``; ``owner`` (default: the actor) tracks the
        order to the end. Creates the first step's task."""
        actor = require_actor(actor)
        order_type = self.order_type(type)
        clean = self._clean_fields(order_type, fields or {})
        customer = self.crm.customers.get(customer_id)
        if customer.status is not CustomerStatus.ACTIVE:
            raise ValidationError(
                f"customer {customer_id} is {customer.status.value}", field="customer_id"
            )
        self.crm.authorize(
            actor, "service.create", Resource("service_order", None, None, customer.id)
        )
        first = order_type.first
        self._require_fields(order_type, first, clean)
        now = self.crm.now()
        owner = (owner or actor).strip() or actor
        order = Order(
            id=self.crm.new_id("svc_"),
            customer_id=customer.id,
            type=type,
            state=first.name,
            opened_at=now,
            opened_by=actor,
            owner=owner,
            step_entered_at=now,
            summary=(summary or "").strip(),
            fields=clean,
        )
        order = attrs.evolve(order, **self._entering(order, order_type, first, now, assignee))
        with self.crm.transaction(actor):
            stored = self.orders.insert(order)
            self._trace(
                stored,
                actor,
                "opened",
                None,
                first.name,
                None,
                {
                    "owner": owner,
                    "assignee": stored.assignee,
                    "due": stored.step_due_at,
                    "clock": stored.step_clock,
                },
            )
            self.crm.events.service_step_entered(actor=actor, order=stored, from_state=None)
        self.log.info("service order opened", order=stored.id, type=type, step=first.name)
        return stored

    def advance(
        self,
        order: Order | str,
        *,
        actor: str,
        to: str,
        fields: Mapping[str, FieldValue] | None = None,
        note: str = "",
        assignee: str | None = None,
        expected_version: int | None = None,
    ) -> Order:
        """Move an order to step ``to``: refused (naming the allowed steps) unless the current
        step leads there, unless the actor may act at the current step, and unless every
        field the new step requires is known (given now in ``fields`` or earlier)."""
        actor = require_actor(actor)
        current = self._load(order)
        if expected_version is not None and current.version != expected_version:
            raise ConflictError(
                f"order {current.id} is at version {current.version} "
                f"({current.state}), not {expected_version}: someone changed "
                "it; reload it"
            )
        if not current.is_open:
            raise ValidationError(
                f"order {current.id} has ended ({current.outcome}, at step "
                f"{current.state}): it cannot move any more",
                field="to",
            )
        order_type = self.order_type(current.type)
        allowed = order_type.allowed_from(current.state)
        if to not in allowed:
            raise ValidationError(
                f"order {current.id} is at step {current.state}: it cannot "
                f"move to {to!r} (allowed: {', '.join(allowed)})",
                field="to",
            )
        step = order_type.step(current.state)
        if step.then == to and to not in step.next:
            raise ValidationError(
                f"order {current.id} waits at step {current.state} until "
                f"{current.advance_at:%Y-%m-%d %H:%M} UTC; the worker then "
                f"moves it to {to}",
                field="to",
            )
        self._may_act(current, step, actor)
        merged = {**current.fields, **self._clean_fields(order_type, fields or {})}
        target = order_type.step(to)
        self._require_fields(order_type, target, merged)
        return self._move(current, order_type, target, actor, merged, note, assignee)

    def _move(
        self,
        current: Order,
        order_type: OrderType,
        target: StepSpec,
        actor: str,
        merged: dict[str, FieldValue],
        note: str,
        assignee: str | None,
    ) -> Order:
        now = self.crm.now()
        charge = self._charge(current, target, merged, actor, now) if target.record else None
        changes = self._entering(current, order_type, target, now, assignee)
        changes["fields"] = merged
        with self.crm.transaction(actor):
            updated = self._write(current, changes)
            spent = (now - current.step_entered_at).total_seconds() / 3600
            self._trace(
                updated,
                actor,
                "advanced",
                current.state,
                target.name,
                round(spent, 3),
                {
                    "assignee": updated.assignee,
                    "due": updated.step_due_at,
                    "fields": sorted(
                        set(merged) - set(current.fields)
                        | {k for k in merged if merged[k] != current.fields.get(k)}
                    ),
                    "charge": charge.id if charge else None,
                },
                note,
            )
            if charge is not None:
                self.charges.insert(charge)
            self.crm.events.service_step_entered(
                actor=actor, order=updated, from_state=current.state
            )
            if not updated.is_open:
                self.crm.events.service_order_ended(actor=actor, order=updated)
        self.log.info(
            "service order advanced",
            order=updated.id,
            type=updated.type,
            step=updated.state,
            outcome=updated.outcome,
        )
        return updated

    # -- the worker ------------------------------------------------------------------------

    def sweep(self, now: datetime, worker: str) -> int:
        """Record step SLA breaches, escalate stalled steps and end notice periods that are
        due; returns how many orders this worker handled (a lost race skips the order)."""
        handled = 0
        for order in self.orders.find(
            {"wake_at": {"$lte": now}}, sort=[("wake_at", 1)], limit=WAKE_BATCH
        ):
            if order.type not in self.types or order.state not in [
                s.name for s in self.types[order.type].steps
            ]:
                self.log.warning(
                    "service order of a type or step no longer configured; left alone",
                    order=order.id,
                    type=order.type,
                    step=order.state,
                )
                continue
            try:
                if self.wake(order, now, worker):
                    handled += 1
            except ConflictError:
                self.log.debug("order taken by another worker", order=order.id, worker=worker)
        return handled

    def wake(self, order: Order, now: datetime, worker: str) -> bool:
        """Act on one order as read (``ConflictError`` if it changed since)."""
        actor = f"worker:{worker}"
        order_type = self.order_type(order.type)
        step = order_type.step(order.state)
        if order.advance_at is not None and order.advance_at <= now and step.then:
            target = order_type.step(step.then)
            self._move(
                order,
                order_type,
                target,
                actor,
                dict(order.fields),
                f"{step.wait_days:g} days at {step.name} have passed",
                None,
            )
            return True
        changes: dict[str, Any] = {}
        breached = (
            not order.step_breached and order.step_due_at is not None and order.step_due_at <= now
        )
        if breached:
            changes.update(step_breached=True, breaches=order.breaches + 1)
        levels: list[tuple[int, datetime]] = []
        probe = attrs.evolve(order, **changes)
        while probe.next_escalation_at is not None and probe.next_escalation_at <= now:
            levels.append((probe.escalation_level + 1, probe.next_escalation_at))
            probe = attrs.evolve(probe, escalation_level=probe.escalation_level + 1)
            probe = attrs.evolve(probe, **self._schedule(probe, order_type))
        if levels:
            changes.update(
                escalation_level=levels[-1][0], escalations=order.escalations + len(levels)
            )
        if not changes:
            if self._schedule(order, order_type)["wake_at"] != order.wake_at:
                self._write(order, {})
            return False
        with self.crm.transaction(actor):
            updated = self._write(order, changes)
            if breached:
                self._trace(
                    updated,
                    actor,
                    "breached",
                    None,
                    None,
                    None,
                    {
                        "step": order.state,
                        "due": order.step_due_at,
                        "sla_hours": step.sla_hours,
                        "clock": order.step_clock,
                    },
                )
            for level, at in levels:
                self._escalate(updated, level, at, actor)
        return True

    def _escalate(self, order: Order, level: int, at: datetime, actor: str) -> None:
        rung = self.settings.escalation[level - 1]
        person, how = self._resolve(order, rung.target)
        order_type = self.order_type(order.type)
        step = order_type.step(order.state)
        task = self.crm.tasks.create(
            actor=actor,
            kind="service",
            due_at=self.crm.now(),
            customer_id=order.customer_id,
            title=msg(
                "Service order %(order)s stalled at '%(step)s' (level %(level)s, %(role)s): "
                "decide and act now",
                order=order.id,
                step=term(step.label),
                level=level,
                role=term(ROLES.get(rung.target, rung.target.replace("_", " "))),
            ),
            assignee=person,
            priority=Priority.HIGH,
            dedupe_key=escalation_key(order, level),
            source=TASK_SOURCE,
            ref=order.id,
            ext={SECTION: {"purpose": "escalation", "level": level, "step": order.state}},
        )
        self._trace(
            order,
            actor,
            "escalated",
            None,
            None,
            None,
            {
                "level": level,
                "step": order.state,
                "target": rung.target,
                "assignee": person,
                "how": how,
                "scheduled_at": at,
                "task_id": task.id,
            },
        )
        self.crm.events.service_order_escalated(
            actor=actor,
            order=order,
            level=level,
            target=person or rung.target,
        )
        self.log.info(
            "service order escalated",
            order=order.id,
            level=level,
            target=rung.target,
            assignee=person,
        )

    # -- plumbing --------------------------------------------------------------------------

    def _resource(self, order: Order | None, customer_id: str | None = None) -> Resource:
        if order is None:
            return Resource("service_order", None, None, customer_id)
        return Resource("service_order", order.id, order.owner, order.customer_id)

    def _may_act(self, order: Order, step: StepSpec, actor: str) -> None:
        """Under ``[security] enforce``: the step's role (or a higher one) and department decide
        who moves it on (the person assigned to the step may, whatever their department);
        admins and system actors may do anything."""
        self.crm.authorize(
            actor, "service.advance", Resource("service_order", order.id, None, order.customer_id)
        )
        if not self.crm.config.security.enforce:
            return
        who = self.crm.actor(actor)
        if who is None or who.role in (Role.ADMIN, Role.SYSTEM):
            return
        if who.role is Role.AUDITOR:
            raise PermissionDenied(
                f"{actor} (auditor) may not advance order {order.id}: auditors are read-only"
            )
        if ROLE_RANK[who.role.value] < ROLE_RANK[step.role]:
            raise PermissionDenied(
                f"{actor} ({who.role.value}) may not advance order "
                f"{order.id} at step {step.name}: it takes a "
                f"{step.role.replace('_', ' ')} or above"
            )
        if step.department and who.department != step.department and actor != order.assignee:
            raise PermissionDenied(
                f"{actor} may not advance order {order.id} at step "
                f"{step.name}: it is for department {step.department}, not "
                f"{who.department or 'none'}"
            )

    def _clean_fields(
        self, order_type: OrderType, fields: Mapping[str, FieldValue]
    ) -> dict[str, FieldValue]:
        clean: dict[str, FieldValue] = {}
        for key, value in fields.items():
            if not isinstance(key, str) or not _FIELD.match(key):
                raise ValidationError(
                    f"{key!r} is not a field name (lower-case letters, digits, '_')", field="fields"
                )
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    raise ValidationError(f"field {key} is empty", field=key)
                if len(value) > 2000:
                    raise ValidationError(f"field {key} is longer than 2000 characters", field=key)
            elif not isinstance(value, int | float | bool):
                raise ValidationError(
                    f"field {key} must be text, a number or true/false", field=key
                )
            allowed = order_type.choices.get(key)
            if allowed is not None and str(value) not in allowed:
                raise ValidationError(
                    f"unknown {key} {value!r} (allowed: {', '.join(allowed)})", field=key
                )
            clean[key] = value
        return clean

    def _require_fields(
        self, order_type: OrderType, step: StepSpec, fields: Mapping[str, FieldValue]
    ) -> None:
        missing = [name for name in step.requires if name not in fields]
        if missing:
            raise ValidationError(
                f"step {step.name} of a {order_type.title} order needs "
                f"{', '.join(missing)} (give it as a field: "
                f"--set {missing[0]}=VALUE)",
                field=missing[0],
            )

    def _charge(
        self,
        order: Order,
        target: StepSpec,
        fields: Mapping[str, FieldValue],
        actor: str,
        now: datetime,
    ) -> Charge:
        raw = fields.get("amount")
        try:
            amount = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValidationError(f"amount must be a number, not {raw!r}", field="amount") from None
        if amount != amount or abs(amount) > 1e9:
            raise ValidationError(f"amount {raw!r} is out of range", field="amount")
        reference = fields.get("contract_no") or fields.get("bill")
        return Charge(
            id=self.crm.new_id("chg_"),
            kind=target.record,
            order_id=order.id,
            customer_id=order.customer_id,
            amount=round(amount, 2),
            at=now,
            reason=str(fields.get("reason", "")),
            decided_by=actor,
            reference=None if reference is None else str(reference),
        )

    def _resolve(self, order: Order, target: str) -> tuple[str | None, str]:
        """The person a role names for ``order`` now, and one line saying why."""
        if target.startswith("person:"):
            return target[7:].strip(), "named in the escalation ladder"
        dept = self.settings.departments.get(order.department or "")
        if target == "shift_lead" and dept is not None and dept.lead:
            return dept.lead, f"lead of {order.department}"
        if target in ("shift_lead", "department_manager") and dept is not None and dept.manager:
            return dept.manager, f"manager of {order.department}"
        if target == "assignee" and order.assignee:
            return order.assignee, "acts at the step"
        return (
            order.owner,
            f"no {target.replace('_', ' ')} set for department "
            f"{order.department or '(none)'}; the owner (first contact)",
        )

    def _entering(
        self,
        order: Order,
        order_type: OrderType,
        step: StepSpec,
        now: datetime,
        assignee: str | None,
    ) -> dict[str, Any]:
        """The changes that put ``order`` at the start of ``step``."""
        changes: dict[str, Any] = {
            "state": step.name,
            "step_entered_at": now,
            "step_breached": False,
            "escalation_level": 0,
            "visit": order.visit + 1,
            "department": step.department,
        }
        if step.terminal:
            changes.update(
                assignee=None,
                step_due_at=None,
                next_escalation_at=None,
                advance_at=None,
                wake_at=None,
                closed_at=now,
                outcome=step.outcome,
                step_clock="calendar",
            )
            return changes
        person = (assignee or "").strip() or step.assignee
        if not person and step.department:
            dept = self.settings.departments.get(step.department)
            person = dept.lead if dept is not None else None
        changes["assignee"] = person or order.owner
        clock, name = clock_for(self.crm, step.clock)
        changes["step_clock"] = name
        changes["step_due_at"] = clock.add(now, hours(step.sla_hours)) if step.sla_hours else None
        changes["advance_at"] = now + timedelta(days=step.wait_days) if step.wait_days else None
        probe = attrs.evolve(order, **changes)
        changes.update(self._schedule(probe, order_type))
        return changes

    def _schedule(self, order: Order, order_type: OrderType) -> dict[str, Any]:
        """The next escalation and when the worker should look at ``order`` again."""
        ladder = self.settings.escalation
        next_escalation = None
        if order.step_due_at is not None and order.escalation_level < len(ladder):
            clock, _name = clock_for(self.crm, order.step_clock)
            after = ladder[order.escalation_level].after_hours
            next_escalation = clock.add(order.step_due_at, hours(after))
        wakes = [
            t
            for t in (
                None if order.step_breached else order.step_due_at,
                next_escalation,
                order.advance_at,
            )
            if t is not None
        ]
        return {"next_escalation_at": next_escalation, "wake_at": min(wakes) if wakes else None}

    def _load(self, order: Order | str) -> Order:
        return order if isinstance(order, Order) else self.get(order)

    def _write(self, current: Order, changes: Mapping[str, Any]) -> Order:
        new = attrs.evolve(current, **changes)
        if current.is_open and new.is_open:
            new = attrs.evolve(new, **self._schedule(new, self.order_type(new.type)))
        diff = {
            a.name: getattr(new, a.name)
            for a in attrs.fields(Order)
            if a.name not in ("id", "version") and getattr(new, a.name) != getattr(current, a.name)
        }
        try:
            return self.orders.update(current, **diff)
        except ConflictError:
            raise ConflictError(
                f"order {current.id} was changed by someone else since you "
                f"read it (version {current.version}); reload it and try "
                "again"
            ) from None

    def _trace(
        self,
        order: Order,
        actor: str,
        action: str,
        from_state: str | None,
        to_state: str | None,
        hours_in_step: float | None,
        details: Mapping[str, Any],
        note: str = "",
    ) -> Transition:
        plain = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in details.items()
            if v is not None
        }
        return self.transitions.insert(
            Transition(
                id=self.crm.new_id("str_"),
                order_id=order.id,
                customer_id=order.customer_id,
                order_type=order.type,
                at=self.crm.now(),
                actor=actor,
                action=action,
                from_state=from_state,
                to_state=to_state,
                hours_in_step=hours_in_step,
                details=plain,
                note=(note or "").strip(),
            )
        )
