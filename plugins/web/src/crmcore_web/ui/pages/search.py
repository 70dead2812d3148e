"""Search (``/search?q=``): by name, by phone written any way (normalised as the importer does,
or its last digits), or by e-mail; only customers the signed-in person may read."""

from __future__ import annotations

import re
from typing import Any

from crmcore.entities import Customer
from crmcore.errors import ValidationError
from crmcore.normalize import normalize_email, parse_phone
from crmcore.registry import PageRequest, Render, WebPage
from crmcore_web.ui.pages import people

LIMIT = 50
MIN_TAIL_DIGITS = 4
_DIGITS = re.compile(r"\d")


def pages() -> list[WebPage]:
    return [WebPage("/search", search, name="search")]


def find(request: PageRequest, text: str) -> tuple[list[Customer], str]:
    """The customers ``text`` finds (at most ``LIMIT``) and how it was read
    (``phone``, ``phone_tail``, ``email``, ``name``)."""
    crm, actor = request.crm, request.actor
    text = " ".join(text.split())
    if "@" in text:
        try:
            email = normalize_email(text)
        except ValidationError:
            email = text.casefold()
        found = crm.customers.find(crm.readable_filter(actor, {"email": email}), limit=LIMIT)
        return found, "email"
    digits = "".join(_DIGITS.findall(text))
    letters = any(ch.isalpha() for ch in text)
    if digits and not letters:
        try:
            phone = parse_phone(text, default_country_code=crm.config.core.default_country_code)
        except ValidationError:
            phone = None
        if phone is not None:
            found = crm.customers.find(
                crm.readable_filter(actor, {"phone": phone.e164}), limit=LIMIT
            )
            if found:
                return found, "phone"
        if len(digits) >= MIN_TAIL_DIGITS:
            return _scan(
                request,
                lambda c: (
                    bool(c.phone) and "".join(_DIGITS.findall(c.phone or "")).endswith(digits)
                ),
            ), "phone_tail"
        return [], "phone"
    needle = text.casefold()
    return _scan(request, lambda c: needle in c.name.casefold()), "name"


def _scan(request: PageRequest, match: Any) -> list[Customer]:
    query = request.crm.readable_filter(request.actor, {"status": "active"})
    out = []
    for customer in request.crm.customers.iter(query):
        if match(customer):
            out.append(customer)
            if len(out) >= LIMIT:
                break
    return out


def search(request: PageRequest) -> Render:
    text = request.query.get("q", "").strip()
    found: list[Customer] = []
    how = ""
    if text:
        found, how = find(request, text)
    rows = [
        {
            "customer": c,
            "phone": people.mask_phone(c.phone) if c.phone else "",
            "badges": people.badges(request.crm, c),
        }
        for c in found
    ]
    return Render("web/search.html", {"text": text, "rows": rows, "how": how, "limit": LIMIT})
