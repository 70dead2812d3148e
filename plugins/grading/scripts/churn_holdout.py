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

Nothing is fetched from the network: the data set is a file inside the package.
"""

from __future__ import annotations

import sys
import warnings
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from crmcore_grading import api as grading

from crmcore.clock import ManualClock
from crmcore.converter import to_doc
from crmcore.testing import make_test_crm

START = date(1997, 1, 1)
WEEKS = 39
LEVEL = {"none": 0, "low": 1, "medium": 2, "high": 3}


def load() -> list[tuple[str, date, float]]:
    """(customer, day, amount) rows of the CDNOW sample."""
    from lifetimes.datasets import load_dataset

    frame = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+")
    return [(str(row[0]), datetime.strptime(str(row[2]), "%Y%m%d").date(), float(row[4]))
            for row in frame.itertuples(index=False)]


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


def grade(rows: list[tuple[str, date, float]], cut: date) -> dict[str, tuple[str, bool, tuple]]:
    """customer → (churn level, watched, reasons) as grading stores them at ``cut``."""
    clock = ManualClock(datetime.combine(cut, datetime.min.time(), tzinfo=UTC))
    crm = make_test_crm(["grading"], settings={"grading": {"schemes": ["pyramid"]}},
                        clock=clock)
    ids: dict[str, str] = {}
    for key in sorted({r[0] for r in rows}):
        ids[key] = crm.customers.add(actor="import", name=f"CDNOW {key}").id
    docs = []
    for key, day, amount in rows:
        if day >= cut:
            continue
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        interaction = crm.interactions.validate(customer_id=ids[key], kind="purchase",
                                                occurred_at=at, amount=amount)
        docs.append(to_doc(interaction))
    crm.collection("interactions").insert_many(docs)
    grading.grade_all(crm, actor="measure", rebuild=True)
    out = {}
    for key, cid in ids.items():
        stored = grading.current(crm, cid)
        tier = stored.grades.get("pyramid")
        watched = tier in crm.settings("grading").churn.valuable.get("pyramid", [])
        out[key] = (stored.churn_level, watched, stored.churn_reasons)
    crm.close()
    return out


def bgnbd(rows: list[tuple[str, date, float]], cut: date) -> dict[str, float]:
    """customer → risk from a BG/NBD model fitted on calibration: minus the purchases it
    expects in the holdout (P(alive) alone ranks one-time buyers as surely alive)."""
    import pandas as pd
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    frame = pd.DataFrame([(k, d) for k, d, _a in rows if d < cut], columns=["id", "date"])
    summary = summary_data_from_transaction_data(frame, "id", "date", freq="D",
                                                 observation_period_end=cut - timedelta(days=1))
    model = BetaGeoFitter(penalizer_coef=0.0)
    model.fit(summary["frequency"], summary["recency"], summary["T"])
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        WEEKS * 7, summary["frequency"], summary["recency"], summary["T"])
    return {str(k): -float(e) for k, e in zip(summary.index, expected, strict=True)}


def main() -> None:
    warnings.simplefilter("ignore")
    rows = load()
    cut = START + timedelta(weeks=WEEKS)
    end = cut + timedelta(weeks=WEEKS)
    bought_later = defaultdict(bool)
    for key, day, _amount in rows:
        if cut <= day < end:
            bought_later[key] = True
    buyers = sorted({k for k, d, _a in rows if d < cut})
    ours = grade(rows, cut)
    theirs = bgnbd(rows, cut)
    for label, group in (("watched", [k for k in buyers if ours[k][1]]), ("all", buyers)):
        churned = [not bought_later[k] for k in group]
        rule = auc([LEVEL[ours[k][0]] for k in group], churned)
        model = auc([theirs[k] for k in group], churned)
        print(f"{label:8} customers {len(group):5}  no purchase in holdout "
              f"{sum(churned) / len(group):.1%}  AUC rule {rule:.3f}  BG/NBD {model:.3f}")


if __name__ == "__main__":
    sys.exit(main())
