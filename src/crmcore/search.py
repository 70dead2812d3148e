"""Finding customers by what a person types: a name (or part of one), a phone written any
way or its last digits, an e-mail (``crm.customers.search``; ``docs/search.md``).

The text becomes search keys (``crmcore.searchkeys``) and the store answers an equality on
its index over the customers' ``search`` lists; only the customers it returns are read, each
checked against the text, then ranked: the whole name (or phone, or e-mail) first, then
names that begin with the text, then those where every word of it is found. At most
``limit`` come back, with ``more`` saying whether others match.

Customers written before search keys existed have none; they are still found (read one by
one, checked the same way) until ``crm db upgrade`` gives them keys.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from crmcore.entities import Customer
from crmcore.errors import ValidationError
from crmcore.normalize import normalize_email, parse_phone
from crmcore.searchkeys import (
    FIELD,
    PHONE_TAIL_MIN,
    name_matches,
    name_query,
    normalize_text,
)

LIMIT = 50
MAX_LIMIT = 1000
_DIGITS = re.compile(r"\d")
_PHONE_TEXT = re.compile(r"^[\d\s+()./\-]+$")

Rank = Callable[[Customer], int | None]  # 0 best; None: not a match


class Customers(Protocol):
    """What a search reads through (``crm.customers``)."""

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int | None = None,
        actor: str | None = None,
    ) -> list[Customer]: ...


@attrs.frozen
class SearchResult:
    """What a search found: ``customers`` best first, ``more`` if others match too, and how
    the text was read (``name``, ``phone``, ``phone_tail``, ``email``; empty for no text)."""

    customers: tuple[Customer, ...]
    more: bool
    how: str


@attrs.frozen
class _Query:
    how: str
    alternatives: tuple[tuple[str, ...], ...]  # a customer matches every key of one of them
    rank: Rank
    exact_key: str | None = None  # the key of the best matches, asked for first


def read(text: str, *, default_country_code: str | None = None) -> _Query | None:
    """How ``text`` is searched: as an e-mail (it holds ``@``), a phone (digits and phone
    punctuation only, ``PHONE_TAIL_MIN`` digits or more) or a name; None for no text."""
    text = " ".join(text.split())
    if not text:
        return None
    if "@" in text:
        return _email_query(text)
    digits = "".join(_DIGITS.findall(text))
    if _PHONE_TEXT.match(text) and len(digits) >= PHONE_TAIL_MIN:
        return _phone_query(text, digits, default_country_code)
    return _name_query(text)


def _email_query(text: str) -> _Query:
    try:
        email = normalize_email(text)
    except ValidationError:
        email = None
    if email is not None:
        return _Query(
            "email", ((f"e:{email}",),), lambda c: 0 if c.email == email else None, f"e:{email}"
        )
    wanted = normalize_text(text)
    local, _at, domain = wanted.partition("@")
    if not local:  # ``@example.com``: everyone at that domain
        return _Query(
            "email",
            ((f"d:{domain}",),),
            lambda c: 1 if c.email and c.email.endswith(wanted) else None,
        )

    def rank(c: Customer) -> int | None:
        return 1 if c.email and c.email.startswith(wanted) else None

    return _Query("email", ((f"l:{local}",),), rank)


def _phone_query(text: str, digits: str, country: str | None) -> _Query:
    full: str | None = None
    with contextlib.suppress(ValidationError):
        full = "".join(_DIGITS.findall(parse_phone(text, default_country_code=country).e164))
    keys = [f"t:{digits}"]
    if full is not None and full != digits:
        keys.insert(0, f"t:{full}")

    def rank(c: Customer) -> int | None:
        mine = "".join(_DIGITS.findall(c.phone or ""))
        if not mine:
            return None
        if mine in (full, digits):
            return 0
        return 1 if mine.endswith(digits) or (full and mine.endswith(full)) else None

    return _Query("phone", tuple((k,) for k in keys), rank, keys[0])


def _name_query(text: str) -> _Query | None:
    query = name_query(text)
    if query is None:
        return None
    alternatives: list[tuple[str, ...]] = [query.keys]
    local = None
    if " " not in query.text:
        local = query.text  # one word may be an e-mail's local part (``alice``) or domain
        alternatives.append((f"l:{local}",))
        if "." in local:
            alternatives.append((f"d:{local}",))

    def rank(c: Customer) -> int | None:
        found = name_matches(query, c.name)
        if found is None and local is not None and c.email:
            return 3 if local in c.email.split("@") else None
        return found

    return _Query("name", tuple(alternatives), rank, f"n:{query.text}")


def _condition(alternatives: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    branches = [
        {FIELD: keys[0]} if len(keys) == 1 else {"$and": [{FIELD: k} for k in keys]}
        for keys in alternatives
    ]
    return branches[0] if len(branches) == 1 else {"$or": branches}


def search_customers(
    customers: Customers,
    text: str,
    *,
    actor: str | None = None,
    limit: int = LIMIT,
    filter: Mapping[str, Any] | None = None,
    default_country_code: str | None = None,
) -> SearchResult:
    """The active customers ``text`` finds (those ``actor`` may read, matching ``filter``
    too), best first, at most ``limit`` (1 to ``MAX_LIMIT``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    query = read(text, default_country_code=default_country_code)
    if query is None:
        return SearchResult((), False, "")
    extra = dict(filter or {})
    window = 2 * limit + 1  # ranked within the first matches in id order

    def found(condition: Mapping[str, Any], count: int) -> list[Customer]:
        wanted = {"$and": [extra, condition]} if extra else dict(condition)
        return customers.find(wanted, sort=[("id", 1)], limit=count, actor=actor)

    hits: dict[str, Customer] = {}
    if query.exact_key is not None and query.alternatives != ((query.exact_key,),):
        for c in found({FIELD: query.exact_key}, limit + 1):
            hits[c.id] = c
    listed = found(_condition(query.alternatives), window)
    for c in listed:
        hits.setdefault(c.id, c)
    for c in _without_keys(customers, extra, actor):
        hits.setdefault(c.id, c)
    ranked = []
    for c in hits.values():
        rank = query.rank(c)
        if rank is not None:
            ranked.append((rank, normalize_text(c.name), c.id, c))
    ranked.sort(key=lambda r: r[:3])
    how = query.how
    if how == "phone" and (not ranked or ranked[0][0] != 0):
        how = "phone_tail"
    more = len(ranked) > limit or len(listed) >= window
    return SearchResult(tuple(r[3] for r in ranked[:limit]), more, how)


def _without_keys(
    customers: Customers, extra: Mapping[str, Any], actor: str | None
) -> Iterable[Customer]:
    """Customers stored before search keys existed (none after ``crm db upgrade``): an
    equality on the indexed field finds them without reading the others."""
    missing = {FIELD: None, **extra} if FIELD not in extra else {"$and": [extra, {FIELD: None}]}
    if not customers.find(missing, limit=1, actor=actor):
        return []
    return customers.find(missing, actor=actor)
