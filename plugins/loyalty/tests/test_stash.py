"""The hooks use one ``Loyalty`` per CRM, kept in ``crm.stash``, not one per call."""

from __future__ import annotations

from crmcore_loyalty.api import Loyalty


def test_hooks_build_the_api_once_per_crm(make_crm, monkeypatch):
    built = []
    real_init = Loyalty.__init__

    def counting(self, crm):
        built.append(crm)
        real_init(self, crm)

    monkeypatch.setattr(Loyalty, "__init__", counting)
    crm = make_crm(["loyalty"])
    cid = crm.customers.add(actor="ann", name="Li").id
    for amount in (10.0, 20.0):
        crm.interactions.log(actor="ann", customer_id=cid, kind="purchase", amount=amount)
    crm.tick("w1")
    assert built == [crm]
    assert Loyalty.of(crm) is Loyalty.of(crm)
