"""``crm report`` sections and the ``crm customer show`` summary lines."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import Customer, NotFoundError, ReportSection, ReportWindow, SummaryLine
from crmcore.charts import Chart, Series
from crmcore.converter import iso
from crmcore.i18n import N_, joined, msg, term
from crmcore_loyalty.asks import ASK_KIND
from crmcore_loyalty.records import (
    ACCOUNTS,
    ADJUST,
    CLAWBACK,
    EARN,
    ENTRY_KINDS,
    EXPIRE,
    LEDGER,
    LINKED,
    REDEEM,
    REWARDED,
    Account,
    account_id,
)
from crmcore_loyalty.referrals import REFERRED, REFERRER

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty


#: Up to this many accounts without a running balance are read through the ledger's
#: customer index; more (a store not yet rebuilt) in one pass over the ledger.
FEW = 50
#: What tiers are earned by, as a note says it.
BASIS_WORDS = {"spend": N_("spend"), "points": N_("points")}
#: The default tier names as a table shows them, for the catalog (names a client configures
#: stay as written).
DEFAULT_TIER_NAMES = (N_("platinum"), N_("gold"), N_("silver"))
#: The default tiers' perks, for the catalog (perks a client configures stay as written).
DEFAULT_PERK_NAMES = (
    N_("exclusive_offers"),
    N_("priority_handling"),
    N_("dedicated_rep"),
    N_("member_events"),
)


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
    days_label = (
        term(N_("in the period"))
        if window.since is not None
        else msg("last %(days)s days", days=days)
    )
    owned = None if window.everyone else _owned(loyalty, window)
    if owned is None:
        outstanding, members = holdings(loyalty)
    else:
        holders = balances(loyalty, owned)
        outstanding, members = sum(holders.values()), len(holders)
    period: Counter[str] = Counter()
    shortfall = 0
    goodwill = 0
    # the period's entries only, through the (kind, at, points) index: instants as their text
    window_filter = {
        "kind": {"$in": list(ENTRY_KINDS)},
        "at": {"$gte": iso(since), "$lt": iso(upper)},
    }
    ledger = loyalty.crm.collection(LEDGER)
    if owned is None:
        # everyone's: added up through the (kind, at, points) index, no entry read; the
        # period's clawbacks and compensations (few) read through their indexes
        at = window_filter["at"]
        for kind in ENTRY_KINDS:
            period[kind] = int(ledger.sum("points", {"kind": kind, "at": at}))
        shortfall = int(ledger.sum("shortfall", {"kind": CLAWBACK, "at": at}))
        goodwill = int(ledger.sum("points", {"reason": "compensation", "kind": EARN, "at": at}))
    for doc in ledger.find(window_filter) if owned is not None else ():
        if owned is not None and doc["customer_id"] not in owned:
            continue
        kind, points = doc["kind"], doc["points"]
        period[kind] += points
        if kind == CLAWBACK:
            shortfall += doc.get("shortfall") or 0
        if kind == EARN and doc.get("reason") == "compensation":
            goodwill += points
    points_rows = [
        (N_("points outstanding"), outstanding),
        (N_("value outstanding"), round(outstanding * settings.point_value, 2)),
        (N_("customers holding points"), members),
        (msg("earned, %(when)s", when=days_label), period[EARN]),
        (msg("of which goodwill for complaints, %(when)s", when=days_label), goodwill),
        (msg("redeemed, %(when)s", when=days_label), -period[REDEEM]),
        (msg("expired, %(when)s", when=days_label), -period[EXPIRE]),
        (msg("clawed back, %(when)s", when=days_label), -period[CLAWBACK]),
        (
            msg("clawbacks not recoverable (already spent), %(when)s", when=days_label),
            shortfall,
        ),
        (msg("adjusted (net), %(when)s", when=days_label), period[ADJUST]),
    ]
    out = [
        ReportSection(
            N_("Loyalty points"),
            (N_("measure"), N_("value")),
            points_rows,
            chart={
                "earned": period[EARN],
                "redeemed": -period[REDEEM],
                "expired": -period[EXPIRE],
                "clawed back": -period[CLAWBACK],
            },
            note=joined(
                msg(
                    "one point is worth %(value)s in currency",
                    value=format(settings.point_value, "g"),
                ),
                N_("the balance is always the ledger's sum"),
            ),
            order=60,
        )
    ]

    if window.brief:  # the dashboard shows the points' figures and the referrers' chart
        return [*out, *top_referrers(loyalty)]
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
        (N_("customers brought by referral"), len(referrals)),
        (msg("linked, %(when)s", when=days_label), len(recent)),
        (N_("rewarded (qualified)"), sum(1 for r in referrals if r.status == REWARDED)),
        (
            N_("waiting for the qualifying purchase"),
            sum(1 for r in referrals if r.status == LINKED),
        ),
        (N_("rewards clawed back (refunds)"), sum(r.clawbacks for r in referrals)),
        (
            N_("referrer rewards withheld by the period cap"),
            sum(1 for r in referrals if r.referrer_capped),
        ),
        (N_("points paid to referrers (net of clawbacks)"), points_paid[REFERRER]),
        (N_("points paid to new customers (net of clawbacks)"), points_paid[REFERRED]),
        (msg("'ask for a referral' tasks, %(when)s", when=days_label), len(asks)),
        (N_("of which done"), sum(1 for t in asks if t.status.value == "done")),
    ]
    note = msg(
        "%(referrers)s referrer and %(new)s new-customer rewards credited in all",
        referrers=paid[REFERRER],
        new=paid[REFERRED],
    )
    out.append(
        ReportSection(
            N_("Referrals (old brings new)"),
            (N_("measure"), N_("value")),
            ref_rows,
            note=note,
            order=62,
        )
    )
    return [*out, *top_referrers(loyalty)]


def balances(loyalty: Loyalty, owned: set[str] | None = None) -> dict[str, int]:
    """Each customer holding points (of ``owned``, when given) and their balance: the
    accounts' running balances through their index, the ledger read only for customers
    whose account keeps none yet (a store from before it: ``crm loyalty rebuild``)."""
    crm = loyalty.crm
    accounts = crm.collection(ACCOUNTS)
    held: dict[str, int] = {}
    for doc in accounts.find({"balance": {"$gt": 0}}):
        if doc["id"] == account_id(doc["customer_id"]):  # not an account merged away
            held[doc["customer_id"]] = doc["balance"]
    # accounts without a balance, and (a merge before balances were kept) customers whose
    # entries came with a merged account only: their ledger's sum
    unknown = sorted({doc["customer_id"] for doc in accounts.find({"balance": None})})
    if unknown:
        sums: Counter[str] = Counter()
        ledger = crm.collection(LEDGER)
        # a few through the customer index; many (a store not rebuilt yet): one pass
        docs = (
            ledger.find({"customer_id": {"$in": unknown}}) if len(unknown) <= FEW else ledger.iter()
        )
        wanted = set(unknown)
        for doc in docs:
            if doc["customer_id"] in wanted:
                sums[doc["customer_id"]] += doc["points"]
        for customer_id in unknown:
            held.pop(customer_id, None)
            if sums[customer_id] > 0:
                held[customer_id] = sums[customer_id]
    if owned is not None:
        held = {c: points for c, points in held.items() if c in owned}
    return held


def holdings(loyalty: Loyalty) -> tuple[int, int]:
    """Everyone's points outstanding and how many customers hold points, as ``balances``
    gives them, added up through the running balances' index (``Collection.sum``: on the
    embedded store no account read) and corrected for the few accounts that index cannot
    tell apart: accounts merged away (their stale balance left out) and accounts keeping no
    balance yet (their ledger's sum instead)."""
    crm = loyalty.crm
    accounts = crm.collection(ACCOUNTS)
    unknown = sorted({doc["customer_id"] for doc in accounts.find({"balance": None})})
    if len(unknown) > FEW:  # a store not rebuilt yet: one pass over the ledger anyway
        held = balances(loyalty)
        return sum(held.values()), len(held)
    positive = {"balance": {"$gt": 0}}
    total = int(accounts.sum("balance", positive))
    members = accounts.count(positive)
    # a merged customer's account moved to the kept customer: its tombstone says so
    tombstones = crm.collection("customers").find({"status": {"$in": ["merged", "erased"]}})
    ids = [account_id(doc["id"]) for doc in tombstones if doc.get("merged_into")]
    ids += [account_id(c) for c in unknown]
    for doc in accounts.find({"id": {"$in": ids}}) if ids else ():
        counted = doc.get("balance") or 0
        merged_away = doc["id"] != account_id(doc["customer_id"])
        if counted > 0 and (merged_away or doc["customer_id"] in unknown):
            total -= counted
            members -= 1
    if unknown:
        sums: Counter[str] = Counter()
        for doc in crm.collection(LEDGER).find({"customer_id": {"$in": unknown}}):
            sums[doc["customer_id"]] += doc["points"]
        credits = [points for points in sums.values() if points > 0]
        total += sum(credits)
        members += len(credits)
    return total, members


def top_referrers(loyalty: Loyalty) -> list[ReportSection]:
    """The ten customers who brought the most (none when nobody has referred anyone)."""
    out: list[ReportSection] = []
    top = loyalty.referrals.leaderboard(limit=10)
    if top:
        names = referrer_names(loyalty, [row["referrer"] for row in top])
        out.append(
            ReportSection(
                N_("Top referrers"),
                (N_("customer"), N_("brought"), N_("rewarded"), N_("points")),
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
        rows.append((N_("(tier changed after the window's end)"), changed, share(changed)))
    untiered = max(0, active - sum(tiers.values()) - changed)
    rows.append((N_("(no tier)"), untiered, share(untiered)))
    if period:
        rows = [(*row, reached[row[0]] if not row[0].startswith("(") else "") for row in rows]
    when = (
        msg("as of %(when)s", when=at.isoformat()[:16].replace("T", " "))
        if past
        else term(N_("now"))
    )
    if window.rep:
        when = msg("rep %(rep)s, %(when)s", rep=window.rep, when=when)
    elif window.team:
        when = msg("team %(team)s, %(when)s", team=window.team, when=when)
    columns = [N_("tier"), N_("customers"), N_("share")]
    if period:
        columns.append(N_("reached in the period"))
    return ReportSection(
        N_("Loyalty tiers"),
        columns,
        rows,
        chart={row[0]: row[1] for row in rows if not row[0].startswith("(")},
        note=joined(
            msg(
                "by %(basis)s over %(days)s days",
                basis=term(BASIS_WORDS.get(settings.tiers.basis, settings.tiers.basis)),
                days=settings.tiers.window_days,
            ),
            N_("upgrades at once, downgrades at the review date"),
            when,
        ),
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
            names[cid] = msg("(deleted customer %(id)s)", id=cid[-6:])
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
