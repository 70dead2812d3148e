"""Ledger invariants under random sequences, replays, concurrent workers and forced races.

- the balance always equals the ledger's sum (and the sum of what is left of every lot);
- it is never negative, after any prefix of the ledger;
- the same source event never earns twice, however often it is replayed or by how many workers;
- a redemption above the spendable balance is refused and writes nothing.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import pytest
from crmcore_loyalty import Loyalty
from crmcore_loyalty.ledger import Ledger, LedgerState, replay
from crmcore_loyalty.records import ACCOUNTS, EARN, LEDGER, Account, LedgerEntry, account_id
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from crmcore import ManualClock, ValidationError
from crmcore.converter import to_doc
from crmcore.testing import START, make_test_crm


def check_invariants(loyalty: Loyalty, customer_id: str) -> LedgerState:
    stored = loyalty.crm.records(LEDGER, LedgerEntry).find({"customer_id": customer_id})
    state = loyalty.ledger.state(customer_id)
    assert state.balance == sum(e.points for e in stored), "balance is the ledger's sum"
    assert state.balance == sum(lot.remaining for lot in state.lots.values())
    running = 0
    for entry in sorted(stored, key=lambda e: e.seq):
        running += entry.points
        assert running >= 0, f"negative after {entry.kind} {entry.points}"
    account = loyalty.ledger.account(customer_id)
    if account is not None and account.balance is not None:
        assert account.balance == state.balance, "the running balance is the ledger's sum"
    keys = [e.key for e in stored]
    assert len(keys) == len(set(keys)), "a source posted twice"
    earns = [e.source for e in stored if e.kind == EARN]
    assert len(earns) == len(set(earns))
    for lot in state.lots.values():
        assert lot.remaining >= 0
        assert lot.entry.points == lot.remaining + lot.spent + lot.expired + lot.clawed
        assert 0 <= lot.requested <= lot.entry.points
    return state


class LedgerMachine(RuleBasedStateMachine):
    """Random earn / redeem / adjust / refund (clawback) / goodwill / expiry / replay."""

    @initialize()
    def open(self) -> None:
        self.clock = ManualClock(START)
        self.crm = make_test_crm(
            ["loyalty"],
            clock=self.clock,
            settings={
                "loyalty": {
                    "expiry": {"days": 20, "reminder_days": 5},
                    "asks": {"enabled": False},
                    "compensation": {"cap_points": 3000, "cap_days": 30},
                    "tiers": {
                        "review_days": 10,
                        "levels": [
                            {"name": "silver", "threshold": 300, "multiplier": 1.5},
                            {"name": "gold", "threshold": 900, "multiplier": 2.0},
                        ],
                    },
                }
            },
        )
        self.loyalty = Loyalty(self.crm)
        self.customer = self.crm.customers.add(actor="t", name="Prop Erty")
        self.purchases: list = []
        self.tickets = 0

    def teardown(self) -> None:
        self.crm.close()

    @rule(amount=st.floats(min_value=0, max_value=500, allow_nan=False).map(lambda a: round(a, 2)))
    def purchase(self, amount: float) -> None:
        self.purchases.append(
            self.crm.interactions.log(
                actor="t", customer_id=self.customer.id, kind="purchase", amount=amount
            )
        )

    @precondition(lambda self: self.purchases)
    @rule(data=st.data())
    def replay_purchase(self, data: st.DataObject) -> None:
        before = self.loyalty.ledger.find({"customer_id": self.customer.id})
        purchase = data.draw(st.sampled_from(self.purchases))
        self.crm.events.interaction_logged(
            actor="replay",
            interaction=purchase,
            customer=self.crm.customers.get(self.customer.id),
        )
        after = self.loyalty.ledger.find({"customer_id": self.customer.id})
        source = f"purchase:{purchase.id}"
        if any(e.source == source for e in before):
            assert len(after) == len(before), "a replayed purchase earned again"
        else:
            # It earned nothing the first time (too small for whole points); under a higher
            # tier multiplier now it may earn, once.
            assert [e.source for e in after if e not in before] in ([], [source])

    @rule(points=st.integers(min_value=1, max_value=800))
    def redeem(self, points: int) -> None:
        state = self.loyalty.ledger.state(self.customer.id)
        available = state.available(self.clock.now())
        count = len(state.entries)
        if points > available:
            with pytest.raises(ValidationError):
                self.loyalty.redeem(self.customer.id, points, actor="t")
            assert len(self.loyalty.ledger.state(self.customer.id).entries) == count
        else:
            self.loyalty.redeem(self.customer.id, points, actor="t")
            # points past their date expire first, then exactly ``points`` are taken
            assert self.loyalty.ledger.state(self.customer.id).balance == available - points

    @rule()
    def redeem_everything(self) -> None:
        available = self.loyalty.ledger.state(self.customer.id).available(self.clock.now())
        if available:
            self.loyalty.redeem(self.customer.id, available, actor="t")
        assert self.loyalty.ledger.state(self.customer.id).available(self.clock.now()) == 0

    @rule(points=st.one_of(st.integers(-400, -1), st.integers(1, 400)))
    def adjust(self, points: int) -> None:
        state = self.loyalty.ledger.state(self.customer.id)
        if points < 0 and -points > state.available(self.clock.now()):
            with pytest.raises(ValidationError):
                self.loyalty.adjust(self.customer.id, points, actor="t", reason="fix")
        else:
            self.loyalty.adjust(self.customer.id, points, actor="t", reason="fix")

    @precondition(lambda self: self.purchases)
    @rule(data=st.data(), share=st.sampled_from([None, 0.25, 0.5, 1.0]))
    def refund(self, data: st.DataObject, share: float | None) -> None:
        purchase = data.draw(st.sampled_from(self.purchases))
        amount = None if share is None else round((purchase.amount or 0) * share, 2)
        self.crm.interactions.log(
            actor="t", customer_id=self.customer.id, kind="refund", ref=purchase.id, amount=amount
        )

    @rule(
        amount=st.floats(min_value=0, max_value=20).map(lambda a: round(a, 2)), reopen=st.booleans()
    )
    def goodwill(self, amount: float, reopen: bool) -> None:
        self.tickets += 1
        ticket = _Ticket(f"tkt_{self.tickets}", self.customer.id, amount)
        self.loyalty.compensation.on_resolved(ticket, actor="t")
        self.loyalty.compensation.on_resolved(ticket, actor="t")  # a replay
        if reopen:
            self.loyalty.compensation.on_reopened(ticket, actor="t")

    @rule(days=st.integers(min_value=0, max_value=12), workers=st.integers(0, 2))
    def time_passes(self, days: int, workers: int) -> None:
        self.clock.advance(days=days)
        for n in range(workers):
            self.crm.tick(f"w{n}")
        if workers:
            state = self.loyalty.ledger.state(self.customer.id)
            assert not state.overdue(self.clock.now()), "the sweep left expired points"

    @invariant()
    def ledger_is_consistent(self) -> None:
        if hasattr(self, "loyalty"):
            check_invariants(self.loyalty, self.customer.id)


@attrs.frozen
class _Ticket:
    id: str
    customer_id: str
    compensation: float | None


LedgerMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerMachine = LedgerMachine.TestCase


# -- replay and concurrent workers ---------------------------------------------------------


def test_concurrent_workers_replaying_and_redeeming_never_double_award_or_go_negative(kit):
    ann = kit.customer()
    purchase = kit.buy(ann, 1000)
    errors: list[BaseException] = []
    refused = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                kit.replay(purchase)
                try:
                    kit.loyalty.redeem(ann.id, 37 + n, actor=f"w{n}", reference=f"{n}-{i}")
                except ValidationError:
                    refused.append(n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    earns = [e for e in kit.entries(ann) if e.kind == EARN]
    assert len(earns) == 1 and earns[0].points == 1000
    state = check_invariants(kit.loyalty, ann.id)
    assert refused, "some redemptions must have been refused: 6 x 15 x ~40 > 1000"
    assert 0 <= state.balance < 37


def test_the_unique_key_stops_a_second_award_even_when_a_racing_writer_missed_it(kit, monkeypatch):
    ann = kit.customer()
    purchase = kit.buy(ann, 250)
    # A writer that read the ledger before the first award landed plans the award again.
    monkeypatch.setattr(LedgerState, "keys", property(lambda self: frozenset()))
    kit.replay(purchase)
    monkeypatch.undo()
    assert [e.points for e in kit.entries(ann) if e.kind == EARN] == [250]
    assert check_invariants(kit.loyalty, ann.id).balance == 250


def test_two_redemptions_racing_on_a_stale_read_cannot_both_pass(kit, monkeypatch):
    ann = kit.customer()
    kit.buy(ann, 100)
    real_state = Ledger.state
    raced = []

    def stale_state(self: Ledger, customer_id: str) -> LedgerState:
        state = real_state(self, customer_id)
        if not raced:  # another worker redeems after we read, before we commit
            raced.append(True)
            Loyalty(kit.crm).redeem(customer_id, 50, actor="other-worker")
        return state

    monkeypatch.setattr(Ledger, "state", stale_state)
    with pytest.raises(ValidationError, match="has 50 available"):
        kit.loyalty.redeem(ann.id, 80, actor="this-worker")
    monkeypatch.undo()
    assert kit.balance(ann) == 50
    check_invariants(kit.loyalty, ann.id)


def test_a_committed_batch_whose_entries_were_not_inserted_is_rolled_forward(kit):
    ann = kit.customer()
    kit.buy(ann, 100)
    accounts = kit.crm.records(ACCOUNTS, Account)
    account = accounts.get(account_id(ann.id))
    lost = LedgerEntry(
        id="lpe_lost",
        customer_id=ann.id,
        kind="redeem",
        points=-30,
        source="redeem:lost",
        key="redeem|redeem:lost",
        reason="redeem",
        at=kit.crm.now(),
        actor="crashed-worker",
        seq=account.seq + 1,
    )
    # The account write (the commit point) happened, then the process died before the insert.
    accounts.update(account, seq=account.seq + 1, pending=[to_doc(lost)])
    assert kit.balance(ann) == 70, "readers count the committed batch"
    kit.loyalty.redeem(ann.id, 10, actor="next-writer")
    assert {e.id for e in kit.entries(ann)} >= {"lpe_lost"}
    assert check_invariants(kit.loyalty, ann.id).balance == 60


def test_replay_of_expiry_and_clawback_sources_posts_nothing_new(kit, clock):
    ann = kit.customer()
    purchase = kit.buy(ann, 100)
    kit.log(ann, "refund", ref=purchase.id, amount=40.0)
    clock.advance(days=366)
    kit.crm.tick("a")
    before = len(kit.entries(ann))
    kit.crm.tick("b")
    kit.loyalty.ledger.expire_due(ann.id, actor="again")
    refund = kit.crm.interactions.find({"kind": "refund"})[0]
    kit.replay(refund)
    assert len(kit.entries(ann)) == before
    assert [e.kind for e in sorted(kit.entries(ann), key=lambda e: e.seq)] == [
        "earn",
        "clawback",
        "expire",
    ]
    assert check_invariants(kit.loyalty, ann.id).balance == 0


@pytest.mark.parametrize(
    ("redeem", "clawback", "taken", "shortfall"),
    [
        (0, 100, 100, 0),  # nothing spent: the lot pays back in full
        (60, 100, 100, 0),  # 40 left in the lot + 60 from the other lot (the spent part)
        (150, 100, 50, 50),  # only 50 left anywhere: the rest is recorded as shortfall
    ],
)
def test_clawback_takes_what_is_left_then_what_was_spent_never_below_zero(
    kit, redeem, clawback, taken, shortfall
):
    ann = kit.customer()
    first = kit.buy(ann, 100)
    kit.buy(ann, 100)
    if redeem:
        kit.loyalty.redeem(ann.id, redeem, actor="t")
    entry = kit.loyalty.ledger.clawback(ann.id, f"purchase:{first.id}", cause="test", actor="t")
    assert (-entry.points, entry.shortfall) == (taken, shortfall)
    assert check_invariants(kit.loyalty, ann.id).balance == 200 - redeem - taken


def test_replay_orders_by_sequence_and_computes_lots():
    at = START

    def entry(seq, kind, points, lot=None, expires=None):
        return LedgerEntry(
            id=f"e{seq}",
            customer_id="c",
            kind=kind,
            points=points,
            source=f"s{seq}",
            key=f"{kind}|s{seq}",
            reason="purchase",
            at=at,
            actor="t",
            seq=seq,
            lot=lot,
            expires_at=expires,
        )

    later = at + timedelta(days=30)
    sooner = at + timedelta(days=10)
    ordered, balance, lots = replay(
        [
            entry(3, "redeem", -70),
            entry(1, "earn", 50, expires=later),
            entry(2, "earn", 50, expires=sooner),
            entry(4, "expire", -30, lot="e1"),
        ]
    )
    assert [e.seq for e in ordered] == [1, 2, 3, 4]
    assert balance == 0
    # soonest to expire first: e2 gives 50, then e1 gives 20; e1's last 30 expire
    assert (lots["e2"].spent, lots["e1"].spent, lots["e1"].expired) == (50, 20, 30)


@pytest.mark.parametrize("atomic", [True, False])
def test_the_account_keeps_no_personal_data(kit, monkeypatch, atomic):
    # a backend without atomic transactions keeps the last batch on the account (pending)
    monkeypatch.setattr(Ledger, "_atomic", lambda self: atomic)
    ann = kit.customer()
    kit.buy(ann, 100)
    kit.loyalty.adjust(ann.id, 5, actor="t", reason="Ann Lee phoned about her +86 138 order")
    account = kit.crm.records(ACCOUNTS, Account).get(account_id(ann.id))
    assert [doc["note"] for doc in account.pending] == ([] if atomic else [""])
    assert account.balance == 105
    assert kit.loyalty.history(ann.id)[0].note.startswith("Ann Lee phoned")
