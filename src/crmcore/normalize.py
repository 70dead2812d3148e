"""Normalisation of contact details, so duplicates can be found and matched.

Phones go through Google's ``phonenumbers`` library (libphonenumber's metadata): every way of
writing one number (full-width digits, ``+86``/``0086``/``86`` prefixes, separators, a trunk
``0`` in brackets) gives one E.164 form, and numbers that cannot exist are refused with the
reason.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import attrs

from crmcore.errors import ValidationError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEPARATORS = re.compile(r"[\s\-().\u3000\uff08\uff09\uff0d]")


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[int, str], dict[int, str]]:
    """(phone type -> name, possibility -> reason), built when the first phone is parsed:
    ``phonenumbers`` is imported then, not by every process that imports crmcore."""
    from phonenumbers import PhoneNumberType, ValidationResult

    types = {
        PhoneNumberType.MOBILE: "mobile",
        PhoneNumberType.FIXED_LINE: "fixed_line",
        PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
        PhoneNumberType.TOLL_FREE: "toll_free",
        PhoneNumberType.PREMIUM_RATE: "premium_rate",
        PhoneNumberType.SHARED_COST: "shared_cost",
        PhoneNumberType.VOIP: "voip",
        PhoneNumberType.PERSONAL_NUMBER: "personal",
        PhoneNumberType.PAGER: "pager",
        PhoneNumberType.UAN: "uan",
        PhoneNumberType.VOICEMAIL: "voicemail",
    }
    reasons = {
        ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        ValidationResult.TOO_SHORT: "too short",
        ValidationResult.TOO_LONG: "too long",
        ValidationResult.INVALID_LENGTH: "wrong number of digits for its country",
    }
    return types, reasons


@attrs.frozen
class Phone:
    """A normalised phone: ``e164`` (``+8613800138000``) and its ``type`` (``mobile``,
    ``fixed_line``, ``toll_free`` …, or None when no country is known to tell)."""

    e164: str
    type: str | None


def region_for(country_code: str | None) -> str | None:
    """``"86"`` → ``"CN"``: the region ``phonenumbers`` reads national numbers in."""
    if not country_code:
        return None
    import phonenumbers

    region = phonenumbers.region_code_for_country_code(int(country_code))
    return None if region == phonenumbers.UNKNOWN_REGION else region


def parse_phone(raw: str, *, default_country_code: str | None = None) -> Phone:
    """Normalise ``raw``; raise ``ValidationError`` (field ``phone``) saying why it is not a
    number. Without a default country, a number must be written with its country code
    (``+44 …``, ``0044 …``), except that bare digits are kept as digits (6 to 15), unchecked."""
    if not isinstance(raw, str):
        raise ValidationError("expected text", field="phone")
    # NFKC: full-width digits and plus signs (Chinese input methods) become ASCII
    return _parse(unicodedata.normalize("NFKC", raw).strip(), default_country_code)


@lru_cache(maxsize=4096)
def _parse(text: str, country_code: str | None) -> Phone:
    if not text:
        raise ValidationError("phone number is empty", field="phone")
    region = region_for(country_code)
    compact = _SEPARATORS.sub("", text)
    digits_only = compact.isascii() and compact.isdigit()
    if region is None and digits_only and not compact.startswith("00"):
        # No country to read a national number in: keep the digits, as typed.
        if not 6 <= len(compact) <= 15:
            raise ValidationError(
                f"malformed phone number {text!r}: expected 6 to 15 digits", field="phone"
            )
        return Phone(compact, None)
    if region is None and compact.startswith("00"):
        text = "+" + compact[2:]
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

    phone_types, reasons = _tables()
    try:
        number = phonenumbers.parse(text, region or "ZZ")
    except NumberParseException as exc:
        why = {
            NumberParseException.INVALID_COUNTRY_CODE: (
                "no country code (write it as +<country> …, or set [core] default_country_code)"
            )
            if region is None
            else "unknown country code",
            NumberParseException.NOT_A_NUMBER: "not a phone number",
            NumberParseException.TOO_SHORT_NSN: "too short",
            NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
            NumberParseException.TOO_LONG: "too long",
        }.get(exc.error_type, str(exc))
        raise ValidationError(f"malformed phone number {text!r}: {why}", field="phone") from None
    # ``is_valid_number`` is ``number_type`` != UNKNOWN for the number's own region (the
    # region is found from its country code, so the two always agree): ask once. A valid
    # number has a possible length for its type, so only an invalid one is asked why.
    number_type = phonenumbers.number_type(number)
    if number_type == PhoneNumberType.UNKNOWN:
        possible = phonenumbers.is_possible_number_with_reason(number)
        if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
            raise ValidationError(
                f"malformed phone number {text!r}: {reasons.get(possible, 'not possible')}",
                field="phone",
            )
        where = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        raise ValidationError(
            f"invalid phone number {text!r}: no such number in {where} "
            "(check the digits and the area or mobile prefix)",
            field="phone",
        )
    kind = phone_types.get(number_type)
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind)


def normalize_phone(raw: str, *, default_country_code: str | None = None) -> str:
    """The phone in E.164 form (``+8613800138000``); see ``parse_phone``."""
    return parse_phone(raw, default_country_code=default_country_code).e164


def normalize_email(raw: str) -> str:
    """Return the e-mail trimmed and lower-cased; raise ``ValidationError`` if malformed."""
    text = raw.strip().lower()
    if not _EMAIL.match(text):
        raise ValidationError(f"malformed e-mail address {raw!r}", field="email")
    return text
