"""``crmcore_web.browser.wait_for`` without a browser: what counts as "not yet"."""

from __future__ import annotations

import pytest
from crmcore_web.browser import wait_for
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)


def answers(*steps):
    """A condition that raises or returns each of ``steps`` in turn, then True."""
    calls = []

    def condition(driver):
        calls.append(driver)
        step = steps[len(calls) - 1] if len(calls) <= len(steps) else True
        if isinstance(step, Exception):
            raise step
        return step

    return condition, calls


def test_an_element_of_a_document_navigated_away_from_is_read_again():
    # chromedriver's words for a stale element, as a plain WebDriverException
    left = WebDriverException(
        "unknown error: unhandled inspector error: "
        '{"code":-32000,"message":"Node with given id does not belong to the document"}'
    )
    condition, calls = answers(left, StaleElementReferenceException("stale"), False)
    # a deadline far beyond the three half-second polls: it returns as soon as the condition
    # holds, so only a machine stalled for minutes could make it time out
    assert wait_for(object(), condition, seconds=300) is True
    assert len(calls) == 4


def test_any_other_driver_error_fails_at_once():
    condition, calls = answers(WebDriverException("chrome not reachable"))
    with pytest.raises(WebDriverException, match="chrome not reachable"):
        wait_for(object(), condition, seconds=300)
    assert len(calls) == 1


def test_a_condition_never_met_times_out():
    with pytest.raises(TimeoutException):
        wait_for(object(), lambda d: False, seconds=0.3)
