"""Text the plugins write as data or raise as refusals, answered in the reader's language by
the JSON API (``?lang=`` or ``Accept-Language``) and in English otherwise: loyalty's ledger
notes and refusals, a task's cancel reason."""

from __future__ import annotations

import pytest

pytest.importorskip("crmcore_loyalty")


def test_ledger_notes_refusals_and_cancel_reasons_in_the_readers_language(web_for):
    from crmcore_loyalty.api import Loyalty

    web = web_for(("web", "loyalty", "followup"))
    crm, client, admin = web.crm, web.client, web.as_["admin"]
    referrer = web.customer("Li Wei", owner="ann")
    friend = web.customer("Wang Fang", owner="ann")
    loyalty = Loyalty.of(crm)
    loyalty.link(friend["id"], loyalty.referral_code(referrer["id"], actor="admin"), actor="admin")
    crm.interactions.log(actor="ann", customer_id=friend["id"], kind="purchase", amount=200)

    history = f"/api/v1/loyalty/accounts/{friend['id']}/history"
    notes = [e["note"] for e in client.get(history, headers=admin).json()]
    assert "welcome reward for coming through a referral" in notes
    chinese = client.get(history, params={"lang": "zh_CN"}, headers=admin).json()
    assert "经推荐加入的欢迎奖励" in [e["note"] for e in chinese]
    zh_header = {**admin, "Accept-Language": "zh-CN"}
    assert "经推荐加入的欢迎奖励" in [
        e["note"] for e in client.get(history, headers=zh_header).json()
    ]

    redeem = f"/api/v1/loyalty/accounts/{friend['id']}/redeem"
    refused = client.post(redeem, json={"points": 10**6}, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("cannot redeem 1000000 points")
    refused = client.post(redeem, json={"points": 10**6}, params={"lang": "zh_CN"}, headers=admin)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "points"
    assert refused.json()["error"]["message"].startswith("无法兑换 1000000 积分")

    # a merge cancels the duplicate's de-duplicated tasks (its first contact), saying why
    duplicate = web.customer("Li Wei (2)", owner="ann")
    crm.customers.merge(referrer["id"], duplicate["id"], actor="admin")
    [cancelled] = [t for t in crm.tasks.find({"status": "cancelled"}) if t.outcome]
    task = f"/api/v1/tasks/{cancelled.id}"
    assert client.get(task, headers=admin).json()["outcome"] == "merged into another customer"
    zh = client.get(task, params={"lang": "zh_CN"}, headers=admin).json()
    assert zh["outcome"] == "已合并到另一位客户"


def test_a_deleted_referrer_is_labelled_in_the_readers_language(make_crm):
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.reporting import referrer_names

    from crmcore import i18n

    crm = make_crm(["loyalty"])
    [label] = referrer_names(Loyalty.of(crm), ["cus_gone00123456"]).values()
    assert label == "(deleted customer 123456)"
    chinese = i18n.translate(label, i18n.translations("zh_CN", crm.plugins).gettext)
    assert chinese == "（已删除的客户 123456）"  # noqa: RUF001 (full-width brackets)
