"""``crm report`` sections and the ``crm customer show`` summary lines."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import Customer, NotFoundError, ReportSection, ReportWindow, SummaryLine
from crmcore.charts import Chart, Series
from crmcore.i18n import N_
from crmcore_loyalty.asks import ASK_KIND
from crmcore_loyalty.records import (
    ACCOUNTS,
    ADJUST,
    CLAWBACK,
    EARN,
    EXPIRE,
    LINKED,
    REDEEM,
    REWARDED,
    Account,
    account_id,
)
from crmcore_loyalty.referrals import REFERRED, REFERRER

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty


def sections(
    loyalty: Loyalty, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Points, tiers and referrals (DOMAIN §6; the loyalty side of §7's measures). The
    points moved are counted over the report's period (else the last ``report_period_days``)
    and, for a team or a rep, for the customers they own."""
    settings = loyalty.settings
    days = settings.report_period_days
    window = window or ReportWindow()
    since = window.since or now - timedelta(days=days)
    upper = window.until or now + timedelta(microseconds=1)
    days_label = "in the period" if window.since is not None else f"last {days} days"
    owned = None if window.everyone else _owned(loyalty, window)
    outstanding = 0
    holders: Counter[str] = Counter()
    period: Counter[str] = Counter()
    shortfall = 0
    goodwill = 0
    for entry in loyalty.ledger.iter():
        if owned is not None and entry.customer_id not in owned:
            continue
        outstanding += entry.points
        holders[entry.customer_id] += entry.points
        if since <= entry.at < upper:
            period[entry.kind] += entry.points
            if entry.kind == CLAWBACK:
                shortfall += entry.shortfall
            if entry.kind == EARN and entry.reason == "compensation":
                goodwill += entry.points
    members = sum(1 for points in holders.values() if points > 0)
    points_rows = [
        ("points outstanding", outstanding),
        ("value outstanding", round(outstanding * settings.point_value, 2)),
        ("customers holding points", members),
        (f"earned, {days_label}", period[EARN]),
        (f"of which goodwill for complaints, {days_label}", goodwill),
        (f"redeemed, {days_label}", -period[REDEEM]),
        (f"expired, {days_label}", -period[EXPIRE]),
        (f"clawed back, {days_label}", -period[CLAWBACK]),
        (f"clawbacks not recoverable (already spent), {days_label}", shortfall),
        (f"adjusted (net), {days_label}", period[ADJUST]),
    ]
    out = [
        ReportSection(
            "Loyalty points",
            ("measure", "value"),
            points_rows,
            chart={
                "earned": period[EARN],
                "redeemed": -period[REDEEM],
                "expired": -period[EXPIRE],
                "clawed back": -period[CLAWBACK],
            },
            note=f"one point is worth {settings.point_value:g} in currency; the balance is always "
            "the ledger's sum",
            order=60,
        )
    ]

    out.append(tier_section(loyalty, now, window))

    referrals = loyalty.referrals.all()
    recent = [r for r in referrals if since <= r.linked_at < upper]
    asks = loyalty.crm.tasks.find({"kind": ASK_KIND, "created_at": {"$gte": since, "$lt": upper}})
    paid: Counter[str] = Counter()  # rewards credited
    points_paid: Counter[str] = Counter()  # net of what refunds took back
    for entry in loyalty.ledger.find({"reason": {"$in": [REFERRER, REFERRED]}}):
        if entry.kind == EARN:
            paid[entry.reason] += 1
            points_paid[entry.reason] += entry.points
        elif entry.kind == CLAWBACK:
            points_paid[entry.reason] -= -entry.points + entry.shortfall
    ref_rows = [
        ("customers brought by referral", len(referrals)),
        (f"linked, {days_label}", len(recent)),
        ("rewarded (qualified)", sum(1 for r in referrals if r.status == REWARDED)),
        ("waiting for the qualifying purchase", sum(1 for r in referrals if r.status == LINKED)),
        ("rewards clawed back (refunds)", sum(r.clawbacks for r in referrals)),
        (
            "referrer rewards withheld by the period cap",
            sum(1 for r in referrals if r.referrer_capped),
        ),
        ("points paid to referrers (net of clawbacks)", points_paid[REFERRER]),
        ("points paid to new customers (net of clawbacks)", points_paid[REFERRED]),
        (f"'ask for a referral' tasks, {days_label}", len(asks)),
        ("of which done", sum(1 for t in asks if t.status.value == "done")),
    ]
    note = f"{paid[REFERRER]} referrer and {paid[REFERRED]} new-customer rewards credited in all"
    out.append(
        ReportSection(
            "Referrals (old brings new)", ("measure", "value"), ref_rows, note=note, order=62
        )
    )
    top = loyalty.referrals.leaderboard(limit=10)
    if top:
        names = referrer_names(loyalty, [row["referrer"] for row in top])
        out.append(
            ReportSection(
                "Top referrers",
                ("customer", "brought", "rewarded", "points"),
                [
                    (names[row["referrer"]], row["links"], row["rewarded"], row["points"])
                    for row in top
                ],
                chart={names[row["referrer"]]: row["links"] for row in top},
                order=63,
                charts=[
                    Chart(
                        N_("Customers brought by referral"),
                        [names[r["referrer"]] for r in top],
                        [
                            Series(N_("brought"), [r["links"] for r in top]),
                            Series(N_("rewarded"), [r["rewarded"] for r in top]),
                        ],
                        unit=N_("customers"),
                        y_label=N_("Customers brought"),
                        x_label=N_("Referrer"),
                        key="top_referrers",
                    )
                ],
            )
        )
    return out


def tier_section(loyalty: Loyalty, now: datetime, window: ReportWindow) -> ReportSection:
    """Customers per loyalty tier as of the window's end (now without an end before now),
    of the window's team or rep (by owner); with a period, the tiers reached in it. A tier
    is known back to ``tier_since``: a customer whose tier changed after the window's end is
    counted apart (the tier before is not kept)."""
    settings = loyalty.settings
    until = window.until
    at = until if until is not None and until < now else now
    past = at < now
    period = window.since is not None or past
    counts = window.rep_filter(loyalty.crm)
    scope: set[str] | None = None  # None: every customer, as now
    if past or not window.everyone:
        scope = {
            c.id
            for c in loyalty.crm.customers.iter()
            if (window.everyone or (c.owner is not None and counts(c.owner)))
            and (not past or c.created_at <= at)
        }
    tiers: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    changed = 0
    for account in loyalty.crm.records(ACCOUNTS, Account).iter({"tier": {"$ne": None}}):
        if account.id != account_id(account.customer_id) or (
            scope is not None and account.customer_id not in scope
        ):
            continue  # merged into another, or not the window's customer
        since = account.tier_since
        if past and (since is None or since > at):
            changed += 1
            continue
        tiers[account.tier or ""] += 1
        reached[account.tier or ""] += since is not None and window.contains(since)
    active = loyalty.crm.customers.count() if scope is None else len(scope)

    def share(n: int) -> str:
        return f"{n / active:.1%}" if active else "0.0%"

    rows: list[tuple[Any, ...]] = [
        (level.name, tiers[level.name], share(tiers[level.name]))
        for level in reversed(settings.tiers.levels)
    ]
    if changed:
        rows.append(("(tier changed after the window's end)", changed, share(changed)))
    untiered = max(0, active - sum(tiers.values()) - changed)
    rows.append(("(no tier)", untiered, share(untiered)))
    if period:
        rows = [(*row, reached[row[0]] if not row[0].startswith("(") else "") for row in rows]
    who = f"rep {window.rep}" if window.rep else f"team {window.team}" if window.team else ""
    when = f"as of {at.isoformat()[:16].replace('T', ' ')}" if past else "now"
    columns = ["tier", "customers", "share"]
    if period:
        columns.append("reached in the period")
    return ReportSection(
        "Loyalty tiers",
        columns,
        rows,
        chart={row[0]: row[1] for row in rows if not row[0].startswith("(")},
        note=f"by {settings.tiers.basis} over {settings.tiers.window_days} days; upgrades at "
        f"once, downgrades at the review date; {who + ', ' if who else ''}{when}",
        order=61,
    )


def short_name(name: str) -> str:
    """A name as a report shows it: the first word whole, the others by their initial
    ("Fang Li" -> "Fang L."); a name written without spaces keeps its first character
    ("王小明" -> "王**"). Enough to know whom a figure is about, not a full identity."""
    words = name.split()
    if len(words) > 1:
        return " ".join([words[0], *(f"{w[0]}." for w in words[1:])])
    if len(name) > 1 and not name.isascii():
        return name[0] + "*" * (len(name) - 1)
    return name


def referrer_names(loyalty: Loyalty, ids: list[str]) -> dict[str, str]:
    """Each referrer by :func:`short_name`, made unique where two share one (the end of the
    id added); a customer deleted since shows as such."""
    names: dict[str, str] = {}
    for cid in ids:
        try:
            names[cid] = short_name(loyalty.crm.customers.get_any(cid).name)
        except NotFoundError:
            names[cid] = f"(deleted customer {cid[-6:]})"
    seen = Counter(names.values())
    return {cid: f"{name} ({cid[-6:]})" if seen[name] > 1 else name for cid, name in names.items()}


def _owned(loyalty: Loyalty, window: ReportWindow) -> set[str]:
    """Ids of the customers owned by the window's rep, or by a rep of its team."""
    counts = window.rep_filter(loyalty.crm)
    return {c.id for c in loyalty.crm.customers.iter() if c.owner is not None and counts(c.owner)}


def summary(loyalty: Loyalty, customer: Customer) -> list[SummaryLine]:
    """ "1,250 points (1,250 spendable); gold since 2026-01-05, review 2027-01-05; code …"."""
    view = loyalty.account(customer.id)
    parts = [f"{view.balance:,} points"]
    if view.available != view.balance:
        parts[0] += f" ({view.available:,} spendable)"
    if view.tier:
        since = view.tier_since.date().isoformat() if view.tier_since else "?"
        review = view.tier_review_at.date().isoformat() if view.tier_review_at else "?"
        parts.append(f"{view.tier} since {since}, review {review}")
    else:
        parts.append("no tier yet")
    if view.next_tier:
        parts.append(f"{view.to_next_tier:,.0f} to {view.next_tier}")
    if view.expiring_points and view.expiring_by:
        parts.append(f"{view.expiring_points:,} expire by {view.expiring_by.date().isoformat()}")
    lines = [SummaryLine("Loyalty", "; ".join(parts))]
    if view.perks:
        lines.append(SummaryLine("Perks", ", ".join(view.perks)))
    stats = loyalty.referrals.stats(customer.id)
    ref = [f"code {stats.code}" if stats.code else "no code yet"]
    if stats.links:
        ref.append(f"brought {stats.links} ({stats.rewarded} rewarded)")
    if stats.referred_by:
        ref.append(f"referred by {stats.referred_by}")
    lines.append(SummaryLine("Referral", "; ".join(ref)))
    return lines
