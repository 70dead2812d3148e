"""The service panel on the workspace's customer page: the customer's open orders."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from crmcore_service.web_panel import customer_panel, panels

from crmcore.i18n_catalogs import problems


def test_the_panel_lists_the_customers_open_orders_only(setup, customer_id):
    crm, api = setup()
    cid = customer_id(crm)
    other = customer_id(crm, name="Wang Fang", phone="+86 139 0013 9000")
    order = api.open(actor="ann", type="fault", customer_id=cid, fields={"symptom": "no signal"})
    api.open(actor="ann", type="fault", customer_id=other, fields={"symptom": "slow"})
    request = SimpleNamespace(crm=crm, actor="ann", now=crm.now())
    customer = crm.customers.get(cid)
    rendered = customer_panel(request, customer)
    assert rendered is not None and rendered.template == "service/panel.html"
    assert [o.id for o in rendered.context["orders"]] == [order.id]
    assert rendered.context["titles"]["fault"] == api.order_type("fault").title
    nobody = crm.customers.add(actor="ann", name="Zhou Min")
    assert customer_panel(request, nobody) is None
    [panel] = panels()
    assert panel.name == "service" and str(panel.title) == "Service orders"


def test_the_catalog_is_complete():
    source = Path(__import__("crmcore_service").__file__).parent
    assert problems(source, source / "locale/zh_CN/LC_MESSAGES/crmcore_service.po") == []
