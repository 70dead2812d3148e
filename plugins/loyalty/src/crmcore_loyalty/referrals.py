"""Referral ("old brings new"): codes, links, rewards at the configured stage, abuse limits.

- Every customer has a short code from an unambiguous alphabet (no 0/O, 1/I/L); input is
  read case-insensitively with spaces and dashes ignored.
- ``link(new_customer, code)`` records who brought whom, logs an interaction of kind
  ``referral`` on the REFERRER with ``ref`` = the new customer's id, and rewards both at the
  configured stage: ``link`` (at once) or ``first_purchase`` (the new customer's first purchase
  of at least ``min_purchase_amount``).
- Refused, with nothing written: self-referral (same customer, or the same normalised phone,
  e-mail or address as the referrer), a customer already linked, a customer who joined more
  than ``link_window_days`` ago or has bought already, and a referrer over the velocity caps
  (``max_links_per_hour`` / ``max_links_per_day``).
- The referrer earns at most ``max_rewards_per_period`` rewards per ``period_days``; links beyond
  that are still recorded (and the new customer still rewarded) with ``referrer_capped``.
- When the qualifying purchase is refunded so that what remains no longer qualifies, both
  rewards are clawed back and the referral waits for another qualifying purchase.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import (
    ConflictError,
    Customer,
    DuplicateKeyError,
    Effects,
    Interaction,
    NotFoundError,
    RecordWrite,
    ValidationError,
)
from crmcore.converter import to_doc
from crmcore.i18n import msg, term
from crmcore.markers import N_
from crmcore.normalize import normalize_email, normalize_phone
from crmcore_loyalty.ledger import MAX_ATTEMPTS, Ledger, LedgerState
from crmcore_loyalty.records import (
    CODES,
    EARN,
    LINKED,
    REFERRALS,
    REWARDED,
    Account,
    Referral,
    ReferralCode,
    account_id,
    referral_id,
)
from crmcore_loyalty.settings import LoyaltySettings

if TYPE_CHECKING:
    from crmcore import CRM

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
NAMESPACE = "loyalty"
REFERRER, REFERRED = "referral_referrer", "referral_referred"
_SEPARATORS = re.compile(r"[\s\-_.]")
_ADDRESS_PUNCT = re.compile(r"[,.;:#/\\()\-]")


def normalize_code(raw: str) -> str:
    """A code as stored: upper case, without spaces or dashes; ``ValidationError`` if malformed."""
    if not isinstance(raw, str):
        raise ValidationError(msg("expected a referral code"), field="code")
    code = _SEPARATORS.sub("", raw).upper()
    if not 4 <= len(code) <= 12 or any(c not in ALPHABET for c in code):
        raise ValidationError(
            msg(
                "%(code)s is not a referral code (4 to 12 of %(letters)s)",
                code=repr(raw),
                letters=ALPHABET,
            ),
            field="code",
        )
    return code


def normalize_address(raw: str | None) -> str | None:
    """An address compared by content: case, punctuation and spacing ignored."""
    if not raw:
        return None
    text = " ".join(_ADDRESS_PUNCT.sub(" ", raw).casefold().split())
    return text or None


def primary_code_id(customer_id: str) -> str:
    """The id of a customer's first code, derived from theirs so creating it is race-free."""
    return f"lcd_{customer_id}"


@attrs.frozen
class ReferralStats:
    """What ``crm referral stats CUSTOMER`` shows."""

    customer_id: str
    code: str | None
    referred_by: str | None
    links: int
    rewarded: int
    waiting: int
    capped: int
    clawed_back: int
    points_earned: int


class Referrals:
    """Codes, links and referral rewards."""

    def __init__(self, crm: CRM, ledger: Ledger) -> None:
        self._crm = crm
        self._ledger = ledger
        self._codes = crm.records(CODES, ReferralCode)
        self._referrals = crm.records(REFERRALS, Referral)

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    # -- codes -----------------------------------------------------------------------------

    def _draw(self, rng: random.Random | None) -> str:
        length = self.settings.referral.code_length
        if rng is not None:
            return "".join(rng.choice(ALPHABET) for _ in range(length))
        return "".join(secrets.choice(ALPHABET) for _ in range(length))

    def code_of(self, customer_id: str) -> str | None:
        """The customer's referral code, if one was made."""
        try:
            return self._codes.get(primary_code_id(customer_id)).code
        except NotFoundError:
            found = self._codes.find_one({"customer_id": customer_id}, sort=[("created_at", 1)])
            return found.code if found else None

    def free_code(self, rng: random.Random | None = None) -> str:
        """A code no customer holds yet (``crm_customer_adding`` gives it to a new customer,
        stored with their insert); ``ConflictError`` after 10 draws that were all taken."""
        for _attempt in range(10):
            code = self._draw(rng)
            if self._codes.find_one({"code": code}) is None:
                return code
        raise ConflictError(
            "could not find a free referral code in 10 draws; raise [loyalty.referral] code_length"
        )

    def code_effects(self, customer: Customer) -> Effects:
        """What ``crm_customer_created`` returns for a new customer: the record of the code
        ``free_code`` gave them (in ``ext``), or nothing when they have none."""
        code = (customer.ext.get(NAMESPACE) or {}).get("referral_code")
        if not code:
            return Effects()
        record = ReferralCode(primary_code_id(customer.id), code, customer.id, self._crm.now())
        return Effects(records=[RecordWrite(CODES, to_doc(record))])

    def ensure_code(self, customer_id: str, *, actor: str, rng: random.Random | None = None) -> str:
        """The customer's code, made now if they have none (one per customer, race-free)."""
        customer = self._crm.customers.get(customer_id)
        existing = self.code_of(customer_id)
        if existing is not None:
            if customer.ext.get(NAMESPACE, {}).get("referral_code") != existing:
                self._crm.customers.patch_ext(
                    customer_id, NAMESPACE, {"referral_code": existing}, actor=actor
                )
            return existing
        for _attempt in range(10):
            code = self._draw(rng)
            try:
                with self._crm.transaction(actor):
                    self._codes.insert(
                        ReferralCode(
                            primary_code_id(customer_id), code, customer_id, self._crm.now()
                        )
                    )
                    self._crm.customers.patch_ext(
                        customer_id, NAMESPACE, {"referral_code": code}, actor=actor
                    )
                return code
            except DuplicateKeyError:
                made = self.code_of(customer_id)
                if made is not None:  # made by someone else meanwhile
                    return made
        raise ConflictError(
            "could not find a free referral code in 10 draws; raise [loyalty.referral] code_length"
        )

    def owner_of(self, code: str) -> str:
        """The id of the customer whose code this is (``NotFoundError`` if none)."""
        found = self._codes.find_one({"code": normalize_code(code)})
        if found is None:
            raise NotFoundError(
                msg("no customer has referral code %(code)s", code=repr(normalize_code(code)))
            )
        return found.customer_id

    # -- linking ---------------------------------------------------------------------------

    def referral_of(self, referred_id: str) -> Referral | None:
        """How ``referred_id`` came to us, if through a referral."""
        return self._referrals.find_one({"referred_id": referred_id}, sort=[("linked_at", 1)])

    def check_self_referral(self, referrer: Customer, referred: Customer) -> None:
        """Refuse a referral between one person's records (ids, phones, e-mails, addresses)."""
        if referrer.id == referred.id:
            raise ValidationError(
                msg("self-referral: a customer cannot use their own code"), field="code"
            )
        same = []
        if (
            referrer.phone
            and referred.phone
            and self._phone(referrer.phone) == self._phone(referred.phone)
        ):
            same.append(N_("phone"))
        if (
            referrer.email
            and referred.email
            and normalize_email(referrer.email) == normalize_email(referred.email)
        ):
            same.append(N_("e-mail"))
        if normalize_address(referrer.address) and normalize_address(
            referrer.address
        ) == normalize_address(referred.address):
            same.append(N_("address"))
        if same:
            fields = term(same[0])
            for more in same[1:]:
                fields = msg("%(these)s and %(that)s", these=fields, that=term(more))
            raise ValidationError(
                msg(
                    "self-referral: the new customer has the same %(fields)s as the code's owner",
                    fields=fields,
                ),
                field="code",
            )

    def _phone(self, phone: str) -> str:
        try:
            return normalize_phone(
                phone, default_country_code=self._crm.config.core.default_country_code
            )
        except ValidationError:
            return phone  # stored before a rule change: compare as stored

    def _check_new(self, referred: Customer, now: datetime) -> None:
        window = self.settings.referral.link_window_days
        if referred.created_at < now - timedelta(days=window):
            raise ValidationError(
                msg(
                    "customer %(customer)s joined on %(day)s; only customers who joined within "
                    "%(days)s days can be linked to a referrer",
                    customer=referred.id,
                    day=referred.created_at.date().isoformat(),
                    days=window,
                )
            )
        if self._crm.interactions.count(
            {"customer_id": referred.id, "kind": {"$in": self.settings.earn.purchase_kinds}}
        ):
            raise ValidationError(
                msg(
                    "customer %(customer)s has bought already; a referral links a new customer "
                    "before their first purchase",
                    customer=referred.id,
                )
            )
        existing = self.referral_of(referred.id)
        if existing is not None:
            raise ValidationError(
                msg(
                    "customer %(customer)s is already linked to referrer %(referrer)s",
                    customer=referred.id,
                    referrer=existing.referrer_id,
                )
            )

    def _check_velocity(self, referrer_id: str, now: datetime) -> None:
        settings = self.settings.referral
        for span, cap, label in (
            (timedelta(hours=1), settings.max_links_per_hour, N_("hour")),
            (timedelta(days=1), settings.max_links_per_day, N_("day")),
        ):
            recent = self._referrals.count(
                {"referrer_id": referrer_id, "linked_at": {"$gt": now - span}}
            )
            if recent >= cap:
                raise ValidationError(
                    msg(
                        "referrer %(referrer)s has linked %(count)s customers in the last "
                        "%(span)s (limit %(cap)s); try later or ask a manager to check for abuse",
                        referrer=referrer_id,
                        count=recent,
                        span=term(label),
                        cap=cap,
                    )
                )

    def link(
        self, referred_id: str, code: str, *, actor: str, now: datetime | None = None
    ) -> Referral:
        """Link a new customer to the owner of ``code`` (rules in the module docstring)."""
        when = now or self._crm.now()
        referrer_id = self.owner_of(code)
        for _attempt in range(MAX_ATTEMPTS):
            referrer = self._crm.customers.get(referrer_id)
            referred = self._crm.customers.get(referred_id)
            self.check_self_referral(referrer, referred)
            self._check_new(referred, when)
            account = self._ledger.account(referrer_id)
            stored = account is not None
            self._check_velocity(referrer_id, when)
            referral = Referral(
                id=referral_id(referred_id),
                referrer_id=referrer_id,
                referred_id=referred_id,
                code=normalize_code(code),
                linked_at=when,
                linked_by=actor,
            )
            try:
                with self._crm.transaction(actor):
                    # Claim the referrer's account: concurrent links by one referrer serialise
                    # here, so the velocity caps hold across workers.
                    self._ledger.update_account(account or self._blank_account(referrer_id), stored)
                    stored_referral = self._referrals.insert(referral)
                    self._crm.interactions.log(
                        actor=actor,
                        customer_id=referrer_id,
                        kind="referral",
                        ref=referred_id,
                        occurred_at=when,
                        summary=N_("referred a new customer"),  # translated where shown
                    )
                    if self.settings.referral.reward_stage == "link":
                        stored_referral = self._reward(stored_referral, None, actor=actor, now=when)
            except DuplicateKeyError:
                continue  # linked by someone else meanwhile: the checks above now say so
            except ConflictError:
                continue  # another link by this referrer: re-check the caps
            return stored_referral
        raise ConflictError(
            msg("referrer %(referrer)s kept changing underneath; try again", referrer=referrer_id)
        )

    @staticmethod
    def _blank_account(customer_id: str) -> Account:
        return Account(id=account_id(customer_id), customer_id=customer_id)

    def add_customer(
        self, code: str, *, actor: str, name: str, **fields: Any
    ) -> tuple[Customer, Referral]:
        """Add a customer who came with ``code`` and link them, in one transaction.

        The self-referral check runs on the new customer's (normalised) contacts before anything
        is written; if the link is refused, the customer is not added either.
        """
        candidate = self._crm.customers.validate(name=name, **fields)
        referrer = self._crm.customers.get(self.owner_of(code))
        self.check_self_referral(referrer, attrs.evolve(candidate, id="(new)"))
        with self._crm.transaction(actor):
            customer = self._crm.customers.add(actor=actor, name=name, **fields)
            referral = self.link(customer.id, code, actor=actor)
        return self._crm.customers.get(customer.id), referral

    # -- rewards ---------------------------------------------------------------------------

    def qualifies(self, amount: float | None) -> bool:
        """Whether a purchase of ``amount`` (net of refunds) qualifies a referral."""
        return (
            amount is not None
            and amount > 0
            and amount >= self.settings.referral.min_purchase_amount
        )

    def on_purchase(
        self, purchase: Interaction, *, actor: str, now: datetime | None = None
    ) -> Referral | None:
        """Reward the referral of the purchasing customer if this purchase qualifies it."""
        if self.settings.referral.reward_stage != "first_purchase":
            return None
        referral = self.referral_of(purchase.customer_id)
        if referral is None or referral.status != LINKED or not self.qualifies(purchase.amount):
            return None
        try:
            return self._reward(referral, purchase.id, actor=actor, now=now or self._crm.now())
        except ConflictError:
            return None  # rewarded by a concurrent purchase or worker

    def _reward(
        self, referral: Referral, purchase_id: str | None, *, actor: str, now: datetime
    ) -> Referral:
        settings = self.settings.referral
        tag = purchase_id or "link"
        since = now - timedelta(days=settings.period_days)

        def under_cap(state: LedgerState) -> bool:
            active = [
                lot
                for lot in state.lots.values()
                if lot.entry.reason == REFERRER
                and lot.entry.at > since
                and lot.requested < lot.entry.points
            ]
            return len(active) < settings.max_rewards_per_period

        with self._crm.transaction(actor):
            # Claim the referral first: of two purchases racing, only one rewards.
            claimed = self._referrals.update(
                referral, status=REWARDED, qualifying_purchase_id=purchase_id, rewarded_at=now
            )
            source = f"referral:{referral.referred_id}:referrer:{tag}"
            got = self._ledger.earn(
                referral.referrer_id,
                source=source,
                points=settings.referrer_points,
                reason=REFERRER,
                actor=actor,
                ref=referral.referred_id,
                now=now,
                note=N_("reward for bringing a new customer"),
                guard=under_cap,
            )
            capped = (
                got is None
                and settings.referrer_points > 0
                and not self._earned(referral.referrer_id, source)
            )
            mine = self._ledger.earn(
                referral.referred_id,
                source=f"referral:{referral.referred_id}:referred:{tag}",
                points=settings.referred_points,
                reason=REFERRED,
                actor=actor,
                ref=referral.referrer_id,
                now=now,
                note=N_("welcome reward for coming through a referral"),
            )
            return self._referrals.update(
                claimed,
                referrer_points=got.points if got else 0,
                referred_points=mine.points if mine else 0,
                referrer_capped=capped,
                rewards=claimed.rewards + 1,
            )

    def _earned(self, customer_id: str, source: str) -> bool:
        return self._ledger.state(customer_id).by_key(f"{EARN}|{source}") is not None

    def on_refund(
        self, refund: Interaction, purchase: Interaction, *, actor: str, now: datetime | None = None
    ) -> Referral | None:
        """Claw back the rewards a purchase qualified once refunds leave it unqualified."""
        referral = self._referrals.find_one(
            {"qualifying_purchase_id": purchase.id, "status": REWARDED}
        )
        if referral is None:
            return None
        refunded = sum(
            r.amount if r.amount is not None else (purchase.amount or 0.0)
            for r in self._crm.interactions.for_customer(purchase.customer_id, kinds=["refund"])
            if r.ref == purchase.id
        )
        if self.qualifies(round((purchase.amount or 0.0) - refunded, 2)):
            return None
        when = now or self._crm.now()
        try:
            with self._crm.transaction(actor):
                reopened = self._referrals.update(
                    referral,
                    status=LINKED,
                    qualifying_purchase_id=None,
                    clawbacks=referral.clawbacks + 1,
                )
                for customer_id, side in (
                    (referral.referrer_id, "referrer"),
                    (referral.referred_id, "referred"),
                ):
                    self._ledger.clawback(
                        customer_id,
                        f"referral:{referral.referred_id}:{side}:{purchase.id}",
                        cause=refund.id,
                        actor=actor,
                        now=when,
                        note=N_("the purchase that qualified the referral was refunded"),
                    )
        except ConflictError:
            return None  # handled by a concurrent worker
        return reopened

    # -- statistics ------------------------------------------------------------------------

    def stats(self, customer_id: str) -> ReferralStats:
        """One customer's referral record."""
        self._crm.customers.get(customer_id)
        made = self._referrals.find({"referrer_id": customer_id})
        state = self._ledger.state(customer_id)
        points = sum(
            lot.entry.points - lot.requested
            for lot in state.lots.values()
            if lot.entry.reason == REFERRER
        )
        came = self.referral_of(customer_id)
        return ReferralStats(
            customer_id=customer_id,
            code=self.code_of(customer_id),
            referred_by=came.referrer_id if came else None,
            links=len(made),
            rewarded=sum(1 for r in made if r.status == REWARDED),
            waiting=sum(1 for r in made if r.status == LINKED),
            capped=sum(1 for r in made if r.referrer_capped),
            clawed_back=sum(r.clawbacks for r in made),
            points_earned=max(0, points),
        )

    def leaderboard(
        self, *, since: datetime | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Referrers by number of customers brought (optionally linked since ``since``)."""
        query: dict[str, Any] = {}
        if since is not None:
            query["linked_at"] = {"$gte": since}
        links: Counter[str] = Counter()
        rewarded: Counter[str] = Counter()
        points: Counter[str] = Counter()
        for referral in self._referrals.iter(query):
            links[referral.referrer_id] += 1
            if referral.status == REWARDED:
                rewarded[referral.referrer_id] += 1
                points[referral.referrer_id] += referral.referrer_points
        return [
            {"referrer": rid, "links": n, "rewarded": rewarded[rid], "points": points[rid]}
            for rid, n in links.most_common(limit)
        ]

    def all(self) -> list[Referral]:
        return list(self._referrals.iter())

    def awaiting_purchase(self) -> list[Referral]:
        """Linked referrals whose referred customer has not bought yet (the status index)."""
        return list(self._referrals.iter({"status": LINKED}))
