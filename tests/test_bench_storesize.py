"""W8 (bench/storesize.py) measures what it says: bytes on disk per business record of the
retail stack as ``crm init`` writes it and of the core with the embedded store alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.storesize import part_of, w8_store_size


def test_files_are_sorted_into_the_parts_of_the_store():
    assert (
        part_of("audit.json") == part_of("audit.idx") == part_of("audit_head.json") == "audit trail"
    )
    assert part_of("customers.json") == "records: customers"
    assert part_of("complaints.tickets.json") == "records: complaints.tickets"
    assert part_of("loyalty.ledger.json") == "plugin: loyalty.ledger"
    assert part_of("tasks.idx") == "indexes"
    assert part_of("journal.log") == part_of("store.lock") == "journal, lock, manifest"


def test_w8_reports_bytes_per_record_and_where_they_are(tmp_path: Path):
    (result,) = w8_store_size({"W8_customers": [8]}, tmp_path)
    extra = result.extra
    assert result.sizes == {"customers": 8, "purchases": 16, "follow_ups_completed": 2}
    # the core alone: 8 customers, 16 interactions, 2 tasks; the stack makes more tasks
    assert extra["core_records"] == 26 and extra["stack_records"] > 26
    assert result.crmcore == round(extra["stack_bytes"] / extra["stack_records"], 1)
    assert result.baselines["core_and_store"] == round(extra["core_bytes"] / 26, 1)
    parts = extra["stack_parts_per_record"]
    assert sum(parts.values()) * extra["stack_records"] == pytest.approx(
        extra["stack_bytes"], rel=0.01
    )
    assert {"audit trail", "indexes", "records: customers", "plugin: loyalty.ledger"} <= set(parts)
    assert 0 < extra["stack_audit_share"] < 1
    # one entry per API call on the core alone: 8 adds, 16 purchases, 2 creates, 2 completes
    assert extra["core_audit_entries"] == 28
    assert extra["stack_audit_entries"] == 8 + 16 + 2
    assert extra["stack_audit_operations"] > extra["stack_audit_entries"]
