"""Net Promoter Score arithmetic: no storage, no clock, just numbers."""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs
from crmcore import ValidationError

PROMOTER_MIN = 9  # 9-10: promoters
DETRACTOR_MAX = 6  # 0-6: detractors; 7-8: passives
# The core's satisfaction scale is 1-5: 0-2 → 1, 3-4 → 2, 5-6 → 3, 7-8 → 4, 9-10 → 5.
SATISFACTION = (1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5)


def check_score(value: object) -> int:
    """``value`` if it is a whole number from 0 to 10; else a ``ValidationError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ValidationError(f"expected a whole number from 0 to 10, got {value!r}", field="score")
    return value


def parse_score(text: str) -> int:
    """A score typed by a person (``"9"``); anything but 0-10 is a ``ValidationError``."""
    if not re.fullmatch(r"\s*\d{1,2}\s*", text):
        raise ValidationError(f"expected a whole number from 0 to 10, got {text!r}", field="score")
    return check_score(int(text))


def category(score: int) -> str:
    """``"promoter"`` (9-10), ``"passive"`` (7-8) or ``"detractor"`` (0-6)."""
    if check_score(score) >= PROMOTER_MIN:
        return "promoter"
    return "detractor" if score <= DETRACTOR_MAX else "passive"


def satisfaction(score: int) -> int:
    """The answer on the core's 1-5 satisfaction scale."""
    return SATISFACTION[check_score(score)]


@attrs.frozen
class NpsResult:
    """Counts per category and the score they give."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def answers(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters - % detractors, from -100 to +100; None without answers."""
        if not self.answers:
            return None
        return 100 * (self.promoters - self.detractors) / self.answers

    def text(self) -> str:
        """The score for people: ``+25.0``, or ``n/a`` without answers."""
        return "n/a" if self.nps is None else f"{self.nps:+.1f}"


def compute_nps(scores: Iterable[int]) -> NpsResult:
    """Count ``scores`` by category."""
    counts = {"promoter": 0, "passive": 0, "detractor": 0}
    for score in scores:
        counts[category(score)] += 1
    return NpsResult(counts["promoter"], counts["passive"], counts["detractor"])
