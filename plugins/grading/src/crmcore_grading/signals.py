"""Per-customer signals aggregated from interactions: spend, visits, referrals, complaints …

The same fold is used three ways: a full ``crm grade all`` folds every interaction in one
streaming pass, an incremental one folds all the interactions of the customers that have new
ones, and an ``crm_interaction_logged`` event folds one interaction into the signals stored on
the customer (``ext["grading"]["signals"]``). Every aggregate is order-independent (integer
cents, counts, earliest/latest timestamps, sets), so every way gives the same stored form; a
later window only drops day buckets (``rewindow``).

Money is kept in integer cents so that sums do not depend on the order they were added in.
Timestamps stay in the stored ISO form (fixed width, UTC), so they compare as strings.
Day buckets (spend per day, complaints per day) are kept only as far back as the churn windows
look, counted in UTC days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from crmcore.converter import parse_iso
from crmcore_grading.settings import SignalSettings

SPEND, REFUND, VISIT, ITEM, REFERRAL, EVENT, COMPLAINT, FEEDBACK = (1 << i for i in range(8))
_COUNTS = (
    "n",
    "spend",
    "profit",
    "purchases",
    "activities",
    "visits",
    "items",
    "referrals",
    "events",
    "complaints",
    "feedback_pos",
    "feedback_neg",
)
_TIMES = ("last_purchase", "first_activity", "last_activity")


def kind_flags(settings: SignalSettings) -> dict[str, int]:
    """Interaction kind → the signals it feeds (a bit mask)."""
    flags: dict[str, int] = {}
    for kinds, flag in (
        (settings.spend_kinds, SPEND),
        (settings.refund_kinds, REFUND),
        (settings.visit_kinds, VISIT),
        (settings.item_kinds, ITEM),
        (settings.referral_kinds, REFERRAL),
        (settings.event_kinds, EVENT),
        (settings.complaint_kinds, COMPLAINT),
        (settings.feedback_kinds, FEEDBACK),
    ):
        for kind in kinds:
            flags[kind] = flags.get(kind, 0) | flag
    return flags


def _said_satisfied(ext: Mapping[str, Any] | None) -> bool | None:
    """A callback's recorded answer: ``ext.followup.satisfied`` (the followup plugin's
    documented callback-outcome contract), True, False or None when not said."""
    said = ((ext or {}).get("followup") or {}).get("satisfied")
    return said if isinstance(said, bool) else None


class Window:
    """How far back the day buckets reach at the instant ``now`` (UTC days)."""

    __slots__ = ("complaint_cut", "recent_after", "spend_cut", "today", "tomorrow")

    def __init__(self, now: datetime, spend_window_days: int, complaint_open_days: int) -> None:
        today = now.astimezone(UTC).date()
        self.today = today.isoformat()
        self.tomorrow = (today + timedelta(days=1)).isoformat()
        # a day bucket is kept while its date is after the cut
        self.spend_cut = (today - timedelta(days=2 * spend_window_days)).isoformat()
        self.recent_after = (today - timedelta(days=spend_window_days)).isoformat()
        self.complaint_cut = (today - timedelta(days=complaint_open_days)).isoformat()


class Folder:
    """Folds interaction documents into accumulators, under one configuration."""

    __slots__ = ("flags", "margin")

    def __init__(self, settings: SignalSettings) -> None:
        self.flags = kind_flags(settings)
        self.margin = settings.default_margin


class Acc:
    """A mutable accumulator of one customer's signals."""

    __slots__ = (
        "activities",
        "complaint_days",
        "complaints",
        "events",
        "feedback_neg",
        "feedback_pos",
        "first_activity",
        "items",
        "last_activity",
        "last_purchase",
        "n",
        "profit",
        "purchases",
        "referrals",
        "referred",
        "spend",
        "spend_days",
        "visits",
    )

    def __init__(self) -> None:
        self.n = self.spend = self.profit = self.purchases = self.activities = 0
        self.visits = self.items = self.referrals = self.events = self.complaints = 0
        self.feedback_pos = self.feedback_neg = 0
        self.last_purchase: str | None = None
        self.first_activity: str | None = None
        self.last_activity: str | None = None
        self.referred: set[str] = set()
        self.spend_days: dict[str, int] = {}
        self.complaint_days: dict[str, int] = {}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> Acc:
        """An accumulator continuing from a stored (canonical) form."""
        acc = cls()
        if not data:
            return acc
        for key in _COUNTS:
            value = data.get(key, 0)
            setattr(acc, key, int(value) if isinstance(value, int | float) else 0)
        for key in _TIMES:
            value = data.get(key)
            setattr(acc, key, value if isinstance(value, str) else None)
        acc.referred = {r for r in data.get("referred", ()) if isinstance(r, str)}
        acc.spend_days = {k: int(v) for k, v in dict(data.get("spend_days", {})).items()}
        acc.complaint_days = {k: int(v) for k, v in dict(data.get("complaint_days", {})).items()}
        return acc

    def fold(self, doc: Mapping[str, Any], folder: Folder, window: Window) -> bool:
        """Add one interaction document; False if its kind feeds no signal."""
        flags = folder.flags.get(doc["kind"], 0)
        if not flags:
            return False
        at: str = doc["occurred_at"]
        self.n += 1
        if flags & (SPEND | REFUND):
            amount = doc.get("amount") or 0.0
            cents = round(amount * 100)
            margin = folder.margin
            ext = doc.get("ext")
            if ext:
                own = ext.get("grading")
                if own:
                    given = own.get("margin")
                    if (
                        isinstance(given, int | float)
                        and not isinstance(given, bool)
                        and 0 <= given <= 1
                    ):
                        margin = given
            profit = round(amount * margin * 100)
            if flags & SPEND:
                self.spend += cents
                self.profit += profit
                self.purchases += 1
                if self.last_purchase is None or at > self.last_purchase:
                    self.last_purchase = at
            else:
                self.spend -= cents
                self.profit -= profit
                cents = -cents
            day = at[:10]
            if cents and day > window.spend_cut:
                days = self.spend_days
                days[day] = days.get(day, 0) + cents
        if flags & (SPEND | VISIT):
            self.activities += 1
            if self.first_activity is None or at < self.first_activity:
                self.first_activity = at
            if self.last_activity is None or at > self.last_activity:
                self.last_activity = at
            if flags & VISIT:
                self.visits += 1
        if flags & ITEM:
            self.items += 1
        if flags & REFERRAL:
            self.referrals += 1
            ref = doc.get("ref")
            if ref:
                self.referred.add(ref)
        if flags & EVENT:
            self.events += 1
        if flags & COMPLAINT:
            self.complaints += 1
            day = at[:10]
            if day > window.complaint_cut:
                self.complaint_days[day] = self.complaint_days.get(day, 0) + 1
        if flags & FEEDBACK:
            score = doc.get("satisfaction")
            said = _said_satisfied(doc.get("ext"))
            if said is not None:  # an answer recorded in words outranks the score
                if said:
                    self.feedback_pos += 1
                else:
                    self.feedback_neg += 1
            elif score is not None:
                if score >= 4:
                    self.feedback_pos += 1
                elif score <= 2:
                    self.feedback_neg += 1
        return True

    def stored(self, window: Window) -> dict[str, Any]:
        """The canonical stored form at ``window``: zero and empty values left out, day
        buckets pruned to the window, lists sorted. Equal signals give equal dicts."""
        out: dict[str, Any] = {}
        if self.n:
            out["n"] = self.n
        if self.spend:
            out["spend"] = self.spend
        if self.profit:
            out["profit"] = self.profit
        if self.purchases:
            out["purchases"] = self.purchases
        if self.activities:
            out["activities"] = self.activities
        if self.visits:
            out["visits"] = self.visits
        if self.items:
            out["items"] = self.items
        if self.referrals:
            out["referrals"] = self.referrals
        if self.events:
            out["events"] = self.events
        if self.complaints:
            out["complaints"] = self.complaints
        if self.feedback_pos:
            out["feedback_pos"] = self.feedback_pos
        if self.feedback_neg:
            out["feedback_neg"] = self.feedback_neg
        if self.last_purchase:
            out["last_purchase"] = self.last_purchase
        if self.first_activity:
            out["first_activity"] = self.first_activity
        if self.last_activity:
            out["last_activity"] = self.last_activity
        if self.referred:
            out["referred"] = sorted(self.referred)
        if self.spend_days:
            cut = window.spend_cut
            days = {d: c for d, c in self.spend_days.items() if c and d > cut}
            if days:
                out["spend_days"] = dict(sorted(days.items()))
        if self.complaint_days:
            cut = window.complaint_cut
            days = {d: c for d, c in self.complaint_days.items() if c and d > cut}
            if days:
                out["complaint_days"] = dict(sorted(days.items()))
        return out


def canonical(data: Mapping[str, Any] | None, window: Window) -> dict[str, Any]:
    """A stored signals mapping in canonical form at ``window`` (for comparisons)."""
    return Acc.from_stored(data).stored(window)


def rewindow(data: Mapping[str, Any] | None, window: Window) -> dict[str, Any]:
    """Stored signals (written by ``Acc.stored`` at a window no later than ``window``) as a
    fold of the same interactions at ``window`` would give them: day buckets the window has
    left behind are dropped. The stored mapping itself when there is nothing to drop.

    Exact because a later window only drops buckets: every bucket a fold at ``window`` keeps
    was also kept at the earlier one, and everything else is order- and time-independent.
    """
    if not data:
        return {}
    spend = data.get("spend_days")
    complaints = data.get("complaint_days")
    if (not spend or min(spend) > window.spend_cut) and (
        not complaints or min(complaints) > window.complaint_cut
    ):
        return data if type(data) is dict else dict(data)
    if not _canonical_days(spend) or not _canonical_days(complaints):
        return canonical(data, window)
    # what canonical() gives, without rebuilding the rest: only the day buckets move
    out = dict(data)
    for key, days, cut in (
        ("spend_days", spend, window.spend_cut),
        ("complaint_days", complaints, window.complaint_cut),
    ):
        if days:
            kept = {d: c for d, c in days.items() if d > cut}
            if kept:
                out[key] = kept
            else:
                del out[key]
    return out


def _canonical_days(days: Any) -> bool:
    """Day buckets as ``Acc.stored`` writes them (non-zero integers), or none."""
    return not days or (type(days) is dict and all(type(c) is int and c for c in days.values()))


def aggregate(
    docs: Iterable[Mapping[str, Any]],
    folder: Folder,
    window: Window,
    customers: Mapping[str, Any] | None = None,
    *,
    last: list[str] | None = None,
) -> tuple[dict[str, Acc], int]:
    """Fold interaction documents per customer in one pass: ``({customer id: Acc}, count)``.

    With ``customers``, interactions of anyone else are skipped. With ``last``, the id of the
    last document read is appended to it (the highest, for documents streamed in id order).
    """
    accs: dict[str, Acc] = {}
    count = 0
    flags = folder.flags
    doc: Mapping[str, Any] | None = None
    for doc in docs:
        count += 1
        if doc["kind"] not in flags:
            continue
        cid = doc["customer_id"]
        acc = accs.get(cid)
        if acc is None:
            if customers is not None and cid not in customers:
                continue
            acc = accs[cid] = Acc()
        acc.fold(doc, folder, window)
    if last is not None and doc is not None:
        last.append(doc["id"])
    return accs, count


class Signals:
    """A read-only view of one customer's stored signals, for schemes."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Signals({dict(self.data)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signals) and dict(self.data) == dict(other.data)

    __hash__ = None  # type: ignore[assignment]

    # money, in currency units (never negative: refunds beyond purchases count as nothing)
    @property
    def spend(self) -> float:
        """Net spend: purchases less refunds."""
        return max(0, self.data.get("spend", 0)) / 100

    @property
    def profit(self) -> float:
        """Net profit: spend times its margin (per interaction or ``default_margin``)."""
        return max(0, self.data.get("profit", 0)) / 100

    def value(self, measure: str) -> float:
        """``spend`` for "revenue", ``profit`` for "profit"."""
        return self.profit if measure == "profit" else self.spend

    def cents(self, measure: str) -> int:
        """``value(measure)`` in whole cents (what population cut-offs compare)."""
        return max(0, self.data.get("profit" if measure == "profit" else "spend", 0))

    def spend_between(self, after: str, upto: str) -> float:
        """Net spend on UTC days ``after < day <= upto`` (ISO dates; within the kept window)."""
        days = self.data.get("spend_days", {})
        return sum(c for d, c in days.items() if after < d <= upto) / 100

    def complaints_since(self, after: str) -> int:
        """Complaint interactions on UTC days after ``after`` (within the kept window)."""
        return sum(c for d, c in self.data.get("complaint_days", {}).items() if d > after)

    # counts
    @property
    def purchases(self) -> int:
        return self.data.get("purchases", 0)

    @property
    def activities(self) -> int:
        """Purchases and visits (a treatment that is both counts once)."""
        return self.data.get("activities", 0)

    @property
    def visits(self) -> int:
        return self.data.get("visits", 0)

    @property
    def items(self) -> int:
        return self.data.get("items", 0)

    @property
    def referrals(self) -> int:
        return self.data.get("referrals", 0)

    @property
    def people_referred(self) -> int:
        return len(self.data.get("referred", ()))

    @property
    def events(self) -> int:
        return self.data.get("events", 0)

    @property
    def complaints(self) -> int:
        return self.data.get("complaints", 0)

    @property
    def feedback_pos(self) -> int:
        return self.data.get("feedback_pos", 0)

    @property
    def feedback_neg(self) -> int:
        return self.data.get("feedback_neg", 0)

    # times
    @property
    def last_purchase_iso(self) -> str | None:
        return self.data.get("last_purchase")

    @property
    def last_purchase(self) -> datetime | None:
        return _parse(self.data.get("last_purchase"))

    @property
    def first_activity(self) -> datetime | None:
        return _parse(self.data.get("first_activity"))

    @property
    def last_activity(self) -> datetime | None:
        return _parse(self.data.get("last_activity"))


def _parse(value: str | None) -> datetime | None:
    return None if value is None else parse_iso(value)


EMPTY = Signals({})
