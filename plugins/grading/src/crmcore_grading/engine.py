"""The grading engine: builds the configured schemes and grades customers.

One ``Engine`` per open CRM (built on first use). Three paths share ``Engine.assess``:

- events re-grade one customer (``regrade``), folding the new interaction into the signals
  stored on the customer, and placing them against the population cut-offs stored by the last
  population run; changes are applied as ``Effects`` through ``crm.apply``;
- ``grade_all`` re-grades everyone: it reads every customer, brings their signals up to date
  (see below), recomputes the population cut-offs and writes only the customers whose grading
  changed;
- the worker runs ``grade_all`` at most once per ``population_interval_hours``, under a lease
  on a singleton state record so that several workers never both run it.

Whom the worker's run assesses
------------------------------

Every run reads every customer and fits the cut-offs over all of them. ``crm grade all``
assesses everyone; the worker (``everyone=False``) assesses a customer only when their stored
``next`` day has come (``nextchange``), their signals are rebuilt (new interactions), an event
re-graded them (``regrade`` stores ``next`` = today), their record changed since the last run
(``updated_at``), or a population scheme's ``placement`` differs between the cut-offs the
stored grades reflect and the new ones. That needs the last run to have completed under the
same configuration: the watermark record keeps its instant (``run``, the population record's
``computed_at`` of that run), the cut-offs it placed customers against (``graded``) and a
fingerprint of what assessments depend on (``assessed``); otherwise everyone is assessed.

How ``grade_all`` brings signals up to date
-------------------------------------------

A *full rebuild* folds every interaction in one streaming pass (customers, then interactions)
and, when the pass completes, stores a watermark (state record ``watermark``): the highest
interaction id read and how many interactions there were, the highest customer id and how
many customer records (any status), how many carry ``merged_into``, a fingerprint of the
settings that shape signals (``[grading.signals]``, the churn windows, the stored format) and
the grading instant.

Otherwise the run is *incremental*: interactions are append-only in crmcore and their ids are
time-ordered, so the interactions added since the watermark are those with a higher id. They
are looked up through the ``kind, occurred_at`` index (those that occurred from
``LOOKBACK_DAYS`` before the last run on; an older ``occurred_at`` is back-dated logging) and,
if that does not account for every new interaction, with ``{"id": {"$gt": watermark}}``. The
customers they belong to, and customers with an id above the customer watermark (new since),
have their signals rebuilt from their own interactions (the ``customer_id`` index); the new
interactions are never folded onto the stored signals, which the event path may already have
folded them into. Everyone else keeps the stored signals, re-windowed to now (``rewindow``:
exact, since windows only move forward). Cut-offs and assessment are the same as a rebuild's,
and the watermark moves on.

Merges since the last run: a merge moves the duplicate's interactions to the kept customer in
place (no new ids) and turns the duplicate into a tombstone (``merged_into``, ``updated_at``
set). The plugin's merge handler rebuilds the kept customer at once, but a merge made without
the plugin loaded does not; so the customers that tombstones changed since
``MERGE_LOOKBACK_DAYS`` before the last run were merged into (followed along chains of merges
to the active one) have their signals rebuilt too.

The run is a full rebuild instead when ``rebuild=True`` is asked (``crm grade all
--rebuild``), or when the store shows something the watermark cannot account for:

- no watermark (never run, or the state collection lost);
- the signal settings' fingerprint differs;
- grading as of a UTC day before the last run's, or (with an explicit ``now``) before the
  clock's: signals stored since may have dropped day buckets that day still counts;
- customer records: count ≠ watermark count + records with a higher id (a customer imported
  with an old id, or one removed);
- fewer records carry ``merged_into`` than at the last run, or more carry it than there are
  tombstones changed (``updated_at``) since ``MERGE_LOOKBACK_DAYS`` before the last run (the
  merges since cannot be told apart);
- interactions: count ≠ watermark count + those with a higher id (one was deleted, or written
  with an id older than the watermark: ``import_raw``, a restore of single records, a clock
  set back in another process);
- more than ``REBUILD_MOST`` customers, and more than half of them, would need their signals
  rebuilt (one streaming pass is then cheaper than a query per customer).

What the counts cannot see: an interaction rewritten in place by something other than a merge
or a forget (the core has no interaction update; a forget only blanks the ``summary`` of an
erased customer), or a deletion exactly offset by an old-id insertion between two runs. A tool
that rewrites interactions directly in the store must ask for ``--rebuild``; so must anyone who
edits ``ext["grading"]["signals"]`` by hand, since an incremental run trusts them.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from crmcore import (
    ConfigError,
    ConflictError,
    Customer,
    DuplicateKeyError,
    Effects,
    ExtPatch,
    NotFoundError,
    PluginError,
    Priority,
    RecordWrite,
    StorageError,
    TaskDraft,
    TaskUpdate,
)
from crmcore.converter import iso, parse_iso
from crmcore.i18n import N_, joined, msg, restored, term
from crmcore.i18n import stored as stored_text
from crmcore.logs import get_logger
from crmcore.stash import StashKey
from crmcore.storage import batches
from crmcore_grading import churn as churn_rules
from crmcore_grading.dates import local_day
from crmcore_grading.nextchange import FAR, churn_next, utc_before
from crmcore_grading.records import HISTORY, POPULATION, SINCE, STATE, WATERMARK
from crmcore_grading.scheme import Facts, Grade, GradingScheme, Scheme, SchemeContext
from crmcore_grading.settings import GradingSettings, default_valuable
from crmcore_grading.signals import (
    Acc,
    Folder,
    Signals,
    Window,
    aggregate,
    canonical,
    rewindow,
)

if TYPE_CHECKING:
    from crmcore import CRM

T = TypeVar("T")
Wrap = Callable[[Iterable[Any], int | None, str], Iterable[Any]]

NAMESPACE = "grading"
CUSTOMERS = "customers"
INTERACTIONS = "interactions"
CUTOFF_CACHE_SECONDS = 60.0
LOOKBACK_DAYS = 7  # new interactions are first looked for among those that occurred since
# the last run less this (through the kind, occurred_at index); older ones mean a full id scan
MERGE_LOOKBACK_DAYS = 2  # tombstones changed since the last run less this are recent merges
# (the margin covers clocks of other processes running somewhat behind)
REBUILD_CHUNK = 8  # customers whose signals are rebuilt per query (customer_id $in)
REBUILD_MOST = 1000  # above this many, and half the customers, a full rebuild is cheaper
SIGNALS_FORMAT = 1  # bump when the stored form of signals changes: forces one full rebuild
NEXT_FORMAT = 1  # bump when what ``next`` means changes: the next run assesses everyone
_ENGINE: StashKey[Engine] = StashKey()  # one engine per CRM

log = get_logger("grading")


# -- plumbing --------------------------------------------------------------------------------


def engine_for(crm: CRM) -> Engine:
    """The engine of this CRM (built, and the configuration checked, on first use)."""
    return crm.stash.get_or_build(_ENGINE, lambda: Engine(crm))


def registry(crm: CRM) -> dict[str, tuple[str, GradingScheme]]:
    """Every registered scheme: name → (providing plugin, registration)."""
    found: dict[str, tuple[str, GradingScheme]] = {}
    for plugin, item in crm.plugins.crm_grading_schemes():
        if not isinstance(item, GradingScheme):
            raise PluginError(
                plugin, f"crm_grading_schemes returned {type(item).__name__}, not GradingScheme"
            )
        if item.name in found:
            first, second = sorted((found[item.name][0], plugin))
            raise PluginError(
                second,
                f"grading scheme {item.name!r} is provided by both "
                f"plugin {first!r} and plugin {second!r}; disable one of them",
            )
        found[item.name] = (plugin, item)
    return found


def _plain(items: Iterable[T], _total: int | None, _description: str) -> Iterable[T]:
    return items


def _merged_into(into: Mapping[str, str], cid: str) -> str:
    """Where the tombstone ``cid`` ended up: ``merged_into`` followed along a chain of merges."""
    seen = {cid}
    target = into[cid]
    while target in into and target not in seen:
        seen.add(target)
        target = into[target]
    return target


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


# -- outcomes --------------------------------------------------------------------------------


@attrs.frozen
class Change:
    """One scheme's grade changing."""

    scheme: str
    old: str | None
    new: str | None
    reason: str


@attrs.frozen
class Outcome:
    """The result of assessing one customer: what to write and what to announce."""

    customer_id: str
    facts: Facts
    grading: dict[str, Any]  # the new ext["grading"], complete
    patch: dict[str, Any]  # the top-level keys of ext["grading"] that differ from the stored
    changes: tuple[Change, ...]
    churn_old: str
    churn_new: churn_rules.ChurnRisk

    @property
    def churn_rose(self) -> bool:
        return churn_rules.rank(self.churn_new.level) > churn_rules.rank(self.churn_old)

    @property
    def churn_changed(self) -> bool:
        return self.churn_new.level != self.churn_old


_EMPTY: dict[str, Any] = {
    "grades": {},
    "reasons": {},
    "inputs": {},
    "open_complaints": [],
    "churn": {"level": "none", "reasons": []},
}


def _normal(key: str, value: Any) -> Any:
    if value is None:
        return _EMPTY.get(key)
    if key == "churn":
        return {"level": value.get("level", "none"), "reasons": list(value.get("reasons", []))}
    return value


def _patch(
    stored: Mapping[str, Any], grading: Mapping[str, Any], new: Mapping[str, Any], window: Window
) -> dict[str, Any]:
    """The top-level keys of ``new`` (ext["grading"] after an assessment) that differ from
    ``stored``; ``grading`` is ``stored`` with this operation's input changes applied."""
    patch: dict[str, Any] = {}
    signals = new["signals"]
    before = stored.get("signals")
    if before is not signals and before != signals and canonical(before, window) != signals:
        patch["signals"] = signals
    if new["grades"] != (stored.get("grades") or {}):
        patch["grades"] = new["grades"]
    if new["reasons"] != (stored.get("reasons") or {}):
        patch["reasons"] = new["reasons"]
    if _normal("churn", stored.get("churn")) != new["churn"]:
        patch["churn"] = new["churn"]
    if "next" in new:
        # A stored day no later than the new one stays (re-assessing early is safe): unless it
        # has come and keeping it would bring the customer back before the new day needs to.
        old, day = stored.get("next"), new["next"]
        if type(old) is not str or old > day or (old <= window.today and day > window.tomorrow):
            patch["next"] = day
    if grading is not stored:  # this operation changed inputs or open complaints
        for key, value in grading.items():
            if key not in patch and _normal(key, stored.get(key)) != _normal(key, value):
                patch[key] = value
    return patch


@attrs.frozen
class GradeAllReport:
    """What one ``grade_all`` run did."""

    customers: int
    interactions: int  # interactions in the store that the signals now reflect
    changed: int  # customers written
    grade_changes: int
    churn_rises: int
    retried: int  # customers re-graded one by one after a concurrent change
    seconds: float
    at: datetime
    full_rebuild: bool = True  # every interaction folded; False: incremental (module doc)
    rebuild_reason: str = ""  # why a full rebuild ran ("" when incremental)
    signals_rebuilt: int = 0  # customers whose signals were recomputed from interactions
    interactions_read: int = 0  # interaction documents read by this run
    assessed: int | None = None  # customers assessed (None: every one of them)

    @property
    def per_second(self) -> float:
        return self.customers / self.seconds if self.seconds > 0 else float("inf")


@attrs.frozen
class Watermark:
    """What the signals stored on customers reflect after a completed ``grade_all`` (the state
    record ``watermark``; see the module docstring)."""

    interaction: str  # the highest interaction id ("" for none)
    interactions: int  # interaction documents in the store
    customer: str  # the highest customer id ("" for none)
    customers: int  # customer documents, any status
    merged: int  # customer documents carrying merged_into
    signals: str  # fingerprint of the settings that shape signals
    at: str  # the grading instant (ISO, UTC)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Watermark | None:
        """The watermark in a stored record, or None if it is not a complete one."""
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            value = doc.get(field.name)
            want = int if field.type in ("int", int) else str
            if type(value) is not want:
                return None
            values[field.name] = value
        try:
            parse_iso(values["at"])
        except ValueError:
            return None
        return cls(**values)


@attrs.define
class _Census:
    """Counted while reading customers, for the watermark."""

    customers: int = 0
    top: str = ""
    merged: int = 0
    newer: int = 0  # customer ids above the stored watermark's
    merges: list[str] = attrs.field(factory=list)  # ids of tombstones changed recently
    into: dict[str, str] = attrs.field(factory=dict)  # every tombstone id -> merged_into

    def count(self, doc: Mapping[str, Any], above: str, recent: str | None) -> bool:
        """Count one customer record (any status); True if its id is above ``above`` (the
        watermark's). Tombstones changed since ``recent`` are recent merges (None: no
        watermark, none tracked)."""
        cid = doc["id"]
        self.customers += 1
        if cid > self.top:
            self.top = cid
        if doc.get("merged_into"):
            self.merged += 1
            self.into[cid] = doc["merged_into"]
            if recent is not None and str(doc.get("updated_at") or "") >= recent:
                self.merges.append(cid)
        if cid > above:
            self.newer += 1
            return True
        return False


@attrs.define(slots=True)
class Row:
    """One active customer through a population run (``Engine.grade_all``)."""

    id: str
    version: int
    timezone: str | None
    owner: str | None
    ext: dict[str, Any]
    grading: dict[str, Any]  # ext["grading"] as read
    updated_at: str
    signals: dict[str, Any] = attrs.field(factory=dict)  # brought up to date (phase 4)
    facts: Facts | None = None  # phase 4
    outcome: Outcome | None = None  # phase 6

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Row:
        ext = doc.get("ext") or {}
        return cls(
            doc["id"],
            doc["version"],
            doc.get("timezone"),
            doc.get("owner"),
            ext,
            ext.get(NAMESPACE) or {},
            str(doc.get("updated_at") or ""),
        )

    @property
    def assessed_facts(self) -> Facts:
        assert self.facts is not None, "facts are filled in before they are read"
        return self.facts

    @property
    def assessed_outcome(self) -> Outcome:
        assert self.outcome is not None, "rows are assessed before they are written"
        return self.outcome


@attrs.define
class _Run:
    """What one population run was asked to do."""

    actor: str
    when: datetime
    window: Window
    show: Wrap
    counted: bool  # progress is shown: count the collections first
    explicit: bool  # grading as of a given instant, not the clock's


@attrs.define
class _Plan:
    """Whose signals a population run rebuilds, and what it read of the interactions."""

    reason: str  # why everyone's are rebuilt ("" when incremental)
    rebuilt: set[str] | None  # None: everyone's (a full rebuild)
    top: str = ""  # the highest interaction id the signals reflect
    interactions: int = 0  # interactions in the store
    read: int = 0  # interaction documents read


@attrs.frozen
class _Prior:
    """What the stored assessments reflect (the last completed population run)."""

    graded: Mapping[str, Any]  # the cut-offs customers were placed against
    run: str  # that run's instant (ISO)
    rebuilt: Collection[str]  # customers whose signals this run rebuilds (new interactions)


@attrs.define
class _Tally:
    """What the writing phase did."""

    written: int = 0
    changes: int = 0
    rises: int = 0
    retried: int = 0

    def add(self, outcome: Outcome) -> None:
        self.written += 1
        self.changes += len(outcome.changes)
        self.rises += outcome.churn_rose


# -- the engine --------------------------------------------------------------------------------


class Engine:
    """Configured schemes, signal folding and the population state of one CRM."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.settings: GradingSettings = crm.settings("grading")
        self.registered = registry(crm)
        self._check_names()
        self.schemes: list[Scheme] = [self._build(name) for name in self.settings.schemes]
        self.by_name = {s.name: s for s in self.schemes}
        self._check_valuable()
        self.fingerprints = {
            s.name: hashlib.sha1(f"{s.name}:{s.fingerprint()}".encode()).hexdigest()[:16]
            for s in self.schemes
        }
        self.folder = Folder(self.settings.signals)
        c = self.settings.churn
        shape = {
            "format": SIGNALS_FORMAT,
            "signals": attrs.asdict(self.settings.signals),
            "spend_window_days": c.spend_window_days,
            "complaint_open_days": c.complaint_open_days,
        }
        self.signals_print = hashlib.sha1(json.dumps(shape, sort_keys=True).encode()).hexdigest()[
            :16
        ]
        self.tickets = crm.has_plugin("complaints")
        self.default_tz = crm.config.core.timezone
        # what the stored grades, churn levels and ``next`` days depend on besides the
        # customer: a change means the next population run assesses everyone
        assessed = {
            "format": NEXT_FORMAT,
            "schemes": [[s.name, self.fingerprints[s.name]] for s in self.schemes],
            "churn": attrs.asdict(c),
            "timezone": self.default_tz,
            "tickets": self.tickets,
        }
        self.assessed_print = hashlib.sha1(
            json.dumps(assessed, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        #: The worker's population run assesses only the customers whose assessment could
        #: have changed (module docstring); False assesses everyone on every run, as before.
        self.proportional = True
        self.last_run: GradeAllReport | None = None  # what the last grade_all did
        self.state = crm.collection(STATE)
        self.history = crm.collection(HISTORY)
        self._population: dict[str, Any] | None = None
        self._population_read_at: datetime | None = None
        self._since: str | None = None
        self._days: dict[Any, Any] = {}
        self.since(crm.now())

    # -- configuration checks that need the loaded plugins ---------------------------------

    def _check_names(self) -> None:
        known = ", ".join(sorted(self.registered)) or "none"
        for i, name in enumerate(self.settings.schemes):
            if name not in self.registered:
                raise ConfigError(
                    f"grading.schemes[{i}]: unknown grading scheme {name!r} (registered: {known})"
                )
        for name in self.settings.options:
            if name not in self.registered:
                raise ConfigError(
                    f"grading.options.{name}: no grading scheme {name!r} is "
                    f"registered (registered: {known})"
                )
        for setting, kinds in self.settings.signals.all_kinds().items():
            for i, kind in enumerate(kinds):
                if kind not in self.crm.interaction_kinds:
                    raise ConfigError(
                        f"grading.signals.{setting}[{i}]: unknown interaction "
                        f"kind {kind!r} (declared: "
                        f"{', '.join(sorted(self.crm.interaction_kinds))})"
                    )

    def _check_valuable(self) -> None:
        # The default map names the built-in schemes' default tiers; it is not an error for a
        # stack that renamed its tiers (their churn watch must then be configured to apply).
        explicit = self.settings.churn.valuable != default_valuable()
        for scheme, tiers in self.settings.churn.valuable.items():
            if scheme not in self.registered:
                raise ConfigError(
                    f"grading.churn.valuable.{scheme}: unknown grading scheme "
                    f"{scheme!r} (registered: "
                    f"{', '.join(sorted(self.registered))})"
                )
            built = self.by_name.get(scheme)
            if not explicit or built is None or not built.tiers:
                continue
            for i, tier in enumerate(tiers):
                if tier not in built.tiers:
                    raise ConfigError(
                        f"grading.churn.valuable.{scheme}[{i}]: {tier!r} is not "
                        f"a tier of scheme {scheme!r} (tiers: "
                        f"{', '.join(built.tiers)})"
                    )

    def _build(self, name: str) -> Scheme:
        plugin, registration = self.registered[name]
        context = SchemeContext(self.crm, self.settings, self.settings.options.get(name, {}))
        try:
            scheme = registration.factory(context)
        except (ConfigError, PluginError):
            raise
        except Exception as exc:
            raise PluginError(
                plugin, f"grading scheme {name!r} could not be built: {type(exc).__name__}: {exc}"
            ) from exc
        if not callable(getattr(scheme, "grade", None)):
            raise PluginError(
                plugin,
                f"grading scheme {name!r}: the factory returned "
                f"{type(scheme).__name__}, which has no grade() method",
            )
        scheme.name = name
        return scheme

    def plugin_of(self, scheme: str) -> str:
        return self.registered[scheme][0]

    # -- the population state and the store's start ----------------------------------------

    def window(self, now: datetime) -> Window:
        c = self.settings.churn
        return Window(now, c.spend_window_days, c.complaint_open_days)

    def since(self, now: datetime) -> str:
        """When grading first ran on this store (customers created since then have had every
        interaction folded as it was logged)."""
        if self._since is None:
            try:
                self._since = self.state.get(SINCE)["at"]
            except NotFoundError:
                try:
                    with self.crm.transaction("grading"):
                        self.state.insert({"id": SINCE, "at": iso(now)})
                    self._since = iso(now)
                except DuplicateKeyError:
                    self._since = self.state.get(SINCE)["at"]
        return self._since

    def population(self, now: datetime, *, fresh: bool = False) -> dict[str, Any]:
        """The stored population record ({} before the first run), cached for a minute."""
        read_at = self._population_read_at
        if (
            fresh
            or self._population is None
            or read_at is None
            or now < read_at
            or (now - read_at).total_seconds() > CUTOFF_CACHE_SECONDS
        ):
            try:
                self._population = self.state.get(POPULATION)
            except NotFoundError:
                self._population = {}
            self._population_read_at = now
        return self._population

    def cutoffs(self, now: datetime) -> dict[str, Any]:
        """Stored cut-offs of the running population schemes, where still valid (made under
        the current configuration of that scheme)."""
        record = self.population(now)
        stored = record.get("cutoffs") or {}
        prints = record.get("fingerprints") or {}
        return {
            name: stored[name]
            for name, s in self.by_name.items()
            if s.population and name in stored and prints.get(name) == self.fingerprints[name]
        }

    def store_population(self, cutoffs: Mapping[str, Any], now: datetime) -> None:
        """Save cut-offs of a population run and schedule the next run."""
        for name, value in cutoffs.items():
            if not _json_safe(value):
                raise PluginError(
                    self.plugin_of(name),
                    f"grading scheme {name!r}: fit() "
                    "returned cut-offs that are not JSON-compatible",
                )
        interval = timedelta(hours=self.settings.population_interval_hours)
        fields = {
            "cutoffs": dict(cutoffs),
            "fingerprints": {n: self.fingerprints[n] for n in cutoffs},
            "computed_at": iso(now),
            "next_run_at": iso(now + interval),
        }
        self._put_state(POPULATION, fields)
        self.population(now, fresh=True)

    def _put_state(self, id: str, fields: Mapping[str, Any]) -> None:
        """Create or overwrite the singleton state record ``id`` (optimistic, a few retries
        when another worker writes it at the same moment)."""
        for _attempt in range(5):
            try:
                current = self.state.get(id)
            except NotFoundError:
                try:
                    self.state.insert({"id": id, **fields})
                    return
                except DuplicateKeyError:
                    continue
            try:
                self.state.update(id, fields, expected_version=current["version"])
                return
            except ConflictError:
                continue
        raise ConflictError(f"grading.state {id}: kept changing underneath; retry")

    # -- assessing one customer ---------------------------------------------------------------

    def facts(
        self,
        customer_id: str,
        timezone: str | None,
        owner: str | None,
        ext: Mapping[str, Any],
        grading: Mapping[str, Any],
        signals: Mapping[str, Any],
        now: datetime,
        window: Window,
    ) -> Facts:
        sig = Signals(signals)
        if self.tickets:
            open_complaints = len(grading.get("open_complaints") or ())
        elif "complaint_days" in signals:
            open_complaints = sig.complaints_since(window.complaint_cut)
        else:
            open_complaints = 0
        days = self._days
        if days.get(None) != now:  # one cache of local days per grading instant
            days.clear()
            days[None] = now
        today = days.get(timezone)
        if today is None:
            today = days[timezone] = local_day(now, timezone, self.default_tz)
        return Facts(
            customer_id, now, today, grading.get("inputs") or {}, sig, open_complaints, owner, ext
        )

    def assess(
        self,
        facts: Facts,
        stored: Mapping[str, Any],
        grading: Mapping[str, Any],
        signals: dict[str, Any],
        cutoffs: Mapping[str, Any],
        window: Window,
        *,
        keep_unfitted: bool,
        plan_next: bool = False,
    ) -> Outcome:
        """Grade ``facts`` with every running scheme and the churn watch.

        ``stored`` is ext["grading"] as stored, ``grading`` the same with any input changes of
        this operation applied. Population schemes without valid cut-offs keep their stored
        grade when ``keep_unfitted`` (between population runs) and are skipped otherwise.
        ``plan_next``: also work out the day the assessment could next change (``next``).
        """
        grades, reasons = self._grade_schemes(facts, stored, cutoffs, keep_unfitted)
        risk = churn_rules.assess(facts, grades, self.settings.churn, window)
        churn = risk.stored()
        new = {**grading, "signals": signals, "grades": grades, "reasons": reasons, "churn": churn}
        if plan_next:
            new["next"] = self.next_day(facts, grades, signals, cutoffs)
        patch = _patch(stored, grading, new, window)
        old_churn = stored.get("churn")
        old_level = "none" if old_churn is None else old_churn.get("level", "none")
        return Outcome(
            facts.customer_id,
            facts,
            new,
            patch,
            self._changes(stored, grades, reasons),
            old_level,
            risk,
        )

    def next_day(
        self,
        facts: Facts,
        grades: Mapping[str, str],
        signals: Mapping[str, Any],
        cutoffs: Mapping[str, Any],
    ) -> str:
        """The UTC day (ISO) by which this customer must be assessed again if nothing happens
        to them and no cut-off moves across their values (``nextchange``); ``FAR`` for never."""
        days = []
        for scheme in self.schemes:
            if scheme.population and scheme.name not in cutoffs:
                continue
            local = scheme.next_change(facts, cutoffs.get(scheme.name))
            if local is not None:
                days.append(utc_before(local))
        churn_day = churn_next(
            signals,
            grades,
            facts.now,
            facts.open_complaints if self.tickets else None,
            self.settings.churn,
            self.window,
        )
        if churn_day is not None:
            days.append(churn_day)
        return min(days).isoformat() if days else FAR

    def _grade_schemes(
        self,
        facts: Facts,
        stored: Mapping[str, Any],
        cutoffs: Mapping[str, Any],
        keep_unfitted: bool,
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Every running scheme's grade and reason (see ``assess``)."""
        old_grades: Mapping[str, str] = stored.get("grades") or {}
        old_reasons: Mapping[str, Any] = stored.get("reasons") or {}
        grades: dict[str, str] = {}
        reasons: dict[str, Any] = {}  # as stored: text, or a message with its id
        for scheme in self.schemes:
            name = scheme.name
            if scheme.population and name not in cutoffs:
                if keep_unfitted and name in old_grades:
                    grades[name] = old_grades[name]
                    reasons[name] = old_reasons.get(name, "")
                continue
            result = scheme.grade(facts, cutoffs.get(name))
            if result is None:
                continue
            if (
                not isinstance(result, Grade)
                or not isinstance(result.value, str)
                or not result.value
                or not isinstance(result.reason, str)
            ):
                raise PluginError(
                    self.plugin_of(name),
                    f"grading scheme {name!r} returned "
                    f"{result!r}, not a Grade(value, reason) or None",
                )
            grades[name] = result.value
            reasons[name] = stored_text(result.reason)  # with its message id (docs/plugins.md)
        return grades, reasons

    def _changes(
        self, stored: Mapping[str, Any], grades: Mapping[str, str], reasons: Mapping[str, Any]
    ) -> tuple[Change, ...]:
        """The grade changes from ``stored``, in scheme order, then schemes that stopped."""
        old_grades: Mapping[str, str] = stored.get("grades") or {}
        if grades == old_grades:
            return ()
        changes = []
        for name in [*grades, *(n for n in old_grades if n not in grades)]:
            if old_grades.get(name) != grades.get(name):
                why = restored(reasons.get(name)) or (
                    msg("scheme %(scheme)s no longer runs", scheme=repr(name))
                    if name not in self.by_name
                    else term(N_("no grade"))
                )
                changes.append(Change(name, old_grades.get(name), grades.get(name), why))
        return tuple(changes)

    # -- turning outcomes into writes ------------------------------------------------------

    def history_docs(self, outcome: Outcome, actor: str, now: datetime) -> list[dict[str, Any]]:
        """History records (as stored documents) of an outcome's grade and churn changes."""
        at = iso(now)
        cid = outcome.customer_id
        docs = [
            {
                "id": self.crm.new_id("grh_"),
                "customer_id": cid,
                "scheme": c.scheme,
                "old": c.old,
                "new": c.new,
                "at": at,
                "reason": stored_text(c.reason),  # with its message id (docs/plugins.md)
                "actor": actor,
            }
            for c in outcome.changes
        ]
        if outcome.churn_changed:
            docs.append(
                {
                    "id": self.crm.new_id("grh_"),
                    "customer_id": cid,
                    "scheme": "churn",
                    "old": outcome.churn_old,
                    "new": outcome.churn_new.level,
                    "at": at,
                    "reason": stored_text(
                        joined(*outcome.churn_new.reasons)
                        if outcome.churn_new.reasons
                        else term(N_("no warning signs"))
                    ),
                    "actor": actor,
                }
            )
        return docs

    def retention(self, outcome: Outcome, now: datetime) -> Effects:
        """The retention task for a customer whose churn risk rose past the configured level."""
        c = self.settings.churn
        level = outcome.churn_new.level
        if (
            c.retention_task == "off"
            or not outcome.churn_rose
            or churn_rules.rank(level) < churn_rules.rank(c.retention_task)
        ):
            return Effects()
        key = f"retention:{outcome.customer_id}"
        priority = Priority.URGENT if level == "high" else Priority.HIGH
        due = now + timedelta(days=c.retention_due_days)
        watched = ", ".join(churn_rules.watched(outcome.grading["grades"], c))
        draft = TaskDraft(
            kind="retention",
            title=msg(
                "Retention: churn risk %(level)s (%(watched)s)", level=term(level), watched=watched
            ),
            due_at=due,
            customer_id=outcome.customer_id,
            assignee=outcome.facts.owner,
            priority=priority,
            dedupe_key=key,
            source="grading",
            notes="; ".join(outcome.churn_new.reasons),
        )
        if churn_rules.rank(outcome.churn_old) < churn_rules.rank(c.retention_task):
            return Effects(tasks=[draft])  # no retention task of ours can be open yet
        # escalate the open retention task, or create one (the draft is skipped if one is open)
        return Effects(
            tasks=[draft], task_updates=[TaskUpdate(dedupe_key=key, priority=priority, due_at=due)]
        )

    def announce(self, outcome: Outcome, actor: str, customer: Customer | None = None) -> None:
        """Fire ``crm_grade_changed`` per change and ``crm_churn_risk_changed`` on a rise."""
        crm = self.crm
        events = crm.events
        want_grades = bool(outcome.changes) and events.listened(events.grade_changed)
        want_churn = outcome.churn_rose and events.listened(events.churn_risk_changed)
        if not (want_grades or want_churn):
            return
        customer = customer or crm.customers.get_any(outcome.customer_id)
        if want_grades:
            for change in outcome.changes:
                events.grade_changed(
                    actor=actor,
                    customer=customer,
                    scheme=change.scheme,
                    old=change.old,
                    new=change.new,
                    reason=change.reason,
                )
        if want_churn:
            events.churn_risk_changed(
                actor=actor,
                customer=customer,
                old=outcome.churn_old,
                new=outcome.churn_new.level,
                reasons=list(outcome.churn_new.reasons),
            )

    # -- one customer ------------------------------------------------------------------------

    def rebuild_signals(self, customer_id: str, window: Window) -> Acc:
        """Fold every interaction of one customer (a query, not the whole collection)."""
        acc = Acc()
        for doc in self.crm.collection(INTERACTIONS).iter({"customer_id": customer_id}):
            acc.fold(doc, self.folder, window)
        return acc

    def regrade(
        self,
        customer_id: str,
        *,
        actor: str,
        now: datetime | None = None,
        fold: Mapping[str, Any] | None = None,
        rebuild: bool = False,
        changes: Mapping[str, Any] | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
        cutoffs: Mapping[str, Any] | None = None,
    ) -> Outcome | None:
        """Re-grade one customer now and apply what changed through ``crm.apply``.

        ``fold``: an interaction document to add to the stored signals (an event); ``rebuild``:
        recompute the signals from all the customer's interactions; ``changes``: ext["grading"]
        keys to set (new inputs); ``edit``: a function changing a copy of ext["grading"] (open
        complaints). Returns the outcome, or None for a customer who is not active.
        """
        crm = self.crm
        when = now or crm.now()
        window = self.window(when)
        try:
            doc = crm.collection(CUSTOMERS).get(customer_id)
        except NotFoundError:
            return None
        if doc.get("status", "active") != "active":
            return None
        ext = doc.get("ext") or {}
        stored = ext.get(NAMESPACE) or {}
        grading = {k: v for k, v in stored.items()}
        if changes:
            grading.update(changes)
        if edit is not None:
            edit(grading)
        kept = stored.get("signals")
        # remembered for ``regrade_again`` within the caller's transaction, unless the signals
        # were rebuilt from the interactions (which the customer's record does not show)
        remember = crm.in_transaction()
        if rebuild or (kept is None and doc.get("created_at", "") < self.since(when)):
            remember = False
            acc = self.rebuild_signals(customer_id, window)  # includes ``fold``: it is stored
        else:
            acc = Acc.from_stored(kept)
            if fold is not None:
                acc.fold(fold, self.folder, window)
        signals = acc.stored(window)
        facts = self.facts(
            customer_id, doc.get("timezone"), doc.get("owner"), ext, grading, signals, when, window
        )
        used = self.cutoffs(when) if cutoffs is None else cutoffs
        outcome = self.assess(
            facts,
            stored,
            grading,
            signals,
            used,
            window,
            keep_unfitted=True,
        )
        if not outcome.patch:
            if remember:
                self._regraded()[customer_id] = (doc, when, used)
            return outcome
        outcome.patch["next"] = window.today  # changed: the worker's next run assesses them
        effects = Effects.combine(
            [
                Effects(
                    ext=[ExtPatch(customer_id, NAMESPACE, outcome.patch)],
                    records=[
                        RecordWrite(HISTORY, d) for d in self.history_docs(outcome, actor, when)
                    ],
                ),
                self.retention(outcome, when),
            ]
        )
        with crm.transaction(actor):
            crm.apply(effects, actor=actor)
            self.announce(outcome, actor)
            if remember:
                # the customer as this transaction now sees it: ext patches are kept for its
                # end (``Customers.patch_ext``), merged into the namespace as below; an
                # announcement's reaction that changes the customer makes it differ
                seen_doc = {**doc, "ext": {**ext, NAMESPACE: {**stored, **outcome.patch}}}
                self._regraded()[customer_id] = (seen_doc, when, used)
        return outcome

    def regrade_again(self, customer_id: str, *, actor: str) -> Outcome | None:
        """A re-grade with nothing new to fold (a completed follow-up, DOMAIN §3), skipped
        (None) when this transaction has already re-graded the customer and nothing it
        reads has changed since: the customer as this transaction sees it (``ext`` patches
        kept for its end included), the population cut-offs given, the day (UTC and the
        customer's own). A completion logs a follow-up interaction whose re-grade comes
        first; the second would see what it saw."""
        seen = self._regraded()
        kept = seen.get(customer_id)
        if kept is not None:
            when = self.crm.now()
            with contextlib.suppress(NotFoundError):
                doc = self.crm.collection(CUSTOMERS).get(customer_id)
                if (
                    kept[0] == doc
                    and self._instant_key(kept[1], doc) == self._instant_key(when, doc)
                    and kept[2] == self.cutoffs(when)
                ):
                    return None
        return self.regrade(customer_id, actor=actor)

    def _regraded(self) -> dict[str, tuple[Mapping[str, Any], datetime, Any]]:
        """Customers re-graded in this thread's transaction: id -> (the customer as it was
        then, the instant graded, the cut-offs used). Dropped with any write to customers
        and at the transaction's end; outside a transaction, empty every time."""
        return self.crm.remembered(CUSTOMERS, ("grading", "regraded"), dict)

    def _instant_key(self, when: datetime, doc: Mapping[str, Any]) -> tuple[str, Any]:
        return (
            when.astimezone(UTC).date().isoformat(),
            local_day(when, doc.get("timezone"), self.default_tz),
        )

    # -- everyone ----------------------------------------------------------------------------

    def grade_all(
        self,
        *,
        actor: str,
        now: datetime | None = None,
        wrap: Wrap | None = None,
        rebuild: bool = False,
        everyone: bool = True,
    ) -> GradeAllReport:
        """Re-grade every active customer: incrementally from the last run's watermark where
        the store allows it, else (or with ``rebuild``) folding every interaction; see the
        module docstring. ``everyone=False`` (the worker) assesses only the customers whose
        assessment could have changed since the last run, where the last run allows it."""
        # The pass allocates millions of short-lived, acyclic dicts; the cyclic collector would
        # rescan the growing heap again and again for nothing. Reference counting frees them;
        # the collector is back on (if it was) as soon as the pass ends.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            report = self._grade_all(
                actor=actor, now=now, wrap=wrap, rebuild=rebuild, everyone=everyone
            )
            self.last_run = report
            return report
        finally:
            if was_enabled:
                gc.enable()

    # -- the watermark -----------------------------------------------------------------------

    def watermark(self) -> Watermark | None:
        """The stored watermark, if there is a complete one."""
        doc = self._watermark_doc()
        return None if doc is None else Watermark.from_doc(doc)

    def _watermark_doc(self) -> dict[str, Any] | None:
        try:
            return self.state.get(WATERMARK)
        except NotFoundError:
            return None

    def _store_watermark(self, mark: Watermark, extra: Mapping[str, Any]) -> None:
        self._put_state(WATERMARK, {**attrs.asdict(mark), **extra})

    def _stale(
        self, mark: Watermark | None, census: _Census, window: Window, explicit: bool
    ) -> str:
        """Why the stored signals cannot be continued from ``mark`` ("" if they can)."""
        if mark is None:
            return "no earlier run to continue from"
        if mark.signals != self.signals_print:
            return "the settings that shape signals changed"
        if window.today < mark.at[:10]:
            return "grading as of a day before the last run"
        if explicit and window.today < self.crm.now().astimezone(UTC).date().isoformat():
            return "grading as of a day before the clock's"
        if census.customers != mark.customers + census.newer:
            return "customer records were removed, or added with old ids"
        if census.merged < mark.merged:
            return "fewer customers carry merged_into than at the last run"
        if census.merged - mark.merged > len(census.merges):
            return "customers were merged and the merges since the last run cannot be told apart"
        return ""

    def _new_interactions(
        self, mark: Watermark, show: Wrap
    ) -> tuple[set[str] | None, str, int, int]:
        """Interactions added since ``mark``: (their customers' ids, the highest id,
        interactions in the store, documents read); customers None if the count does not add
        up (something other than additions changed the collection)."""
        coll = self.crm.collection(INTERACTIONS)
        after = {"$gt": mark.interaction}
        since = iso(parse_iso(mark.at) - timedelta(days=LOOKBACK_DAYS))
        kinds = sorted(self.crm.interaction_kinds)
        read = total = 0
        # recent ones through the kind, occurred_at index; then, if back-dated ones were
        # missed, every id above the watermark (a scan where ids are not indexed)
        for query in (
            {"id": after, "kind": {"$in": kinds}, "occurred_at": {"$gte": since}},
            {"id": after},
        ):
            touched: set[str] = set()
            top = mark.interaction
            found = 0
            for doc in show(coll.iter(query), None, "reading new interactions"):
                found += 1
                touched.add(doc["customer_id"])
                if doc["id"] > top:
                    top = doc["id"]
            read += found
            total = coll.count()
            if total == mark.interactions + found:
                return touched, top, total, read
        return None, mark.interaction, total, read

    def _rebuild(self, ids: list[str], window: Window, show: Wrap) -> tuple[dict[str, Acc], int]:
        """Signals of these customers from their own interactions, a chunk per query."""
        coll = self.crm.collection(INTERACTIONS)
        accs: dict[str, Acc] = {}
        read = 0
        chunks = list(batches(ids, REBUILD_CHUNK))
        for chunk in show(chunks, len(chunks), "rebuilding signals"):
            part, n = aggregate(coll.iter({"customer_id": {"$in": chunk}}), self.folder, window)
            accs.update(part)
            read += n
        return accs, read

    # -- everyone, in phases over a typed row -------------------------------------------------

    def _grade_all(
        self,
        *,
        actor: str,
        now: datetime | None,
        wrap: Wrap | None,
        rebuild: bool,
        everyone: bool,
    ) -> GradeAllReport:
        started = time.perf_counter()
        when = now or self.crm.now()
        run = _Run(
            actor, when, self.window(when), wrap or _plain, wrap is not None, now is not None
        )
        doc = None if rebuild else self._watermark_doc()
        mark = None if doc is None else Watermark.from_doc(doc)
        rows, census, newer = self._read_customers(run, mark)
        plan = self._plan(run, mark, census, rows, newer, rebuild)
        prior = None if everyone else self._prior(run, doc, plan)
        accs = self._gather_signals(run, plan, rows)
        self._fill_rows(run, rows, accs, plan.rebuilt)
        del accs
        customers = len(rows)
        cutoffs = self._fit(run, rows.values())
        pending, assessed = self._assess_rows(
            run, rows.values(), cutoffs, self._due(run, plan, prior, cutoffs)
        )
        rows.clear()  # only the customers to write are kept from here on
        tally = self._write_rows(run, pending, cutoffs)
        del pending
        self._finish(run, mark, census, plan, cutoffs)
        report = GradeAllReport(
            customers,
            plan.interactions,
            tally.written,
            tally.changes,
            tally.rises,
            tally.retried,
            time.perf_counter() - started,
            run.when,
            full_rebuild=plan.rebuilt is None,
            rebuild_reason=plan.reason,
            signals_rebuilt=customers if plan.rebuilt is None else len(plan.rebuilt),
            interactions_read=plan.read,
            assessed=assessed,
        )
        log.info(
            "graded everyone",
            customers=report.customers,
            written=tally.written,
            assessed=assessed,
            full_rebuild=report.full_rebuild,
            signals_rebuilt=report.signals_rebuilt,
            seconds=round(report.seconds, 3),
        )
        return report

    def _read_customers(
        self, run: _Run, mark: Watermark | None
    ) -> tuple[dict[str, Row], _Census, list[str]]:
        """Phase 1: every customer record (any status) counted for the watermark; a row for
        each active one; the active ones added since the watermark."""
        customers = self.crm.collection(CUSTOMERS)
        census = _Census()
        above = mark.customer if mark is not None else "\uffff"  # no watermark: none newer
        recent = (
            None if mark is None else iso(parse_iso(mark.at) - timedelta(days=MERGE_LOOKBACK_DAYS))
        )
        rows: dict[str, Row] = {}
        newer: list[str] = []
        total = customers.count() if run.counted else None
        for doc in run.show(customers.iter(), total, "reading customers"):
            is_newer = census.count(doc, above, recent)
            if doc.get("status", "active") != "active":
                continue
            row = Row.of(doc)
            rows[row.id] = row
            if is_newer:
                newer.append(row.id)
        return rows, census, newer

    def _plan(
        self,
        run: _Run,
        mark: Watermark | None,
        census: _Census,
        rows: Mapping[str, Row],
        newer: list[str],
        rebuild: bool,
    ) -> _Plan:
        """Phase 2: whose signals to rebuild (None: everyone's, a full rebuild) and why."""
        reason = "asked for" if rebuild else self._stale(mark, census, run.window, run.explicit)
        if reason or mark is None:  # (no watermark is a reason: _stale says so)
            return _Plan(reason, None)
        touched, top, interactions, probed = self._new_interactions(mark, run.show)
        if touched is None:
            return _Plan(
                "interactions were removed, or added with ids older than the last run's",
                None,
                read=probed,
            )
        # customers added since the last run: nothing vouches for their stored signals;
        # customers merged into: they hold the duplicates' interactions now
        kept = {_merged_into(census.into, cid) for cid in census.merges}
        rebuilt = {cid for cid in touched.union(kept) if cid in rows}.union(newer)
        if len(rebuilt) > REBUILD_MOST and 2 * len(rebuilt) > len(rows):
            # one streaming pass is cheaper than a query per customer
            return _Plan(
                "more than half of the customers' signals need rebuilding", None, read=probed
            )
        return _Plan("", rebuilt, top, interactions, probed)

    def _gather_signals(self, run: _Run, plan: _Plan, rows: Mapping[str, Row]) -> dict[str, Acc]:
        """Phase 3: fold the interactions of the customers ``plan`` rebuilds (all of them in
        one streaming pass for a full rebuild); counts what was read into ``plan``."""
        if plan.rebuilt is not None:
            accs, read = self._rebuild(sorted(plan.rebuilt), run.window, run.show)
            plan.read += read
            return accs
        interactions = self.crm.collection(INTERACTIONS)
        total = interactions.count() if run.counted else None
        last: list[str] = []
        accs, read = aggregate(
            run.show(interactions.iter(), total, "reading interactions"),
            self.folder,
            run.window,
            rows,
            last=last,
        )
        plan.interactions = read
        plan.read += read
        plan.top = last[0] if last else ""
        log.info("grading: full rebuild", reason=plan.reason)
        return accs

    def _fill_rows(
        self, run: _Run, rows: Mapping[str, Row], accs: Mapping[str, Acc], rebuilt: set[str] | None
    ) -> None:
        """Phase 4: each row's signals (rebuilt, or the stored ones re-windowed) and facts."""
        for cid, row in rows.items():
            if rebuilt is None or cid in rebuilt:
                acc = accs.get(cid)
                row.signals = acc.stored(run.window) if acc is not None else {}
            else:
                row.signals = rewindow(row.grading.get("signals"), run.window)
            row.facts = self.facts(
                cid,
                row.timezone,
                row.owner,
                row.ext,
                row.grading,
                row.signals,
                run.when,
                run.window,
            )

    def _fit(self, run: _Run, rows: Iterable[Row]) -> dict[str, Any]:
        """Phase 5: the population schemes' cut-offs, stored with the next run's date."""
        population = [row.assessed_facts for row in rows]
        cutoffs = {s.name: s.fit(population) for s in self.schemes if s.population}
        del population
        with self.crm.transaction(run.actor):
            self.store_population(cutoffs, run.when)
        return cutoffs

    def _prior(self, run: _Run, doc: Mapping[str, Any] | None, plan: _Plan) -> _Prior | None:
        """What the stored assessments reflect, if a run may assess only the customers whose
        assessment could have changed since (None: everyone is assessed): the last run
        completed (its population record is the one the watermark names), under the same
        configuration, with cut-offs for every running population scheme, and the signals are
        continued rather than rebuilt."""
        if doc is None or plan.rebuilt is None or doc.get("assessed") != self.assessed_print:
            return None
        graded, last = doc.get("graded"), doc.get("run")
        if not isinstance(graded, dict) or not isinstance(last, str):
            return None
        if self.population(run.when, fresh=True).get("computed_at") != last:
            return None  # a run stopped after storing its cut-offs: they cannot be trusted
        if any(s.population and s.name not in graded for s in self.schemes):
            return None
        return _Prior(graded, last, plan.rebuilt)

    def _due(
        self, run: _Run, plan: _Plan, prior: _Prior | None, cutoffs: Mapping[str, Any]
    ) -> Callable[[Row], bool] | None:
        """Which rows phase 6 assesses (None: every one)."""
        if prior is None:
            return None
        today = run.window.today
        moved = [
            (s, prior.graded[s.name], cutoffs[s.name])
            for s in self.schemes
            if s.population and s.name in cutoffs and cutoffs[s.name] != prior.graded[s.name]
        ]
        rebuilt, last = prior.rebuilt, prior.run

        def due(row: Row) -> bool:
            when = row.grading.get("next")
            if type(when) is not str or when <= today or row.id in rebuilt:
                return True  # time has come, never planned, or new interactions
            if row.updated_at > last:
                return True  # changed since the last run (reactivated, a new time zone …)
            facts = row.assessed_facts
            return any(s.placement(facts, old) != s.placement(facts, new) for s, old, new in moved)

        return due

    def _assess_rows(
        self,
        run: _Run,
        rows: Collection[Row],
        cutoffs: Mapping[str, Any],
        due: Callable[[Row], bool] | None,
    ) -> tuple[list[Row], int]:
        """Phase 6: assess every row (or those ``due``); the rows whose stored grading changes,
        and how many were assessed."""
        pending = []
        assessed = 0
        for row in run.show(rows, len(rows), "grading"):
            if due is not None and not due(row):
                continue
            assessed += 1
            row.outcome = self.assess(
                row.assessed_facts,
                row.grading,
                row.grading,
                row.signals,
                cutoffs,
                run.window,
                keep_unfitted=False,
                plan_next=True,
            )
            if row.outcome.patch:
                pending.append(row)
        return pending, assessed

    def _write_rows(self, run: _Run, pending: list[Row], cutoffs: Mapping[str, Any]) -> _Tally:
        """Phase 7: write the changed rows a batch per transaction, with their history,
        retention tasks and events."""
        tally = _Tally()
        for chunk in batches(pending, self.settings.write_batch):
            with self.crm.transaction(run.actor):
                done = [
                    outcome
                    for row in chunk
                    if (outcome := self._write_row(run, row, cutoffs, tally)) is not None
                ]
                history = [
                    d for outcome in done for d in self.history_docs(outcome, run.actor, run.when)
                ]
                if history:
                    result = self.history.insert_many(history)
                    if not result.ok:
                        raise StorageError(f"{HISTORY}: {result.errors[0].message}")
                for outcome in done:
                    extra = self.retention(outcome, run.when)
                    if extra:
                        self.crm.apply(extra, actor=run.actor)
                    self.announce(outcome, run.actor)
        return tally

    def _write_row(
        self, run: _Run, row: Row, cutoffs: Mapping[str, Any], tally: _Tally
    ) -> Outcome | None:
        """One changed row, if its version still holds (its outcome, whose history, task and
        events follow); else it is re-graded on its own (None)."""
        outcome = row.assessed_outcome
        new_ext = {**row.ext, NAMESPACE: {**row.grading, **outcome.patch}}
        try:
            self.crm.collection(CUSTOMERS).update(
                row.id, {"ext": new_ext}, expected_version=row.version
            )
        except ConflictError:  # changed since we read it: do this one carefully
            tally.retried += 1
            again = self.regrade(
                row.id, actor=run.actor, now=run.when, rebuild=True, cutoffs=cutoffs
            )
            if again is not None and again.patch:
                tally.add(again)
            return None
        except NotFoundError:
            return None
        tally.add(outcome)
        return outcome

    def _finish(
        self,
        run: _Run,
        mark: Watermark | None,
        census: _Census,
        plan: _Plan,
        cutoffs: Mapping[str, Any],
    ) -> None:
        """Phase 8: store the watermark of what the signals now reflect, with what the stored
        assessments reflect (the configuration, the cut-offs, this run's instant)."""
        at = iso(run.when)
        if mark is not None and not plan.reason and mark.at > at:
            at = mark.at  # the same day (checked): keep the later instant
        with self.crm.transaction(run.actor):
            self._store_watermark(
                Watermark(
                    plan.top,
                    plan.interactions,
                    census.top,
                    census.customers,
                    census.merged,
                    self.signals_print,
                    at,
                ),
                {"assessed": self.assessed_print, "graded": dict(cutoffs), "run": iso(run.when)},
            )

    # -- the worker ----------------------------------------------------------------------------

    def tick(self, now: datetime, worker: str) -> GradeAllReport | None:
        """Run the population re-grade if it is due and no other worker holds it."""
        actor = f"worker:{worker}"
        with self.crm.transaction(actor):
            if not self._claim_run(now, worker):
                return None
        try:
            return self.grade_all(actor=actor, now=now, everyone=not self.proportional)
        finally:
            with self.crm.transaction(actor):
                self.state.release(POPULATION, owner=worker)

    def _claim_run(self, now: datetime, worker: str) -> bool:
        lease = timedelta(minutes=self.settings.population_lease_minutes)
        due = {"id": POPULATION, "next_run_at": {"$lte": iso(now)}}
        claimed = self.state.claim(due, owner=worker, until=now + lease, now=now)
        if claimed is None:
            try:
                self.state.get(POPULATION)
                return False  # not due, or another worker is running it
            except NotFoundError:
                with contextlib.suppress(DuplicateKeyError):
                    self.state.insert({"id": POPULATION, "next_run_at": ""})
            claimed = self.state.claim(due, owner=worker, until=now + lease, now=now)
            if claimed is None:
                return False
        interval = timedelta(hours=self.settings.population_interval_hours)
        try:  # claim the run itself, so a lease that lapses mid-run does not start another
            self.state.update(
                POPULATION,
                {"next_run_at": iso(now + interval)},
                expected_version=claimed["version"],
            )
        except ConflictError:
            return False
        return True
