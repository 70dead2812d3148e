"""W16 (bench/demo.py) times real ``crm demo`` processes and reports how a day's cost grows."""

from __future__ import annotations

from pathlib import Path

from bench.demo import w16_demo


def test_w16_runs_the_demo_as_started_at_each_size(tmp_path: Path) -> None:
    results = w16_demo({"W16_sizes": [(8, 2), (8, 4)]}, tmp_path)
    assert [r.sizes for r in results] == [{"customers": 8, "days": 2}, {"customers": 8, "days": 4}]
    for r in results:
        assert r.crmcore is not None and r.crmcore > 0
        assert r.extra["customers at the end"] >= 8  # the demo's own summary, parsed
        assert r.extra["CPU s per simulated day"] == round(r.crmcore / r.sizes["days"], 3)
    assert results[0].extra["per-day cost / the first size's"] == 1.0
    assert "CPU s per added day" not in results[0].extra
    added = (results[1].crmcore - results[0].crmcore) / 2
    assert results[1].extra["CPU s per added day"] == round(added, 3)
    assert (tmp_path / "demo-1" / "crm.toml").is_file()  # each size in its own folder
