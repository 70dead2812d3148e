"""Search keys: the short texts a customer is found by, kept on the customer's document in the
list field ``search`` and queried by equality on an index over it (``docs/search.md``).

A customer's keys, each prefixed by what it is:

- ``n:`` the whole name, normalised (NFKC, case-folded, one space between words);
- ``p:`` every prefix (1 to ``PREFIX_MAX`` characters) of every word of the name that is not
  Chinese, Japanese or Korean script (Latin names, digits, Cyrillic …);
- ``c:`` each CJK character of the name and each pair of neighbouring ones (a query of two
  characters or more asks for all its pairs, then the candidates are checked);
- ``e:`` the normalised e-mail, ``l:`` its local part and ``d:`` its domain;
- ``t:`` the phone's E.164 digits and every trailing run of them from ``PHONE_TAIL_MIN``
  digits (``5678``, ``45678`` …), so the last digits find the customer.

Keys are personal data: the audit trail masks them, erasure and merging clear them, and with
encryption at rest the store keeps a keyed hash of each instead (``crmcore.encryption``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import attrs

FIELD = "search"
PREFIX_MAX = 12  # longer words are found by their first 12 characters, then checked
PHONE_TAIL_MIN = 4
MAX_KEYS = 400  # a very long name keeps its first keys (the check does the rest)

_CJK = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f\u3190-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003ffff"
)
_WORD = re.compile(r"[^\W_]+")
_RUN = re.compile(f"([{_CJK}]+)|([^{_CJK}]+)")
_DIGITS = re.compile(r"\d")


def normalize_text(text: str) -> str:
    """Text as keys compare it: NFKC (full-width letters become plain), case-folded, words
    separated by one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def words(text: str) -> list[tuple[bool, str]]:
    """The words of normalised ``text`` as ``(is_cjk, run)``: a word mixing scripts splits
    where the script changes (``王wei`` is ``王`` and ``wei``)."""
    out = []
    for word in _WORD.findall(text):
        for cjk, other in _RUN.findall(word):
            out.append((True, cjk) if cjk else (False, other))
    return out


def name_keys(name: str) -> list[str]:
    """The keys of a name (``n:``, ``p:``, ``c:``)."""
    keys: set[str] = set()
    _add_name_keys(keys, name)
    return sorted(keys)


def _add_name_keys(keys: set[str], name: str) -> None:
    norm = normalize_text(name)
    if not norm:
        return
    keys.add(f"n:{norm}")
    for cjk, run in words(norm):
        if cjk:
            keys.update(f"c:{ch}" for ch in run)
            keys.update(f"c:{run[i : i + 2]}" for i in range(len(run) - 1))
        else:
            keys.update(f"p:{run[:i]}" for i in range(1, min(len(run), PREFIX_MAX) + 1))


def email_keys(email: str) -> list[str]:
    """``e:`` the whole (normalised) e-mail, ``l:`` its local part, ``d:`` its domain."""
    local, _at, domain = email.rpartition("@")
    return [f"e:{email}", *([f"l:{local}"] if local else []), *([f"d:{domain}"] if domain else [])]


def phone_keys(phone: str) -> list[str]:
    """``t:`` every trailing run of the phone's digits from ``PHONE_TAIL_MIN`` digits."""
    digits = phone[1:] if phone.startswith("+") else phone  # E.164, as stored
    if not (digits.isascii() and digits.isdigit()):
        digits = "".join(_DIGITS.findall(phone))
    return [f"t:{digits[-n:]}" for n in range(PHONE_TAIL_MIN, len(digits) + 1)]


def customer_keys(doc: Mapping[str, Any]) -> list[str]:
    """The search keys of a stored customer document: none unless it is active (merged and
    erased records are never found by a search)."""
    if doc.get("status", "active") != "active":
        return []
    keys: set[str] = set()
    name, email, phone = doc.get("name"), doc.get("email"), doc.get("phone")
    if isinstance(name, str):
        _add_name_keys(keys, name)
    if isinstance(email, str) and email:
        keys.update(email_keys(email))
    if isinstance(phone, str) and phone:
        keys.update(phone_keys(phone))
    # sorted once: the store's index takes them in this order without sorting them again
    return sorted(keys)[:MAX_KEYS]


@attrs.frozen
class NameQuery:
    """What a name search asks: every key of ``keys`` (one per word); ``text`` normalised."""

    text: str
    keys: tuple[str, ...]
    parts: tuple[tuple[bool, str], ...]


def name_query(text: str) -> NameQuery | None:
    """The keys a name search needs (all of them), or None if ``text`` has no word."""
    norm = normalize_text(text)
    parts = tuple(words(norm))
    keys: list[str] = []
    for cjk, run in parts:
        if not cjk:
            keys.append(f"p:{run[:PREFIX_MAX]}")
        elif len(run) == 1:
            keys.append(f"c:{run}")
        else:
            keys.extend(f"c:{run[i : i + 2]}" for i in range(len(run) - 1))
    if not keys:
        return None
    return NameQuery(norm, tuple(dict.fromkeys(keys)), parts)


def name_matches(query: NameQuery, name: str) -> int | None:
    """How well ``name`` answers ``query``: 0 the whole name, 1 its beginning, 2 every word
    found (a word of the query starts a word of the name, a CJK run is in the name), None
    not at all."""
    norm = normalize_text(name)
    if norm == query.text:
        return 0
    if norm.startswith(query.text):
        return 1
    latin = [run for cjk, run in words(norm) if not cjk]
    for cjk, run in query.parts:
        if cjk:
            if run not in norm:
                return None
        elif not any(w.startswith(run) for w in latin):
            return None
    return 2
