"""The hooks use one ``Engine`` per CRM, kept in ``crm.stash``, not one per call."""

from __future__ import annotations

from crmcore_followup.engine import Engine


def test_hooks_build_the_engine_once_per_crm(fu, monkeypatch):
    built = []
    real_init = Engine.__init__

    def counting(self, crm):
        built.append(crm)
        real_init(self, crm)

    monkeypatch.setattr(Engine, "__init__", counting)
    crm = fu()
    cid = crm.customers.add(actor="ann", name="Li").id
    crm.interactions.log(actor="ann", customer_id=cid, kind="follow_up", summary="hi")
    crm.tick("w1")
    crm.tick("w1")
    assert built == [crm]
    assert Engine.of(crm) is Engine.of(crm)
