"""A CRM with the web plugin and the role policy on, an API client, and a key per actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from crmcore import CRM

ACTORS = {
    "admin": {"role": "admin"},
    "ann": {"role": "agent", "team": "north", "department": "sales"},
    "bo": {"role": "agent", "team": "north", "department": "sales"},
    "lee": {"role": "shift_lead", "team": "north", "department": "sales"},
    "aud": {"role": "auditor"},
}


@attrs.define
class Web:
    crm: CRM
    client: Any
    as_: dict[str, dict[str, str]]

    def customer(self, name: str = "Ann Lee", **fields: Any) -> dict[str, Any]:
        """Add a customer through the API as admin; the answer's JSON."""
        answer = self.client.post(
            "/api/v1/customers", headers=self.as_["admin"], json={"name": name, **fields}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    def counts(self) -> tuple[int, int, int]:
        """Customers, interactions, tasks stored (to prove a refused request wrote nothing)."""
        crm = self.crm
        return (
            crm.customers.count(include_inactive=True),
            crm.interactions.count(),
            crm.tasks.count(),
        )


@pytest.fixture
def web_for(make_crm: Callable[..., CRM], api_client: Callable[..., Any]) -> Callable[..., Web]:
    def factory(plugins: tuple[str, ...] = ("web",), settings: dict | None = None) -> Web:
        crm = make_crm(
            plugins=list(plugins),
            settings={"security": {"enforce": True, "actors": ACTORS}, **(settings or {})},
        )
        client = api_client(crm)
        return Web(crm, client, {name: client.key(name) for name in ACTORS})

    return factory


@pytest.fixture
def web(web_for: Callable[..., Web]) -> Web:
    return web_for()
