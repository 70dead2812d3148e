"""The ``api_covers`` check: a marked test passes only if it called its route over HTTP,
through either test client (``api_client`` or ``crmcore.testing.api.ApiClient``)."""

from __future__ import annotations

import textwrap

pytest_plugins = ["pytester"]

MODULE = """
import attrs
import pytest

from crmcore import ApiRoute, hookimpl
from crmcore.testing import make_test_crm
from crmcore.testing.api import ApiClient, with_server

SECURITY = {"security": {"enforce": True, "actors": {"ann": {"role": "agent"}}}}


@attrs.frozen
class Ping:
    text: str


class Pinger:
    @hookimpl
    def crm_api_routes(self, crm):
        return [ApiRoute("POST", "/pinger/ping", lambda r: {"pong": r.body.text}, "Ping",
                         body=Ping)]


def client(plugins):
    return ApiClient(make_test_crm([*plugins, ("pinger", Pinger())], settings=SECURITY))


@pytest.mark.api_covers("POST", "/pinger/ping")
def test_served():
    answer = client(with_server([])).call("POST", "/pinger/ping", actor="ann",
                                          body={"text": "hi"})
    assert answer.http and answer.json == {"pong": "hi"}


@pytest.mark.api_covers("POST", "/pinger/ping")
def test_in_process_only():
    answer = client([]).call("POST", "/pinger/ping", actor="ann", body={"text": "hi"})
    assert not answer.http and answer.json == {"pong": "hi"}


@pytest.mark.api_covers("POST", "/pinger/ping")
def test_never_called():
    client(with_server([]))
"""


def test_a_marked_test_passes_only_if_it_called_its_route_over_http(pytester):
    pytester.makepyfile(test_marked=textwrap.dedent(MODULE))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_marked.py::test_in_process_only*",
            "FAILED test_marked.py::test_never_called*",
        ]
    )
    # counted in the failures' own lines: with CI set, pytest repeats the whole message in its
    # short summary too
    said = [
        line
        for line in result.stdout.lines
        if line.startswith("E ")
        and "Failed: marked api_covers but never called over HTTP: POST /pinger/ping" in line
    ]
    assert len(said) == 2
