"""Encryption at rest: no plaintext personal data reaches the backend; search still works."""

import base64
import json
import os

import pytest

from crmcore import ConfigError, StorageError, ValidationError

KEY = base64.b64encode(b"k" * 32).decode()


def innermost(store):
    while hasattr(store, "inner"):
        store = store.inner
    return store


def raw_text(crm) -> str:
    backend = innermost(crm.store)
    return json.dumps({n: backend.collection(n).find() for n in backend.collection_names()})


@pytest.fixture
def crm(make_crm, monkeypatch):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    return make_crm(core={"encrypt_personal": True})


def test_personal_fields_are_sealed_at_rest_and_open_through_the_api(crm):
    c = crm.customers.add(
        actor="ann",
        name="Li Lei",
        phone="13800138000",
        email="li.lei@example.com",
        address="1 Long Road",
        region="North",
    )
    crm.interactions.log(
        actor="ann", customer_id=c.id, kind="visit", summary="Li Lei asked about 13800138000"
    )
    crm.tasks.create(
        actor="ann",
        kind="callback",
        title="call",
        due_at=crm.now(),
        customer_id=c.id,
        notes="Li Lei prefers evenings",
    )
    text = raw_text(crm)
    for secret in ("Li Lei", "13800138000", "li.lei@example.com", "1 Long Road", "evenings"):
        assert secret not in text
    assert "North" in text  # not personal: stays searchable in the clear
    got = crm.customers.get(c.id)
    assert (got.name, got.phone, got.address) == ("Li Lei", "13800138000", "1 Long Road")
    assert crm.interactions.for_customer(c.id)[0].summary == "Li Lei asked about 13800138000"


def test_indexed_fields_stay_searchable_and_unique(make_crm, monkeypatch):
    from crmcore import DuplicateKeyError

    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    crm = make_crm(core={"encrypt_personal": True, "unique_email": True})
    a = crm.customers.add(actor="ann", name="Li", phone="13800138000", email="li@example.com")
    b = crm.customers.add(actor="ann", name="Li L", phone="138 0013 8000")
    assert [c.id for c in crm.customers.find_by_contact(phone="13800138000")] == [a.id, b.id]
    assert [[c.id for c in g] for g in crm.customers.find_duplicates()] == [[a.id, b.id]]
    with pytest.raises(DuplicateKeyError):
        crm.customers.add(actor="ann", name="Other", email="LI@example.com")


def test_randomised_fields_differ_for_equal_values_and_cannot_be_searched(crm):
    crm.customers.add(actor="ann", name="Wang Fang")
    crm.customers.add(actor="ann", name="Wang Fang")
    names = [d["name"] for d in innermost(crm.store).collection("customers").find()]
    assert names[0] != names[1] and all(n.startswith("enc:v1:r:") for n in names)
    with pytest.raises(ValidationError, match="encrypted with a random nonce"):
        crm.customers.find({"name": "Wang Fang"})
    with pytest.raises(ValidationError, match="cannot be sorted on"):
        crm.customers.find(sort=[("name", 1)])


def test_a_wrong_key_is_a_clear_storage_error(make_crm, monkeypatch):
    import uuid

    store = {"backend": "memory", "location": f"enc-{uuid.uuid4()}"}
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    c = make_crm(core={"encrypt_personal": True}, storage=store).customers.add(
        actor="ann", name="Li"
    )
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"x" * 32).decode())
    other = make_crm(core={"encrypt_personal": True}, storage=store)
    with pytest.raises(StorageError, match="does not open with this key"):
        other.customers.get(c.id)


def test_missing_weak_or_exposed_keys_are_refused(make_crm, monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_ENCRYPTION_KEY", raising=False)
    with pytest.raises(ConfigError, match="no key is given"):
        make_crm(core={"encrypt_personal": True})
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        make_crm(core={"encrypt_personal": True})
    monkeypatch.delenv("CRM_ENCRYPTION_KEY")
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        make_crm(core={"encrypt_personal": True, "encryption_key_file": str(key_file)})
    os.chmod(key_file, 0o600)
    crm = make_crm(core={"encrypt_personal": True, "encryption_key_file": str(key_file)})
    assert crm.customers.add(actor="ann", name="Li").name == "Li"


# -- key rotation: the cipher, the settings, queries and unique checks under two keys ---------

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
OTHER = base64.b64encode(b"x" * 32).decode()


def cipher(key, *previous):
    from crmcore.encryption import FieldCipher

    return FieldCipher(base64.b64decode(key), [base64.b64decode(k) for k in previous])


def test_the_cipher_seals_with_the_current_key_and_opens_with_any_configured_key():
    old, rotating = cipher(OLD), cipher(NEW, OTHER, OLD)
    det, rnd = old.seal("13800138000", deterministic=True), old.seal({"a": 1}, deterministic=False)
    assert (rotating.open(det), rotating.open(rnd)) == ("13800138000", {"a": 1})
    assert (rotating.key_of(det), rotating.key_of(rnd)) == (2, 2)  # the second previous key
    assert rotating.try_open(det) == (2, "13800138000")
    fresh = rotating.seal("13800138000", deterministic=True)
    assert fresh == cipher(NEW).seal("13800138000", deterministic=True) != det
    assert rotating.key_of(fresh) == 0 and old.key_of(fresh) is None
    assert rotating.seal_each("13800138000") == [
        fresh,
        cipher(OTHER).seal("13800138000", deterministic=True),
        det,
    ]
    assert rotating.seal_each("13800138000", [2]) == [det]
    for bad in (det, rnd):  # a value no configured key opens keeps today's error
        assert cipher(NEW, OTHER).key_of(bad) is None
        assert cipher(NEW, OTHER).try_open(bad) is None
        with pytest.raises(StorageError, match="does not open with this key"):
            cipher(NEW, OTHER).open(bad)
    for damaged in ("enc:v1:d:%%%", "enc:v1:q:" + det[9:], "enc:v1:", det[:-4] + "AAAA"):
        assert rotating.key_of(damaged) is None
        with pytest.raises(StorageError, match="does not open with this key"):
            rotating.open(damaged)


def test_previous_keys_come_from_the_environment_or_files_and_are_checked(tmp_path):
    from crmcore.encryption import load_previous_keys

    raw = {k: base64.b64decode(k) for k in (OLD, NEW, OTHER)}
    env = {"CRM_ENCRYPTION_PREVIOUS_KEYS": f" {OLD},{OTHER}\n"}
    assert load_previous_keys([], raw[NEW], env) == (raw[OLD], raw[OTHER])
    assert load_previous_keys([], raw[NEW], {"CRM_ENCRYPTION_PREVIOUS_KEYS": f"{OTHER} {OLD}"}) == (
        raw[OTHER],
        raw[OLD],
    )
    assert load_previous_keys([], raw[NEW], {}) == ()
    first, second = tmp_path / "first.key", tmp_path / "second.key"
    for path, key in ((first, OLD), (second, OTHER)):
        path.write_text(key + "\n")
        path.chmod(0o600)
    files = [str(first), str(second)]
    assert load_previous_keys(files, raw[NEW], {}) == (raw[OLD], raw[OTHER])
    # the variable, when set, is used instead of the files
    assert load_previous_keys(files, raw[NEW], {"CRM_ENCRYPTION_PREVIOUS_KEYS": OTHER}) == (
        raw[OTHER],
    )
    refusals = [
        (
            {"CRM_ENCRYPTION_PREVIOUS_KEYS": f"{OLD},not-base64!"},
            [],
            r"\$CRM_ENCRYPTION_PREVIOUS_KEYS\[1\]: the encryption key is not valid base64",
        ),
        (
            {"CRM_ENCRYPTION_PREVIOUS_KEYS": base64.b64encode(b"short").decode()},
            [],
            r"PREVIOUS_KEYS\[0\]: the encryption key must be at least 32 bytes",
        ),
        (
            {"CRM_ENCRYPTION_PREVIOUS_KEYS": NEW},
            [],
            r"PREVIOUS_KEYS\[0\]: this previous key is the current encryption key",
        ),
        (
            {"CRM_ENCRYPTION_PREVIOUS_KEYS": f"{OLD} {OLD}"},
            [],
            r"PREVIOUS_KEYS\[1\]: this previous key is listed twice",
        ),
        (
            {},
            [str(first), str(tmp_path / "missing.key")],
            r"core.encryption_previous_key_files\[1\]: cannot read .*missing.key",
        ),
    ]
    for env, given, message in refusals:
        with pytest.raises(ConfigError, match=message):
            load_previous_keys(given, raw[NEW], env)
    second.chmod(0o640)
    with pytest.raises(
        ConfigError,
        match=r"encryption_previous_key_files\[1\]: .*second.key is "
        r"readable by others \(mode 640\); chmod 600 it",
    ):
        load_previous_keys(files, raw[NEW], {})
    second.chmod(0o600)
    first.write_text(NEW)
    with pytest.raises(
        ConfigError,
        match=r"files\[0\] \(.*first.key\): this previous key is "
        "the current encryption key",
    ):
        load_previous_keys(files, raw[NEW], {})


def test_the_setting_reaches_the_cipher_and_is_refused_clearly(make_crm, monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", NEW)
    monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS", raising=False)
    old_file = tmp_path / "old.key"
    old_file.write_text(OLD)
    old_file.chmod(0o600)
    crm = make_crm(
        core={"encrypt_personal": True, "encryption_previous_key_files": [str(old_file)]}
    )
    from crmcore.encryption import encrypted_layer

    assert encrypted_layer(crm.store).cipher.previous_keys == 1
    with pytest.raises(ConfigError, match=r"core\.encryption_previous_key_files: expected a list"):
        make_crm(core={"encrypt_personal": True, "encryption_previous_key_files": str(old_file)})
    monkeypatch.setenv("CRM_ENCRYPTION_PREVIOUS_KEYS", NEW)
    with pytest.raises(ConfigError, match="is the current encryption key"):
        make_crm(core={"encrypt_personal": True})


@pytest.fixture(params=["memory", "tinydb"])
def reopen(request, open_with_keys, tmp_path):
    """``reopen(key, *previous, **core)``: close the last CRM and open the same store again
    with these keys (on the memory store and on the embedded store)."""
    import uuid

    from crmcore.storage.memory import MemoryStore

    if request.param == "memory":
        location = f"rotation-{uuid.uuid4()}"
        request.addfinalizer(lambda: MemoryStore.drop_shared(location))
        return open_with_keys([], {"backend": "memory", "location": location})
    return open_with_keys(
        ["storage_tinydb"], {"backend": "tinydb", "location": str(tmp_path / "db")}
    )


def test_equality_queries_match_values_sealed_under_any_key(reopen):
    crm = reopen(OLD)
    a = crm.customers.add(actor="ann", name="A", phone="13800138000", email="a@example.com")
    b = crm.customers.add(actor="ann", name="B", phone="13900139000")
    crm = reopen(NEW, OLD)
    c = crm.customers.add(actor="ann", name="C", phone="13700137000", email="c@example.com")
    d = crm.customers.add(actor="ann", name="D", phone="13800138000")

    def ids(query):
        return sorted(x.id for x in crm.customers.find(query))

    assert [x.id for x in crm.customers.find_by_contact(phone="138 0013 8000")] == [a.id, d.id]
    assert [x.id for x in crm.customers.find_by_contact(email="A@example.com")] == [a.id]
    assert ids({"phone": "13900139000"}) == [b.id]
    assert ids({"phone": {"$eq": "13800138000"}}) == sorted([a.id, d.id])
    assert ids({"phone": {"$in": ["13900139000", "13700137000"]}}) == sorted([b.id, c.id])
    assert ids({"phone": {"$ne": "13800138000"}}) == sorted([b.id, c.id])
    assert ids({"phone": {"$nin": ["13800138000", "13900139000"]}}) == [c.id]
    assert ids({"phone": {"$eq": "13800138000", "$in": ["13800138000", "1"]}}) == sorted(
        [a.id, d.id]
    )
    assert ids({"phone": {"$eq": "13800138000", "$in": ["13900139000"]}}) == []
    assert ids({"email": None}) == sorted([b.id, d.id])
    assert ids({"email": {"$exists": True, "$ne": None, "$nin": ["c@example.com"]}}) == [a.id]
    assert ids({"$or": [{"phone": "13900139000"}, {"email": "c@example.com"}]}) == sorted(
        [b.id, c.id]
    )
    assert crm.customers.count({"phone": "13800138000"}) == 2
    assert [[x.id for x in g] for g in crm.customers.find_duplicates()] == [[a.id, d.id]]
    assert crm.customers.get(a.id).phone == "13800138000"  # opened with the previous key
    with pytest.raises(ValidationError, match=r"\$in on field 'phone' takes a list"):
        crm.customers.find({"phone": {"$in": "13800138000"}})
    with pytest.raises(ValidationError, match="only equality and membership"):
        crm.customers.find({"phone": {"$gt": "1"}})


def test_without_previous_keys_the_filters_are_unchanged_and_with_them_cover_every_key():
    from crmcore.encryption import EncryptedCollection
    from crmcore.storage.memory import MemoryStore

    query = {
        "region": "North",
        "phone": "p1",
        "$or": [
            {"phone": {"$in": ["p2", None]}},
            {"phone": {"$ne": "p3", "$exists": True}},
            {"phone": None},
        ],
    }
    inner = MemoryStore().collection("c")
    seal = cipher(NEW).seal
    today = EncryptedCollection(inner, cipher(NEW), {"phone": True})._filter(query)
    assert today == {
        "region": "North",
        "phone": seal("p1", deterministic=True),
        "$or": [
            {"phone": {"$in": [seal("p2", deterministic=True), None]}},
            {"phone": {"$ne": seal("p3", deterministic=True), "$exists": True}},
            {"phone": None},
        ],
    }
    rotating = cipher(NEW, OLD)
    both = EncryptedCollection(inner, rotating, {"phone": True})._filter(query)
    each = rotating.seal_each
    assert both == {
        "region": "North",
        "phone": {"$in": each("p1")},
        "$or": [
            {"phone": {"$in": [*each("p2"), None]}},
            {"phone": {"$nin": each("p3"), "$exists": True}},
            {"phone": None},
        ],
    }


def test_a_unique_value_held_under_a_previous_key_is_refused_and_nothing_is_written(reopen):
    from crmcore import DuplicateKeyError

    crm = reopen(OLD, unique_phone=True, unique_email=True)
    a = crm.customers.add(actor="ann", name="A", phone="13800138000", email="a@example.com")
    b = crm.customers.add(actor="ann", name="B", phone="13900139000")
    crm = reopen(NEW, OLD, unique_phone=True, unique_email=True)
    entries = len(crm.audit.inner.collection("audit").find())
    with pytest.raises(DuplicateKeyError, match=r"\(phone\), sealed under a previous"):
        crm.customers.add(actor="ann", name="Copy", phone="138 0013 8000")
    with pytest.raises(DuplicateKeyError, match=r"\(email\)"):
        crm.customers.add(actor="ann", name="Copy", email="A@example.com")
    with pytest.raises(DuplicateKeyError):
        crm.customers.update(b.id, actor="ann", phone="13800138000")
    assert crm.customers.count() == 2
    assert len(crm.audit.inner.collection("audit").find()) == entries
    assert crm.customers.get(b.id).phone == "13900139000"
    assert crm.customers.get(b.id).version == b.version
    # a record keeps its own value, and free values are taken as usual
    crm.customers.update(a.id, actor="ann", phone="13800138000", region="North")
    crm.customers.add(actor="ann", name="C", phone="13700137000")
    with pytest.raises(DuplicateKeyError):  # a duplicate under the current key: the backend
        crm.customers.add(actor="ann", name="D", phone="13700137000")
    assert crm.customers.count() == 3


def test_the_unique_check_costs_a_query_only_during_a_rotation(monkeypatch):
    from crmcore import DuplicateKeyError
    from crmcore.encryption import EncryptedStore
    from crmcore.storage import CollectionSpec, IndexSpec
    from crmcore.storage.memory import MemoryCollection, MemoryStore

    finds = []
    real_find = MemoryCollection.find
    monkeypatch.setattr(
        MemoryCollection, "find", lambda self, *a, **k: finds.append(a) or real_find(self, *a, **k)
    )
    spec = CollectionSpec("people", (IndexSpec([("phone", 1)], unique=True, sparse=True),))
    backend = MemoryStore()

    def layer(key, *previous):
        store = EncryptedStore(backend, cipher(key, *previous))
        store.ensure_collection(spec)
        store.declare(spec, ["phone", "name"])
        return store.collection("people")

    layer(OLD).insert({"id": "p1", "phone": "1", "name": "A"})
    coll = layer(NEW)
    coll.insert({"id": "p2", "phone": "2", "name": "B"})
    coll.update("p2", {"phone": "1"}, expected_version=1)  # the old seal differs: no check
    assert finds == []
    coll = layer(NEW, OLD)
    coll.insert({"id": "p3", "name": "C"})  # no phone: nothing to check
    assert finds == []
    result = coll.insert_many(
        [
            {"id": "p4", "phone": "4", "name": "D"},
            {"id": "p5", "phone": "1", "name": "E"},
            {"id": "p6", "phone": "6", "name": "F"},
        ]
    )
    assert result.ids == ("p4", "p6")
    assert [(e.index, e.id) for e in result.errors] == [(1, "p5")]
    assert "sealed under a previous encryption key" in result.errors[0].message
    assert len(finds) == 3
    with pytest.raises(DuplicateKeyError):
        coll.update("p4", {"phone": "1"}, expected_version=1)
    assert coll.get("p4")["phone"] == "4"


def test_a_compound_unique_index_with_a_sealed_field_is_checked_during_a_rotation():
    from crmcore import DuplicateKeyError
    from crmcore.encryption import EncryptedStore
    from crmcore.storage import CollectionSpec, IndexSpec
    from crmcore.storage.memory import MemoryStore

    spec = CollectionSpec("people", (IndexSpec([("phone", 1), ("region", 1)], unique=True),))
    backend = MemoryStore()

    def layer(key, *previous):
        store = EncryptedStore(backend, cipher(key, *previous))
        store.ensure_collection(spec)
        store.declare(spec, ["phone"])
        return store.collection("people")

    layer(OLD).insert({"id": "p1", "phone": "1", "region": "N"})
    coll = layer(NEW, OLD)
    coll.insert({"id": "p2", "phone": "1", "region": "S"})
    with pytest.raises(DuplicateKeyError, match=r"\(phone, region\), sealed under a previous"):
        coll.insert({"id": "p3", "phone": "1", "region": "N"})
    with pytest.raises(DuplicateKeyError):  # the phone comes from the stored record
        coll.update("p2", {"region": "N"}, expected_version=1)
    coll.update("p2", {"region": "W"}, expected_version=1)
    assert sorted(d["id"] for d in coll.find()) == ["p1", "p2"]


def test_a_sum_opens_sealed_numbers_and_passes_plain_ones_to_the_store(monkeypatch):
    """``Collection.sum`` through encryption at rest: a personal field is summed as read
    (opened), never from the sealed values; another field is summed by the store, with a
    filter on a sealed field sealed as a find's is."""
    from crmcore.encryption import EncryptedStore
    from crmcore.storage import CollectionSpec, IndexSpec
    from crmcore.storage.memory import MemoryCollection, MemoryStore

    spec = CollectionSpec("people", (IndexSpec([("phone", 1)], sparse=True),))
    store = EncryptedStore(MemoryStore(), cipher(NEW))
    store.ensure_collection(spec)
    store.declare(spec, ["phone", "income"])
    coll = store.collection("people")
    coll.insert_many(
        [
            {"id": "a", "phone": "1", "income": 1200, "visits": 3},
            {"id": "b", "phone": "2", "income": 800.5, "visits": 4},
            {"id": "c", "phone": "1", "visits": 5},
        ]
    )
    raw = store.inner.collection("people")
    assert raw.sum("income") == 0  # sealed at rest: no number there
    passed = []
    real_sum = MemoryCollection.sum
    monkeypatch.setattr(
        MemoryCollection, "sum", lambda self, *a: passed.append(a) or real_sum(self, *a)
    )
    assert coll.sum("income") == 2000.5
    assert coll.sum("income", {"phone": "2"}) == 800.5
    assert passed == []  # read and opened, not summed by the store
    assert coll.sum("visits", {"phone": "1"}) == 8
    [(field, sealed)] = passed  # the store's own sum (an index may answer it)
    assert field == "visits" and sealed["phone"] != "1"
