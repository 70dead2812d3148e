"""What a grading scheme is, and how one is registered (conda's registration objects).

A plugin registers schemes by returning ``GradingScheme(name, factory)`` objects from the
``crm_grading_schemes`` hook. ``[grading] schemes`` chooses which registered schemes run; for
each, the factory is called once per open CRM with a ``SchemeContext`` and returns a ``Scheme``.

A ``Scheme`` grades one customer at a time from ``Facts`` (the customer's grading inputs and the
signals aggregated from their interactions). A scheme whose tiers are relative to the whole
population (quantiles, "the top 20%") sets ``population = True``: ``fit`` is then called over
every customer by ``crm grade all`` and the worker, and what it returns (JSON-compatible
cut-offs) is stored and handed back to ``grade`` — also between runs, when a single customer is
re-graded after an event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore_grading.settings import NAME

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_grading.settings import GradingSettings
    from crmcore_grading.signals import Signals


@attrs.frozen
class Grade:
    """A scheme's verdict: the grade or tier, and a one-line reason for people to read.

    Keep the reason free of anything that moves with the clock alone ("12 days ago"): a reason
    that changes is a change, and is written.
    """

    value: str
    reason: str


@attrs.frozen(slots=True)
class Facts:
    """What a scheme may look at for one customer, at the grading instant ``now``."""

    customer_id: str
    now: datetime
    today: date  # the grading day in the customer's time zone
    inputs: Mapping[str, Any]  # ext["grading"]["inputs"]: demand, expected_close, …
    signals: Signals  # aggregated from the customer's interactions
    open_complaints: int
    owner: str | None = None
    ext: Mapping[str, Any] = attrs.field(factory=dict)  # the customer's whole ext mapping


@attrs.frozen
class SchemeContext:
    """Handed to a scheme factory: the CRM, all ``[grading]`` settings and this scheme's
    own options table (``[grading.options.<name>]``, empty if absent)."""

    crm: CRM
    settings: GradingSettings
    options: Mapping[str, Any]


class Scheme:
    """Base class for grading schemes. Override ``grade``; population schemes also ``fit``."""

    #: The scheme's name (set from the registration).
    name: str = ""
    #: Every value ``grade`` can return. With ``ordered``, from the lowest to the highest.
    tiers: tuple[str, ...] = ()
    #: Whether ``tiers`` run from lowest to highest (value tiers) or are only names.
    ordered: bool = False
    #: Whether grading needs cut-offs computed over the whole population first.
    population: bool = False

    def fit(self, population: Sequence[Facts]) -> dict[str, Any]:
        """Cut-offs over every active customer (JSON-compatible). Population schemes only."""
        return {}

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        """The customer's grade, or None for "no grade" (e.g. nothing to judge by yet).

        ``cutoffs`` is what ``fit`` returned at the last population run (None for schemes that
        are not population-relative)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Text that changes when the scheme's configuration changes; stored cut-offs made
        under another configuration are not used."""
        return ""

    def next_change(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> date | None:
        """The first day (the customer's local day, as ``facts.today``) on which ``grade``
        could return something else with the same facts and cut-offs, the date alone moving
        on; None if never. The worker re-assesses a customer no later than that (and after
        any event). Early is safe, late is a bug. The default, the next day, re-assesses
        daily: override it in a scheme whose grade does not move with the date."""
        return facts.today + timedelta(days=1)

    def placement(self, facts: Facts, cutoffs: Mapping[str, Any]) -> Any:
        """Population schemes: what of ``cutoffs`` decides this customer's grade (compared
        under the last run's and the new cut-offs; customers whose placement is the same are
        not re-assessed for the cut-offs moving). The default is the grade itself; override it
        with something cheaper (scores, a tier's index)."""
        return self.grade(facts, cutoffs)

    def describe(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Details for ``crm grade show`` (scores and the like); optional."""
        return {}


@attrs.frozen
class GradingScheme:
    """Returned by ``crm_grading_schemes``: a scheme's name and the factory that builds it."""

    name: str
    factory: Callable[[SchemeContext], Scheme]
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME.match(self.name) or self.name == "churn":
            raise ValueError(
                f"{self.name!r} is not a usable scheme name (lower-case letters, "
                "digits, '_'; 'churn' is reserved)"
            )
        if not callable(self.factory):
            raise ValueError(f"scheme {self.name!r}: factory is not callable")
