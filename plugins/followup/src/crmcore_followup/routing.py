"""Big customers get a dedicated rep (DOMAIN §4): routing to the VIP team.

With ``[followup] vip_team`` set, a customer who is a key customer (``key_customers``,
``key_tags``) or holds the ``dedicated_rep`` perk (loyalty's ``crm_customer_perks``, called
only when installed) is owned by a rep of that team. A grade or tier change only flags the
customer's schedule (``route_vip``); the next tick hands them over (the customer's open
contact tasks follow, and the new rep makes a first contact within the week). Routing only
ever moves a customer into the team, never out of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from crmcore import ConflictError, CustomerStatus, NotFoundError
from crmcore_followup.grades import is_key_customer
from crmcore_followup.records import SCHEDULE, Schedule
from crmcore_followup.reps import LoadBook, Roster

if TYPE_CHECKING:
    from crmcore import CRM, Customer
    from crmcore_followup.engine import Engine

PERK = "dedicated_rep"
PRIORITY_PERK = "priority_handling"


def perks_of(crm: CRM, customer: Customer) -> set[str]:
    """The customer's perks from whoever implements ``crm_customer_perks`` (loyalty)."""
    return set(crm.plugins.crm_customer_perks(crm=crm, customer=customer))


def wants_vip(
    crm: CRM, engine: Engine, customer: Customer, grades: dict[str, Any] | None = None
) -> bool:
    """Whether ``customer`` should be owned by the VIP team and is not."""
    team = engine.settings.vip_team
    if not team or customer.status is not CustomerStatus.ACTIVE:
        return False
    if customer.owner is not None:
        rep = Roster(crm).find(customer.owner)
        if rep is not None and rep.team == team:
            return False
    probe = customer
    if grades:
        merged = {**customer.ext.get("grading", {}).get("grades", {}), **grades}
        probe = attrs.evolve(
            customer,
            ext={**customer.ext, "grading": {**customer.ext.get("grading", {}), "grades": merged}},
        )
    return is_key_customer(probe, engine.settings) or PERK in perks_of(crm, customer)


def flag(engine: Engine, customer: Customer) -> None:
    """Mark the customer for routing on the next tick."""
    engine.mutate(customer, lambda s: attrs.evolve(s, route_vip=True), recompute=False)


def route_flagged(crm: CRM, engine: Engine, *, actor: str, limit: int) -> int:
    """Hand flagged customers to the VIP team's rep with the fewest customers per unit of
    ability. Returns how many moved; those with no VIP rep available stay flagged."""
    team = engine.settings.vip_team
    schedules = crm.records(SCHEDULE, Schedule)
    flagged = schedules.find({"route_vip": True}, limit=limit)
    if not flagged or not team:
        return 0
    book = LoadBook.read(crm, team=team)
    if book.empty:
        return 0
    moved = 0
    for schedule in flagged:
        try:
            customer = crm.customers.get_any(schedule.customer_id)
        except NotFoundError:
            customer = None
        if customer is not None and wants_vip(crm, engine, customer):
            owner = book.pick_owner(crm)
            if owner is None:
                continue
            try:  # another worker may route them at the same moment: one wins
                crm.customers.update(
                    customer.id, actor=actor, owner=owner, expected_version=customer.version
                )
            except ConflictError:
                continue
            moved += 1
        if customer is not None:
            engine.mutate(customer, lambda s: attrs.evolve(s, route_vip=False), recompute=False)
    return moved
