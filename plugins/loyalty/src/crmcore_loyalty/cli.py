"""``crm loyalty balance|history|redeem|adjust|rebuild`` and ``crm referral code|link|stats``."""

from __future__ import annotations

from typing import Any

import attrs
import click

from crmcore.cli.context import (
    WHEN_HELP,
    actor,
    open_crm_from,
    out_record,
    out_table,
    resolve_when,
    say,
)
from crmcore.cli.params import WHEN
from crmcore.converter import to_doc
from crmcore_loyalty.api import Loyalty

HISTORY_COLUMNS = [
    ("at", "when"),
    ("kind", "kind"),
    ("points", "points"),
    ("reason", "reason"),
    ("source", "source"),
    ("expires_at", "expires"),
    ("actor", "by"),
    ("note", "note"),
]


def _loyalty(ctx: click.Context) -> Loyalty:
    return Loyalty(open_crm_from(ctx))


@click.group("loyalty")
def loyalty_group() -> None:
    """Loyalty points: balance, history, redeem, adjust."""


@loyalty_group.command("balance")
@click.argument("customer_id")
@click.pass_context
def balance(ctx: click.Context, customer_id: str) -> None:
    """A customer's points, tier, perks and what expires soon."""
    view = _loyalty(ctx).account(customer_id, actor=actor(ctx))
    out_record(ctx, attrs.asdict(view), title=f"loyalty {customer_id}")


@loyalty_group.command("history")
@click.argument("customer_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def history(ctx: click.Context, customer_id: str, limit: int) -> None:
    """A customer's points ledger, newest first."""
    entries = _loyalty(ctx).history(customer_id, limit=limit, actor=actor(ctx))
    out_table(
        ctx,
        [to_doc(e) for e in entries],
        HISTORY_COLUMNS,
        title=f"points ledger of {customer_id}",
        empty="no points yet",
    )


@loyalty_group.command("redeem")
@click.argument("customer_id")
@click.argument("points", type=int)
@click.option("--reference", help="Your order or voucher number; repeating it is safe.")
@click.option("--note", default="", help="What the points paid for.")
@click.pass_context
def redeem(
    ctx: click.Context, customer_id: str, points: int, reference: str | None, note: str
) -> None:
    """Spend POINTS of a customer's balance (refused if they have fewer)."""
    loyalty = _loyalty(ctx)
    entry = loyalty.redeem(customer_id, points, actor=actor(ctx), reference=reference, note=note)
    left = loyalty.balance(customer_id)
    say(
        ctx,
        f"redeemed {-entry.points} points; {left} left",
        id=entry.id,
        points=-entry.points,
        balance=left,
    )


@loyalty_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("customer_id")
@click.argument("points", type=int)
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@click.option("--reference", help="A reference that makes repeating the command safe.")
@click.pass_context
def adjust(
    ctx: click.Context, customer_id: str, points: int, reason: str, reference: str | None
) -> None:
    """Correct a balance by POINTS (e.g. 50 or -50), never below zero."""
    loyalty = _loyalty(ctx)
    entry = loyalty.adjust(
        customer_id, points, actor=actor(ctx), reason=reason, reference=reference
    )
    left = loyalty.balance(customer_id)
    say(
        ctx,
        f"adjusted by {entry.points:+d} points; balance {left}",
        id=entry.id,
        points=entry.points,
        balance=left,
    )


@loyalty_group.command("rebuild")
@click.pass_context
def rebuild(ctx: click.Context) -> None:
    """Recompute every running balance from the ledger and every customer's spend totals
    from their history (after an upgrade from a version without them, or a restore)."""
    report = _loyalty(ctx).rebuild(actor=actor(ctx))
    say(
        ctx,
        f"{report.accounts} account(s) checked, {report.balances_fixed} balance(s) "
        f"recomputed from the ledger; spend totals rebuilt for {report.totals} customer(s)",
        **attrs.asdict(report),
    )


@click.group("referral")
def referral_group() -> None:
    """Referral ("old brings new"): codes, links, statistics."""


@referral_group.command("code")
@click.argument("customer_id")
@click.pass_context
def code(ctx: click.Context, customer_id: str) -> None:
    """A customer's referral code (made if they have none)."""
    value = _loyalty(ctx).referral_code(customer_id, actor=actor(ctx))
    say(ctx, value, customer_id=customer_id, code=value)


@referral_group.command("link")
@click.argument("new_customer_id")
@click.argument("code")
@click.pass_context
def link(ctx: click.Context, new_customer_id: str, code: str) -> None:
    """Link NEW_CUSTOMER_ID to the customer whose referral code is CODE."""
    referral = _loyalty(ctx).link(new_customer_id, code, actor=actor(ctx))
    stage = open_crm_from(ctx).settings("loyalty").referral.reward_stage
    when = "now" if stage == "link" else "at their first purchase"
    say(
        ctx,
        f"linked {referral.referred_id} to referrer {referral.referrer_id}; both are "
        f"rewarded {when}",
        id=referral.id,
        referrer_id=referral.referrer_id,
        referred_id=referral.referred_id,
        status=referral.status,
    )


@referral_group.command("stats")
@click.argument("customer_id", required=False)
@click.option("--since", type=WHEN, help=f"Only links since then. {WHEN_HELP}")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def stats(ctx: click.Context, customer_id: str | None, since: Any, limit: int) -> None:
    """One customer's referrals, or the top referrers."""
    loyalty = _loyalty(ctx)
    if customer_id:
        out_record(
            ctx,
            attrs.asdict(loyalty.referral_stats(customer_id, actor=actor(ctx))),
            title=f"referrals of {customer_id}",
        )
        return
    rows = loyalty.referrals.leaderboard(since=resolve_when(loyalty.crm, since), limit=limit)
    out_table(
        ctx,
        rows,
        [
            ("referrer", "referrer"),
            ("links", "brought"),
            ("rewarded", "rewarded"),
            ("points", "points"),
        ],
        title="top referrers",
        empty="no referrals yet",
    )
