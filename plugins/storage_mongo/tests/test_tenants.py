"""Tenants: one deployment serves several client companies, each in a database of its own.

Why a database per tenant rather than a ``tenant`` field on every document (docs/scaling.md has
the long form): isolation holds by construction (no query can forget a tenant filter, no index
can miss the tenant prefix); a tenant is backed up, restored, moved to another cluster or erased
as one database; unique keys (one customer per phone number) are per tenant for free. The cost
is a few files per collection and index per tenant, fine for the tens to hundreds of client
companies a CRM deployment serves; thousands of tiny tenants would want the field instead.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmcore.errors import DuplicateKeyError, NotFoundError
from crmcore.storage import IndexSpec

MOCK = "mongodb://127.0.0.1:27017"


def test_two_tenants_on_one_server_cannot_see_each_others_data(open_mock):
    acme = open_mock(tenant="acme")
    globex = open_mock(tenant="globex")
    assert acme.client is globex.client  # one deployment, one connection pool
    for store, who in ((acme, "acme"), (globex, "globex")):
        coll = store.collection("customers")
        coll.ensure_index(IndexSpec([("email", 1)], unique=True, sparse=True))
        coll.insert({"id": "c1", "owner": who, "email": "same@example.com"})
        store.collection(f"only_{who}").insert({"id": "x"})

    assert acme.collection("customers").get("c1")["owner"] == "acme"
    assert globex.collection("customers").get("c1")["owner"] == "globex"
    assert acme.collection("customers").find({"owner": "globex"}) == []
    assert globex.collection("customers").count({"owner": "acme"}) == 0
    assert "only_globex" not in acme.collection_names()
    assert "only_acme" not in globex.collection_names()

    # writes in one tenant never reach the other
    acme.collection("customers").update("c1", {"name": "A"}, expected_version=1)
    globex.collection("customers").delete("c1")
    assert acme.collection("customers").get("c1")["name"] == "A"
    with pytest.raises(NotFoundError):
        globex.collection("customers").get("c1")
    # unique keys are per tenant: the same e-mail is taken again only within one tenant
    with pytest.raises(DuplicateKeyError):
        acme.collection("customers").insert({"id": "c2", "email": "same@example.com"})
    globex.collection("customers").insert({"id": "c2", "email": "same@example.com"})

    assert {acme.database_name, globex.database_name} == {"crm__acme", "crm__globex"}
    assert {"crm__acme", "crm__globex"} <= set(acme.client.list_database_names())


def test_a_store_without_a_tenant_is_a_third_separate_database(open_mock):
    plain = open_mock()
    acme = open_mock(tenant="acme")
    plain.collection("t").insert({"id": "1"})
    assert acme.collection("t").count() == 0
    assert plain.database_name == "crm"


def test_two_tenant_crms_on_one_deployment_are_isolated(make_crm, use_mongomock, clock):
    def crm_for(tenant: str):
        return make_crm(
            ["storage_mongo"],
            core={"unique_phone": True},
            storage={"backend": "mongodb", "location": MOCK, "options": {"tenant": tenant}},
        )

    acme, globex = crm_for("acme"), crm_for("globex")
    a = acme.customers.add(actor="rep", name="Ann", phone="+86 138 0000 0001")
    g = globex.customers.add(actor="rep", name="Gus", phone="+86 138 0000 0001")  # same phone
    acme.interactions.log(actor="rep", customer_id=a.id, kind="purchase", amount=10)
    acme.tasks.create(
        actor="rep", kind="callback", title="call Ann", due_at=clock.now(), customer_id=a.id
    )

    assert [c.id for c in acme.customers.find_by_contact(phone="+8613800000001")] == [a.id]
    assert [c.id for c in globex.customers.find_by_contact(phone="+8613800000001")] == [g.id]
    with pytest.raises(NotFoundError):
        globex.customers.get(a.id)
    assert globex.interactions.count() == 0 and globex.tasks.count() == 0
    assert globex.tasks.claim(worker="w", lease=timedelta(minutes=1)) is None
    assert acme.tasks.claim(worker="w", lease=timedelta(minutes=1))
