"""NPS arithmetic, table-driven at the category boundaries, plus properties for any input."""

import pytest
from crmcore import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from crmcore_nps.score import category, check_score, compute_nps, parse_score, satisfaction


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, "detractor"),
        (6, "detractor"),  # 6 is the highest detractor
        (7, "passive"),
        (8, "passive"),  # 7 and 8 are passives
        (9, "promoter"),
        (10, "promoter"),  # 9 is the lowest promoter
    ],
)
def test_category_boundaries(score, expected):
    assert category(score) == expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, 1),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (6, 3),
        (7, 4),
        (8, 4),
        (9, 5),
        (10, 5),
    ],
)
def test_satisfaction_on_the_core_scale(score, expected):
    assert satisfaction(score) == expected


@pytest.mark.parametrize(
    ("scores", "nps", "counts"),
    [
        ([], None, (0, 0, 0)),
        ([9], 100.0, (1, 0, 0)),
        ([6], -100.0, (0, 0, 1)),
        ([7, 8], 0.0, (0, 2, 0)),
        ([6, 7], -50.0, (0, 1, 1)),  # 6 counts against, 7 counts for nothing
        ([8, 9], 50.0, (1, 1, 0)),  # 8 counts for nothing, 9 counts for
        ([9, 10, 6, 7], 25.0, (2, 1, 1)),
        ([0, 6, 7, 8, 9, 10], 0.0, (2, 2, 2)),
        ([10, 10, 10, 5], 50.0, (3, 0, 1)),
    ],
)
def test_nps_is_percent_promoters_minus_percent_detractors(scores, nps, counts):
    result = compute_nps(scores)
    assert result.nps == nps
    assert (result.promoters, result.passives, result.detractors) == counts
    assert result.answers == len(scores)


@pytest.mark.parametrize(("scores", "text"), [([], "n/a"), ([9, 9, 6], "+33.3"), ([0], "-100.0")])
def test_text(scores, text):
    assert compute_nps(scores).text() == text


@pytest.mark.parametrize("bad", [-1, 11, 9.0, True, "9", None])
def test_scores_outside_0_to_10_are_refused(bad):
    with pytest.raises(ValidationError, match="score: expected a whole number from 0 to 10"):
        check_score(bad)
    with pytest.raises(ValidationError):
        compute_nps([9, bad])


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("10", 10), (" 7 ", 7), ("09", 9)])
def test_parse_score(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize("text", ["11", "-1", "ten", "", "9.5", "1_0", "+9", "100"])
def test_parse_score_refuses(text):
    with pytest.raises(ValidationError, match="score:"):
        parse_score(text)


@given(st.lists(st.integers(0, 10), max_size=200))
def test_nps_properties(scores):
    result = compute_nps(scores)
    assert result.answers == len(scores)
    if scores:
        assert -100 <= result.nps <= 100
        # adding a promoter never lowers the score, adding a detractor never raises it
        assert compute_nps([*scores, 10]).nps >= result.nps
        assert compute_nps([*scores, 0]).nps <= result.nps
        # the order of answers does not matter
        assert compute_nps(sorted(scores)).nps == result.nps
