"""The loyalty tiers section under ``crm report --since/--until/--team/--rep``: customers per
tier as of the window's end, for its team or rep (by owner), and the tiers reached in its
period."""

from __future__ import annotations

from datetime import timedelta

from crmcore import ReportWindow
from crmcore.report import build_report
from crmcore.testing import START

SECURITY = {
    "actors": {"ann": {"role": "agent", "team": "north"}, "cy": {"role": "agent", "team": "south"}}
}
DAY = timedelta(days=1)


def tiers(crm, window):
    [section] = [s for s in build_report(crm, window=window) if s.title == "Loyalty tiers"]
    return {row[0]: row[1:] for row in section.rows}, section


def test_loyalty_tiers_follow_the_window(make_crm, clock):
    crm = make_crm(
        ["loyalty"], settings={"loyalty": {"asks": {"enabled": False}}, "security": SECURITY}
    )

    def customer(name, owner):
        return crm.customers.add(actor="t", name=name, owner=owner).id

    def buy(cid, amount):
        crm.interactions.log(actor="t", customer_id=cid, kind="purchase", amount=amount)

    ann_client, cy_client = customer("Ann's", "ann"), customer("Cy's", "cy")
    buy(ann_client, 2500.0)  # gold from day 0
    clock.advance(days=10)
    buy(cy_client, 600.0)  # silver from day 10
    clock.advance(days=10)
    late_client = customer("New", "cy")  # a customer from day 20

    early, section = tiers(crm, ReportWindow(since=START, until=START + 5 * DAY))
    # as of day 5: Ann's client gold (reached in the period); Cy's client's silver began on
    # day 10, after the window's end, and the tier before it is not kept: counted apart
    assert (early["gold"], early["silver"], early["(no tier)"]) == (
        (1, "50.0%", 1),
        (0, "0.0%", 0),
        (0, "0.0%", ""),
    )
    assert early["(tier changed after the window's end)"] == (1, "50.0%", "")
    assert section.columns[-1] == "reached in the period"
    assert "as of 2026-01-10 09:00" in section.note
    later, _ = tiers(crm, ReportWindow(since=START + 5 * DAY))
    assert (later["gold"], later["silver"], later["(no tier)"]) == (
        (1, "33.3%", 0),
        (1, "33.3%", 1),
        (1, "33.3%", ""),
    )
    south, section = tiers(crm, ReportWindow(team="south"))
    assert (south["gold"], south["silver"], south["(no tier)"]) == (
        (0, "0.0%"),
        (1, "50.0%"),
        (1, "50.0%"),
    )
    assert section.columns == ("tier", "customers", "share")  # no period: the state now
    assert "team south, now" in section.note
    assert late_client
    # a tier that began after the window's end is counted apart (the earlier one is not kept)
    clock.advance(days=1)
    buy(cy_client, 1500.0)  # gold now, since day 21
    before, _ = tiers(crm, ReportWindow(rep="cy", until=START + 15 * DAY))
    assert before["(tier changed after the window's end)"][0] == 1
    assert before["silver"][0] == 0 and before["(no tier)"][0] == 0
