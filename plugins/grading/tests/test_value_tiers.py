"""Value tiers (DOMAIN §4): RFM quantiles and segments, the pyramid's shares and the top-20%
rule, the hospital's 8 signals, and their properties."""

from __future__ import annotations

import math
from datetime import timedelta

import attrs
import pytest
from crmcore_grading.hospital import HospitalScheme, breakdown
from crmcore_grading.pyramid import (
    PyramidScheme,
    thresholds_by_customers,
    thresholds_by_value,
    top_count,
)
from crmcore_grading.rfm import RfmScheme, quantile_edges, score
from crmcore_grading.settings import (
    HospitalSettings,
    HospitalThresholds,
    HospitalWeights,
    PyramidSettings,
    PyramidTier,
    RfmSettings,
    Segment,
)
from grading_helpers import make_facts
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.testing import START

# -- RFM -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "bins", "edges"),
    [
        (list(range(1, 11)), 5, [2, 4, 6, 8]),
        (list(range(10, 0, -1)), 5, [2, 4, 6, 8]),
        ([], 5, []),
        ([7], 5, [7, 7, 7, 7]),
        ([1, 2, 3], 5, [1, 2, 2, 3]),
        ([1, 1, 1, 2, 5], 3, [1, 2]),
        (list(range(1, 101)), 4, [25, 50, 75]),
    ],
)
def test_quantile_edges(values, bins, edges):
    assert quantile_edges(values, bins) == edges


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (2, 1), (3, 2), (4, 2), (5, 3), (8, 4), (9, 5), (100, 5)]
)
def test_score_counts_edges_strictly_below(value, expected):
    assert score(value, [2, 4, 6, 8]) == expected


@pytest.mark.parametrize(
    ("value", "edges", "expected"),
    [
        (7, [7, 7, 7, 7], 3),
        (6, [7, 7, 7, 7], 1),
        (8, [7, 7, 7, 7], 5),
        (1, [1, 1, 1, 2], 2),
        (2, [1, 1, 1, 2], 4),
        (3, [1, 1, 1, 2], 5),
        (5, [1, 5, 5, 9], 3),
        (5, [5, 9, 9, 9], 1),
    ],
)
def test_ties_take_the_middle_of_the_scores_they_span(value, edges, expected):
    assert score(value, edges) == expected


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "champions"),
        (4, 4, 4, "champions"),
        (3, 3, 3, "loyal"),
        (5, 3, 5, "loyal"),
        (1, 5, 5, "cant_lose"),
        (2, 4, 4, "cant_lose"),
        (5, 1, 1, "new"),
        (4, 1, 5, "new"),
        (3, 1, 1, "promising"),
        (2, 2, 2, "need_attention"),
        (3, 2, 3, "need_attention"),
        (4, 2, 1, "potential_loyalist"),
        (5, 3, 1, "potential_loyalist"),
        (1, 3, 3, "at_risk"),
        (2, 4, 3, "at_risk"),
        (2, 1, 5, "about_to_sleep"),
        (1, 1, 1, "hibernating"),
        (1, 2, 1, "hibernating"),
        (1, 1, 3, "lost"),
        (2, 3, 1, "other"),
    ],
)
def test_default_segment_table(r, f, m, segment):
    rfm = RfmSettings()
    found = next((s.name for s in rfm.segments if s.matches(r, f, m)), rfm.default_segment)
    assert found == segment


def buyer(n: int, purchases: int, spend: float, days_ago: int):
    last = START - timedelta(days=days_ago)
    return make_facts(
        f"cus_{n:03d}",
        purchases=purchases,
        spend=spend,
        last_purchase=last,
        activities=purchases,
        first_activity=last - timedelta(days=90),
        last_activity=last,
    )


def test_rfm_scores_and_segments_over_a_population():
    scheme = RfmScheme(RfmSettings())
    population = [
        buyer(i, purchases=i + 1, spend=100.0 * (i + 1), days_ago=100 - 10 * i) for i in range(10)
    ]
    population.append(make_facts("cus_none"))  # never bought: not in the population
    cutoffs = scheme.fit(population)
    assert cutoffs["n"] == 10
    best, worst = population[9], population[0]
    assert scheme.scores(best, cutoffs) == (5, 5, 5)
    assert scheme.scores(worst, cutoffs) == (1, 1, 1)
    graded = scheme.grade(best, cutoffs)
    assert graded.value == "champions"
    assert graded.reason == "R5 F5 M5: last purchase 2025-12-26, 10 purchases, spend 1,000.00"
    assert scheme.grade(worst, cutoffs).value == "hibernating"
    assert scheme.grade(population[10], cutoffs) is None
    assert scheme.grade(best, {"n": 0, "r": [], "f": [], "m": []}) is None


def test_rfm_bins_and_segments_are_configurable():
    settings = RfmSettings(
        bins=3, segments=[Segment("top", [3, 3], [3, 3], [3, 3]), Segment("rest", None, None, None)]
    )
    scheme = RfmScheme(settings)
    population = [
        buyer(i, purchases=i + 1, spend=10.0 * (i + 1), days_ago=30 - i) for i in range(9)
    ]
    cutoffs = scheme.fit(population)
    assert len(cutoffs["f"]) == 2
    assert scheme.grade(population[8], cutoffs).value == "top"
    assert scheme.grade(population[0], cutoffs).value == "rest"
    assert scheme.tiers == ("top", "rest", "other")


def test_rfm_profit_measure_uses_margins():
    scheme = RfmScheme(RfmSettings(measure="profit"))
    rich = make_facts("a", purchases=1, spend=1000.0, profit=50.0, last_purchase=START)
    lean = make_facts("b", purchases=1, spend=100.0, profit=90.0, last_purchase=START)
    cutoffs = scheme.fit([rich, lean])
    assert scheme.scores(lean, cutoffs)[2] > scheme.scores(rich, cutoffs)[2]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 30), st.integers(0, 500_000), st.integers(0, 400)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 39),
    st.integers(1, 100_000),
)
def test_more_spend_never_lowers_the_monetary_score(rows, pick, extra):
    scheme = RfmScheme(RfmSettings())
    population = [buyer(i, p, cents / 100, d) for i, (p, cents, d) in enumerate(rows)]
    who = pick % len(population)
    before = scheme.scores(population[who], scheme.fit(population))
    richer = attrs.evolve(
        population[who],
        signals=type(population[who].signals)(
            {
                **population[who].signals.data,
                "spend": population[who].signals.data.get("spend", 0) + extra,
            }
        ),
    )
    population[who] = richer
    after = scheme.scores(richer, scheme.fit(population))
    assert after[2] >= before[2]
    assert after[:2] == before[:2]  # recency and frequency did not change


# -- the pyramid -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "n", "count"),
    [
        (0.2, 15, 3),
        (0.2, 10, 2),
        (0.2, 11, 3),
        (0.05, 10, 1),
        (0.5, 3, 2),
        (1.0, 7, 7),
        (0.1, 30, 3),
        (0.7, 10, 7),
    ],
)
def test_top_count_is_a_ceiling_free_of_float_noise(share, n, count):
    assert top_count(share, n) == count


@pytest.mark.parametrize(
    ("values", "shares", "expected"),
    [
        (list(range(10, 0, -1)), [0.05, 0.2, 0.5], [10, 9, 6]),
        ([5, 5, 5, 1], [0.2], [5]),
        ([], [0.2], [None]),
        ([8], [0.05, 0.2], [8, 8]),
    ],
)
def test_thresholds_by_customers(values, shares, expected):
    assert thresholds_by_customers(values, shares) == expected


@pytest.mark.parametrize(
    ("values", "shares", "expected"),
    [
        ([50, 30, 10, 10], [0.2], [50]),
        ([50, 30, 10, 10], [0.5], [50]),
        ([50, 30, 10, 10], [0.51], [30]),
        ([50, 30, 10, 10], [0.8], [30]),
        ([50, 30, 10, 10], [0.81], [10]),
        ([0, 0], [0.5], [None]),
    ],
)
def test_thresholds_by_value(values, shares, expected):
    assert thresholds_by_value(values, shares) == expected


def spenders(amounts: list[float]):
    return [
        make_facts(
            f"cus_{i:03d}", spend=a, purchases=1 if a else 0, last_purchase=START if a else None
        )
        for i, a in enumerate(amounts)
    ]


def test_pyramid_tiers_by_customer_share():
    scheme = PyramidScheme(PyramidSettings())
    population = spenders([1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0])
    cutoffs = scheme.fit(population)
    tiers = [scheme.grade(f, cutoffs).value for f in population]
    # 10 paying customers: top 5% -> 1 VIP, top 20% -> 2, top 50% -> 5
    assert tiers == [
        "vip",
        "major",
        "ordinary",
        "ordinary",
        "ordinary",
        "small",
        "small",
        "small",
        "small",
        "small",
        "small",
    ]
    assert (
        scheme.grade(population[0], cutoffs).reason
        == "top 5% of paying customers by revenue (revenue 1,000.00)"
    )
    assert scheme.grade(population[10], cutoffs).reason == "no revenue yet"
    assert (
        scheme.grade(population[9], cutoffs).reason
        == "below the top 50% of paying customers by revenue (revenue 100.00)"
    )


def test_pyramid_tiers_by_value_share():
    scheme = PyramidScheme(
        PyramidSettings(basis="value", tiers=[PyramidTier("big", 0.5)], rest="other")
    )
    population = spenders([600, 200, 100, 100])
    cutoffs = scheme.fit(population)
    assert [scheme.grade(f, cutoffs).value for f in population] == [
        "big",
        "other",
        "other",
        "other",
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 10**7), min_size=1, max_size=300, unique=True),
    st.sampled_from([0.2, 0.05, 0.1, 0.25, 0.5, 1.0]),
)
def test_the_top_share_rule_selects_ceil_of_a_population_with_distinct_values(cents, share):
    scheme = PyramidScheme(PyramidSettings(tiers=[PyramidTier("big", share)], rest="rest"))
    population = spenders([c / 100 for c in cents])
    cutoffs = scheme.fit(population)
    big = sum(scheme.grade(f, cutoffs).value == "big" for f in population)
    assert big == math.ceil(share * len(cents) - 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=60),
    st.integers(0, 59),
    st.integers(1, 10**6),
    st.sampled_from(["customers", "value"]),
)
def test_more_spend_never_lowers_a_pyramid_tier(cents, pick, extra, basis):
    scheme = PyramidScheme(PyramidSettings(basis=basis))
    order = scheme.tiers
    population = spenders([c / 100 for c in cents])
    who = pick % len(population)
    before = scheme.grade(population[who], scheme.fit(population)).value
    population[who] = spenders([cents[who] / 100 + extra / 100])[0]
    after = scheme.grade(population[who], scheme.fit(population)).value
    assert order.index(after) >= order.index(before)


# -- the hospital's 8 signals ----------------------------------------------------------------


def spend_only(**more) -> HospitalSettings:
    weights = HospitalWeights(
        history=0, spend=1, visits=0, frequency=0, items=0, referrals=0, events=0, feedback=0
    )
    return HospitalSettings(weights=weights, big_rule="threshold", **more)


def patient(n: int = 0, months: float = 24, **signals):
    first = START - timedelta(days=30.4375 * months)
    signals.setdefault("activities", 1)
    return make_facts(f"cus_{n:03d}", first_activity=first, last_activity=START, **signals)


@pytest.mark.parametrize(
    ("spend", "tier"),
    [
        (50_000, "big"),
        (35_000, "big"),
        (34_999.99, "major"),
        (22_500, "major"),
        (22_499.99, "ordinary"),
        (10_000, "ordinary"),
        (9_999.99, "general"),
        (10, "general"),
    ],
)
def test_hospital_threshold_tiers(spend, tier):
    scheme = HospitalScheme(spend_only())
    assert scheme.grade(patient(spend=spend), None).value == tier


def test_hospital_thresholds_are_configurable():
    scheme = HospitalScheme(spend_only(thresholds=HospitalThresholds(90, 50, 10)))
    assert scheme.grade(patient(spend=24_999), None).value == "ordinary"
    assert scheme.grade(patient(spend=25_000), None).value == "major"
    assert scheme.grade(patient(spend=44_999), None).value == "major"
    assert scheme.grade(patient(spend=45_000), None).value == "big"


def test_no_activity_is_general():
    scheme = HospitalScheme(HospitalSettings())
    graded = scheme.grade(make_facts("x"), {"n": 0, "big": None})
    assert (graded.value, graded.reason) == ("general", "no purchase or visit yet")


@pytest.mark.parametrize(
    ("months", "spend", "tier"),
    [
        (2, 7_000, "potential_big"),  # 14 now; x6 over 12 months -> 84 >= 70
        (2, 5_000, "general"),  # 10 now; projected 60 < 70
        (0.2, 3_000, "potential_big"),  # under a month counts as one: x12 -> 72
        (5.9, 3_000, "general"),  # projected 3000 * 12/5.9 -> 12.2 %
        (7, 7_000, "general"),  # too long a history to be "new"
    ],
)
def test_potential_big_customers(months, spend, tier):
    scheme = HospitalScheme(spend_only())
    assert scheme.grade(patient(months=months, spend=spend), None).value == tier


def test_the_eight_signals_and_their_full_marks():
    s = HospitalSettings()
    facts = patient(
        months=18,
        spend=25_000,
        visits=20,
        items=15,
        referrals=5,
        referred=["a", "b"],
        events=10,
        feedback_pos=2,
        feedback_neg=1,
        complaints=1,
    )
    parts = breakdown(facts.signals, facts.now, s).parts
    assert parts["history"] == pytest.approx(50.0)
    assert parts["spend"] == pytest.approx(50.0)
    assert parts["visits"] == pytest.approx(50.0)
    assert parts["frequency"] == pytest.approx(100 * (20 / 18) / 2)
    assert parts["items"] == pytest.approx(50.0)
    assert parts["referrals"] == pytest.approx((100 + 40) / 2)
    assert parts["events"] == pytest.approx(100.0)
    assert parts["feedback"] == pytest.approx(50 + 10 * (2 - 1) - 15)
    weights = attrs.asdict(s.weights)
    total = sum(weights[k] * v for k, v in parts.items()) / sum(weights.values())
    assert breakdown(facts.signals, facts.now, s).total == pytest.approx(total)


@pytest.mark.parametrize(
    ("pos", "neg", "complaints", "expected"),
    [
        (0, 0, 0, 50),
        (5, 0, 0, 100),
        (9, 0, 0, 100),
        (0, 3, 0, 20),
        (0, 0, 4, 0),
        (2, 0, 1, 55),
    ],
)
def test_feedback_direction(pos, neg, complaints, expected):
    facts = patient(feedback_pos=pos, feedback_neg=neg, complaints=complaints)
    assert breakdown(facts.signals, facts.now, HospitalSettings()).parts["feedback"] == expected


def test_top_share_makes_the_top_20_percent_big():
    scheme = HospitalScheme(HospitalSettings())
    population = [patient(i, spend=1000.0 * (i + 1), visits=i) for i in range(10)]
    cutoffs = scheme.fit(population)
    tiers = [scheme.grade(f, cutoffs).value for f in population]
    assert tiers.count("big") == 2 and tiers[-2:] == ["big", "big"]
    assert scheme.grade(population[-1], cutoffs).reason.startswith("top 20% by value score")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 80_000), st.integers(0, 60), st.floats(0.1, 48)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 29),
    st.integers(1, 40_000),
    st.sampled_from(["top_share", "threshold"]),
)
def test_more_spend_never_lowers_a_hospital_tier(rows, pick, extra, rule):
    scheme = HospitalScheme(HospitalSettings(big_rule=rule))
    population = [
        patient(i, months=m, spend=float(s), visits=v) for i, (s, v, m) in enumerate(rows)
    ]
    who = pick % len(population)
    spend, visits, months = rows[who]
    before = scheme.grade(population[who], scheme.fit(population)).value
    population[who] = patient(who, months=months, spend=float(spend + extra), visits=visits)
    after = scheme.grade(population[who], scheme.fit(population)).value
    assert scheme.tiers.index(after) >= scheme.tiers.index(before)
