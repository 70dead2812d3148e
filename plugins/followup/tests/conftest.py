"""Fixtures for the followup plugin's tests: CRMs with the plugin, and small stand-ins for the
grading and complaints plugins (their hooks are the contracts in ``crmcore.contracts``,
declared always), so every rule is tested with and without those plugins installed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import attrs
import pytest

from crmcore import CRM, Action, Customer, Effects, ExtPatch, Interaction, hookimpl
from crmcore.clock import ManualClock

INSTALLED = {ep.name for ep in metadata.entry_points(group="crmcore")}


@attrs.frozen
class Ticket:
    id: str
    customer_id: str
    category: str = "quality"
    status: str = "closed"
    owner: str | None = None
    claim: str | None = None
    priority: int = 2
    compensation: float | None = None
    satisfaction: int | None = None


def set_grade(crm: CRM, customer_id: str, grade: str) -> None:
    crm.customers.patch_ext(
        customer_id, "grading", {"grades": {"pipeline": grade}}, actor="grading"
    )


class FakeGradingBase:
    """Re-grades like the grading plugin: on a customer's follow-up interaction number
    ``after`` (counting from 1), the pipeline grade becomes ``to``.

    ``mode``: "emit-then-patch" fires crm_grade_changed before the ext patch is applied (the
    patch is returned as Effects); "patch-then-emit" writes the grade first.
    """

    def __init__(self, after: int, to: str, mode: str) -> None:
        self.after, self.to, self.mode = after, to, mode
        self.fired = 0

    def _react(
        self, crm: CRM, interaction: Interaction, customer: Customer, actor: str
    ) -> Effects | None:
        if interaction.kind != "follow_up":
            return None
        n = crm.interactions.count({"customer_id": customer.id, "kind": "follow_up"})
        if n != self.after:
            return None
        old = customer.ext.get("grading", {}).get("grades", {}).get("pipeline")
        self.fired += 1
        patch = ExtPatch(customer.id, "grading", {"grades": {"pipeline": self.to}})
        if self.mode == "patch-then-emit":

            def patch_then_emit() -> None:
                set_grade(crm, customer.id, self.to)
                crm.events.grade_changed(
                    actor="grading",
                    customer=crm.customers.get(customer.id),
                    scheme="pipeline",
                    old=old,
                    new=self.to,
                    reason="test",
                )

            return Effects.run(patch_then_emit)
        # actions run before the ext patch is applied: the event sees the old grade stored
        return Effects(
            ext=[patch],
            actions=[
                Action(
                    lambda: crm.events.grade_changed(
                        actor="grading",
                        customer=customer,
                        scheme="pipeline",
                        old=old,
                        new=self.to,
                        reason="test",
                    )
                )
            ],
        )


class FakeGradingFirst(FakeGradingBase):
    @hookimpl(tryfirst=True)
    def crm_interaction_logged(
        self, crm: CRM, interaction: Interaction, customer: Customer, actor: str
    ) -> Effects | None:
        return self._react(crm, interaction, customer, actor)


class FakeGradingLast(FakeGradingBase):
    @hookimpl(trylast=True)
    def crm_interaction_logged(
        self, crm: CRM, interaction: Interaction, customer: Customer, actor: str
    ) -> Effects | None:
        return self._react(crm, interaction, customer, actor)


class GradingHooksOnly:
    """Stands in for the grading plugin by name (tests fire its contract's events)."""


class ComplaintHooksOnly:
    """Stands in for the complaints plugin by name (tests fire its contract's events)."""


@pytest.fixture
def fu(make_crm: Callable[..., CRM]) -> Callable[..., CRM]:
    """``fu(extra_plugins..., **followup_settings)``: a CRM with the followup plugin."""

    def factory(
        *extra: tuple[str, object], core: dict[str, Any] | None = None, **settings: Any
    ) -> CRM:
        return make_crm(["followup", *extra], settings={"followup": settings}, core=core or {})

    return factory


@pytest.fixture
def crm(fu: Callable[..., CRM]) -> CRM:
    return fu()


@pytest.fixture
def add_customer(crm: CRM) -> Callable[..., Customer]:
    def add(grade: str | None = None, **fields: Any) -> Customer:
        if grade is not None:
            fields.setdefault("ext", {})["grading"] = {"grades": {"pipeline": grade}}
        return crm.customers.add(actor="test", name=fields.pop("name", "Ann Lee"), **fields)

    return add


def complete_due(crm: CRM, actor: str = "rep") -> list[Any]:
    """Complete every open task due now (as a rep working the queue would)."""
    done = []
    for task in crm.tasks.due():
        done.append(crm.tasks.complete(task.id, actor=actor))
    return done


@pytest.fixture
def tick_and_work(crm: CRM, clock: ManualClock) -> Iterator[Callable[[int], list[Any]]]:
    def run(days: int) -> list[Any]:
        done = []
        for _ in range(days):
            clock.advance(days=1)
            crm.tick("w1")
            done += complete_due(crm)
        return done

    yield run


@pytest.fixture
def fakes() -> Any:
    """The stand-in plugins and helpers above, for test modules (conftest is not importable
    under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        GradingFirst=FakeGradingFirst,
        GradingLast=FakeGradingLast,
        GradingHooksOnly=GradingHooksOnly,
        ComplaintHooksOnly=ComplaintHooksOnly,
        Ticket=Ticket,
        set_grade=set_grade,
        complete_due=complete_due,
        installed=INSTALLED,
    )
