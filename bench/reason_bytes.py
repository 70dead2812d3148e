"""Bytes of the text grading stores as data, per graded customer: the reasons on the
customer (``ext.grading.reasons``, ``ext.grading.churn.reasons``) and the reasons of the grade
history, as this version stores them (the message id and arguments, the English only where
they do not give it back) against the same reasons in the earlier form (every message with
its English ``text``; the history's reason as English text only), and the reasons as plain
English (before they were stored with their ids: what translating them costs at all).

Not a registered workload (bytes, no time): run it on a store ``crm demo`` made,

    crm demo --customers 80 --days 40 --dir /tmp/d
    python -m bench.reason_bytes /tmp/d/crm.toml

Both forms are encoded from the same stored documents (read back, then written again as
this version writes them and as the earlier one did), as the embedded store writes them
(compact JSON, UTF-8), so the figures do not depend on the machine, its load or which
version filled the store.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from crmcore import open_crm
from crmcore.messages import restored, stored


def size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (how the embedded store writes a document)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def as_stored_now(reason: Any) -> Any:
    """A stored reason as this version writes it, whichever version wrote the store."""
    return stored(restored(reason)) if reason else reason


def with_text(reason: Any) -> Any:
    """A stored reason in the earlier form: a message document with its English ``text``."""
    if isinstance(reason, dict) and "text" not in reason:
        return {**reason, "text": str(restored(reason))}
    return reason


def measure(config: str) -> dict[str, Any]:
    """Totals over the store's graded customers (see the module's docstring)."""
    crm = open_crm(config)
    try:
        customers = graded = now_reasons = old_reasons = plain_reasons = now_records = 0
        for doc in crm.collection("customers").iter({}):
            customers += 1
            grading = (doc.get("ext") or {}).get("grading") or {}
            if not grading.get("grades"):
                continue
            graded += 1
            reasons = grading.get("reasons") or {}
            churn = (grading.get("churn") or {}).get("reasons") or []
            now = {k: as_stored_now(v) for k, v in reasons.items()}
            now_churn = [as_stored_now(r) for r in churn]
            now_reasons += size(now) + size(now_churn)
            old_reasons += size({k: with_text(v) for k, v in reasons.items()})
            old_reasons += size([with_text(r) for r in churn])
            plain_reasons += size({k: str(restored(v)) for k, v in reasons.items()})
            plain_reasons += size([str(restored(r)) for r in churn])
            now_records += size(doc) - size(reasons) - size(churn) + size(now) + size(now_churn)
        history = now_history = old_history = 0
        for doc in crm.collection("grading.history").iter({}):
            history += 1
            now_history += size({**doc, "reason": as_stored_now(doc.get("reason"))})
            old_history += size({**doc, "reason": str(restored(doc.get("reason")))})
    finally:
        crm.close()
    return {
        "customers": customers,
        "graded": graded,
        "history_records": history,
        "reasons_now": now_reasons,
        "reasons_before": old_reasons,
        "reasons_english_only": plain_reasons,
        "customer_records_now": now_records,
        "customer_records_before": now_records - now_reasons + old_reasons,
        "history_now": now_history,
        "history_before": old_history,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    found = measure(argv[0])
    graded = max(found["graded"], 1)
    per = {
        "reasons per graded customer": (found["reasons_before"], found["reasons_now"]),
        "graded customer record": (
            found["customer_records_before"],
            found["customer_records_now"],
        ),
        "grade history per graded customer": (found["history_before"], found["history_now"]),
    }
    print(json.dumps(found))
    english = found["reasons_english_only"] / graded
    print(f"reasons per graded customer as plain English (no ids): {english:,.0f} B")
    for label, (before, now) in per.items():
        print(
            f"{label}: {before / graded:,.0f} B -> {now / graded:,.0f} B"
            f" ({now / before if before else 0:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
