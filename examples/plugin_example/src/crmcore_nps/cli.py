"""``crm nps answer`` and ``crm nps report``."""

from __future__ import annotations

import click
from crmcore import Channel
from crmcore.cli.context import actor, as_json, open_crm_from, out_table, print_json, say

from crmcore_nps.score import category, parse_score
from crmcore_nps.surveys import build_report, record_answer


@click.group("nps")
def nps_group() -> None:
    """Net Promoter Score surveys: record answers, see the score."""


@nps_group.command("answer")
@click.argument("customer_id")
@click.argument("score")
@click.option("--comment", help="What the customer said (personal data).")
@click.option(
    "--channel",
    type=click.Choice([c.value for c in Channel]),
    default="other",
    show_default=True,
    help="How the answer came in.",
)
@click.pass_context
def answer(
    ctx: click.Context, customer_id: str, score: str, comment: str | None, channel: str
) -> None:
    """Record CUSTOMER_ID's answer SCORE (0-10); completes their open survey task."""
    value = parse_score(score)
    crm = open_crm_from(ctx)
    stored = record_answer(
        crm, customer_id, value, actor=actor(ctx), comment=comment, channel=channel
    )
    say(
        ctx,
        f"recorded NPS {value} ({category(value)}) for {customer_id}",
        id=stored.id,
        score=value,
        category=category(value),
        survey_task_id=stored.survey_task_id,
    )


@nps_group.command("report")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=36_525),
    help="Window in days (default: [nps] report_days).",
)
@click.pass_context
def report(ctx: click.Context, days: int | None) -> None:
    """NPS = % promoters - % detractors, with counts, for recent windows."""
    crm = open_crm_from(ctx)
    result = build_report(crm, crm.now(), days)
    rows = [
        {
            "window": label,
            "answers": r.answers,
            "promoters": r.promoters,
            "passives": r.passives,
            "detractors": r.detractors,
            "nps": None if r.nps is None else round(r.nps, 1),
        }
        for label, r in result.windows
    ]
    if as_json(ctx):
        print_json(
            ctx,
            {
                "windows": rows,
                "surveys_sent": result.surveys_sent,
                "surveys_answered": result.surveys_answered,
                "distribution": {str(k): v for k, v in result.distribution.items()},
            },
        )
        return
    out_table(
        ctx,
        rows,
        [
            ("window", "window"),
            ("answers", "answers"),
            ("promoters", "promoters (9-10)"),
            ("passives", "passives (7-8)"),
            ("detractors", "detractors (0-6)"),
            ("nps", "NPS"),
        ],
        title="Net Promoter Score",
    )
    rate = result.response_rate
    say(
        ctx,
        f"surveys sent in the last {result.days} days: {result.surveys_sent}, answered: "
        f"{result.surveys_answered}" + ("" if rate is None else f" ({rate:.0%})"),
    )
