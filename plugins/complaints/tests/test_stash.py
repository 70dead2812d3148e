"""The hooks use one ``Complaints`` per CRM, kept in ``crm.stash``, not one per call."""

from __future__ import annotations

from crmcore_complaints.api import Complaints


def test_hooks_build_the_api_once_per_crm(make_crm, customer_id, monkeypatch):
    built = []
    real_init = Complaints.__init__

    def counting(self, crm):
        built.append(crm)
        real_init(self, crm)

    monkeypatch.setattr(Complaints, "__init__", counting)
    crm = make_crm(["complaints"])
    cid = customer_id(crm, "Li")
    crm.interactions.log(actor="ann", customer_id=cid, kind="complaint", summary="late")
    crm.tick("w1")
    crm.tick("w1")
    assert built == [crm]
    assert Complaints.of(crm) is Complaints.of(crm)
    other = make_crm(["complaints"])
    assert Complaints.of(other) is not Complaints.of(crm)
