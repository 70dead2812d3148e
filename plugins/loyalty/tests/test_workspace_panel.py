"""Loyalty in the workspace: the panel names referrers and referred customers, the tier
badge, and a complete catalog."""

from __future__ import annotations

from pathlib import Path

import crmcore_loyalty
from crmcore_loyalty import web
from crmcore_loyalty.api import Loyalty
from crmcore_loyalty.plugin import crm_customers_badges

from crmcore.i18n_catalogs import problems


def test_the_panel_names_both_sides_of_a_referral(make_crm):
    crm = make_crm(plugins=["loyalty"])
    old = crm.customers.add(actor="system", name="Old Friend")
    new = crm.customers.add(actor="system", name="New Friend")
    loyalty = Loyalty(crm)
    loyalty.link(new.id, loyalty.referral_code(old.id, actor="system"), actor="system")
    theirs = web.panel(_Request(crm), old)
    assert [(r["id"], r["name"]) for r in theirs.context["referrals"]] == [(new.id, "New Friend")]
    assert theirs.context["referred_by"] is None
    mine = web.panel(_Request(crm), new)
    assert mine.context["referred_by"] == {"id": old.id, "name": "Old Friend"}
    assert web.badges(crm, new) == []  # no tier yet


class _Request:
    def __init__(self, crm):
        self.crm = crm


def test_the_loyalty_catalog_is_complete():
    package = Path(crmcore_loyalty.__file__).parent
    assert (
        problems(package, package / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore_loyalty.po") == []
    )


def test_the_workspace_hooks_answer(make_crm):
    from crmcore import i18n

    crm = make_crm(plugins=["loyalty"])
    customer = crm.customers.add(actor="system", name="Li")
    [panel] = crm.plugins.flat("crm_customer_panels", crm=crm)
    assert panel.name == "loyalty" and panel.render(_Request(crm), customer) is not None
    assert crm.plugins.flat("crm_customer_badges", crm=crm, customer=customer) == []
    [folder] = crm.plugins.flat("crm_web_templates")
    assert (Path(folder.path) / "loyalty" / "panel.html").is_file()
    assert i18n.gettext("zh_CN", crm.plugins)("Loyalty and referrals") == "会员积分与推荐"


def test_the_tier_badge_follows_the_account_without_reading_the_ledger(kit_for, monkeypatch):
    # a list page asks every row's badges: the badge reads the tier the account mirrors on
    # the customer, never the ledger or the purchases (issue 21)
    levels = [{"name": "silver", "threshold": 100}, {"name": "gold", "threshold": 500}]
    kit = kit_for({"asks": {"enabled": False}, "tiers": {"basis": "spend", "levels": levels}})
    plain, silver, gold = kit.customer("Plain"), kit.customer("Silver"), kit.customer("Gold")
    kit.buy(plain, 20)
    kit.buy(silver, 150)
    kit.buy(gold, 600)
    loyalty = Loyalty(kit.crm)

    def no_reads(*args, **kwargs):
        raise AssertionError("the badge read the ledger")

    accounts = {c.id: loyalty.account(c.id).tier for c in (plain, silver, gold)}
    assert accounts == {plain.id: None, silver.id: "silver", gold.id: "gold"}
    monkeypatch.setattr(type(loyalty.ledger), "state", no_reads)
    monkeypatch.setattr(kit.crm.interactions, "for_customer", no_reads)
    for c in (plain, silver, gold):
        marks = web.badges(kit.crm, kit.crm.customers.get(c.id))
        assert [m.value for m in marks] == ([accounts[c.id]] if accounts[c.id] else [])
    # a queue's rows at once (one call for the page): the same marks
    rows = [kit.crm.customers.get(c.id) for c in (plain, silver, gold)]
    batch = crm_customers_badges(kit.crm, rows)
    assert batch == {c.id: web.badges(kit.crm, c) for c in rows}
