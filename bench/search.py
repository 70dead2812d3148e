"""W14S: CPU time of one customer search, through the search-key index against the scan that
answered it before (issue 21, search at 10k), in the same process on the same store.

The core with the embedded store (no other plugin), N customers added through
``crm.customers.add`` (names ``Customer 000000`` …, national mobile numbers, e-mails). Each
kind of search is timed in CPU seconds (``time.process_time``), the index and the scan taking
turns call by call, so both see the same machine:

- one full name (``Customer 004321``: one match);
- a name many customers match (``Customer 000``: a thousand at 10k, the first 50 shown);
- the last 4 digits of a phone;
- an e-mail.

The baseline is the search as the workspace page ran it before: read every active customer in
id order, build it, compare (substring of the name, or the phone's last digits), stop at 50
matches; an e-mail was already an index lookup.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Result, person

LIMIT = 50
_DIGITS = re.compile(r"\d")


def _scan(crm: Any, match: Callable[[Any], bool]) -> list[Any]:
    out = []
    for customer in crm.customers.iter({"status": "active"}):
        if match(customer):
            out.append(customer)
            if len(out) >= LIMIT:
                break
    return out


def _baseline(crm: Any, kind: str, text: str) -> list[Any]:
    if kind == "email":
        return crm.customers.find({"email": text}, limit=LIMIT)
    if kind == "tail":
        return _scan(crm, lambda c: "".join(_DIGITS.findall(c.phone or "")).endswith(text))
    needle = text.casefold()
    return _scan(crm, lambda c: needle in c.name.casefold())


def w14_search(size: dict[str, Any], tmp: Path) -> list[Result]:
    from crmcore.app import open_crm

    results = []
    for n in size["W14S_customers"]:
        folder = tmp / f"w14s-{n}"
        config = {
            "storage": {"backend": "tinydb", "location": str(folder)},
            "core": {"default_country_code": "86"},
        }
        crm = open_crm(config, plugins=["storage_tinydb"])
        rng = random.Random(14)
        phones, emails = [], []
        try:
            started = time.perf_counter()
            for i in range(n):
                fields = person(rng, i)
                fields["phone"] = fields["phone"].removeprefix("+86")
                crm.customers.add(actor="bench", **fields)
                phones.append(fields["phone"])
                emails.append(fields["email"])
            built = time.perf_counter() - started
            pick = random.Random(15)
            calls = size["W14S_calls"]
            kinds = [
                (
                    "one full name",
                    "name",
                    [f"Customer {pick.randrange(n):06d}" for _ in range(calls)],
                ),
                ("a name many match", "name", ["Customer 000"] * calls),
                (
                    "the last 4 digits",
                    "tail",
                    [phones[pick.randrange(n)][-4:] for _ in range(calls)],
                ),
                ("an e-mail", "email", [emails[pick.randrange(n)] for _ in range(calls)]),
            ]
            for title, kind, texts in kinds:
                crm.customers.search(texts[0])  # a first call loads what it reads: not timed
                _baseline(crm, kind, texts[0])
                index: list[float] = []
                scan: list[float] = []
                found = 0
                for q in texts:  # the two take turns, so both see the same machine
                    started_cpu = time.process_time()
                    hits = crm.customers.search(q).customers
                    index.append((time.process_time() - started_cpu) * 1000)
                    started_cpu = time.process_time()
                    _baseline(crm, kind, q)
                    scan.append((time.process_time() - started_cpu) * 1000)
                    found = max(found, len(hits))
                results.append(
                    Result(
                        "W14S",
                        f"search by {title} (CPU ms per call)",
                        {"customers": n, "calls": len(index)},
                        "ms",
                        False,
                        crmcore=round(statistics.mean(index), 3),
                        baselines={"scan": round(statistics.mean(scan), 3)},
                        extra={
                            "index_p50_ms": round(statistics.median(index), 3),
                            "scan_p50_ms": round(statistics.median(scan), 3),
                            "results_at_most": found,
                            "store_built_s": round(built, 1),
                        },
                        note="core + embedded store; CPU time in process, index and scan "
                        "taking turns; baseline: the scan the page and the API ran before",
                    )
                )
        finally:
            crm.close()
    return results
