"""Loyalty in the workspace: the panel names referrers and referred customers, the tier
badge, and a complete catalog."""

from __future__ import annotations

from pathlib import Path

import crmcore_loyalty
from crmcore_loyalty import web
from crmcore_loyalty.api import Loyalty

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
