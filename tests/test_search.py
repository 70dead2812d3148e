"""Customer search through search keys (issue 21, search at 10k): the keys, their upkeep on
every write, ranking and bounds, customers stored before keys existed, confidentiality (the
audit trail, erasure, encryption at rest and key rotation)."""

from __future__ import annotations

import base64
import json

import pytest

from crmcore.encryption import FieldCipher
from crmcore.errors import ValidationError
from crmcore.keyrotation import rotate_keys
from crmcore.search import read
from crmcore.searchkeys import (
    customer_keys,
    email_keys,
    name_keys,
    name_matches,
    name_query,
    phone_keys,
)

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()


def names(result):
    return [c.name for c in result.customers]


def innermost(store):
    while hasattr(store, "inner"):
        store = store.inner
    return store


def stored(crm, id):
    """The customer's document as the backend holds it, beneath every layer."""
    return innermost(crm.store).collection("customers").get(id)


# -- the keys ----------------------------------------------------------------------------------


def test_latin_names_give_the_whole_name_and_every_word_prefix():
    keys = name_keys("  Zhang   WEI ")
    assert "n:zhang wei" in keys
    assert {"p:z", "p:zh", "p:zhang", "p:w", "p:we", "p:wei"} <= set(keys)
    assert not any(k.startswith("c:") for k in keys)
    assert "p:abcdefghijkl" in name_keys("abcdefghijklmnop")  # words cut at 12 characters
    assert "p:abcdefghijklm" not in name_keys("abcdefghijklmnop")
    assert name_keys("\uff21\uff22\uff23")[0] == "n:abc"  # full-width letters read as plain


def test_chinese_names_give_characters_and_their_pairs():
    assert set(name_keys("张伟明")) == {
        "n:张伟明",
        "c:张",
        "c:伟",
        "c:明",
        "c:张伟",
        "c:伟明",
    }
    mixed = set(name_keys("王wei"))
    assert {"c:王", "p:w", "p:wei"} <= mixed


def test_phones_give_every_tail_of_four_digits_or_more_and_emails_their_local_part():
    assert phone_keys("+8613812345678") == [f"t:{'8613812345678'[-n:]}" for n in range(4, 14)]
    assert email_keys("li.lei@example.com") == [
        "e:li.lei@example.com",
        "l:li.lei",
        "d:example.com",
    ]
    doc = {"status": "active", "name": "Li", "phone": "+8613812345678", "email": "li@x.org"}
    assert {"n:li", "t:5678", "e:li@x.org", "l:li"} <= set(customer_keys(doc))
    assert customer_keys({**doc, "status": "merged"}) == []


def test_queries_read_as_email_phone_or_name():
    assert read("li@x.org").how == "email"
    assert read("138 1234 5678").how == "phone"
    assert read("5678").how == "phone"
    assert read("567").how == "name"  # three digits: a word of a name ("Customer 567")
    assert read("Customer 000").how == "name"
    assert read("   ") is None
    query = name_query("伟明")
    assert query.keys == ("c:伟明",)
    assert name_matches(query, "张伟明") == 2 and name_matches(query, "伟明") == 0
    assert name_matches(name_query("zhang"), "Zhang Wei") == 1
    assert name_matches(name_query("wei zha"), "Zhang Wei") == 2
    assert name_matches(name_query("wei x"), "Zhang Wei") is None


# -- upkeep on every write ---------------------------------------------------------------------


def test_keys_follow_add_update_merge_and_forget(crm):
    a = crm.customers.add(actor="ann", name="Zhang Wei", phone="+8613812345678")
    b = crm.customers.add(actor="ann", name="Zhang Wei", email="zw@example.com")
    assert "n:zhang wei" in stored(crm, a.id)["search"]
    crm.customers.update(a.id, actor="ann", name="Li Lei")
    assert names(crm.customers.search("zhang")) == ["Zhang Wei"]
    assert names(crm.customers.search("li lei")) == ["Li Lei"]
    assert "n:zhang wei" not in stored(crm, a.id)["search"]
    crm.customers.merge(a.id, b.id, actor="ann")  # the kept one gains the e-mail
    assert stored(crm, b.id)["search"] == []
    assert [c.id for c in crm.customers.search("zw@example.com").customers] == [a.id]
    assert names(crm.customers.search("zhang")) == []  # the tombstone is found by nothing
    crm.customers.forget(a.id, actor="admin")
    assert stored(crm, a.id)["search"] == []
    for text in ("li lei", "5678", "zw@example.com", "erased"):
        assert crm.customers.search(text).customers == ()


def test_an_unchanged_name_keeps_its_keys_and_ext_patches_leave_them(crm):
    c = crm.customers.add(actor="ann", name="Wang Fang", phone="+8613900001111")
    keys = stored(crm, c.id)["search"]
    crm.customers.update(c.id, actor="ann", region="North")
    crm.customers.patch_ext(c.id, "demo", {"x": 1}, actor="ann")
    assert stored(crm, c.id)["search"] == keys


# -- ranking, bounds, permissions -------------------------------------------------------------


def test_exact_first_then_prefix_then_every_word_and_a_bound(crm):
    for name in ("Wei Zhang", "Zhang Weiwei", "Zhang Wei", "Zhangsan Wei", "Li Wei"):
        crm.customers.add(actor="ann", name=name)
    found = crm.customers.search("zhang wei")
    assert names(found) == ["Zhang Wei", "Zhang Weiwei", "Wei Zhang", "Zhangsan Wei"]
    assert found.how == "name" and not found.more
    two = crm.customers.search("zhang wei", limit=2)
    assert names(two) == ["Zhang Wei", "Zhang Weiwei"] and two.more
    with pytest.raises(ValidationError):
        crm.customers.search("zhang", limit=0)


def test_the_exact_name_comes_first_however_many_others_match(crm):
    for i in range(30):
        crm.customers.add(actor="ann", name=f"Customer {i:04d}")
    last = crm.customers.search("Customer 0029", limit=5)
    assert names(last) == ["Customer 0029"] and not last.more
    many = crm.customers.search("customer", limit=5)
    assert len(many.customers) == 5 and many.more


def test_phone_tails_national_numbers_and_emails(make_crm):
    crm = make_crm(core={"default_country_code": "86"})
    a = crm.customers.add(actor="ann", name="A", phone="13812345678", email="Li.Lei@Example.com")
    b = crm.customers.add(actor="ann", name="B", phone="13900005678")
    assert [c.id for c in crm.customers.search("138-1234-5678").customers] == [a.id]
    assert crm.customers.search("13812345678").how == "phone"
    tail = crm.customers.search("5678")
    assert {c.id for c in tail.customers} == {a.id, b.id} and tail.how == "phone_tail"
    assert [c.id for c in crm.customers.search("li.lei@example.com").customers] == [a.id]
    assert [c.id for c in crm.customers.search("li.lei@").customers] == [a.id]
    assert [c.id for c in crm.customers.search("li.lei").customers] == [a.id]  # the local part
    assert [c.id for c in crm.customers.search("0000 5678").customers] == [b.id]
    assert crm.customers.search("1111 5678").customers == ()


def test_an_agent_finds_only_the_customers_they_may_read(make_crm):
    crm = make_crm(
        settings={
            "security": {
                "enforce": True,
                "actors": {"ann": {"role": "agent"}, "bob": {"role": "agent"}},
            }
        }
    )
    crm.customers.add(actor="system", name="Zhou Ann", owner="ann")
    crm.customers.add(actor="system", name="Zhou Bob", owner="bob")
    crm.customers.add(actor="system", name="Zhou Nobody")
    assert names(crm.customers.search("zhou", actor="ann")) == ["Zhou Ann", "Zhou Nobody"]
    assert names(crm.customers.search("zhou bob", actor="ann")) == []


# -- customers stored before search keys ------------------------------------------------------


def test_customers_without_keys_are_found_until_the_upgrade_gives_them_keys(crm):
    a = crm.customers.add(actor="ann", name="Old Timer", phone="+8613812340000")
    backend = innermost(crm.store).collection("customers")
    doc = backend.get(a.id)
    backend.update(a.id, {"search": None}, expected_version=doc["version"])
    assert names(crm.customers.search("old")) == ["Old Timer"]  # read one by one
    assert names(crm.customers.search("0000")) == ["Old Timer"]
    assert crm.customers.refresh_search_keys(actor="system") == 1
    assert "n:old timer" in stored(crm, a.id)["search"]
    assert crm.customers.refresh_search_keys(actor="system") == 0


def test_crm_db_upgrade_makes_missing_keys(crm_cli):
    cli = crm_cli()
    code, out, _err = cli("customer", "add", "--name", "Old Timer")
    assert code == 0
    crm = cli.open()
    backend = innermost(crm.store).collection("customers")
    (doc,) = backend.find()
    backend.update(doc["id"], {"search": None}, expected_version=doc["version"])
    crm.close()
    code, out, _err = cli("db", "upgrade")
    assert code == 0 and "search keys made for 1 customer(s)" in out
    code, out, _err = cli("db", "upgrade")
    assert code == 0 and "search keys" not in out
    crm = cli.open()
    assert "n:old timer" in innermost(crm.store).collection("customers").find()[0]["search"]


# -- confidentiality ---------------------------------------------------------------------------


def test_the_audit_trail_masks_the_keys(crm):
    c = crm.customers.add(actor="ann", name="Secret Person", phone="+8613812345678")
    crm.customers.update(c.id, actor="ann", name="Other Person")
    trail = json.dumps(crm.audit.inner.collection("audit").find(), ensure_ascii=False)
    assert "secret" not in trail.casefold() and "5678" not in trail
    assert '"search": ["***", "***"]' in trail  # the update's diff (an insert: a digest)


def test_with_encryption_the_store_holds_keyed_hashes_and_search_still_works(make_crm, monkeypatch):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", NEW)
    crm = make_crm(core={"encrypt_personal": True})
    c = crm.customers.add(actor="ann", name="张伟明", phone="+8613812345678", email="z@x.org")
    raw = stored(crm, c.id)["search"]
    assert raw and all(k.startswith("h:") for k in raw)
    text = json.dumps(raw, ensure_ascii=False)
    assert "伟" not in text and "5678" not in text and "z@x.org" not in text
    plain = {"status": "active", "name": "张伟明", "phone": "+8613812345678", "email": "z@x.org"}
    cipher = FieldCipher(base64.b64decode(NEW))
    assert set(raw) == {cipher.blind(k) for k in customer_keys(plain)}
    for text in ("伟明", "5678", "z@x.org", "张"):
        assert [x.id for x in crm.customers.search(text).customers] == [c.id], text
    with pytest.raises(ValidationError):
        crm.customers.find({"search": {"$gt": "a"}})


def test_a_key_rotation_rewrites_the_hashes_under_the_new_key(make_crm, monkeypatch, tmp_path):
    store = {"backend": "memory", "location": f"rotation-{tmp_path.name}"}
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", OLD)
    crm = make_crm(core={"encrypt_personal": True}, storage=store)
    c = crm.customers.add(actor="ann", name="Rotate Me", phone="+8613812345678")
    before = set(stored(crm, c.id)["search"])
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", NEW)
    monkeypatch.setenv("CRM_ENCRYPTION_PREVIOUS_KEYS", OLD)
    crm = make_crm(core={"encrypt_personal": True}, storage=store)
    assert names(crm.customers.search("rotate")) == ["Rotate Me"]  # old hashes still match
    rotate_keys(crm, actor="admin")
    after = set(stored(crm, c.id)["search"])
    assert after and not after & before
    monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS")
    crm = make_crm(core={"encrypt_personal": True}, storage=store)  # the old key is gone
    assert names(crm.customers.search("rotate")) == ["Rotate Me"]
    assert names(crm.customers.search("5678")) == ["Rotate Me"]


def test_a_domain_finds_everyone_at_it(crm):
    a = crm.customers.add(actor="ann", name="A", email="a@example.com")
    b = crm.customers.add(actor="ann", name="B", email="b@Example.com")
    crm.customers.add(actor="ann", name="C", email="c@example.org")
    for text in ("@example.com", "EXAMPLE.com"):
        assert {c.id for c in crm.customers.search(text).customers} == {a.id, b.id}, text
