"""The pipeline grade's inputs (DOMAIN §2), kept in ``customer.ext["grading"]["inputs"]``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from crmcore import ValidationError

DEMANDS = ("target", "potential", "dead")
DEAL_STATUSES = ("closed", "negotiating", "potential")
IMPORTANCE = ("important", "not_important")
KEYS = ("demand", "expected_close", "deal_status", "importance")


def parse_close(value: Any) -> date | None:
    """An expected closing date from a date, a datetime, an ISO string or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(f"expected a date as YYYY-MM-DD, got {value!r}", field="expected_close")


def clean_inputs(
    changes: Mapping[str, Any], current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merge ``changes`` into ``current`` inputs and validate; returns the stored form.

    A key given as None is removed. ``demand`` is required once anything is set.
    """
    unknown = sorted(set(changes) - set(KEYS))
    if unknown:
        raise ValidationError(
            f"unknown grading input(s): {', '.join(unknown)} (known: {', '.join(KEYS)})"
        )
    merged = {k: v for k, v in dict(current or {}).items() if k in KEYS}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    out: dict[str, Any] = {}
    for key, allowed in (
        ("demand", DEMANDS),
        ("deal_status", DEAL_STATUSES),
        ("importance", IMPORTANCE),
    ):
        value = merged.get(key)
        if value is None:
            continue
        if value not in allowed:
            raise ValidationError(
                f"unknown value {value!r} (allowed: {', '.join(allowed)})", field=key
            )
        out[key] = value
    close = parse_close(merged.get("expected_close"))
    if close is not None:
        out["expected_close"] = close.isoformat()
    if out and "demand" not in out:
        raise ValidationError(
            "set the demand (target, potential or dead) first; the other inputs refine it",
            field="demand",
        )
    return {k: out[k] for k in KEYS if k in out}


def stored_close(inputs: Mapping[str, Any]) -> date | None:
    """The stored expected close date, or None when absent or unreadable."""
    try:
        return parse_close(inputs.get("expected_close"))
    except ValidationError:
        return None
