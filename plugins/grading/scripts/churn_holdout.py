"""Measure the churn-risk ranking on a real purchase history (calibration / holdout).

The CDNOW sample shipped inside the ``lifetimes`` package (2,357 customers' CD purchases,
January 1997 to June 1998) is split at 39 weeks: the first 39 weeks are the calibration
period, the next 39 the holdout. Every calibration purchase is loaded into an in-memory CRM
with the grading plugin (pyramid tiers and the churn watch as shipped), graded as of the end
of calibration, and the AUC of the churn-risk level for "no purchase in the holdout" is
computed among the watched customers (a valuable tier) and among all buyers. A BG/NBD model
fitted by ``lifetimes`` on the same calibration data gives the comparison (risk = minus the
purchases it expects in the holdout).

    .venv/bin/pip install lifetimes      # only for this measurement
    .venv/bin/python plugins/grading/scripts/churn_holdout.py

Each split is also measured on the customers with even and with odd ids apart: the rule's
form and thresholds were chosen on the even ids of the 39-week split, so the odd ids and the
26 + 26-week split are data they were not tuned on. ``--weeks 26`` measures one split only;
``--set key=value`` overrides a ``[grading.churn]`` setting (``--set pace_low=1.5``).
``--data master`` measures on the full CDNOW history (also inside ``lifetimes``) without the
sample's customers: 21,213 customers none of the rule's choices saw (about two minutes).

Nothing is fetched from the network: the data set is a file inside the package.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from crmcore_grading import api as grading
from crmcore_grading.churn import pace, rank
from crmcore_grading.signals import Signals

from crmcore.clock import ManualClock
from crmcore.converter import to_doc
from crmcore.testing import make_test_crm

START = date(1997, 1, 1)
WEEKS = 39
SPLITS = (39, 26)  # weeks of calibration, and as many of holdout


def load(data: str = "sample") -> list[tuple[str, date, float]]:
    """(customer, day, amount) rows of the CDNOW sample, or (``data="master"``) of the full
    CDNOW history without the sample's customers: 21,213 customers the rule was never tuned
    on, ten times the sample, so differences of 0.01 in AUC stand out from the noise."""
    from lifetimes.datasets import load_dataset

    sample = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+")
    if data == "sample":
        return [
            (str(row[0]), datetime.strptime(str(row[2]), "%Y%m%d").date(), float(row[4]))
            for row in sample.itertuples(index=False)
        ]
    if data != "master":
        raise ValueError(f"data is 'sample' or 'master', not {data!r}")
    tuned = {int(row[0]) for row in sample.itertuples(index=False)}  # master ids
    master = load_dataset("CDNOW_master.txt", header=0, sep=r"\s+")
    return [
        (str(row[0]), datetime.strptime(str(row[1]), "%Y%m%d").date(), float(row[3]))
        for row in master.itertuples(index=False)
        if int(row[0]) not in tuned
    ]


def auc(scores: list[float], labels: list[bool]) -> float:
    """Mann-Whitney AUC: the chance a churner (label True) scores above a stayer (ties 1/2)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    ranked = sorted((s, i) for i, s in enumerate(pos + neg))
    ranks = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2 + 1
        i = j + 1
    pos_ranks = sum(ranks[: len(pos)])
    return (pos_ranks - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def grade(
    rows: list[tuple[str, date, float]], cut: date, churn: dict[str, object] | None = None
) -> dict[str, tuple[str, bool, tuple, float]]:
    """customer → (churn level, watched, reasons, score) as grading stores them at ``cut``;
    the score ranks as the churn watch does: by level, then fewest purchases expected at the
    customer's pace (``churn.pace``)."""
    clock = ManualClock(datetime.combine(cut, datetime.min.time(), tzinfo=UTC))
    settings: dict[str, object] = {"schemes": ["pyramid"]}
    if churn:
        settings["churn"] = churn
    crm = make_test_crm(["grading"], settings={"grading": settings}, clock=clock)
    ids: dict[str, str] = {}
    for key in sorted({r[0] for r in rows}):
        ids[key] = crm.customers.add(actor="import", name=f"CDNOW {key}").id
    docs = []
    for key, day, amount in rows:
        if day >= cut:
            continue
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        interaction = crm.interactions.validate(
            customer_id=ids[key], kind="purchase", occurred_at=at, amount=amount
        )
        docs.append(to_doc(interaction))
    crm.collection("interactions").insert_many(docs)
    grading.grade_all(crm, actor="measure", rebuild=True)
    c = crm.settings("grading").churn
    out = {}
    for key, cid in ids.items():
        stored = grading.current(crm, cid)
        tier = stored.grades.get("pyramid")
        watched = tier in c.valuable.get("pyramid", [])
        signals = crm.customers.get(cid).ext["grading"].get("signals") or {}
        p = pace(Signals(signals), cut.isoformat(), c)
        expected = p.expected if p is not None else 0.0
        score = rank(stored.churn_level) * 1e6 - expected
        out[key] = (stored.churn_level, watched, stored.churn_reasons, score)
    crm.close()
    return out


def bgnbd(rows: list[tuple[str, date, float]], cut: date, weeks: int = WEEKS) -> dict[str, float]:
    """customer → risk from a BG/NBD model fitted on calibration: minus the purchases it
    expects in the holdout (P(alive) alone ranks one-time buyers as surely alive)."""
    import pandas as pd
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    frame = pd.DataFrame([(k, d) for k, d, _a in rows if d < cut], columns=["id", "date"])
    summary = summary_data_from_transaction_data(
        frame, "id", "date", freq="D", observation_period_end=cut - timedelta(days=1)
    )
    model = BetaGeoFitter(penalizer_coef=0.0)
    model.fit(summary["frequency"], summary["recency"], summary["T"])
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        weeks * 7, summary["frequency"], summary["recency"], summary["T"]
    )
    return {str(k): -float(e) for k, e in zip(summary.index, expected, strict=True)}


def measure(
    rows: list[tuple[str, date, float]], weeks: int, churn: dict[str, object] | None = None
) -> list[dict[str, object]]:
    """AUCs of one split: per group (watched, all buyers) and ids (even, odd, all)."""
    cut = START + timedelta(weeks=weeks)
    end = cut + timedelta(weeks=weeks)
    bought_later: defaultdict[str, bool] = defaultdict(bool)
    for key, day, _amount in rows:
        if cut <= day < end:
            bought_later[key] = True
    buyers = sorted({k for k, d, _a in rows if d < cut})
    ours = grade(rows, cut, churn)
    theirs = bgnbd(rows, cut, weeks)
    out: list[dict[str, object]] = []
    for group, members in (("watched", [k for k in buyers if ours[k][1]]), ("all", buyers)):
        for ids in ("even", "odd", "all"):
            keys = [k for k in members if ids == "all" or (int(k) % 2 == 0) == (ids == "even")]
            churned = [not bought_later[k] for k in keys]
            out.append(
                {
                    "weeks": weeks,
                    "group": group,
                    "ids": ids,
                    "customers": len(keys),
                    "churned": sum(churned) / len(keys),
                    "level": auc([float(rank(ours[k][0])) for k in keys], churned),
                    "rule": auc([ours[k][3] for k in keys], churned),
                    "bgnbd": auc([theirs[k] for k in keys], churned),
                }
            )
    return out


def _value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, action="append", help="39 and 26 if not given")
    parser.add_argument(
        "--data",
        choices=("sample", "master"),
        default="sample",
        help="the CDNOW sample (2,357 customers), or the full history without them (21,213)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a [grading.churn] setting"
    )
    args = parser.parse_args(argv)
    churn = {k: _value(v) for k, _, v in (item.partition("=") for item in args.set)}
    warnings.simplefilter("ignore")
    rows = load(args.data)
    print("weeks group   ids  customers churned  AUC level  level+pace  BG/NBD")
    for weeks in args.weeks or SPLITS:
        for r in measure(rows, weeks, churn):
            print(
                f"{r['weeks']:5} {r['group']:7} {r['ids']:4} {r['customers']:9} "
                f"{r['churned']:7.1%} {r['level']:10.3f} {r['rule']:11.3f} "
                f"{r['bgnbd']:7.3f}"
            )


if __name__ == "__main__":
    sys.exit(main())
