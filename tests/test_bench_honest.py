"""The baselines and the sizes the benchmarks report are the ones docs/performance.md names:
sqlite3 with orjson, W1 at each size of its ladder, W5's three gradings, W10's second baseline
and its API-built size, W15's two memory figures (issue 24 items 6 and 8)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from bench import baselines, memory, queries
from bench.workloads import OPT_IN, SIZES, customer_docs, w1_single_adds, w5_regrade_all


def test_sqlite3_keeps_the_documents_as_orjson_writes_them(tmp_path: Path) -> None:
    docs = customer_docs(3)
    baselines.sqlite_autocommit_inserts(tmp_path / "a.sqlite", docs)
    with sqlite3.connect(tmp_path / "a.sqlite") as conn:
        stored = [r[0] for r in conn.execute("SELECT doc FROM docs ORDER BY id")]
    assert stored == [orjson.dumps(d).decode() for d in sorted(docs, key=lambda d: d["id"])]


def test_w1_reports_every_size_of_its_ladder(tmp_path: Path) -> None:
    results = w1_single_adds({"W1": 40, "W1_ladder": [20, 40]}, tmp_path)
    assert [(r.workload, r.sizes["customers"]) for r in results] == [
        ("W1", 20),
        ("W1-no-audit", 20),
        ("W1-retail", 20),
        ("W1", 40),
        ("W1-no-audit", 40),
        ("W1-retail", 40),
    ]
    for r in results:
        assert r.crmcore and set(r.baselines) == {"tinydb_caching", "sqlite_wal_autocommit_orjson"}
        assert r.extra["wall_adds_per_s"] > 0
    assert SIZES["full"]["W1_ladder"] == [1_000, 5_000, 20_000]


def test_w5_reports_first_grading_full_rebuild_and_nightly_apart(tmp_path: Path) -> None:
    results = w5_regrade_all({"W5_customers": 200, "W5_interactions": 1_000}, tmp_path)
    assert [r.workload for r in results] == ["W5-first", "W5-rebuild", "W5-nightly"]
    assert all(r.crmcore and r.crmcore > 0 for r in results)
    nightly = results[2].extra
    # the nightly run rebuilds the customers with new purchases, not everyone
    assert nightly["incremental"] and 0 < nightly["signals_rebuilt"] < 200


def test_w10_compares_with_records_built_and_a_store_built_through_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(queries.W10_SIZES, "quick", [40])
    monkeypatch.setitem(queries.W10_QUERIES, "quick", 2)
    results = queries.w10_queries({"W1": 300}, tmp_path)
    assert [(r.workload, r.extra["built"]) for r in results] == [
        ("W10-list", "loaded beneath the API"),
        ("W10-due", "loaded beneath the API"),
        ("W10-list", "built through the API"),
        ("W10-due", "built through the API"),
    ]
    for r in results:
        assert set(r.baselines) == {"sqlite3_orjson", "sqlite3_orjson_records"}
        assert r.crmcore and r.extra["store_ms"] > 0


def test_w15_measures_a_serving_process_and_one_holding_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "W15" in OPT_IN  # an hour at full size: only when named
    monkeypatch.setitem(memory.LADDER, "quick", [0.0002])
    (result,) = memory.w15_memory({"W1": 300}, tmp_path)
    sizes = result.sizes  # what the store holds: the stack may have made more tasks
    assert sizes["customers"] == 20 and sizes["interactions"] == 200 and sizes["tasks"] >= 40
    extra = result.extra
    assert not extra["serving_loaded_the_audit_trail"]
    # the serving figure is reported to 0.1 MB: compared with the peak rounded alike
    assert 0 < extra["serving_peak_rss_mb"] <= round(result.crmcore, 1)
    # one trail entry per transaction: at least one per customer added through the API
    assert extra["counts"]["audit"] >= extra["counts"]["customers"] > 0
    assert extra["counts"]["interactions"] >= 200
    # counted before the probe added its customer, broken down after
    assert extra["breakdown"]["customers"]["docs"] == extra["counts"]["customers"] + 1
