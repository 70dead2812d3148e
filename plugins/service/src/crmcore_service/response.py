"""First-response time of every enquiry (DOMAIN §7, §9: "reply to every chat enquiry within
60 seconds"), measured from the interactions, per channel and rep.

An enquiry is an interaction of one of ``[service.response] enquiry_kinds`` (inquiry,
consultation). Its answer is the first later interaction whose ``ref`` names the enquiry
(``crm log CUSTOMER --kind consultation --ref ENQUIRY_ID`` or ``crm service reply``). The time
between them is compared with the channel's target (seconds); an enquiry still unanswered past
its target is a breach too."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.customers import require_actor
from crmcore.entities import Interaction
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    from crmcore_service.api import Service


@attrs.frozen
class Enquiry:
    """One enquiry and how (or whether) it was answered."""

    id: str
    channel: str
    rep: str  # who answered, else who the enquiry was for
    asked_at: datetime
    answered_at: datetime | None
    seconds: float | None  # first-response time
    target: float
    breached: bool


@attrs.frozen
class ResponseRow:
    """First-response figures for one channel and rep."""

    channel: str
    rep: str
    enquiries: int
    answered: int
    mean_seconds: float | None
    worst_seconds: float | None
    breaches: int


class ResponseTimes:
    """Measure first responses."""

    def __init__(self, api: Service) -> None:
        self.api = api
        self.crm = api.crm
        self.settings = api.settings.response

    def reply(
        self, enquiry_id: str, *, actor: str, summary: str = "", channel: str | None = None
    ) -> Interaction:
        """Log the answer to an enquiry (an interaction of the enquiry's kind, ``ref`` = it)."""
        actor = require_actor(actor)
        enquiry = self.crm.interactions.get(enquiry_id)
        if enquiry.kind not in self.settings.enquiry_kinds:
            raise ValidationError(
                f"interaction {enquiry_id} is a {enquiry.kind}, not an enquiry "
                f"({', '.join(self.settings.enquiry_kinds)})",
                field="enquiry",
            )
        return self.crm.interactions.log(
            actor=actor,
            customer_id=enquiry.customer_id,
            kind=enquiry.kind,
            channel=channel or enquiry.channel.value,
            rep=actor,
            ref=enquiry.id,
            summary=summary[:500],
            ext={"service": {"reply_to": enquiry.id}},
        )

    def enquiries(self, since: datetime, until: datetime) -> list[Enquiry]:
        """Enquiries asked in ``[since, until]`` with their first answers."""
        now = self.crm.now()
        kinds = self.settings.enquiry_kinds
        asked = [
            i
            for i in self.crm.interactions.find(
                {"kind": {"$in": kinds}, "occurred_at": {"$gte": since, "$lte": until}},
                sort=[("occurred_at", 1), ("id", 1)],
            )
            if not self._is_reply(i)
        ]
        out = []
        for enquiry in asked:
            answers = self.crm.interactions.find(
                {"ref": enquiry.id}, sort=[("occurred_at", 1), ("id", 1)]
            )
            first = next((a for a in answers if a.occurred_at >= enquiry.occurred_at), None)
            target = self.settings.target(enquiry.channel.value)
            if first is not None:
                seconds = (first.occurred_at - enquiry.occurred_at).total_seconds()
                breached = seconds > target
                rep = first.rep or first.created_by
            else:
                seconds = None
                breached = (now - enquiry.occurred_at).total_seconds() > target
                rep = enquiry.rep or "(unassigned)"
            out.append(
                Enquiry(
                    enquiry.id,
                    enquiry.channel.value,
                    rep,
                    enquiry.occurred_at,
                    first.occurred_at if first else None,
                    seconds,
                    target,
                    breached,
                )
            )
        return out

    def by_channel_and_rep(self, since: datetime, until: datetime) -> list[ResponseRow]:
        groups: dict[tuple[str, str], list[Enquiry]] = defaultdict(list)
        for enquiry in self.enquiries(since, until):
            groups[(enquiry.channel, enquiry.rep)].append(enquiry)
        rows = []
        for (channel, rep), items in sorted(groups.items()):
            times = [e.seconds for e in items if e.seconds is not None]
            rows.append(
                ResponseRow(
                    channel,
                    rep,
                    len(items),
                    len(times),
                    round(sum(times) / len(times), 1) if times else None,
                    max(times) if times else None,
                    sum(e.breached for e in items),
                )
            )
        return rows

    def _is_reply(self, interaction: Interaction) -> bool:
        data: Any = interaction.ext.get("service", {})
        return bool(
            interaction.ref and (data.get("reply_to") or interaction.ref.startswith("int_"))
        )
