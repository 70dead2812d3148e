"""Issue 23 item 4: the batch replay hook (``crm_interactions_replayed``) gives the store the
per-row replay gives, record by record, on randomized retail histories (tier crossings both
ways, referrals and their caps, refunds, flat-point kinds, praise, complaints, callbacks and
follow-ups, events on the same day and at the same second, recent events that create work,
several customers per batch)."""

from __future__ import annotations

import random
import re
import shutil
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from crmcore import Effects, hookimpl
from crmcore.audit import AUDIT
from crmcore.clock import ManualClock
from crmcore.history import HistoryRow, replay
from crmcore.testing.factories import make_test_crm

RETAIL_PLUGINS = ["grading", "followup", "complaints", "loyalty"]
START = datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
#: ids drawn by ``crm.new_id`` (time-ordered, with random bits): equal records made by the
#: two paths carry different ones. Interaction and customer ids are not among them (the rows'
#: ids derive from the rows, the customers are copied).
RANDOM_ID = re.compile(r"\b(lpe|grh|tsk|lcd|red|tkt|trc)_[0-9A-Z]{26}\b")


def open_retail(folder: Path, clock: ManualClock, extra=()):
    profile = tomllib.loads(
        (resources.files("crmcore") / "profiles" / "retail.toml").read_text("utf-8")
    )
    settings = {k: v for k, v in profile.items() if k not in ("core", "storage", "plugins")}
    settings["loyalty"] = {
        **settings.get("loyalty", {}),
        # small thresholds and a short window: tiers cross up and down within the history
        "tiers": {"window_days": 120, "review_days": 90, "levels": LEVELS},
        "referral": {**settings["loyalty"]["referral"], "max_rewards_per_period": 2},
    }
    return make_test_crm(
        [*RETAIL_PLUGINS, "storage_tinydb", *extra],
        settings=settings,
        core=profile["core"],
        storage={"backend": "tinydb", "location": str(folder)},
        clock=clock,
    )


LEVELS = [
    {"name": "silver", "threshold": 300, "multiplier": 1.1, "perks": ["exclusive_offers"]},
    {"name": "gold", "threshold": 900, "multiplier": 1.25, "perks": ["priority_handling"]},
    {
        "name": "platinum",
        "threshold": 2000,
        "multiplier": 1.5,
        "perks": ["dedicated_rep", "member_events"],
    },
]


def build_base(folder: Path, seed: int) -> list[HistoryRow]:
    """Customers (some referred by others) in a store at ``folder``; the history rows."""
    rng = random.Random(seed)
    clock = ManualClock(START)
    crm = open_retail(folder, clock)
    from crmcore_loyalty.api import Loyalty  # the test drives loyalty's own API

    ids = [
        crm.customers.add(actor="ann", name=f"C{n}", owner="ann", phone=f"+8613900000{n:03d}").id
        for n in range(16)
    ]
    referrals = Loyalty.of(crm).referrals
    for referred, referrer in ((1, 0), (2, 0), (3, 0), (5, 4)):  # 0 hits the reward cap
        referrals.link(ids[referred], referrals.code_of(ids[referrer]) or "", actor="ann")
    crm.close()
    rows: list[HistoryRow] = []
    line = 2
    for n, cid in enumerate(ids):
        shopper = n >= 9  # only old purchases, events and visits: folded customers
        purchases: list[str] = []
        at = START + timedelta(days=rng.randrange(1, 20), seconds=rng.randrange(86400))
        for _ in range(rng.randrange(3, 12)):
            kind = rng.choices(
                [
                    "purchase",
                    "refund",
                    "event",
                    "survey",
                    "visit",
                    "consultation",
                    "complaint",
                    "callback",
                    "follow_up",
                ],
                [10, 2, 1, 1, 2, 1, 1, 1, 1] if not shopper else [10, 0, 1, 1, 2, 1, 0, 0, 0],
            )[0]
            fields: dict[str, Any] = {"kind": kind, "occurred_at": at}
            if kind == "purchase":
                fields["amount"] = round(rng.uniform(20, 900), 2)
            elif kind == "refund":
                if not purchases:
                    continue
                fields["ref"] = rng.choice(purchases)
                if rng.random() < 0.6:
                    fields["amount"] = round(rng.uniform(5, 100), 2)
            elif kind in ("visit", "callback"):
                fields["satisfaction"] = rng.randrange(1, 6)
            elif kind == "complaint":
                fields["summary"] = "the parcel came late"
            rows.append(HistoryRow(line, cid, fields, key=f"k{line}"))
            line += 1
            if kind == "purchase":
                purchases.append(rows[-1].key or "")
            step = rng.choice([0, 0, 3600, 86400 * rng.randrange(1, 90)])  # same second, day
            at += timedelta(seconds=step)
            latest = NOW - timedelta(hours=rng.randrange(1, 30), days=400 if shopper else 0)
            at = min(at, latest)  # some are recent
    return _refs_to_ids(rows)


def _refs_to_ids(rows: list[HistoryRow]) -> list[HistoryRow]:
    """A refund's ``ref`` names its purchase's interaction id (derived from the row key)."""
    from crmcore.history import row_ids

    by_key = dict(zip((r.key for r in rows), row_ids(rows), strict=True))
    out = []
    for row in rows:
        fields = dict(row.fields)
        if "ref" in fields:
            fields["ref"] = by_key[fields["ref"]]
        out.append(HistoryRow(row.line, row.customer_id, fields, key=row.key))
    return out


def dump(crm) -> dict[str, list[str]]:
    """Every record of every collection but the audit trail, comparable across the paths.

    Left out, and why: ``version`` (it counts writes; the fold writes a record once where the
    per-row path writes it per event), the ids in ``RANDOM_ID`` (random bits; a ledger entry
    named by another record, a lot or a pending batch, is named by its unique ``key``), and
    the audit trail (one entry per write, so fewer for the fold: that is the point of it).
    """
    import orjson

    names = {s.name for s in crm.collection_specs()} | {"customers", "interactions", "tasks"}
    entry_keys = {d["id"]: d["key"] for d in crm.collection("loyalty.ledger").find()}
    for _ in range(3):  # a clawback's key names the lot it takes from by id: by key instead
        known = dict(entry_keys)
        entry_keys = {
            i: RANDOM_ID.sub(lambda m, known=known: known.get(m[0], m[0]), k)
            for i, k in known.items()
        }

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if k != "version"}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, str):  # ids inside a value too (a clawback's source names its lot)
            return RANDOM_ID.sub(
                lambda m: "entry:" + entry_keys[m[0]] if m[0] in entry_keys else m[1] + "_*", value
            )
        return value

    out = {}
    for name in sorted(names):
        if name.startswith("audit") or name.startswith("core.") or name == "loyalty.totals":
            continue  # loyalty.totals: the earlier stores' spend totals, no longer written
        docs = [norm(d) for d in crm.collection(name).find()]
        if name == "loyalty.accounts":  # the spend totals: a cache, compared by what it
            # answers (spend_answers); the batch leaves them to the customer's next purchase
            docs = [{k: v for k, v in d.items() if not k.startswith("spend_")} for d in docs]
        out[name] = sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode() for d in docs)
    return out


def spend_answers(crm) -> dict[tuple[str, int], float]:
    """Each customer's spend over several windows ending now, as tier evaluation asks it."""
    from crmcore_loyalty.api import Loyalty

    totals = Loyalty.of(crm).totals
    return {
        (c.id, days): round(totals.spend(c.id, NOW - timedelta(days=days), NOW), 2)
        for c in crm.customers.iter()
        for days in (30, 180, 365, 3650)
    }


def run(folder: Path, rows: list[HistoryRow], *, fold: bool, batch_size: int, extra=()):
    clock = ManualClock(NOW)
    crm = open_retail(folder, clock, extra)
    result = replay(crm, rows, actor="import", batch_size=batch_size, fold=fold)
    assert result.errors == () and len(result.ids) == len(rows)
    return crm


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_batch_path_leaves_the_store_the_per_row_path_leaves(tmp_path, seed):
    rows = build_base(tmp_path / "base", seed)
    shutil.copytree(tmp_path / "base", tmp_path / "per_row")
    shutil.copytree(tmp_path / "base", tmp_path / "batch")
    per_row_crm = run(tmp_path / "per_row", rows, fold=False, batch_size=1)
    batch_crm = run(tmp_path / "batch", rows, fold=True, batch_size=25)
    per_row, batch = dump(per_row_crm), dump(batch_crm)
    for name in per_row:
        assert batch[name] == per_row[name], name
    # loyalty's spend totals are a running sum over each customer's purchases that tier
    # evaluation reads: the per-row path adds to it purchase by purchase, the batch path
    # counts its rows in an existing one and leaves a missing one to be built from the
    # stored history on first use; both answer alike
    assert spend_answers(batch_crm) == spend_answers(per_row_crm)
    # the folds did fold: fewer audited writes for the same result
    writes = [c.store.collection(AUDIT).count() for c in (per_row_crm, batch_crm)]
    assert writes[1] < writes[0]
    # the histories cross tiers, reward referrals and create work for the recent events
    assert any('"tier":"' in d for d in per_row["loyalty.accounts"])
    assert any('"status":"rewarded"' in d for d in per_row["loyalty.referrals"])
    assert any('"reason":"referral_referrer"' in d for d in per_row["loyalty.ledger"])
    assert any('"kind":"clawback"' in d for d in per_row["loyalty.ledger"])
    assert per_row["tasks"], "recent events create work in both paths"


def test_the_batch_path_grades_with_the_population_cut_offs_the_per_row_path_reads(tmp_path):
    """Population schemes (RFM, pyramid) grade against the stored cut-offs, which the fold
    reads once per batch and ``regrade`` per event: the same once a population run stored
    some."""
    from crmcore_grading.api import grade_all
    from crmcore_grading.engine import engine_for

    rows = sorted(build_base(tmp_path / "base", 5), key=lambda r: r.fields["occurred_at"])
    half = len(rows) // 2
    dumps = []
    for name, fold in (("per_row", False), ("batch", True)):
        shutil.copytree(tmp_path / "base", tmp_path / name)
        crm = open_retail(tmp_path / name, ManualClock(NOW))
        assert replay(crm, rows[:half], actor="import", batch_size=1, fold=False).errors == ()
        grade_all(crm, actor="ann")
        assert engine_for(crm).cutoffs(NOW), "the population run stored cut-offs"
        result = replay(crm, rows[half:], actor="import", batch_size=25, fold=fold)
        assert result.errors == () and len(result.ids) == len(rows) - half
        dumps.append(dump(crm))
    per_row, batch = dumps
    for name in per_row:
        assert batch[name] == per_row[name], name


class PerRowOnly:
    """A third-party plugin without the batch hook: it sees every row, in time order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, datetime]] = []

    @hookimpl
    def crm_interaction_logged(self, crm, interaction, customer, actor):
        self.seen.append((interaction.id, crm.now()))
        return Effects()


class Folding:
    """A plugin with the batch hook: batches of whole customers, but rows one by one for a
    customer some plugin (``Picky``) cannot fold."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.rows: list[str] = []

    @hookimpl
    def crm_interaction_logged(self, crm, interaction, customer, actor):
        self.rows.append(interaction.id)

    @hookimpl
    def crm_interactions_replayed(self, crm, events, customers, actor):
        assert set(customers) == {e.customer_id for e in events}
        self.batches.append([e.id for e in events])


class Picky:
    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id

    @hookimpl
    def crm_replay_per_row(self, crm, events, customers):
        assert len(events) == 30  # the whole import, before any row is stored
        assert not crm.interactions.find({"id": {"$in": [e.id for e in events]}})
        return [self.customer_id] if self.customer_id in customers else []


def test_plugins_without_the_batch_hook_get_every_row_and_folders_get_whole_customers():
    plain, folding, picky = PerRowOnly(), Folding(), Picky("")
    clock = ManualClock(START)
    crm = make_test_crm([("plain", plain), ("folding", folding), ("picky", picky)], clock=clock)
    ids = [crm.customers.add(actor="ann", name=f"C{n}").id for n in range(3)]
    picky.customer_id = ids[2]
    rows = [
        HistoryRow(
            k + 2, ids[k % 3], {"kind": "visit", "occurred_at": START + timedelta(hours=29 - k)}
        )
        for k in range(30)
    ]
    clock.set(NOW)
    result = replay(crm, rows, actor="import", batch_size=10)
    assert result.errors == () and len(result.ids) == 30
    stored = {i.id: i for i in crm.interactions.find({})}
    seen = [i for i, _ in plain.seen]
    assert sorted(seen) == sorted(stored)  # every row once
    assert all(at == stored[i].occurred_at for i, at in plain.seen)  # the clock at each row
    in_time = sorted(stored, key=lambda i: stored[i].occurred_at)
    picky_rows = [i for i in in_time if stored[i].customer_id == ids[2]]
    assert folding.rows == picky_rows  # the customer Picky named: row by row, for everyone
    assert seen[: len(picky_rows)] == picky_rows  # and first
    for cid in ids:  # each customer's rows in time order
        assert [i for i in seen if stored[i].customer_id == cid] == [
            i for i in in_time if stored[i].customer_id == cid
        ]
    # the others in batches of whole customers (10 rows each here) in the order of their first
    # row (C1's came before C0's), each in time order
    assert [{stored[i].customer_id for i in b} for b in folding.batches] == [{ids[1]}, {ids[0]}]
    for batch in folding.batches:
        assert batch == sorted(batch, key=lambda i: stored[i].occurred_at)
