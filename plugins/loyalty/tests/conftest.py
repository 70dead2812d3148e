"""Fixtures for the loyalty plugin's tests: a CRM with loyalty loaded and small helpers."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from crmcore_loyalty import Loyalty
from crmcore_loyalty.records import LEDGER, LedgerEntry

from crmcore import CRM, Customer, Interaction

_serial = itertools.count(1)


class Kit:
    """One CRM with the loyalty plugin, and shortcuts the tests share."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.loyalty = Loyalty(crm)

    def customer(self, name: str = "Ann Lee", **fields: Any) -> Customer:
        n = next(_serial)
        fields.setdefault("phone", f"+86 138 {n:08d}")
        fields.setdefault("email", f"person{n}@example.com")
        return self.crm.customers.add(actor="tester", name=name, **fields)

    def log(self, customer: Customer | str, kind: str, **fields: Any) -> Interaction:
        cid = customer if isinstance(customer, str) else customer.id
        return self.crm.interactions.log(actor="rep", customer_id=cid, kind=kind, **fields)

    def buy(self, customer: Customer | str, amount: float, **fields: Any) -> Interaction:
        return self.log(customer, "purchase", amount=amount, **fields)

    def balance(self, customer: Customer | str) -> int:
        return self.loyalty.balance(customer if isinstance(customer, str) else customer.id)

    def entries(self, customer: Customer | str | None = None) -> list[LedgerEntry]:
        query = (
            {}
            if customer is None
            else {"customer_id": customer if isinstance(customer, str) else customer.id}
        )
        return self.crm.records(LEDGER, LedgerEntry).find(query)

    def replay(self, interaction: Interaction) -> None:
        """Fire ``crm_interaction_logged`` again for a stored interaction (a replayed event)."""
        customer = self.crm.customers.get(interaction.customer_id)
        self.crm.events.interaction_logged(
            actor="replayer", interaction=interaction, customer=customer
        )

    def tasks(self, kind: str, customer: Customer | None = None) -> list:
        query: dict[str, Any] = {"kind": kind}
        if customer is not None:
            query["customer_id"] = customer.id
        return self.crm.tasks.find(query)


@pytest.fixture
def kit_for(make_crm: Callable[..., CRM]) -> Callable[..., Kit]:
    """``kit_for(settings={...}, extra=[(name, plugin)])``: a Kit with those loyalty settings."""

    def build(
        settings: dict[str, Any] | None = None, extra: list[Any] | None = None, **kwargs: Any
    ) -> Kit:
        plugins: list[Any] = ["loyalty", *(extra or [])]
        return Kit(make_crm(plugins, settings={"loyalty": settings or {}}, **kwargs))

    return build


@pytest.fixture
def kit(kit_for: Callable[..., Kit]) -> Kit:
    """Defaults, except no ask tasks (most tests are about points)."""
    return kit_for({"asks": {"enabled": False}})
