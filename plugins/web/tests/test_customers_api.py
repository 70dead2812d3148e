"""Customers over HTTP: search, filters, get, create, update with If-Match, merge, forget."""

from __future__ import annotations

import pytest

from crmcore.converter import to_doc

BASE = "/api/v1/customers"


@pytest.mark.api_covers("POST", "/customers")
def test_create_answers_201_with_the_stored_customer_and_its_version(web):
    answer = web.client.post(
        BASE,
        headers=web.as_["ann"],
        json={
            "name": "王芳",
            "phone": "138 0013 8000",
            "tags": ["vip"],
            "birth_date": "1990-02-01",
        },
    )
    assert answer.status_code == 201
    body = answer.json()
    stored = web.crm.customers.get(body["id"])
    assert body == to_doc(stored)
    assert stored.name == "王芳" and stored.phone.endswith("13800138000")
    assert stored.tags == ("vip",) and stored.birth_date.isoformat() == "1990-02-01"
    assert stored.created_by == "ann"  # the key's actor, not a header
    assert answer.headers["etag"] == f'"{stored.version}"'


@pytest.mark.api_covers("POST", "/customers")
def test_no_header_chooses_the_actor(web):
    answer = web.client.post(
        BASE, headers={**web.as_["ann"], "X-Actor": "system"}, json={"name": "Li"}
    )
    assert web.crm.customers.get(answer.json()["id"]).created_by == "ann"


@pytest.mark.api_covers("POST", "/customers")
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"phone": "123"}, "name", "required"),
        ({"name": 5}, "name", "expected text"),
        ({"name": "Li", "nickname": "x"}, "nickname", "unknown field"),
        ({"name": "Li", "gender": "robot"}, "gender", "unknown value 'robot' (allowed: female"),
        ({"name": "Li", "birth_date": "yesterday"}, "birth_date", "YYYY-MM-DD"),
        ({"name": "Li", "tags": ["a", 3]}, "tags[1]", "expected text"),
        ({"name": "Li", "phone": "not a phone"}, "phone", ""),
        ({"name": "   "}, "name", ""),
    ],
)
def test_invalid_input_is_a_422_naming_the_field_and_writes_nothing(web, body, field, words):
    before = web.counts()
    answer = web.client.post(BASE, headers=web.as_["ann"], json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and error["type"] == "validation"
    assert words in error["message"]
    assert web.counts() == before


@pytest.mark.api_covers("POST", "/customers")
def test_body_limits_and_media_type(web_for):
    web = web_for(settings={"web": {"max_body_bytes": 200}})
    before = web.counts()
    big = web.client.post(BASE, headers=web.as_["ann"], json={"name": "x" * 300})
    assert big.status_code == 413 and big.json()["error"]["type"] == "too_large"
    form = web.client.post(BASE, headers=web.as_["ann"], content=b"name=Li")
    assert form.status_code == 415 and form.json()["error"]["field"] == "Content-Type"
    text = web.client.post(
        BASE, headers={**web.as_["ann"], "Content-Type": "text/plain"}, content=b'{"name": "Li"}'
    )
    assert text.status_code == 415
    broken = web.client.post(
        BASE, headers={**web.as_["ann"], "Content-Type": "application/json"}, content=b'{"name": '
    )
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "malformed_json"
    listed = web.client.post(BASE, headers=web.as_["ann"], json=["Li"])
    assert listed.status_code == 422
    assert web.counts() == before


@pytest.mark.api_covers("GET", "/customers/{customer_id}")
def test_get_gives_the_customer_and_its_etag_and_404_for_unknown(web):
    made = web.customer("Li Lei", owner="ann")
    answer = web.client.get(f"{BASE}/{made['id']}", headers=web.as_["ann"])
    assert answer.status_code == 200 and answer.json()["name"] == "Li Lei"
    assert answer.headers["etag"] == f'"{made["version"]}"'
    missing = web.client.get(f"{BASE}/cus_nope", headers=web.as_["ann"])
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


@pytest.mark.api_covers("GET", "/customers/{customer_id}")
def test_an_agent_gets_403_with_the_policys_reason_for_another_reps_customer(web):
    made = web.customer("Li Lei", owner="bo")
    answer = web.client.get(f"{BASE}/{made['id']}", headers=web.as_["ann"])
    assert answer.status_code == 403
    assert "belongs to bo, not to ann" in answer.json()["error"]["message"]
    assert web.client.get(f"{BASE}/{made['id']}", headers=web.as_["lee"]).status_code == 200


@pytest.mark.api_covers("PATCH", "/customers/{customer_id}")
def test_update_needs_if_match_and_refuses_a_stale_version(web):
    made = web.customer("Li Lei", owner="ann")
    url = f"{BASE}/{made['id']}"
    missing = web.client.patch(url, headers=web.as_["ann"], json={"region": "North"})
    assert missing.status_code == 428 and missing.json()["error"]["field"] == "If-Match"
    bad = web.client.patch(
        url, headers={**web.as_["ann"], "If-Match": "soon"}, json={"region": "North"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "If-Match"
    etag = web.client.get(url, headers=web.as_["ann"]).headers["etag"]
    done = web.client.patch(
        url, headers={**web.as_["ann"], "If-Match": etag}, json={"region": "North", "email": None}
    )
    assert done.status_code == 200 and done.json()["region"] == "North"
    assert done.headers["etag"] != etag
    stale = web.client.patch(
        url, headers={**web.as_["ann"], "If-Match": etag}, json={"region": "South"}
    )
    assert stale.status_code == 409 and "changed since you read it" in stale.text
    assert web.crm.customers.get(made["id"]).region == "North"


@pytest.mark.api_covers("GET", "/customers")
def test_search_q_matches_name_email_and_phone_digits(web):
    a = web.customer("王芳", phone="13800138000", owner="ann")
    b = web.customer("Li Lei", email="lilei@example.com", owner="ann")
    web.customer("Zhang Wei", phone="13900000001", owner="ann")

    def ids(q):
        answer = web.client.get(BASE, params={"q": q}, headers=web.as_["ann"])
        assert answer.status_code == 200
        return {c["id"] for c in answer.json()}

    assert ids("王") == {a["id"]}
    assert ids("li lei") == {b["id"]}
    assert ids("EXAMPLE.com") == {b["id"]}
    assert ids("0013 8000") == {a["id"]}  # the last digits
    assert ids("nobody") == set()


@pytest.mark.api_covers("GET", "/customers")
def test_search_q_ranks_best_first_pages_and_keeps_the_filters(web):
    for name in ("Zhang Weiwei", "Wei Zhang", "Zhang Wei"):
        web.customer(name, owner="ann")
    web.customer("Zhang Wei", owner="cy", tags=["vip"])

    def names(**params):
        answer = web.client.get(BASE, params=params, headers=web.as_["admin"])
        assert answer.status_code == 200
        return [(c["name"], c["owner"]) for c in answer.json()]

    assert names(q="zhang wei") == [
        ("Zhang Wei", "ann"),
        ("Zhang Wei", "cy"),
        ("Zhang Weiwei", "ann"),
        ("Wei Zhang", "ann"),
    ]
    assert names(q="zhang wei", limit=2, offset=1) == [("Zhang Wei", "cy"), ("Zhang Weiwei", "ann")]
    assert names(q="zhang wei", tag="vip") == [("Zhang Wei", "cy")]
    assert names(q="zhang wei", owner="ann") == [
        ("Zhang Wei", "ann"),
        ("Zhang Weiwei", "ann"),
        ("Wei Zhang", "ann"),
    ]


@pytest.mark.api_covers("GET", "/customers")
def test_filters_owner_tag_ext_paging_and_the_agents_view(web):
    mine = web.customer("A", owner="ann", tags=["vip"], ext={"grading": {"pipeline": "A"}})
    web.customer("B", owner="ann", ext={"grading": {"pipeline": "C"}})
    theirs = web.customer("C", owner="bo", tags=["vip"])
    unowned = web.customer("D")

    def ids(who="ann", **params):
        answer = web.client.get(BASE, params=params, headers=web.as_[who])
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()]

    assert theirs["id"] not in ids()  # an agent sees their own and unowned customers
    assert unowned["id"] in ids()
    assert ids(tag="vip") == [mine["id"]]
    assert ids("admin", tag="vip") == [mine["id"], theirs["id"]]
    assert ids("admin", owner="bo") == [theirs["id"]]
    assert ids(ext="grading.pipeline:A") == [mine["id"]]
    assert len(ids("admin", limit=2)) == 2
    assert ids("admin", limit=2, offset=3) == [unowned["id"]]
    bad = web.client.get(BASE, params={"ext": "pipeline=A"}, headers=web.as_["ann"])
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "ext"
    bad = web.client.get(BASE, params={"limit": "lots"}, headers=web.as_["ann"])
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"


@pytest.mark.api_covers("POST", "/customers/{customer_id}/merge")
def test_merge_folds_the_duplicate_and_checks_if_match(web):
    keep = web.customer("Li Lei", phone="13800138000")
    dup = web.customer("Li Lei (dup)", email="lilei@example.com")
    url = f"{BASE}/{keep['id']}/merge"
    stale = web.client.post(
        url, headers={**web.as_["admin"], "If-Match": '"99"'}, json={"duplicate_id": dup["id"]}
    )
    assert stale.status_code == 409
    answer = web.client.post(url, headers=web.as_["admin"], json={"duplicate_id": dup["id"]})
    assert answer.status_code == 200 and answer.json()["email"] == "lilei@example.com"
    gone = web.client.get(f"{BASE}/{dup['id']}", headers=web.as_["admin"])
    assert gone.status_code == 404 and keep["id"] in gone.json()["error"]["message"]
    itself = web.client.post(url, headers=web.as_["admin"], json={"duplicate_id": keep["id"]})
    assert itself.status_code == 422


@pytest.mark.api_covers("POST", "/customers/{customer_id}/forget")
def test_forget_is_for_admins_and_erases(web):
    made = web.customer("Li Lei", phone="13800138000", owner="ann")
    url = f"{BASE}/{made['id']}/forget"
    refused = web.client.post(url, headers=web.as_["ann"])
    assert refused.status_code == 403 and "only admins" in refused.json()["error"]["message"]
    assert web.crm.customers.get(made["id"]).phone is not None
    answer = web.client.post(url, headers=web.as_["admin"])
    assert answer.status_code == 200 and answer.json()["status"] == "erased"
    assert web.crm.customers.get_any(made["id"]).phone is None
