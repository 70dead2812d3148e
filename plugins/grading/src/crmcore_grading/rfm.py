"""RFM value segments (DOMAIN §4): recency, frequency and monetary scores mapped to names.

Each score runs from 1 to ``bins`` and is relative to the population of customers who bought
at least once: the population run stores ``bins - 1`` quantile edges per measure, and a
customer scores 1 plus the number of edges strictly below their value. So more spend never
lowers the monetary score (all else equal); values tied with several edges take the middle of
the scores those edges span. A customer re-graded between population runs
is placed against the stored edges. Recency edges are stored as timestamps, so a customer
who stops buying keeps their place until the next run rather than sliding daily.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import attrs

from crmcore.i18n import N_, msg, term
from crmcore_grading.scheme import Facts, Grade, Scheme, SchemeContext
from crmcore_grading.settings import RfmSettings


def quantile_edges(values: Sequence[Any], bins: int) -> list[Any]:
    """The ``bins - 1`` edges splitting sorted ``values`` into ``bins`` equal-count groups:
    edge i is the value at rank ceil(i * n / bins) (1-based). Empty for no values."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return []
    return [ordered[math.ceil(i * n / bins) - 1] for i in range(1, bins)]


def score(value: Any, edges: Sequence[Any]) -> int:
    """1 + the number of edges strictly below ``value``, plus half (rounded down) of the edges
    equal to it: a value tied with several edges takes the middle of the scores they span, so
    a population of equal values scores in the middle, not at the bottom."""
    below = bisect_left(edges, value)
    return 1 + below + (bisect_right(edges, value) - below) // 2


class RfmScheme(Scheme):
    """Named RFM segments from quantile scores."""

    population = True

    def __init__(self, settings: RfmSettings) -> None:
        self.settings = settings
        self.tiers = settings.tiers()
        self._key = "profit" if settings.measure == "profit" else "spend"  # in the signals
        self._label = N_("profit") if settings.measure == "profit" else N_("spend")
        scores = range(1, settings.bins + 1)
        self.segment_of = {
            (r, f, m): next(
                (s.name for s in settings.segments if s.matches(r, f, m)), settings.default_segment
            )
            for r in scores
            for f in scores
            for m in scores
        }

    def fingerprint(self) -> str:
        return repr(attrs.asdict(self.settings))

    def _money(self, facts: Facts) -> int:
        return facts.signals.cents(self.settings.measure)

    def fit(self, population: Sequence[Facts]) -> dict[str, Any]:
        # the signals' stored form read directly (what Signals.purchases, .last_purchase_iso
        # and .cents() return): this runs over every customer
        buyers = [d for d in (f.signals.data for f in population) if d.get("purchases", 0) > 0]
        bins = self.settings.bins
        key = self._key
        return {
            "n": len(buyers),
            "r": quantile_edges([d.get("last_purchase") for d in buyers], bins),
            "f": quantile_edges([d["purchases"] for d in buyers], bins),
            "m": quantile_edges([max(0, d.get(key, 0)) for d in buyers], bins),
        }

    def scores(self, facts: Facts, cutoffs: Mapping[str, Any]) -> tuple[int, int, int]:
        s = facts.signals
        return (
            score(s.last_purchase_iso, cutoffs["r"]),
            score(s.purchases, cutoffs["f"]),
            score(self._money(facts), cutoffs["m"]),
        )

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        data = facts.signals.data  # as scores() reads it through Signals, without the calls
        purchases = data.get("purchases", 0)
        last = data.get("last_purchase")
        if purchases <= 0 or last is None or not cutoffs or not cutoffs.get("n"):
            return None
        money = max(0, data.get(self._key, 0))
        r, f, m = (
            score(last, cutoffs["r"]),
            score(purchases, cutoffs["f"]),
            score(money, cutoffs["m"]),
        )
        return Grade(
            self.segment_of[r, f, m],
            msg(
                "R%(r)s F%(f)s M%(m)s: last purchase %(day)s, %(purchases)s, "
                "%(measure)s %(amount)s",
                r=r,
                f=f,
                m=m,
                day=last[:10],
                purchases=msg("%(n)s purchase", n=purchases)
                if purchases == 1
                else msg("%(n)s purchases", n=purchases),
                measure=term(self._label),
                amount=f"{money / 100:,.2f}",
            ),
        )

    def next_change(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> date | None:
        return None  # recency is a stored timestamp against stored edges: time alone moves nothing

    def placement(self, facts: Facts, cutoffs: Mapping[str, Any]) -> Any:
        data = facts.signals.data
        if data.get("purchases", 0) <= 0 or data.get("last_purchase") is None:
            return None
        if not cutoffs or not cutoffs.get("n"):
            return 0
        return (
            score(data["last_purchase"], cutoffs["r"]),
            score(data["purchases"], cutoffs["f"]),
            score(max(0, data.get(self._key, 0)), cutoffs["m"]),
        )

    def describe(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> dict[str, Any]:
        if facts.signals.purchases <= 0 or not cutoffs or not cutoffs.get("n"):
            return {}
        r, f, m = self.scores(facts, cutoffs)
        return {"recency": r, "frequency": f, "monetary": m}


def make(context: SchemeContext) -> RfmScheme:
    return RfmScheme(context.settings.rfm)
