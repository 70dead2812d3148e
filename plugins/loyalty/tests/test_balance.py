"""The running balance on the account (``Account.balance``): every posting keeps it equal to
the ledger's sum; an earn reads no ledger; ``rebuild_balance`` and ``crm loyalty rebuild``
recompute it; an account from before it is given one by its next posting."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import attrs
import pytest
from crmcore_loyalty import Loyalty
from crmcore_loyalty.ledger import Ledger
from crmcore_loyalty.records import (
    ACCOUNTS,
    LEDGER,
    TOTALS,
    Account,
    LedgerEntry,
    account_id,
    totals_id,
)

from crmcore.app import open_crm
from crmcore.history import HistoryRow, replay


@attrs.frozen
class Ticket:
    id: str
    customer_id: str
    compensation: float | None
    category: str = "service"
    status: str = "resolved"
    owner: str = "bo"
    claim: str | None = "compensation"
    priority: str = "normal"
    satisfaction: int | None = None


def ledger_sums(crm) -> Counter[str]:
    sums: Counter[str] = Counter()
    for entry in crm.records(LEDGER, LedgerEntry).find():
        sums[entry.customer_id] += entry.points
    return sums


def assert_lots_add_up(crm) -> None:
    """Every live customer's lots (what expiry and redemptions consume) add up to their
    balance, none below zero."""
    ledger = Loyalty(crm).ledger
    for customer in crm.customers.find({"status": {"$ne": "merged"}}):
        state = ledger.state(customer.id)
        assert all(lot.remaining >= 0 for lot in state.lots.values()), customer.id
        assert sum(lot.remaining for lot in state.lots.values()) == state.balance, (
            customer.id,
            [(e.seq, e.kind, e.points) for e in state.entries],
        )


def assert_balances_kept(crm) -> None:
    """Every customer with entries has their own account, whose balance is the ledger's sum
    (strict: a posting that forgets the balance, or leaves it unknown, fails here)."""
    sums = ledger_sums(crm)
    accounts = {
        a.customer_id: a
        for a in crm.records(ACCOUNTS, Account).find()
        if a.id == account_id(a.customer_id)
    }
    for customer_id, total in sums.items():
        account = accounts.get(customer_id)
        assert account is not None, f"{customer_id} has entries but no account"
        assert account.balance == total, (customer_id, account.balance, total)
    for customer_id, account in accounts.items():
        if customer_id not in sums:
            assert account.balance in (None, 0), (customer_id, account.balance)


SETTINGS = {
    "asks": {"enabled": False},
    "expiry": {"days": 20, "reminder_days": 5},
    "compensation": {"points_per_currency": 100, "cap_points": 3000, "cap_days": 30},
    "referral": {
        "max_rewards_per_period": 2,
        "period_days": 10,
        "max_links_per_day": 50,
        "max_links_per_hour": 50,
    },
    "tiers": {
        "review_days": 10,
        "levels": [
            {"name": "silver", "threshold": 300, "multiplier": 1.5},
            {"name": "gold", "threshold": 900, "multiplier": 2.0},
        ],
    },
}


class History:
    """Random postings of every kind on a few customers, merges of two of them included (a
    merge joins two ledgers whose ``seq`` numbers overlap: what the kept customer posts
    afterwards must still leave lots that add up to the balance)."""

    def __init__(self, kit, clock, rng: random.Random, owners=(None,)) -> None:
        self.kit, self.clock, self.rng = kit, clock, rng
        self.crm = kit.crm
        self.loyalty: Loyalty = kit.loyalty
        self.owners = owners
        self.customers = [
            kit.customer(f"Cust {n}", owner=owners[n % len(owners)]) for n in range(4)
        ]
        self.purchases: list = []
        self.tickets = 0
        self.rows = 0

    def live(self):
        gone = {c.id for c in self.crm.customers.find({"status": "merged"})}
        return [c for c in self.customers if c.id not in gone]

    def step(self) -> str:
        rng = self.rng
        who = rng.choice(self.live())
        kind = rng.choice(
            [
                "purchase", "purchase", "purchase", "event", "refund", "redeem", "adjust",
                "goodwill", "referral", "award", "expire", "import", "replay", "merge", "redeem",
            ]
        )  # fmt: skip
        loyalty = self.loyalty
        if kind == "purchase":
            self.purchases.append(self.kit.buy(who, round(rng.uniform(1, 600), 2)))
        elif kind == "event":
            self.kit.log(who, rng.choice(["event", "survey"]))
        elif kind == "refund" and self.purchases:
            purchase = self.crm.interactions.get(rng.choice(self.purchases).id)  # merged?
            share = rng.choice([None, 0.3, 1.0])
            amount = None if share is None else round((purchase.amount or 0) * share, 2)
            self.kit.log(purchase.customer_id, "refund", ref=purchase.id, amount=amount)
        elif kind == "redeem":
            available = loyalty.account(who.id).available
            if available > 0:
                points = rng.choice([available, rng.randint(1, available)])
                loyalty.redeem(who.id, points, actor="t")
        elif kind == "adjust":
            points = rng.choice([rng.randint(1, 300), -rng.randint(1, 300)])
            if points > 0 or -points <= loyalty.account(who.id).available:
                loyalty.adjust(who.id, points, actor="t", reason="correction")
        elif kind == "goodwill":
            self.tickets += 1
            ticket = Ticket(f"tkt_{self.tickets}", who.id, round(rng.uniform(0, 20), 2))
            self.crm.events.complaint_resolved(actor="m", ticket=ticket)
            if rng.random() < 0.4:
                self.crm.events.complaint_reopened(actor="m", ticket=ticket)
        elif kind == "referral":
            newcomer = self.kit.customer(
                f"Friend {len(self.customers)}", owner=rng.choice(self.owners)
            )
            self.customers.append(newcomer)
            loyalty.link(newcomer.id, loyalty.referral_code(who.id, actor="t"), actor="t")
            self.purchases.append(self.kit.buy(newcomer, round(rng.uniform(1, 300), 2)))
        elif kind == "award":
            loyalty.award(who.id, rng.randint(1, 80), source=f"app:{rng.randint(1, 6)}",
                          reason="app_install", actor="app")  # fmt: skip
        elif kind == "expire":
            self.clock.advance(days=rng.randint(1, 12))
            self.crm.tick("w")
        elif kind == "import":  # a history import: the batch fold
            self.rows += 1
            at = self.clock.now() - timedelta(days=rng.randint(30, 60))
            fields = {"kind": "purchase", "occurred_at": at, "amount": rng.uniform(1, 400)}
            replay(self.crm, [HistoryRow(self.rows, who.id, fields, key=f"r{self.rows}")],
                   actor="importer")  # fmt: skip
        elif kind == "replay" and self.purchases:
            self.kit.replay(self.crm.interactions.get(rng.choice(self.purchases).id))
        elif kind == "merge" and len(self.live()) > 2:
            # keep the one with the shorter ledger, often (a new duplicate record kept): its
            # next postings are then numbered among the merged customer's entries
            other = rng.choice([c for c in self.live() if c.id != who.id])
            pair = sorted([who, other], key=lambda c: len(self.kit.entries(c)))
            kept, gone = pair if rng.random() < 0.7 else pair[::-1]
            self.crm.customers.merge(kept.id, gone.id, actor="t")
        self.clock.advance(timedelta(hours=rng.randint(1, 30)))
        return kind


@pytest.mark.parametrize("seed", range(8))
def test_the_running_balance_equals_the_ledger_over_random_histories(kit_for, clock, seed):
    kit = kit_for(SETTINGS)
    history = History(kit, clock, random.Random(seed))
    done = Counter()
    for _ in range(45):
        done[history.step()] += 1
        assert_balances_kept(kit.crm)
        assert_lots_add_up(kit.crm)
    assert sum(done.values()) == 45


def test_every_kind_of_posting_is_covered_by_the_random_histories(kit_for, clock):
    """The eight seeds above, together, post every entry kind and every earn reason."""
    kit = kit_for(SETTINGS)
    history = History(kit, clock, random.Random(99))
    kinds = Counter(history.step() for _ in range(160))
    assert kinds["merge"] > 0
    assert_balances_kept(kit.crm)
    assert_lots_add_up(kit.crm)
    entries = kit.crm.records(LEDGER, LedgerEntry).find()
    assert {e.kind for e in entries} == {"earn", "redeem", "expire", "adjust", "clawback"}
    assert {e.reason for e in entries if e.kind == "earn"} >= {
        "purchase", "compensation", "referral_referrer", "referral_referred", "app_install",
    } | ({"event"} if any(e.reason == "event" for e in entries) else {"survey"})  # fmt: skip


def test_an_earn_reads_no_ledger(kit, monkeypatch):
    ann = kit.customer()
    for _ in range(5):
        kit.buy(ann, 100)
    read: list[str] = []
    real_state = Ledger.state
    real_find = Ledger.find

    def state(self, customer_id):
        read.append("state")
        return real_state(self, customer_id)

    def find(self, filter=None):
        read.append("find")
        return real_find(self, filter)

    monkeypatch.setattr(Ledger, "state", state)
    monkeypatch.setattr(Ledger, "find", find)
    kit.buy(ann, 100)
    kit.log(ann, "event")
    kit.loyalty.award(ann.id, 10, source="app:1", reason="app_install", actor="app")
    assert read == []
    # silver after 500 of spend: the sixth purchase and the event earn x1.1
    assert kit.balance(ann) == 500 + 110 + 55 + 10 and read == []
    monkeypatch.undo()
    assert_balances_kept(kit.crm)


def test_a_replayed_earn_on_the_quick_path_writes_nothing(kit):
    ann = kit.customer()
    kit.buy(ann, 10)
    purchase = kit.buy(ann, 100)
    account = kit.loyalty.ledger.account(ann.id)
    kit.replay(purchase)
    assert kit.loyalty.ledger.account(ann.id) == account  # not even its version moved
    assert kit.balance(ann) == 110
    assert_balances_kept(kit.crm)


def test_an_account_from_before_balances_is_given_one_by_its_next_posting(kit):
    ann = kit.customer()
    kit.buy(ann, 100)
    kit.loyalty.redeem(ann.id, 30, actor="t")
    coll = kit.crm.store.collection(ACCOUNTS)
    old = dict(coll.get(account_id(ann.id)))
    del old["balance"]  # as a store written before the field existed holds it
    coll.upsert_many([old])
    assert kit.loyalty.ledger.account(ann.id).balance is None
    assert kit.balance(ann) == 70  # read from the ledger meanwhile
    kit.buy(ann, 50)
    assert kit.loyalty.ledger.account(ann.id).balance == 120
    assert_balances_kept(kit.crm)


def test_rebuild_balance_repairs_a_wrong_running_balance(kit):
    ann = kit.customer()
    kit.buy(ann, 100)
    accounts = kit.crm.records(ACCOUNTS, Account)
    accounts.update(accounts.get(account_id(ann.id)), balance=999)
    assert kit.loyalty.ledger.rebuild_balance(ann.id, actor="t") == 100
    assert accounts.get(account_id(ann.id)).balance == 100
    assert kit.loyalty.ledger.rebuild_balance(kit.customer().id, actor="t") == 0
    assert_balances_kept(kit.crm)


def test_rebuild_all_fixes_every_account_and_says_how_many(kit):
    ann, bo, cy = kit.customer(), kit.customer("Bo"), kit.customer("Cy")
    for who in (ann, bo, cy):
        kit.buy(who, 100)
    accounts = kit.crm.records(ACCOUNTS, Account)
    accounts.update(accounts.get(account_id(ann.id)), balance=1)
    accounts.update(accounts.get(account_id(bo.id)), balance=None)
    report = kit.loyalty.rebuild()
    assert (report.accounts, report.balances_fixed) == (3, 2)
    assert_balances_kept(kit.crm)
    assert kit.loyalty.rebuild().balances_fixed == 0


def test_a_merge_joins_the_balances_on_the_kept_account(kit):
    ann, dup = kit.customer(), kit.customer("Ann L.")
    kit.buy(ann, 100)
    kit.buy(dup, 40)
    kit.crm.customers.merge(ann.id, dup.id, actor="t")
    assert kit.loyalty.ledger.account(ann.id).balance == 140
    kit.buy(ann, 10)  # the quick path goes on from the joined balance
    assert kit.balance(ann) == 150
    assert_balances_kept(kit.crm)


def test_a_merge_into_a_customer_without_an_account_makes_one(kit):
    ann, dup = kit.customer(), kit.customer("Ann L.")
    kit.buy(dup, 40)
    kit.crm.customers.merge(ann.id, dup.id, actor="t")
    assert kit.loyalty.ledger.account(ann.id).balance == 40
    assert_balances_kept(kit.crm)


def test_crm_loyalty_rebuild_in_a_real_process_on_a_store_crm_init_made(tmp_path):
    """An old store (accounts without a balance, one wrong) put right by the command."""
    pytest.importorskip("crmcore_storage_tinydb")
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "CRMCORE_PLUGINS"
    }

    def crm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crmcore.cli.main", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=environ,
            timeout=120,
        )

    assert crm("init", "--profile", "retail").returncode == 0
    with open_crm(tmp_path / "crm.toml") as opened:
        ids = [opened.customers.add(actor="t", name=f"C{n}").id for n in range(3)]
        for cid in ids:
            opened.interactions.log(actor="t", customer_id=cid, kind="purchase", amount=120)
        coll = opened.store.collection(ACCOUNTS)
        old = dict(coll.get(account_id(ids[0])))
        del old["balance"]
        wrong = {**coll.get(account_id(ids[1])), "balance": 7}
        behind = {**coll.get(account_id(ids[2])), "seq": 0}  # a merge's, before the fix
        for spend in ("spend_micros", "spend_edge", "spend_top", "spend_first", "spend_kinds"):
            del behind[spend]  # from before the accounts kept the spend totals
        coll.upsert_many([old, wrong, behind])
        totals = opened.store.collection(TOTALS)  # the earlier stores' own totals records
        earlier = {"id": totals_id(ids[2]), "customer_id": ids[2], "version": 1}
        earlier.update(lines=[["2026-01-01", 5.0, "x"]], kinds="purchase", horizon=None)
        totals.upsert_many([earlier])
    done = crm("--json", "--as", "admin", "loyalty", "rebuild")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["accounts"], report["balances_fixed"], report["totals"]) == (3, 2, 3)
    with open_crm(tmp_path / "crm.toml") as opened:
        assert_balances_kept(opened)
        assert Loyalty(opened).ledger.account(ids[2]).seq == 1
        record = opened.store.collection(ACCOUNTS).get(account_id(ids[2]))
        assert record["spend_kinds"].startswith("2|") and record["spend_micros"] == 120_000_000
        assert list(opened.store.collection(TOTALS).iter()) == []  # the old records deleted
    done = crm("--as", "admin", "loyalty", "rebuild")
    assert done.returncode == 0 and "0 balance(s) recomputed" in done.stdout, done.stderr


def test_a_history_batch_is_folded_into_one_bulk_insert_inside_the_batchs_transaction(
    kit, clock, monkeypatch
):
    """Twelve customers' old purchases in one batch: loyalty writes every entry in one bulk
    insert and opens one transaction for the batch's writes (it opened one per customer)."""
    customers = [kit.customer(f"Old {n}") for n in range(12)]
    kit.buy(customers[0], 10)  # one with an account and entries already
    rows = [
        HistoryRow(
            n + 1,
            customers[n % 12].id,
            {
                "kind": "purchase",
                "occurred_at": clock.now() - timedelta(days=400 - n),
                "amount": 50.0 + n,
            },
            key=f"h{n}",
        )
        for n in range(36)
    ]
    inserts: list[int] = []
    real_insert = Ledger.insert_entries

    def insert_entries(self, docs):
        inserts.append(len(docs))
        return real_insert(self, docs)

    opened: list[str] = []
    real_transaction = type(kit.crm).transaction

    def transaction(self, actor=None):
        opened.append(actor or "")
        return real_transaction(self, actor)

    monkeypatch.setattr(Ledger, "insert_entries", insert_entries)
    monkeypatch.setattr(type(kit.crm), "transaction", transaction)
    result = replay(kit.crm, rows, actor="importer")
    monkeypatch.undo()
    assert (len(result.ids), result.errors) == (36, ())
    assert inserts == [36]
    assert len(opened) == 2, opened  # the batch's, and loyalty's writes inside it
    assert_balances_kept(kit.crm)
    assert kit.balance(customers[0]) == 10 + sum(50 + n for n in range(0, 36, 12))
