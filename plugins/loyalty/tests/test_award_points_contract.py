"""The ``crm_award_points`` contract: loyalty credits points another plugin asks for, once
per source, and says so (other plugins call the hook; none imports loyalty)."""

from __future__ import annotations

from crmcore_loyalty.api import Loyalty

from crmcore.testing.factories import make_test_crm


def test_loyalty_answers_the_award_points_contract():
    crm = make_test_crm(["loyalty"])
    try:
        cid = crm.customers.add(actor="ann", name="Li", phone="+86 138 0013 8000").id
        hook = crm.plugins.crm_award_points
        entry = hook(
            crm=crm, customer_id=cid, points=30, source="care:x:1", reason="care_offer", actor="ann"
        )
        assert entry and Loyalty(crm).balance(cid) == 30
        again = hook(
            crm=crm, customer_id=cid, points=30, source="care:x:1", reason="care_offer", actor="ann"
        )
        assert again == "" and Loyalty(crm).balance(cid) == 30
    finally:
        crm.close()
