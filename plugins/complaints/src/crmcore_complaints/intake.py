"""Registering complaints: the complaint form, and tickets for "complaint" interactions that
someone logged. The SLA policy is matched and the schedule set at intake."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from crmcore import CRM, Priority, ValidationError
from crmcore.customers import require_actor
from crmcore.entities import Channel, CustomerStatus, Interaction
from crmcore.i18n import msg, term
from crmcore.schema import enum_converter
from crmcore_complaints.model import Claim, Status, Ticket
from crmcore_complaints.names import SECTION
from crmcore_complaints.sla import match_policy, tier_of
from crmcore_complaints.tickets import TicketBook, as_priority
from crmcore_complaints.words import CUSTOMER_WORDS


def perks_of(crm: CRM, customer: Any) -> tuple[str, ...]:
    """The customer's perks from ``crm_customer_perks`` (loyalty's contract); sorted, without
    repeats."""
    return tuple(sorted(set(crm.plugins.crm_customer_perks(crm=crm, customer=customer))))


class Intake:
    """Tickets from the complaint form or from logged "complaint" interactions."""

    def __init__(self, book: TicketBook) -> None:
        self.book = book
        self.crm = book.crm
        self.settings = book.settings

    def open(
        self,
        *,
        actor: str,
        customer_id: str,
        content: str,
        category: str | None = None,
        channel: Channel | str = Channel.OTHER,
        claim: Claim | str | None = None,
        emotions: Iterable[str] | str = (),
        priority: Priority | int | str | None = None,
        owner: str | None = None,
        complainant: str | None = None,
        contact: str | None = None,
        received_at: datetime | None = None,
    ) -> Ticket:
        """Register a complaint (the complaint form) and log it as a "complaint" interaction.

        ``owner`` is whoever took the complaint (default: ``actor``): first-contact
        responsibility makes them own it to the end. Fires ``crm_complaint_registered``.
        """
        actor = require_actor(actor)
        with self.crm.transaction(actor):
            ticket = self._new_ticket(
                actor,
                customer_id=customer_id,
                content=content,
                category=category,
                channel=channel,
                claim=claim,
                emotions=emotions,
                priority=priority,
                owner=owner,
                complainant=complainant,
                contact=contact,
                received_at=received_at,
                interaction_id=None,
            )
            interaction = self.crm.interactions.log(
                actor=actor,
                customer_id=ticket.customer_id,
                kind="complaint",
                occurred_at=ticket.opened_at,
                channel=ticket.channel,
                ref=ticket.id,
                rep=ticket.owner,
                summary=f"complaint ({ticket.category}): {ticket.content}"[:500],
                ext={SECTION: {"ticket_id": ticket.id, "category": ticket.category}},
            )
            return self._register(attrs.evolve(ticket, interaction_id=interaction.id), actor)

    def register_from_interaction(self, interaction: Interaction, actor: str) -> Ticket:
        """A ticket for a "complaint" interaction someone logged (no second interaction).

        ``interaction.ext["complaints"]`` may carry ``category``, ``claim``, ``emotions`` and
        ``priority``; the summary becomes the content and the rep (else the actor) the owner.
        """
        extra = interaction.ext.get(SECTION, {})
        category = extra.get("category")
        if category not in self.settings.all_categories:
            category = self.settings.default_category
        ticket = self._new_ticket(
            actor,
            customer_id=interaction.customer_id,
            content=interaction.summary or "(complaint logged without a summary)",
            category=category,
            channel=interaction.channel,
            claim=extra.get("claim"),
            emotions=extra.get("emotions", ()),
            priority=extra.get("priority"),
            owner=interaction.rep or actor,
            complainant=None,
            contact=None,
            received_at=interaction.occurred_at,
            interaction_id=interaction.id,
        )
        return self._register(ticket, actor)

    def _new_ticket(
        self,
        actor: str,
        *,
        customer_id: str,
        content: str,
        category: str | None,
        channel: Channel | str,
        claim: Claim | str | None,
        emotions: Iterable[str] | str,
        priority: Priority | int | str | None,
        owner: str | None,
        complainant: str | None,
        contact: str | None,
        received_at: datetime | None,
        interaction_id: str | None,
    ) -> Ticket:
        category = category or self.settings.default_category
        self.book.known_category(category)
        if not isinstance(content, str) or not content.strip():
            raise ValidationError(
                msg("must not be empty: say what the customer complains about"), field="content"
            )
        customer = self.crm.customers.get(customer_id)
        if customer.status is not CustomerStatus.ACTIVE:
            raise ValidationError(
                msg(
                    "customer %(customer)s is %(status)s",
                    customer=customer_id,
                    status=term(CUSTOMER_WORDS.get(customer.status.value, customer.status.value)),
                )
            )
        prio = as_priority(priority, self.settings.default_priority)
        perks = perks_of(self.crm, customer)
        if self.settings.priority_perk in perks and prio < Priority.HIGH:
            prio = Priority.HIGH  # priority handling: ahead in every queue
        tier = tier_of(customer.ext, self.settings.tier_path)
        policy = match_policy(
            self.settings,
            category=category,
            priority=prio.name.lower(),
            tier=tier,
            channel=enum_converter(Channel, "channel")(channel).value,
            perks=perks,
        )
        now = self.crm.now()
        opened = min(received_at, now) if received_at is not None else now
        ticket = Ticket(
            id=self.crm.new_id("tkt_"),
            customer_id=customer_id,
            category=category,
            content=content.strip(),
            registered_by=actor,
            owner=(owner or actor).strip() or actor,
            opened_at=opened,
            channel=channel,
            complainant=complainant,
            contact=contact,
            claim=claim,
            emotions=emotions,
            priority=prio,
            tier=tier,
            perks=perks,
            interaction_id=interaction_id,
            sla_policy=policy.name,
            sla_clock=policy.clock,
            cycle_started_at=opened,
        )
        return self.book.scheduler.schedule(ticket)

    def _register(self, ticket: Ticket, actor: str) -> Ticket:
        with self.crm.transaction(actor):
            stored = self.book.tickets.insert(ticket)
            self.book.trace(
                stored,
                actor,
                "registered",
                None,
                Status.REGISTERED,
                {
                    "category": stored.category,
                    "priority": stored.priority.name.lower(),
                    "channel": stored.channel.value,
                    "sla_policy": stored.sla_policy,
                    "owner": stored.owner,
                },
            )
            self.crm.events.complaint_registered(actor=actor, ticket=stored)
        self.book.log.info(
            "complaint registered",
            ticket=stored.id,
            category=stored.category,
            priority=stored.priority.name.lower(),
            owner=stored.owner,
        )
        return stored
