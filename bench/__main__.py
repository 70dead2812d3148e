"""``python -m bench [--quick] [--only W1,W3] [--output bench/results.json]``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import cpu_note
from bench.workloads import ALL, OPT_IN, run_all
from crmcore.logs import configure_logging


def _short(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: proves it runs")
    parser.add_argument(
        "--only",
        default=",".join(n for n in ALL if n not in OPT_IN),
        help=f"comma-separated workloads (default: all but {', '.join(sorted(OPT_IN))})",
    )
    parser.add_argument("--output", default=str(Path(__file__).parent / "results.json"))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(
            f"error: unknown workload(s) {', '.join(unknown)} (known: {', '.join(ALL)})",
            file=sys.stderr,
        )
        return 2
    configure_logging("warning")
    started = time.perf_counter()
    results = run_all(names, args.quick)
    table = Table(
        title="crmcore benchmarks" + (" (quick sizes)" if args.quick else ""), header_style="bold"
    )
    for column in (
        "workload",
        "sizes",
        "crmcore",
        "baselines",
        "ratios (>1: crmcore better)",
        "note",
    ):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(
            r.workload,
            ", ".join(f"{k}={v:,}" for k, v in r.sizes.items()),
            "-" if r.crmcore is None else f"{r.crmcore:,.2f} {r.unit}",
            "\n".join(f"{k}: {v:,.2f}" for k, v in r.baselines.items()),
            "\n".join(f"{k}: {v:.2f}x" for k, v in r.ratios.items()),
            "; ".join(filter(None, [r.note, *(f"{k}={_short(v)}" for k, v in r.extra.items())])),
        )
    Console(width=160).print(table)
    payload = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": cpu_note(),
        },
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "results": [r.as_dict() for r in results],
    }
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
