"""Care campaigns (DOMAIN §3, §9: "care reaches the customers hit by a known problem first"):
target a segment or an incident's customers, give each a care task with the offer, record the
care contact (its satisfaction; points through the loyalty plugin's ``crm_award_points``
contract when loaded), and measure the effect (satisfaction, churn risk then and now)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.customers import require_actor
from crmcore.effects import TaskDraft
from crmcore.entities import Customer, Priority
from crmcore.errors import NotFoundError, ValidationError
from crmcore.i18n import msg
from crmcore_service import audience as audiences
from crmcore_service.model import CARE, CareTarget
from crmcore_service.settings import Campaign

if TYPE_CHECKING:
    from crmcore_service.api import Service

SECTION = "service"
CHURN_ORDER = ("none", "low", "medium", "high")


def care_key(campaign: str, customer_id: str) -> str:
    return f"care:{campaign}:{customer_id}"


def churn_level(customer: Customer) -> str | None:
    """The grading plugin's churn level kept on the customer, if any."""
    level = (customer.ext.get("grading", {}).get("churn") or {}).get("level")
    return level if level in CHURN_ORDER else None


@attrs.frozen
class CampaignRun:
    campaign: str
    targeted: int  # new targets created by this run
    already: int  # customers the campaign had reached before


@attrs.frozen
class CampaignEffect:
    """How a campaign went: reach, contact, satisfaction, offers and churn risk."""

    campaign: str
    targeted: int
    contacted: int
    mean_satisfaction: float | None
    offers_accepted: int
    points_granted: int
    churn_improved: int
    churn_unchanged: int
    churn_worse: int


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Campaigns:
    """Run care campaigns and measure them."""

    def __init__(self, api: Service) -> None:
        self.api = api
        self.crm = api.crm
        self.targets = self.crm.records(CARE, CareTarget)

    def campaign(self, name: str) -> Campaign:
        try:
            return self.api.settings.campaigns[name]
        except KeyError:
            known = ", ".join(self.api.settings.campaigns) or "none configured"
            raise ValidationError(
                f"unknown campaign {name!r} (known: {known})", field="campaign"
            ) from None

    def audience(self, name: str, extra: Sequence[str] = ()) -> list[Customer]:
        """The customers a campaign reaches now (plus ``extra`` ids)."""
        campaign = self.campaign(name)
        chosen: dict[str, Customer] = {}
        if campaign.audience is not None:
            chosen.update((c.id, c) for c in audiences.select(self.crm, campaign.audience))
        incident = campaign.incident
        if incident is not None:
            if incident.tag:
                for customer in self.crm.customers.iter({"tags": incident.tag}):
                    chosen[customer.id] = customer
            if incident.interaction_kind:
                window: dict[str, Any] = {}
                if incident.since:
                    window["$gte"] = _instant(incident.since)
                if incident.until:
                    window["$lte"] = _instant(incident.until)
                query: dict[str, Any] = {"kind": incident.interaction_kind}
                if window:
                    query["occurred_at"] = window
                for item in self.crm.interactions.iter(query):
                    if item.customer_id not in chosen:
                        chosen[item.customer_id] = self.crm.customers.get(item.customer_id)
            for cid in incident.customers:
                chosen[cid] = self.crm.customers.get(cid)
        for cid in extra:
            chosen[cid] = self.crm.customers.get(cid)
        return [
            c
            for _id, c in sorted(chosen.items())
            if c.status.value == "active" and not c.do_not_contact
        ]

    def run(self, name: str, *, actor: str, customers: Sequence[str] = ()) -> CampaignRun:
        """Create a care task with the offer for each customer reached and not yet targeted."""
        actor = require_actor(actor)
        campaign = self.campaign(name)
        now = self.crm.now()
        priority = Priority.HIGH if campaign.incident is not None else Priority.NORMAL
        new = already = 0
        for customer in self.audience(name, list(customers)):
            if self.targets.find_one({"campaign": name, "customer_id": customer.id}):
                already += 1
                continue
            target = CareTarget(
                id=self.crm.new_id("care_"),
                campaign=name,
                customer_id=customer.id,
                created_at=now,
                created_by=actor,
                churn_before=churn_level(customer),
            )
            draft = TaskDraft(
                kind="care",
                title=msg(
                    "Care (%(campaign)s): %(offer)s",
                    campaign=campaign.title[:100],
                    offer=campaign.offer[:100],
                )
                if campaign.offer
                else msg("Care (%(campaign)s)", campaign=campaign.title[:180]),
                due_at=now + timedelta(days=campaign.due_days),
                customer_id=customer.id,
                assignee=customer.owner,
                priority=priority,
                dedupe_key=care_key(name, customer.id),
                source=SECTION,
                ref=target.id,
                ext={
                    SECTION: {"campaign": name, "offer": campaign.offer, "points": campaign.points}
                },
            )
            with self.crm.transaction(actor):
                self.targets.insert(target)
                self.crm.tasks.create_from(draft, actor=actor)
            new += 1
        return CampaignRun(name, new, already)

    def contact(
        self,
        name: str,
        *,
        actor: str,
        customer_id: str,
        satisfaction: int,
        accepted: bool = False,
        summary: str = "",
        channel: str = "phone",
    ) -> CareTarget:
        """Record the care contact: a "care" interaction with its satisfaction; when the
        customer takes the offer, its points through loyalty (if a plugin awards points)."""
        actor = require_actor(actor)
        campaign = self.campaign(name)
        if (
            isinstance(satisfaction, bool)
            or not isinstance(satisfaction, int)
            or not 1 <= satisfaction <= 5
        ):
            raise ValidationError(
                f"satisfaction must be 1 to 5, got {satisfaction!r}", field="satisfaction"
            )
        target = self.targets.find_one({"campaign": name, "customer_id": customer_id})
        if target is None:
            raise NotFoundError(
                f"campaign {name} has not reached customer {customer_id} "
                f"(run it first: crm service campaign run {name})"
            )
        if target.contacted_at is not None:
            raise ValidationError(
                f"customer {customer_id} was already contacted for campaign {name}"
            )
        with self.crm.transaction(actor):
            logged = self.crm.interactions.log(
                actor=actor,
                customer_id=customer_id,
                kind="care",
                channel=channel,
                satisfaction=satisfaction,
                rep=actor,
                ref=target.id,
                summary=summary[:500],
                ext={SECTION: {"campaign": name, "offer_accepted": accepted}},
            )
            entry = None
            if accepted and campaign.points > 0:
                entry = self._award(campaign, name, customer_id, actor)
            updated = self.targets.update(
                target,
                contacted_at=self.crm.now(),
                contacted_by=actor,
                satisfaction=satisfaction,
                offer_accepted=accepted,
                points_entry=entry,
                interaction_id=logged.id,
            )
            task = self.crm.tasks.open_by_key(care_key(name, customer_id))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor, outcome="cared")
        return updated

    def _award(self, campaign: Campaign, name: str, customer_id: str, actor: str) -> str | None:
        answer = self.crm.plugins.crm_award_points(
            crm=self.crm,
            customer_id=customer_id,
            points=campaign.points,
            source=f"care:{name}:{customer_id}",
            reason="care_offer",
            actor=actor,
        )
        if answer is None:
            self.api.log.info(
                "care offer points not granted: no plugin awards points", campaign=name
            )
        return answer or None

    def effect(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        who: Callable[[str | None], bool] | None = None,
    ) -> CampaignEffect:
        """The campaign's effect so far: of the customers targeted in ``[since, until)`` (None:
        unbounded) and, when ``who`` is given, only the care contacts made by the reps it
        accepts."""
        campaign = self.campaign(name)
        query: dict[str, Any] = {"campaign": name}
        span: dict[str, Any] = {}
        if since is not None:
            span["$gte"] = since
        if until is not None:
            span["$lt"] = until
        if span:
            query["created_at"] = span
        targets = self.targets.find(query)
        if who is not None:
            targets = [t for t in targets if t.contacted_at is not None and who(t.contacted_by)]
        contacted = [t for t in targets if t.contacted_at is not None]
        scores = [t.satisfaction for t in contacted if t.satisfaction is not None]
        improved = unchanged = worse = 0
        for target in targets:
            if target.churn_before is None:
                continue
            try:
                now_level = churn_level(self.crm.customers.get(target.customer_id))
            except NotFoundError:
                continue
            if now_level is None:
                continue
            delta = CHURN_ORDER.index(now_level) - CHURN_ORDER.index(target.churn_before)
            improved += delta < 0
            unchanged += delta == 0
            worse += delta > 0
        granted = sum(1 for t in contacted if t.points_entry) * campaign.points
        return CampaignEffect(
            name,
            len(targets),
            len(contacted),
            round(sum(scores) / len(scores), 2) if scores else None,
            sum(t.offer_accepted for t in contacted),
            granted,
            improved,
            unchanged,
            worse,
        )
