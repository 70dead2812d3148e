"""Concurrent workers in separate processes on one embedded store (needs crmcore-storage-tinydb).

The in-memory store serialises everything inside one process, so this is where the unique
ledger keys and the account's optimistic lock meet real concurrency.
"""

from __future__ import annotations

import multiprocessing

import pytest
from crmcore_loyalty import Loyalty
from crmcore_loyalty.records import EARN, REDEEM

from crmcore import ManualClock, ValidationError
from crmcore.testing import START, make_test_crm

pytest.importorskip("crmcore_storage_tinydb")

SETTINGS = {"loyalty": {"asks": {"enabled": False}}}


def _open(location: str):
    return make_test_crm(
        ["loyalty", "storage_tinydb"],
        settings=SETTINGS,
        storage={"backend": "tinydb", "location": location},
        clock=ManualClock(START),
    )


def _worker(location: str, customer_id: str, purchase_id: str, n: int, queue, barrier) -> None:
    refused = 0
    with _open(location) as crm:
        loyalty = Loyalty(crm)
        purchase = crm.interactions.get(purchase_id)
        barrier.wait(timeout=60)  # start together, so the writes really interleave
        for i in range(15):
            crm.events.interaction_logged(
                actor=f"w{n}",
                interaction=purchase,
                customer=crm.customers.get(customer_id),
            )
            try:
                loyalty.redeem(customer_id, 45, actor=f"w{n}", reference=f"{n}-{i}")
            except ValidationError:
                refused += 1
    queue.put(refused)


def test_workers_in_three_processes_award_once_and_never_overspend(tmp_path):
    location = str(tmp_path / "store")
    with _open(location) as crm:
        ann = crm.customers.add(actor="t", name="Ann")
        purchase = crm.interactions.log(actor="t", customer_id=ann.id, kind="purchase", amount=1000)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(4)
    workers = [
        context.Process(target=_worker, args=(location, ann.id, purchase.id, n, queue, barrier))
        for n in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    refused = sum(queue.get(timeout=5) for _ in workers)
    with _open(location) as crm:
        entries = Loyalty(crm).ledger.state(ann.id).entries
        earns = [e for e in entries if e.kind == EARN]
        redeemed = [e for e in entries if e.kind == REDEEM]
        balance = sum(e.points for e in entries)
        kept = Loyalty(crm).ledger.account(ann.id).balance
    assert len(earns) == 1 and earns[0].points == 1000
    assert kept == balance, "the running balance is the ledger's sum after the race"
    assert len(redeemed) == 60 - refused == 1000 // 45
    assert balance == 1000 - 45 * len(redeemed) >= 0
