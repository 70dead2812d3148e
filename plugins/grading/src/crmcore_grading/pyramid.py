"""The customer pyramid (DOMAIN §4): VIP / major / ordinary / small by revenue or profit.

Tiers are relative to the paying population. With ``basis = "customers"`` a tier with
``top = 0.2`` holds the ceil(20%) highest-value paying customers ("the top 20% are big
customers"); with ``basis = "value"`` it holds the highest-value customers who together make
the first 20% of all value (the customer who crosses the line is in). Either way the population
run stores each tier's value threshold, and a customer is in the first tier whose threshold they
reach, so customers tied with the last one in are in too. Customers with no value yet are in
the ``rest`` tier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import attrs

from crmcore.i18n import N_, msg, term
from crmcore_grading.scheme import Facts, Grade, Scheme, SchemeContext
from crmcore_grading.settings import PyramidSettings


def top_count(share: float, n: int) -> int:
    """ceil(share x n), immune to float noise (0.2 x 15 is 3, not 4)."""
    return math.ceil(round(share * n, 9))


def thresholds_by_customers(
    values_desc: Sequence[int], shares: Sequence[float]
) -> list[int | None]:
    """For each cumulative share, the value of the last customer in (top ceil(share x n))."""
    n = len(values_desc)
    return [values_desc[top_count(s, n) - 1] if n else None for s in shares]


def thresholds_by_value(values_desc: Sequence[int], shares: Sequence[float]) -> list[int | None]:
    """For each cumulative share, the value of the customer whose value crosses that share of
    the total (customers are taken in descending order while the sum before them is short)."""
    total = sum(values_desc)
    out: list[int | None] = []
    for share in shares:
        if not total:
            out.append(None)
            continue
        goal = share * total
        cumulative = 0
        last = values_desc[0]
        for value in values_desc:
            if cumulative >= goal - 1e-9:
                break
            last = value
            cumulative += value
        out.append(last)
    return out


class PyramidScheme(Scheme):
    """Population-relative value tiers."""

    population = True
    ordered = True

    def __init__(self, settings: PyramidSettings) -> None:
        self.settings = settings
        self.tiers = settings.order()
        self._key = "profit" if settings.measure == "profit" else "spend"  # in the signals
        self._label = N_("profit") if settings.measure == "profit" else N_("revenue")
        self._scopes = [(t.name, self._scope(t.top)) for t in settings.tiers]
        self._below = msg("below the %(scope)s", scope=self._scope(settings.tiers[-1].top))

    def fingerprint(self) -> str:
        return repr(attrs.asdict(self.settings))

    def _value(self, facts: Facts) -> int:
        return facts.signals.cents(self.settings.measure)

    def fit(self, population: Sequence[Facts]) -> dict[str, Any]:
        values = sorted((v for v in (self._value(f) for f in population) if v > 0), reverse=True)
        shares = [t.top for t in self.settings.tiers]
        rule = thresholds_by_value if self.settings.basis == "value" else thresholds_by_customers
        return {"n": len(values), "thresholds": rule(values, shares)}

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        value = max(0, facts.signals.data.get(self._key, 0))  # _value(), without the calls
        if value > 0 and cutoffs:
            amount = msg(
                "%(measure)s %(amount)s", measure=term(self._label), amount=f"{value / 100:,.2f}"
            )
            for (tier, scope), threshold in zip(
                self._scopes, cutoffs.get("thresholds", ()), strict=False
            ):
                if threshold is not None and value >= threshold:
                    return Grade(tier, msg("%(scope)s (%(amount)s)", scope=scope, amount=amount))
            return Grade(
                self.settings.rest, msg("%(scope)s (%(amount)s)", scope=self._below, amount=amount)
            )
        return Grade(self.settings.rest, msg("no %(measure)s yet", measure=term(self._label)))

    def next_change(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> date | None:
        return None  # lifetime value against stored thresholds: time alone moves nothing

    def placement(self, facts: Facts, cutoffs: Mapping[str, Any]) -> Any:
        value = max(0, facts.signals.data.get(self._key, 0))
        if value <= 0 or not cutoffs:
            return None
        for i, threshold in enumerate(cutoffs.get("thresholds", ())):
            if threshold is not None and value >= threshold:
                return i
        return -1

    def _scope(self, share: float) -> str:
        label = term(self._label)
        pct = f"{share * 100:g}%"
        if self.settings.basis == "value":
            return msg("top customers making %(pct)s of %(measure)s", pct=pct, measure=label)
        return msg("top %(pct)s of paying customers by %(measure)s", pct=pct, measure=label)


def make(context: SchemeContext) -> PyramidScheme:
    return PyramidScheme(context.settings.pyramid)
