"""``crm.interactions``: log contacts and read a customer's history."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import attrs

from crmcore import names
from crmcore.compactdocs import without_defaults
from crmcore.converter import from_doc, to_doc
from crmcore.customers import load, require_actor
from crmcore.entities import Customer, CustomerStatus, Interaction
from crmcore.errors import ValidationError
from crmcore.kernel import Kernel
from crmcore.retry import retried
from crmcore.security import Resource
from crmcore.storage import SortSpec

EDITABLE = frozenset({"channel", "summary", "amount", "satisfaction", "place", "rep", "ref", "ext"})


class Interactions:
    """Communication records (DOMAIN §1): when, where, how, what was said."""

    def __init__(self, kernel: Kernel, kinds: frozenset[str]) -> None:
        self._kernel = kernel
        self._kinds = kinds
        self._coll = kernel.store.collection(names.INTERACTIONS)
        self._customers = kernel.store.collection(names.CUSTOMERS)

    def _build(
        self,
        actor: str,
        customer_id: str,
        kind: str,
        occurred_at: datetime | None,
        fields: Mapping[str, Any],
        known: dict[str, Customer] | None = None,
    ) -> tuple[Interaction, Customer]:
        unknown = sorted(set(fields) - EDITABLE)
        if unknown:
            raise ValidationError(f"unknown interaction field(s): {', '.join(unknown)}")
        if kind not in self._kinds:
            allowed = ", ".join(sorted(self._kinds))
            raise ValidationError(
                f"unknown interaction kind {kind!r} (allowed: {allowed})", field="kind"
            )
        customer = known.get(customer_id) if known is not None else None
        if customer is None:
            customer = load(self._customers, customer_id, self._kernel)
            if customer.status is not CustomerStatus.ACTIVE:
                raise ValidationError(f"customer {customer_id} is {customer.status.value}")
            if known is not None:
                known[customer_id] = customer
        now = self._kernel.now()
        interaction = Interaction(
            id=self._kernel.new_id("int_"),
            customer_id=customer_id,
            kind=kind,
            occurred_at=occurred_at or now,
            created_at=now,
            created_by=actor,
            **fields,
        )
        return interaction, customer

    def validate(
        self,
        *,
        customer_id: str,
        kind: str,
        occurred_at: datetime | None = None,
        customers: dict[str, Customer] | None = None,
        **fields: Any,
    ) -> Interaction:
        """Check an interaction as ``log`` would, writing nothing. ``customers``: a cache
        the caller keeps across many checks (an import's rows); each active customer is read
        once and kept there."""
        return self._build("validation", customer_id, kind, occurred_at, fields, customers)[0]

    @retried
    def log(
        self,
        *,
        actor: str,
        customer_id: str,
        kind: str,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> Interaction:
        """Record a contact; fires ``crm_interaction_logged`` (re-grading, follow-ups …)."""
        actor = require_actor(actor)
        interaction, customer = self._build(actor, customer_id, kind, occurred_at, fields)
        self._kernel.authorize(
            actor, "interaction.create", Resource("interaction", None, customer.owner, customer.id)
        )
        with self._kernel.transaction(actor):
            inserted = self._coll.insert(without_defaults(Interaction, to_doc(interaction)))
            stored = attrs.evolve(interaction, version=inserted["version"])
            self._kernel.events.interaction_logged(
                actor=actor, interaction=stored, customer=customer
            )
        return stored

    def get(self, id: str) -> Interaction:
        return from_doc(Interaction, self._coll.get(id))

    def for_customer(
        self,
        customer_id: str,
        *,
        kinds: list[str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = True,
        actor: str | None = None,
    ) -> list[Interaction]:
        """A customer's history, newest first by default (checked for ``actor`` if given)."""
        if actor is not None:
            owner = from_doc(Customer, self._customers.get(customer_id)).owner
            self._kernel.authorize(
                actor, "interaction.read", Resource("interaction", None, owner, customer_id)
            )
        query: dict[str, Any] = {"customer_id": customer_id}
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        if since is not None:
            query["occurred_at"] = {"$gte": since}
        return self.find(query, sort=[("occurred_at", -1 if newest_first else 1)], limit=limit)

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Interaction]:
        return [
            from_doc(Interaction, d)
            for d in self._coll.find(filter, sort=sort, limit=limit, skip=skip)
        ]

    def iter(self, filter: Mapping[str, Any] | None = None) -> Iterator[Interaction]:
        for doc in self._coll.iter(filter):
            yield from_doc(Interaction, doc)

    def count(self, filter: Mapping[str, Any] | None = None) -> int:
        return self._coll.count(filter)
