"""Where loyalty keeps its records: the collections it declares.

The record classes (``records``) are named, not imported, so that opening a CRM does not define
them; their personal fields are spelt out beside them (``CollectionSpec`` checks them against
the classes when they are resolved).
"""

from __future__ import annotations

from crmcore.storage import CollectionSpec, IndexSpec

LEDGER = "loyalty.ledger"
ACCOUNTS = "loyalty.accounts"
CODES = "loyalty.codes"
REFERRALS = "loyalty.referrals"
CURSORS = "loyalty.cursors"
TOTALS = "loyalty.totals"
#: The account's fields holding the spend totals (the values of ``records.SPEND_FIELDS``).
SPEND_FIELDS = ("spend_micros", "spend_edge", "spend_top", "spend_first", "spend_kinds")


def collections() -> list[CollectionSpec]:
    """The collections ``crm_collections`` declares."""
    return [
        CollectionSpec(
            LEDGER,
            (
                IndexSpec([("key", 1)], unique=True),
                IndexSpec([("customer_id", 1), ("seq", 1)]),
                # points last: the report adds a period's points per kind from the index
                # (``Collection.sum``) without reading the entries
                IndexSpec([("kind", 1), ("at", 1), ("points", 1)]),
                IndexSpec([("expires_at", 1)], sparse=True),
                IndexSpec([("reason", 1), ("at", 1)]),
            ),
            customer_key="customer_id",
            record_type="crmcore_loyalty.records:LedgerEntry",
            personal=("note",),
        ),
        CollectionSpec(
            ACCOUNTS,
            (
                IndexSpec([("tier_review_at", 1)], sparse=True),
                IndexSpec([("tier", 1)], sparse=True),
                # the report's points outstanding: the holders (and the accounts keeping no
                # balance yet: not sparse), without reading the ledger
                IndexSpec([("balance", 1)]),
            ),
            customer_key="customer_id",
            record_type="crmcore_loyalty.records:Account",
            personal=(),
            # the spend totals (``records.SPEND_FIELDS``, a test holds them equal) are computed
            # from the purchases (``crm loyalty rebuild``): the trail records them by digest
            derived=SPEND_FIELDS,
        ),
        CollectionSpec(
            CODES,
            (
                IndexSpec([("code", 1)], unique=True),
                IndexSpec([("customer_id", 1)]),
            ),
            customer_key="customer_id",
            record_type="crmcore_loyalty.records:ReferralCode",
            personal=(),
        ),
        CollectionSpec(
            REFERRALS,
            (
                # not unique: merging two referred records must stay possible; one link per new
                # customer is enforced by the referral's id (``referral_id``) instead
                IndexSpec([("referred_id", 1)]),
                IndexSpec([("referrer_id", 1), ("linked_at", 1)]),
                IndexSpec([("qualifying_purchase_id", 1)], sparse=True),
                IndexSpec([("status", 1)]),
            ),
            customer_key="referred_id",
            record_type="crmcore_loyalty.records:Referral",
            personal=(),
        ),
        CollectionSpec(CURSORS, record_type="crmcore_loyalty.records:Cursor", personal=()),
        # the spend totals' own records before they moved onto the accounts: still declared
        # so that an erasure or export of a customer reaches an old store's records
        CollectionSpec(
            TOTALS,
            customer_key="customer_id",
            record_type="crmcore_loyalty.records:WindowTotals",
            personal=(),
            derived=("micros", "edge", "top", "first", "kinds"),
        ),
        CollectionSpec("customers", derived=("ext.loyalty",)),
    ]
