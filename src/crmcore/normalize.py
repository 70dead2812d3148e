"""Normalisation of contact details, so duplicates can be found and matched."""

from __future__ import annotations

import re

from crmcore.errors import ValidationError

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_phone(raw: str, *, default_country_code: str | None = None) -> str:
    """Return the phone in ``+<country><number>`` form, or digits alone when no country is known.

    ``default_country_code`` (digits, e.g. ``"86"``) is prefixed to numbers written without one.
    Raises ``ValidationError`` when the result is not 6 to 15 digits (E.164's limit).
    """
    if raw[:1] == "+" and raw[1:].isdigit() and 6 <= len(raw) - 1 <= 15:
        return raw  # already in the form this returns (what the steps below would give)
    text = _PHONE_SEPARATORS.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits, international = text[1:], True
    else:
        digits, international = text, False
    if not digits:
        raise ValidationError("phone number is empty", field="phone")
    if not digits.isdigit():
        raise ValidationError(f"malformed phone number {raw!r}: only digits, spaces, '-', '(', ')' "
                              "and a leading '+' are allowed", field="phone")
    if not international and default_country_code:
        digits = default_country_code + digits.lstrip("0")
        international = True
    if not 6 <= len(digits) <= 15:
        raise ValidationError(f"malformed phone number {raw!r}: expected 6 to 15 digits",
                              field="phone")
    return ("+" if international else "") + digits


def normalize_email(raw: str) -> str:
    """Return the e-mail trimmed and lower-cased; raise ``ValidationError`` if malformed."""
    text = raw.strip().lower()
    if not _EMAIL.match(text):
        raise ValidationError(f"malformed e-mail address {raw!r}", field="email")
    return text
