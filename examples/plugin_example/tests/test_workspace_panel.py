"""A third party's panel in the workspace: installed by entry point, rendered on the customer
page by the web plugin (which the nps plugin never imports), translated from its own catalog."""

import re
import warnings
from pathlib import Path

import pytest
from crmcore.i18n_catalogs import problems

import crmcore_nps
from crmcore_nps import record_answer


def test_the_nps_panel_shows_on_the_customer_page(make_crm):
    web = pytest.importorskip("crmcore_web")
    from crmcore_web.users import Users

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    crm = make_crm(
        ["nps", "web"],
        settings={
            "security": {
                "enforce": True,
                "actors": {"ann": {"role": "agent"}, "admin": {"role": "admin"}},
            }
        },
    )
    customer = crm.customers.add(actor="admin", name="Li Lei", owner="ann")
    quiet = crm.customers.add(actor="admin", name="Never Asked", owner="ann")
    record_answer(crm, customer.id, 3, actor="admin", comment="slow delivery")
    Users(crm).add("ann", "correct horse battery", actor="admin")
    with TestClient(web.create_app(crm), headers={"Accept-Language": "en"}) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post(
            "/login",
            data={"username": "ann", "password": "correct horse battery", "csrf_token": token},
        )
        html = client.get(f"/customers/{customer.id}").text
        panel = re.search(r'data-panel="nps".*?</section>', html, re.S).group(0)
        assert "Would they recommend us?" in panel
        assert "3/10" in panel and "detractor" in panel and "slow delivery" in panel
        assert 'data-panel="nps"' not in client.get(f"/customers/{quiet.id}").text
        chinese = client.get(f"/customers/{customer.id}", headers={"Accept-Language": "zh-CN"}).text
        assert "客户会推荐我们吗" in chinese and "贬损者" in chinese


def test_the_nps_catalog_is_complete():
    package = Path(crmcore_nps.__file__).parent
    assert problems(package, package / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore_nps.po") == []
