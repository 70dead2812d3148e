"""The ``crm_business_clock`` contract: complaints answers with its business calendar, for
other plugins' SLAs (they call the hook; none imports complaints)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def test_complaints_answers_with_its_business_calendar(setup):
    crm, _api = setup({"calendar": {"timezone": "UTC", "hours": {"mon": "09:00-12:00"}}})
    clock = crm.plugins.crm_business_clock(crm=crm)
    assert clock is not None
    monday = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
    assert clock.add(monday, timedelta(hours=2)) == datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
    assert clock.elapsed(monday, monday + timedelta(days=7)) == timedelta(hours=3)
