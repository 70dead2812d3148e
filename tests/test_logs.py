"""Personal data never reaches log output unmasked, whatever the level or format."""

import io
import json

import pytest
import structlog

from crmcore.logs import configure_logging, get_logger, mask_text


@pytest.fixture
def output():
    stream = io.StringIO()
    yield stream
    configure_logging("warning", "console")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_personal_keys_and_contact_details_are_masked(output, fmt):
    configure_logging("debug", fmt, stream=output)
    get_logger("grading", operation="regrade").debug(
        "regraded Li.Lei@example.com, call +86 138 0013 8000", name="Li Lei",
        phone="13800138000", customer={"email": "li@example.com", "region": "North"},
        notes=["ask about the kettle"], grade="B")
    text = output.getvalue()
    for secret in ("Li Lei", "13800138000", "138 0013 8000", "li@example.com",
                   "Li.Lei@example.com"):
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


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("chatty")
