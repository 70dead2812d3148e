"""The loyalty plugin's JSON API routes (``crm_api_routes``), served under ``/api/v1``.

Each handler calls ``Loyalty`` acting as the request's actor, so ``[security] enforce``
checks ``loyalty.read`` / ``loyalty.redeem`` / ``loyalty.code`` / ``loyalty.link`` as on the
CLI; the rules (spendable balance, idempotent references, self-referral …) stay in the API.
"""

from __future__ import annotations

from typing import Any

import attrs

from crmcore import ApiParam, ApiRequest, ApiRoute
from crmcore.api import query_int
from crmcore.messages import restored
from crmcore_loyalty.api import AccountView, Loyalty
from crmcore_loyalty.ledger import LedgerEntry
from crmcore_loyalty.records import Referral
from crmcore_loyalty.referrals import ReferralStats

TAG = "loyalty"
ACCOUNT = "/loyalty/accounts/{customer_id}"


@attrs.frozen
class RedeemBody:
    """Points to spend; a ``reference`` (order or voucher number) makes repeating it safe."""

    points: int
    reference: str | None = None
    note: str = ""


@attrs.frozen
class Redeemed:
    """The redemption's ledger entry and the account after it."""

    entry: LedgerEntry
    balance: int
    available: int


@attrs.frozen
class ReferralCode:
    customer_id: str
    code: str


@attrs.frozen
class LinkBody:
    """Link a new customer to the customer whose referral ``code`` they came with."""

    customer_id: str
    code: str


def _customer(request: ApiRequest) -> str:
    return request.path["customer_id"]


def account(request: ApiRequest) -> AccountView:
    return Loyalty.of(request.crm).account(_customer(request), actor=request.actor)


def history(request: ApiRequest) -> list[LedgerEntry]:
    limit = query_int(request.query, "limit", 50, minimum=1, maximum=500)
    entries = Loyalty.of(request.crm).history(_customer(request), limit=limit, actor=request.actor)
    # the plugin's own notes are message ids: answered in the reader's language (``?lang=``)
    return [attrs.evolve(e, note=restored(e.note)) if e.note else e for e in entries]


def redeem(request: ApiRequest) -> Redeemed:
    body: RedeemBody = request.body
    loyalty = Loyalty.of(request.crm)
    entry = loyalty.redeem(
        _customer(request),
        body.points,
        actor=request.actor,
        reference=body.reference,
        note=body.note,
    )
    after = loyalty.account(_customer(request), actor=request.actor)
    return Redeemed(entry, after.balance, after.available)


def referral_stats(request: ApiRequest) -> ReferralStats:
    return Loyalty.of(request.crm).referral_stats(_customer(request), actor=request.actor)


def referral_code(request: ApiRequest) -> ReferralCode:
    code = Loyalty.of(request.crm).referral_code(_customer(request), actor=request.actor)
    return ReferralCode(_customer(request), code)


def link(request: ApiRequest) -> Referral:
    body: LinkBody = request.body
    return Loyalty.of(request.crm).link(body.customer_id, body.code.strip(), actor=request.actor)


def routes() -> list[ApiRoute]:
    """Every loyalty route."""
    common: dict[str, Any] = {"tag": TAG}
    return [
        ApiRoute(
            "GET",
            ACCOUNT,
            account,
            "A customer's points: balance, spendable, tier, "
            "progress to the next tier, referral code, perks, points expiring soon",
            response=AccountView,
            **common,
        ),
        ApiRoute(
            "GET",
            f"{ACCOUNT}/history",
            history,
            "The customer's points ledger, newest first",
            response=list[LedgerEntry],
            query=[
                ApiParam("limit", "at most this many entries (1-500, default 50)", type="integer")
            ],
            **common,
        ),
        ApiRoute(
            "POST",
            f"{ACCOUNT}/redeem",
            redeem,
            "Spend points (refused above the "
            "spendable balance; a repeated reference returns the first redemption)",
            body=RedeemBody,
            response=Redeemed,
            **common,
        ),
        ApiRoute(
            "GET",
            f"{ACCOUNT}/referrals",
            referral_stats,
            "What the customer's "
            "referrals brought: links, rewarded, waiting, capped, clawed back, points",
            response=ReferralStats,
            **common,
        ),
        ApiRoute(
            "POST",
            f"{ACCOUNT}/referral-code",
            referral_code,
            "The customer's referral code, made if they have none yet",
            response=ReferralCode,
            **common,
        ),
        ApiRoute(
            "POST",
            "/loyalty/referrals",
            link,
            "Link a new customer to the owner of a "
            "referral code (self-referral and velocity rules apply)",
            body=LinkBody,
            response=Referral,
            status=201,
            **common,
        ),
    ]
