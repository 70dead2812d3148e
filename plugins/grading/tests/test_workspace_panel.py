"""Grading in the workspace: badges for queues, the customer-page panel, a complete catalog."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import crmcore_grading
from crmcore_grading import web
from crmcore_grading.plugin import crm_customer_panels

from crmcore.i18n_catalogs import problems


def test_badges_rank_the_pipeline_grade_a_first(make_crm):
    crm = make_crm(plugins=["grading"])
    a = crm.customers.add(
        actor="system",
        name="A",
        ext={
            "grading": {
                "grades": {"pipeline": "A", "pyramid": "vip"},
                "reasons": {"pipeline": "soon"},
            }
        },
    )
    d = crm.customers.add(actor="system", name="D", ext={"grading": {"grades": {"pipeline": "D"}}})
    first, tier = web.badges(a)
    assert (first.value, first.reason, tier.value) == ("A", "soon", "vip")
    assert first.rank < web.badges(d)[0].rank
    assert web.badges(crm.customers.add(actor="system", name="none")) == []
    # a queue asks for its rows' badges at once: the same marks, one call for the page
    none = crm.customers.find({"name": "none"})[0]
    batch = crm.plugins.crm_customers_badges(crm=crm, customers=[a, d, none])
    assert batch == {a.id: web.badges(a), d.id: web.badges(d), none.id: []}


def test_the_panel_shows_grades_with_reasons_and_the_churn_risk(make_crm):
    crm = make_crm(plugins=["grading"])
    customer = crm.customers.add(
        actor="system",
        name="X",
        ext={
            "grading": {
                "grades": {"rfm": "loyal", "pipeline": "B"},
                "reasons": {"pipeline": "clear need"},
                "churn": {"level": "high", "reasons": ["no purchase in 90 days"]},
            }
        },
    )
    result = web.panel(SimpleNamespace(crm=crm), customer)  # type: ignore[arg-type]
    assert result is not None and result.template == "grading/panel.html"
    assert [r["grade"] for r in result.context["grades"]] == ["B", "loyal"]  # pipeline first
    assert result.context["churn_reasons"] == ["no purchase in 90 days"]
    empty = crm.customers.add(actor="system", name="Y")
    assert web.panel(SimpleNamespace(crm=crm), empty) is None  # type: ignore[arg-type]
    assert [p.name for p in crm_customer_panels(crm)] == ["grading"]


def test_the_grading_catalog_is_complete():
    package = Path(crmcore_grading.__file__).parent
    assert (
        problems(package, package / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore_grading.po") == []
    )
