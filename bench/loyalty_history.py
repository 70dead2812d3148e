"""W7's purchase against the customer's own history: does a purchase grow with it?

``python -m bench.loyalty_history [--history 10,100,300] [--calls 40]`` builds the retail
stack as ``crm init --profile retail`` writes it (``bench.stack.init_retail``), gives one
customer H purchases of their own (a minute apart, all inside the tier window, with the
points they earn), then times ``--calls`` more purchases of that customer in CPU seconds of
this process, for each H. A purchase that reads the customer's ledger (or history) costs
more as H grows; one that reads only running totals does not. The same customer count and
the same amounts on every run, so two trees can be compared run against run.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.stack import START, init_retail
from crmcore import ManualClock, open_crm


def per_purchase_ms(history: int, calls: int, folder: Path) -> float:
    """CPU ms of one more purchase by a customer who made ``history`` already."""
    clock = ManualClock(START)
    crm = open_crm(init_retail(folder), clock=clock)
    rng = random.Random(history)
    try:
        others = [
            crm.customers.add(actor="ann", name=f"Other {i}", phone=f"+86137{i:08d}").id
            for i in range(50)
        ]
        for cid in others:  # a store that is not only this customer
            clock.advance(timedelta(minutes=1))
            crm.interactions.log(actor="ann", customer_id=cid, kind="purchase", amount=30.0)
        me = crm.customers.add(actor="ann", name="Loyal Customer", phone="+8613900000001").id

        def buy() -> None:
            clock.advance(timedelta(minutes=1))
            crm.interactions.log(
                actor="ann", customer_id=me, kind="purchase", amount=round(rng.uniform(5, 80), 2)
            )

        for _ in range(history):
            buy()
        cpu = time.process_time()
        for _ in range(calls):
            buy()
        return 1000 * (time.process_time() - cpu) / calls
    finally:
        crm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", default="10,100,300")
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for h in (int(x) for x in args.history.split(",")):
            ms = per_purchase_ms(h, args.calls, Path(tmp) / f"h{h}")
            print(json.dumps({"own_purchases_before": h, "purchase_ms_cpu": round(ms, 3)}))


if __name__ == "__main__":
    main()
