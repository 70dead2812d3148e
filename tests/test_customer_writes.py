"""The cheap paths of a customer write (issue 24, W1): a phone sent back as stored is not
parsed again, search keys are rebuilt only when name, phone or e-mail change value, and a
valid phone is typed without asking the library why it would not be. Each test fails if its
shortcut skips work that changes the result, or stops skipping it."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, ValidationResult

from crmcore import customers as customers_module
from crmcore.errors import NotFoundError, ValidationError
from crmcore.normalize import _parse, parse_phone


@pytest.fixture(params=["memory", "tinydb"])
def any_crm(request, make_crm, tmp_path):
    storage = (
        None if request.param == "memory" else {"backend": "tinydb", "location": str(tmp_path)}
    )
    plugins = [] if storage is None else ["storage_tinydb"]
    return make_crm(plugins, storage=storage, core={"default_country_code": "86"})


def _stored(crm, id):
    store = crm.store
    while hasattr(store, "inner"):
        store = store.inner
    return store.collection("customers").get(id)


def _found(crm, text):
    return [c.id for c in crm.customers.search(text).customers]


@pytest.fixture
def counted(monkeypatch):
    """How often a write parses a phone and builds search keys."""
    calls = {"parse": 0, "keys": 0}
    parse, keys = customers_module.parse_phone, customers_module.customer_keys

    def counting_parse(*args, **kwargs):
        calls["parse"] += 1
        return parse(*args, **kwargs)

    def counting_keys(doc):
        calls["keys"] += 1
        return keys(doc)

    monkeypatch.setattr(customers_module, "parse_phone", counting_parse)
    monkeypatch.setattr(customers_module, "customer_keys", counting_keys)
    return calls


def test_an_update_without_a_searched_change_keeps_the_keys_and_builds_none(any_crm, counted):
    crm = any_crm
    c = crm.customers.add(actor="ann", name="Zhang Wei", phone="13812345678", email="z@x.cn")
    assert counted == {"parse": 1, "keys": 1}  # one parse and one set of keys per add
    keys = _stored(crm, c.id)["search"]
    # the same name, phone and e-mail sent again beside a real change: nothing to rebuild
    after = crm.customers.update(
        c.id, actor="ann", name="Zhang Wei", phone=c.phone, email="z@x.cn", region="North"
    )
    assert counted == {"parse": 1, "keys": 1}
    assert after.region == "North" and after.phone_type == "mobile" == c.phone_type
    assert _stored(crm, c.id)["search"] == keys
    for text in ("zhang wei", "zhang", "5678", "+86 138 1234 5678", "z@x.cn"):
        assert _found(crm, text) == [c.id], text


def test_a_changed_name_or_phone_rebuilds_the_keys(any_crm, counted):
    crm = any_crm
    c = crm.customers.add(actor="ann", name="Zhang Wei", phone="13812345678")
    crm.customers.update(c.id, actor="ann", name="Li Lei")
    assert counted["keys"] == 2
    assert _found(crm, "li lei") == [c.id] and _found(crm, "zhang") == []
    after = crm.customers.update(c.id, actor="ann", phone="010 8888 6666")
    assert counted == {"parse": 2, "keys": 3}
    assert after.phone == "+861088886666" and after.phone_type == "fixed_line"
    assert _found(crm, "6666") == [c.id] and _found(crm, "5678") == []


def test_a_phone_written_another_way_is_parsed_and_keeps_the_same_keys(any_crm, counted):
    crm = any_crm
    c = crm.customers.add(actor="ann", name="Wang Fang", phone="+8613900001111")
    keys = _stored(crm, c.id)["search"]
    after = crm.customers.update(c.id, actor="ann", phone="139 0000 1111", region="East")
    assert counted["parse"] == 2  # not the stored form: parsed, to the same number
    assert counted["keys"] == 1  # same value once normalised: no new keys
    assert after.phone == c.phone and _stored(crm, c.id)["search"] == keys


def test_a_bare_phone_stored_without_a_country_is_parsed_again(make_crm, counted):
    """Bare digits are kept as typed when no country is set: the same digits sent again are
    read afresh, since they are not in E.164 and a country may be set since."""
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Ann", phone="13800138000")
    assert c.phone == "13800138000" and c.phone_type is None
    crm.customers.update(c.id, actor="ann", phone="13800138000", region="West")
    assert counted["parse"] == 2


def test_update_mistakes_are_still_reported(any_crm):
    crm = any_crm
    c = crm.customers.add(actor="ann", name="Ann", phone="13812345678")
    with pytest.raises(ValidationError, match="unknown or read-only"):
        crm.customers.update("cus_missing", actor="ann", status="erased")
    with pytest.raises(NotFoundError):
        crm.customers.update("cus_missing", actor="ann", region="North")
    with pytest.raises(ValidationError, match="malformed phone number"):
        crm.customers.update(c.id, actor="ann", phone="12")
    assert crm.customers.get(c.id).version == c.version


def _example_numbers():
    """Every region's example numbers of every type, and each one a digit or three shorter
    or longer: valid, impossible and possible-but-invalid numbers of every country."""
    types = [t for t in vars(PhoneNumberType).values() if isinstance(t, int) and t >= 0]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in types:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = str(example.national_number)
            for change in (-3, -1, 0, 1, 3):
                digits = nsn[:change] if change < 0 else nsn + "7" * change
                if digits:
                    yield f"+{example.country_code}{digits}"


def test_a_valid_phone_is_typed_as_before_and_a_refusal_says_the_same():
    """parse_phone asks for the type first and why a number is impossible only when it is
    not valid: the verdicts and reasons equal the order possible-then-valid it replaced."""
    ok = {ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY}
    checked = 0
    for text in _example_numbers():
        try:
            number = phonenumbers.parse(text, "ZZ")
        except phonenumbers.NumberParseException:
            continue
        checked += 1
        possible = phonenumbers.is_possible_number_with_reason(number) in ok
        valid = phonenumbers.is_valid_number(number)
        _parse.cache_clear()
        try:
            phone = parse_phone(text)
        except ValidationError as exc:
            assert not (possible and valid), text
            verdict = "malformed phone number" if not possible else "invalid phone number"
            assert str(exc).startswith(f"phone: {verdict}"), (text, str(exc))
            continue
        assert possible and valid, text
        assert phone.e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert checked > 5000


@pytest.mark.parametrize("backend", ["memory", "tinydb"])
def test_add_returns_the_customer_as_its_reactions_left_it(make_crm, tmp_path, backend):
    """``add`` reads the customer back only when a reaction wrote it (an update, an ``ext``
    patch); otherwise the customer it inserted is the one stored."""
    from crmcore import Effects, ExtPatch, hookimpl

    seen: list[str] = []

    class Plugin:
        @hookimpl
        def crm_customer_created(self, crm, customer, actor):
            if customer.name == "Updated":
                return Effects.run(
                    lambda: crm.customers.update(customer.id, actor=actor, notes="called"),
                    "probe: update",
                )
            if customer.name == "Patched":
                return Effects(ext=[ExtPatch(customer.id, "probe", {"seen": True})])
            seen.append(customer.id)
            return Effects.run(lambda: None, "probe: nothing")

    if backend == "memory":
        crm = make_crm([("probe", Plugin())])
    else:
        storage = {"backend": "tinydb", "location": str(tmp_path)}
        crm = make_crm(["storage_tinydb", ("probe", Plugin())], storage=storage)
    updated = crm.customers.add(actor="t", name="Updated")
    assert updated.notes == "called" and updated.version == 2
    assert updated == crm.customers.get(updated.id)
    patched = crm.customers.add(actor="t", name="Patched")
    assert patched.ext == {"probe": {"seen": True}} and patched.version == 2
    assert patched == crm.customers.get(patched.id)
    plain = crm.customers.add(actor="t", name="Plain")
    assert seen == [plain.id] and plain.version == 1
    assert plain == crm.customers.get(plain.id)
