"""Personal data never reaches log output unmasked, whatever the level or format."""

import io
import json

import pytest
import structlog

from crmcore.logs import configure_logging, defer_logging, get_logger, mask_text


@pytest.fixture
def output():
    stream = io.StringIO()
    yield stream
    configure_logging("warning", "console")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_personal_keys_and_contact_details_are_masked(output, fmt):
    configure_logging("debug", fmt, stream=output)
    get_logger("grading", operation="regrade").debug(
        "regraded Li.Lei@example.com, call +86 138 0013 8000",
        name="Li Lei",
        phone="13800138000",
        customer={"email": "li@example.com", "region": "North"},
        notes=["ask about the kettle"],
        grade="B",
    )
    text = output.getvalue()
    for secret in (
        "Li Lei",
        "13800138000",
        "138 0013 8000",
        "li@example.com",
        "Li.Lei@example.com",
    ):
        assert secret not in text
    assert "grade" in text and "North" in text and "plugin" in text
    if fmt == "json":
        event = json.loads(text)
        assert event["plugin"] == "grading" and event["operation"] == "regrade"
        assert event["name"] == "***" and event["customer"]["email"] == "***"


def test_dates_times_amounts_and_ids_are_not_mistaken_for_phones():
    text = "on 2026-11-23 at 10:00 id cus_01JD1234567890ABCD paid 1234.50 for 3 items"
    assert mask_text(text) == text


def test_a_logger_made_before_configuration_follows_it(output):
    early = get_logger("early")  # as a module-level logger would be
    configure_logging("warning", "json", stream=output)
    early.info("routine", email="li@example.com")
    early.warning("unusual", email="li@example.com")
    lines = output.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["email"] == "***"


def test_level_filtering(output):
    configure_logging("warning", "console", stream=output)
    structlog.get_logger().info("routine")
    structlog.get_logger().warning("unusual")
    assert "routine" not in output.getvalue() and "unusual" in output.getvalue()


def test_deferred_logging_is_set_up_by_the_first_event_at_its_level(output, capsys):
    early = get_logger("early")
    defer_logging("warning", "json")
    early.info("routine", email="li@example.com")  # below the level: nothing set up
    assert capsys.readouterr().err == ""
    early.warning("unusual", email="li@example.com")
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["email"] == "***" and json.loads(line)["event"] == "unusual"


def test_configure_logging_without_a_level_takes_the_deferred_one(output, capsys):
    defer_logging("info", "json")
    configure_logging()  # what a host (the web app) does when structlog is not configured
    structlog.get_logger().info("routine")
    assert json.loads(capsys.readouterr().err)["event"] == "routine"


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("chatty")
    with pytest.raises(ValueError, match="unknown log level"):
        defer_logging("chatty")


# -- phone and e-mail shapes (hypothesis) -------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SEPARATORS = ["", " ", "-", ".", " - ", "\u00a0", "\u3000", "\uff0d", "/"]
LABELS = ["", "phone:", "phone: ", "tel=", "Tel.", "call ", "手机", "电话\uff1a", "(", "mobile#"]


@st.composite
def phones(draw):
    """A phone number as people write it: a Chinese mobile, a landline with an area code in
    parentheses, or an international number, grouped with one kind of separator."""
    kind = draw(st.sampled_from(["mobile", "landline", "international"]))
    sep = draw(st.sampled_from(SEPARATORS))
    if kind == "mobile":
        digits = (
            "1"
            + draw(st.sampled_from("3456789"))
            + draw(st.text("0123456789", min_size=9, max_size=9))
        )
        text = sep.join([digits[:3], digits[3:7], digits[7:]])
    elif kind == "landline":
        area = draw(st.sampled_from(["010", "021", "0755"]))
        number = draw(st.text("0123456789", min_size=8, max_size=8))
        digits = area + number
        text = f"({area}){sep or ' '}{number[:4]}{sep}{number[4:]}"
    else:
        country = draw(st.sampled_from(["+86", "+44", "+1", "0086"]))
        rest = draw(st.text("0123456789", min_size=8, max_size=11))
        digits = country.lstrip("+") + rest
        text = f"{country}{sep}{rest[:3]}{sep}{rest[3:]}"
    return text, digits


@settings(max_examples=300, deadline=None)
@given(
    phone=phones(),
    label=st.sampled_from(LABELS),
    before=st.sampled_from(["", "customer ", "回电 ", "note: "]),
    after=st.sampled_from(["", " today", "。", ", thanks", ")"]),
)
def test_phone_numbers_are_masked_in_every_shape(phone, label, before, after):
    text, digits = phone
    out = mask_text(f"{before}{label}{text}{after}")
    assert "***" in out, out
    left = "".join(ch for ch in out if ch.isdigit())
    assert digits[-7:] not in left, out  # no tail of the number survives


@settings(max_examples=200, deadline=None)
@given(email=st.emails(), label=st.sampled_from(["", "email:", "mailto:", "e-mail ", "邮箱"]))
def test_email_addresses_are_masked_in_every_shape(email, label):
    template = f"contact {label}{email} today"
    out = mask_text(template)
    assert email not in out, out
    local = email.rsplit("@", 1)[0]
    if len(local) >= 4 and local not in f"contact {label}":
        assert local not in out, out


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(),
    amount=st.decimals(
        min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False
    ),
    ip=st.ip_addresses(v=4),
    seq=st.integers(0, 999_999),
)
def test_dates_times_amounts_addresses_and_ids_survive(when, amount, ip, seq):
    text = (
        f"at {when.isoformat()} on {when.date()} paid {amount} from {ip} "
        f"entry #{seq} id cus_01JD{seq:010d}ABCD"
    )
    assert mask_text(text) == text


def test_the_shapes_that_leaked_before():
    for text in (
        "phone:13800138000",
        "138.0013.8000",
        "手机13800138000",
        "tel=138-0013-8000",
        "138 - 0013 - 8000",
        "电话\uff1a138\u00a00013\u00a08000",
    ):
        assert "***" in mask_text(text) and "8000" not in mask_text(text), text


def test_every_declared_personal_field_is_masked_in_logs_before_any_crm_opens():
    from crmcore.entities import Customer, Interaction, Task
    from crmcore.logs import personal_keys
    from crmcore.schema import personal_fields

    for cls in (Customer, Interaction, Task):
        assert set(personal_fields(cls)) <= personal_keys(), cls
