"""What an attacker with write access to the store (but not the audit key) can do to the audit
trail, for tests of ``crm audit verify`` on any backend: cut entries from its end, edit an entry
and re-hash every entry after it, rewrite the head recorded outside the trail."""

from __future__ import annotations

from typing import Any

from crmcore.app import CRM
from crmcore.audit import AUDIT, GENESIS, HEAD, HEAD_ID, chained_hash, expand
from crmcore.storage import Collection


def raw_trail(crm: CRM) -> Collection:
    """The ``audit`` collection beneath the audit layer."""
    assert crm.audit is not None
    return crm.audit.inner.collection(AUDIT)


def raw_head(crm: CRM) -> Collection:
    """The ``audit_head`` collection beneath the audit layer."""
    assert crm.audit is not None
    return crm.audit.inner.collection(HEAD)


def entries(crm: CRM) -> list[dict[str, Any]]:
    return sorted(raw_trail(crm).iter(), key=lambda e: e["seq"])


def operations(crm: CRM, **match: Any) -> list[dict[str, Any]]:
    """Every write, refusal and event the trail records, oldest first, as ``expand`` reads
    them (one flat record each: ``op``, ``collection``, ``record_id``, ``customer_id``,
    ``actor``, ``diff``, ``seq``), keeping those whose fields equal ``match``."""
    return [
        op
        for entry in entries(crm)
        for op in expand(entry)
        if all(op.get(k) == v for k, v in match.items())
    ]


def cut_tail(crm: CRM, count: int) -> None:
    """Delete the last ``count`` entries."""
    trail = raw_trail(crm)
    for entry in entries(crm)[-count:]:
        trail.delete(entry["id"])


def rechain_after_edit(
    crm: CRM, seq: int, changes: dict[str, Any], *, keep_macs: bool = True
) -> str:
    """Edit entry ``seq`` and re-hash it and every entry after it, as someone who knows the
    hash rule but not the audit key would (MACs are left as they were, or removed); returns
    the new hash of the last entry."""
    trail = raw_trail(crm)
    prev = None
    for entry in entries(crm):
        if entry["seq"] < seq:
            prev = entry["hash"]
            continue
        new = {k: v for k, v in entry.items() if k not in ("hash", "version", "mac")}
        if entry["seq"] == seq:
            new.update(changes)
        if prev is not None and "prev" in new:
            new["prev"] = prev
        if prev is None:  # the live trail's first entry: it follows the seal, if any
            seal = crm.audit.seal_record() if crm.audit is not None else None
            prev = seal["hash"] if seal else GENESIS
        new["hash"] = prev = chained_hash(new, prev)
        if keep_macs and "mac" in entry:
            new["mac"] = entry["mac"]
        update = {k: v for k, v in new.items() if k != "id"}
        if not keep_macs and "mac" in entry:
            update["mac"] = None
        trail.update(entry["id"], update, expected_version=entry["version"])
    assert prev is not None
    return prev


def set_head(crm: CRM, seq: int, digest: str, mac: str | None = None) -> None:
    """Overwrite the head recorded outside the trail."""
    heads = raw_head(crm)
    current = heads.get(HEAD_ID)
    heads.update(
        HEAD_ID, {"seq": seq, "hash": digest, "mac": mac}, expected_version=current["version"]
    )


def drop_head(crm: CRM) -> None:
    """Delete the head recorded outside the trail."""
    raw_head(crm).delete(HEAD_ID)
