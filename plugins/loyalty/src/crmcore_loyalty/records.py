"""The plugin's stored records and the collections that hold them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from crmcore import ValidationError
from crmcore.schema import field, name_text, non_empty, utc_converter

# where the records are kept: ``storage``
from crmcore_loyalty.storage import ACCOUNTS as ACCOUNTS
from crmcore_loyalty.storage import CODES as CODES
from crmcore_loyalty.storage import CURSORS as CURSORS
from crmcore_loyalty.storage import LEDGER as LEDGER
from crmcore_loyalty.storage import REFERRALS as REFERRALS
from crmcore_loyalty.storage import TOTALS as TOTALS

EARN, REDEEM, EXPIRE, ADJUST, CLAWBACK = "earn", "redeem", "expire", "adjust", "clawback"
ENTRY_KINDS = (EARN, REDEEM, EXPIRE, ADJUST, CLAWBACK)

LINKED, REWARDED = "linked", "rewarded"


def _entry_kind(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value not in ENTRY_KINDS:
        raise ValidationError(
            f"unknown ledger entry kind {value!r} (allowed: {', '.join(ENTRY_KINDS)})",
            field=attribute.name,
        )


def _whole(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"expected a whole number of points, got {value!r}", field=attribute.name
        )


@attrs.frozen
class LedgerEntry:
    """One append-only line of a customer's points ledger.

    ``points`` is signed: earn (> 0), redeem and expire (< 0), clawback (<= 0), adjust (either).
    ``key`` (``"<kind>|<source>"``) is unique in the store, so one source event posts at most
    one entry of each kind however often it is replayed. Earn entries and positive adjustments
    are *lots*: they carry ``expires_at``. ``lot`` names the lot an expire or clawback entry is
    about. ``shortfall`` is what a clawback could not take back because the points were spent.
    """

    id: str
    customer_id: str = field(validator=name_text)
    kind: str = field(validator=_entry_kind)
    points: int = field(validator=_whole)
    source: str = field(validator=name_text)
    key: str = field(validator=name_text)
    reason: str = field(validator=non_empty)
    at: datetime = field(converter=utc_converter("at"))
    actor: str = field(validator=name_text)
    seq: int = 0
    expires_at: datetime | None = field(
        default=None, converter=utc_converter("expires_at", optional=True)
    )
    lot: str | None = None
    ref: str | None = None
    shortfall: int = field(default=0, validator=_whole)
    note: str = field(personal=True, default="")
    version: int = 0


def entry_key(kind: str, source: str) -> str:
    """The unique key of the entry of ``kind`` caused by ``source``."""
    return f"{kind}|{source}"


@attrs.frozen
class Account:
    """Per-customer bookkeeping that serialises writes (optimistic locking on ``version``).

    ``seq`` numbers the customer's entries; ``pending`` holds the documents of the last batch
    posted, so a batch whose entries were not all inserted (a crash between the account write
    and the inserts, on a backend without transactions) is rolled forward by the next reader.
    ``pending`` is written only on a backend without atomic transactions (elsewhere a batch's
    entries commit with the account): an account with ``pending`` set is read the careful way.
    The tier fields are the source of truth that ``customer.ext["loyalty"]`` mirrors.

    ``balance`` is the running sum of the customer's entries, written by every posting with
    the entries it posts (in the same transaction), so that an earn reads no ledger. None:
    not kept yet (an account from before it, or made by a tier or a referral link): the
    next posting computes it from the ledger, as ``crm loyalty rebuild`` does for everyone.

    ``spend_*`` are the customer's running spend totals for tier qualification (``totals``,
    read through the ``WindowTotals`` view), kept here so that a purchase reads and writes one
    loyalty record: ``spend_kinds`` empty means none kept yet (rebuilt by the next purchase).
    """

    id: str
    customer_id: str
    seq: int = 0
    pending: list[dict[str, Any]] = attrs.field(factory=list)
    balance: int | None = None
    tier: str | None = None
    tier_since: datetime | None = field(
        default=None, converter=utc_converter("tier_since", optional=True)
    )
    tier_review_at: datetime | None = field(
        default=None, converter=utc_converter("tier_review_at", optional=True)
    )
    spend_micros: int = 0
    spend_edge: datetime | None = field(
        default=None, converter=utc_converter("spend_edge", optional=True)
    )
    spend_top: datetime | None = field(
        default=None, converter=utc_converter("spend_top", optional=True)
    )
    spend_first: datetime | None = field(
        default=None, converter=utc_converter("spend_first", optional=True)
    )
    spend_kinds: str = ""
    version: int = 0


#: The account's spend totals (``totals``), named as ``WindowTotals`` names them.
SPEND_FIELDS = {
    "micros": "spend_micros",
    "edge": "spend_edge",
    "top": "spend_top",
    "first": "spend_first",
    "kinds": "spend_kinds",
}


def account_id(customer_id: str) -> str:
    """Accounts have an id derived from the customer's, so creating one is race-free."""
    return f"lac_{customer_id}"


@attrs.frozen
class ReferralCode:
    """A customer's referral code (short, unambiguous, unique)."""

    id: str
    code: str = field(validator=name_text)
    customer_id: str = field(validator=name_text)
    created_at: datetime = field(converter=utc_converter("created_at"))
    version: int = 0


@attrs.frozen
class Referral:
    """``referred_id`` was brought by ``referrer_id`` ("old brings new")."""

    id: str
    referrer_id: str = field(validator=name_text)
    referred_id: str = field(validator=name_text)
    code: str = field(validator=name_text)
    linked_at: datetime = field(converter=utc_converter("linked_at"))
    linked_by: str = field(validator=name_text)
    status: str = LINKED
    qualifying_purchase_id: str | None = None
    rewarded_at: datetime | None = field(
        default=None, converter=utc_converter("rewarded_at", optional=True)
    )
    referrer_points: int = 0
    referred_points: int = 0
    referrer_capped: bool = False
    rewards: int = 0
    clawbacks: int = 0
    version: int = 0


def referral_id(referred_id: str) -> str:
    """A referral's id, derived from the new customer's: one link per customer, race-free."""
    return f"ref_{referred_id}"


@attrs.frozen
class Cursor:
    """How far a worker sweep has got (``through``), shared by every worker."""

    id: str
    through: datetime | None = field(
        default=None, converter=utc_converter("through", optional=True)
    )
    version: int = 0


@attrs.frozen
class WindowTotals:
    """A customer's running spend for tier qualification (``totals``): ``micros`` is the sum
    of the lines (purchases +, refunds -, in millionths) of their interactions with ``edge <
    occurred_at <= top``; no counted line lies before ``first``; ``kinds`` the record's form
    and the purchase kinds it was written under. Stored on the customer's ``Account``
    (``spend_*``); ``id`` and ``version`` are the account's. (Stores from before kept it as a
    record of its own in ``loyalty.totals``: no longer read, deleted by ``crm loyalty
    rebuild``.)"""

    id: str
    customer_id: str
    micros: int = 0
    edge: datetime | None = field(default=None, converter=utc_converter("edge", optional=True))
    top: datetime | None = field(default=None, converter=utc_converter("top", optional=True))
    first: datetime | None = field(default=None, converter=utc_converter("first", optional=True))
    kinds: str = ""
    version: int = 0


def totals_id(customer_id: str) -> str:
    """One totals record per customer, its id derived from the customer's (race-free)."""
    return f"ltt_{customer_id}"
