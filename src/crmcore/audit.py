"""The audit trail: every write to every collection, with actor, time and a masked diff.

``AuditedStore`` wraps the backend, so writes by the core and by plugins alike are recorded
without plugins doing anything. One entry per transaction: the action and every reaction
written with it, as a list of operations (``expand`` reads them, and entries of the older
shapes). An insert is recorded by a digest of the record it created (the record is in the
store; ``record_digest`` checks it), an update by its masked diff, a delete by the masked
record it removed. Entries form a hash chain (each holds the hash of the previous one), so
editing or deleting an entry is detected by ``verify``. Personal fields (declared with
``personal=True`` on a collection's record type) appear in diffs only as ``"***"``. Lease
changes (claim/release) are technical and not audited. ``archive`` moves old entries out to a
file, sealed by a record beside the head (``crmcore.auditarchive``).

The chain is anchored outside itself, so that removing its last entries, or editing one and
re-hashing everything after it, is detected too:

- the head (last entry's ``seq`` and ``hash``) is recorded, once per write transaction just
  before it commits, in a collection of its own, ``audit_head``, outside the trail (a file of
  its own on the embedded store);
- with an audit key (``$CRM_AUDIT_KEY`` or ``[core] audit_key_file``, held like the encryption
  key: outside the store), every entry and the head carry ``mac``, an HMAC-SHA256 of the
  entry's hash, which nobody without the key can forge. A MAC on one entry vouches for every
  entry before it, since each hash covers its predecessor's;
- ``anchor()`` exports the head for safekeeping elsewhere, and ``verify(anchors=…)`` checks the
  trail still holds what every exported anchor recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import os
import threading
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from hashlib import sha256
from types import TracebackType
from typing import Any, TypeVar

import attrs

from crmcore.clock import Clock
from crmcore.converter import iso
from crmcore.errors import (
    ConfigError,
    ConflictError,
    DuplicateKeyError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from crmcore.jsontext import ascii_json, canonical, json_canonical
from crmcore.logs import MASK
from crmcore.names import CUSTOMERS
from crmcore.storage import BulkResult, Collection, CollectionSpec, IndexSpec, Store
from crmcore.storage.base import CollectionLayer, Doc, StoreLayer

AUDIT = "audit"
AUDIT_SPEC = CollectionSpec(
    AUDIT,
    (
        IndexSpec([("seq", 1)], unique=True),
        IndexSpec([("customer_id", 1), ("seq", 1)]),
        IndexSpec([("record_id", 1)]),
    ),
    sequence="seq",
)
ENV_AUDIT_KEY = "CRM_AUDIT_KEY"
ENV_AUDIT_PREVIOUS_KEYS = "CRM_AUDIT_PREVIOUS_KEYS"
HEAD = "audit_head"
HEAD_SPEC = CollectionSpec(HEAD, ())
HEAD_ID = "head"
SEAL_ID = "seal"
ANCHOR_FORMAT = "crmcore-audit-anchor/1"
GENESIS = "0" * 64
_NOT_HASHED = frozenset({"hash", "version", "mac"})
_NOT_SHOWN = frozenset({"id", "version"})
_NO_FIELDS: frozenset[str] = frozenset()
T = TypeVar("T")
UNATTRIBUTED = "unattributed"

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("crm_actor", default=None)


class acting_as:  # lower case: it reads as a function, ``with acting_as("ann"):``
    """Attribute every write inside the block to ``actor`` (a class, not a generator: it is
    on every write's path)."""

    __slots__ = ("_token", "actor")

    def __init__(self, actor: str) -> None:
        self.actor = actor

    def __enter__(self) -> None:
        self._token = _actor.set(self.actor)

    def __exit__(self, *_exc: object) -> None:
        _actor.reset(self._token)


def set_actor(actor: str) -> contextvars.Token[str | None]:
    """Attribute this context's writes to ``actor`` until ``reset_actor(token)``: what
    ``acting_as`` does, for a caller that is itself a context manager."""
    return _actor.set(actor)


def reset_actor(token: contextvars.Token[str | None]) -> None:
    _actor.reset(token)


def current_actor() -> str:
    return _actor.get() or UNATTRIBUTED


def masked(doc: Mapping[str, Any], personal: frozenset[str]) -> dict[str, Any]:
    """``doc`` as an audit entry shows it: ``personal`` fields that hold a value read ``***``,
    and the version is left out."""
    out = dict(doc)
    out.pop("version", None)
    for key in personal & out.keys():
        if out[key] not in (None, "", [], {}):
            out[key] = MASK
    return out


_EMPTIED = frozenset({str, list, dict})  # the types whose empty value shows as nothing


def _blank(value: Any) -> bool:
    return value is None or (type(value) in _EMPTIED and not value)


def stored_fields(doc: Mapping[str, Any], personal: frozenset[str]) -> dict[str, Any]:
    """What an ``insert`` (or ``delete``) operation shows of ``doc``: its fields that hold a
    value, ``personal`` ones as ``***``; the id (the operation names it), the version and
    null or empty fields are left out."""
    # ``v or …``: ``not _blank(v)`` inlined (most fields hold a value; the rest are tested
    # as ``_blank`` does: None, and an empty str, list or dict, are blank)
    return {
        k: MASK if k in personal else v
        for k, v in doc.items()
        if k not in _NOT_SHOWN and (v or (v is not None and type(v) not in _EMPTIED))
    }


def _short(digest: bytes) -> str:
    """128 bits of a SHA-256 digest in 22 characters (URL-safe base64, unpadded)."""
    return urlsafe_b64encode(digest[:16])[:22].decode()


def insert_digest(fields: Mapping[str, Any]) -> str:
    """What an ``insert`` operation records of the record it created: the SHA-256 of the
    canonical JSON of its ``stored_fields`` (masked), cut to 128 bits, in 22 characters
    (URL-safe base64; entries written before 2026-12-07 19:00 UTC hold the same 128 bits as
    32 hex digits, ``digest_fits`` reads both). The record itself is in the store; this
    proves what was written, without a second copy."""
    return _short(sha256(canonical(fields)).digest())


def record_digest(doc: Mapping[str, Any], personal: frozenset[str] = _NO_FIELDS) -> str:
    """``insert_digest`` of ``doc`` as stored (id and version left out, ``personal`` fields
    masked): equal to its insert operation's ``sha`` while the record is as it was created."""
    return insert_digest(stored_fields(doc, personal))


def digest_fits(doc: Mapping[str, Any], sha: str, personal: frozenset[str] = _NO_FIELDS) -> bool:
    """Whether ``doc`` is the record an insert's ``sha`` was taken of, in either form."""
    full = sha256(canonical(stored_fields(doc, personal))).digest()
    expected = full.hex()[:32] if len(sha) == 32 else _short(full)
    return hmac.compare_digest(expected, sha)


def _splice(b: list[Any], a: list[Any]) -> dict[str, Any] | None:
    """A list change as the slice that changed, ``{"[i:j]": [before[i:j], after[i:k]]}``, when
    the two lists share a beginning or an end (an appended item records only that item);
    None when they share neither."""
    n = min(len(a), len(b))
    start = 0
    while start < n and a[start] == b[start] and type(a[start]) is type(b[start]):
        start += 1
    end = 0
    while end < n - start and a[-1 - end] == b[-1 - end] and type(a[-1 - end]) is type(b[-1 - end]):
        end += 1
    if not start and not end:
        return None
    return {f"[{start}:{len(b) - end}]": [b[start : len(b) - end], a[start : len(a) - end]]}


#: A tree of derived paths: ``{"ext": {"grading": {"signals": True}}}`` (``derived_tree``).
DerivedTree = Mapping[str, Any]
_NO_TREE: DerivedTree = {}


def derived_tree(paths: Iterable[str]) -> DerivedTree:
    """The dotted ``paths`` of a collection's derived fields as the tree ``changes`` walks."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        *parents, leaf = path.split(".")
        for name in parents:
            child = node.get(name)
            if child is True:
                break  # a parent is derived already
            node = node.setdefault(name, {})
        else:
            node[leaf] = True
    return tree


def value_digest(value: Any) -> str:
    """What an update records of a derived field's new value: the SHA-256 of its canonical
    JSON, cut to 128 bits, in 22 characters (as ``insert_digest``)."""
    return _short(sha256(canonical(value)).digest())


def changes(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    personal: frozenset[str] = _NO_FIELDS,
    derived: DerivedTree = _NO_TREE,
) -> dict[str, Any]:
    """What an ``update`` operation shows: ``{field: [before, after]}`` for the fields that
    changed (a missing field reads null), ``personal`` ones masked; where both sides are
    objects, only what changed inside them, nested the same way (``{"ext": {"loyalty":
    {"tier": ["iron", "gold"]}}}``); where both are lists that keep their beginning or end,
    only the slice that changed (``{"lines": {"[2:2]": [[], [item]]}}``: ``before[2:2]``
    became ``[item]``). A leaf is a two-item list, a nested change an object, except for a
    ``derived`` field (``derived_tree``): its leaf is the ``value_digest`` of its new value,
    a string, and a change of an object holding derived fields is shown inside it even when
    one side is missing (``{"ext": {"grading": {"signals": "9f2c…"}}}``)."""
    out: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        if key == "version":
            continue
        b, a = before.get(key), after.get(key)
        if b == a and type(b) is type(a):
            continue
        below = derived.get(key) if derived else None
        if key in personal:
            out[key] = [b if _blank(b) else MASK, a if _blank(a) else MASK]
        elif below is True:
            out[key] = value_digest(a)
        elif below and type(b or {}) is dict and type(a or {}) is dict:
            out[key] = changes(b or {}, a or {}, _NO_FIELDS, below)
        elif type(b) is dict and type(a) is dict and b and a:
            out[key] = changes(b, a)
        elif type(b) is list and type(a) is list and b and a:
            out[key] = _splice(b, a) or [b, a]
        else:
            out[key] = [b, a]
    return out


def flat_changes(diff: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of the fields a ``changes`` diff (or an old entry's diff) changed; a
    list's changed slice reads ``lines[2:2]``."""
    names: list[str] = []
    for key in sorted(diff):
        value = diff[key]
        if isinstance(value, Mapping):
            names += flat_changes(value, f"{prefix}{key}.")
        elif key.startswith("[") and prefix.endswith("."):
            names.append(f"{prefix[:-1]}{key}")
        else:
            names.append(f"{prefix}{key}")
    return names


def expand(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The operations of an entry, each as one flat record: ``seq``, ``at``, ``actor``,
    ``op``, ``collection``, ``record_id``, ``customer_id`` and ``diff`` (an insert's
    ``{"sha": digest}`` (``insert_digest``; entries written before it: ``{"after":
    fields}``), a delete's ``{"before": fields}``, an update's ``changes``, a refusal's or an
    event's figures). Reads every shape: an entry per transaction (``ops``), inserts with
    their fields or their digest, and an entry per write, as crmcore wrote them before
    (returned as it is)."""
    common = {"seq": entry.get("seq"), "at": entry.get("at"), "hash": entry.get("hash")}
    if "ops" not in entry:
        return [{**common, **{k: v for k, v in entry.items() if k not in _NOT_HASHED}}]
    default = entry_customer(entry)
    out = []
    for item in entry["ops"]:
        if type(item) is list:  # by the entry's actor: [collection, id, digest or diff]
            collection, record_id, body = item
            if type(body) is str:
                item = {"op": "insert", "in": collection, "id": record_id, "sha": body}
            else:
                item = {"op": "update", "in": collection, "id": record_id, "diff": body}
        op = item.get("op")
        if op == "insert" and "sha" in item:
            diff: Any = {"sha": item["sha"]}
        elif op == "insert":
            diff = {"after": item.get("doc", {})}
        elif op == "delete":
            diff = {"before": item.get("doc", {})}
        else:
            diff = item.get("diff", {})
        out.append(
            {
                **common,
                "actor": item.get("actor", entry.get("actor")),
                "op": op,
                "collection": item.get("in"),
                "record_id": item.get("id"),
                "customer_id": item.get("customer", default),
                "diff": diff,
            }
        )
    return out


def entry_customer(entry: Mapping[str, Any]) -> str | None:
    """The one customer an entry per transaction concerns, or None (none, or several): its
    ``customers`` list, or, where the entry leaves it out (since 2026-12-07 21:40 UTC), the
    customer a short operation on the ``customers`` collection names (``[CUSTOMERS, id,
    …]``: every short operation concerns the entry's one customer, and a customer's own
    record concerns that customer)."""
    customers = entry.get("customers")
    if customers is not None:
        return customers[0] if len(customers) == 1 else None
    for item in entry.get("ops") or ():
        if type(item) is list and item[0] == CUSTOMERS:
            return item[1]
    return None


def entry_customers(entry: Mapping[str, Any]) -> list[str]:
    """The customers an entry concerns (what ``crm audit --customer`` looks for): its
    ``customers`` list, its one customer named by its operations (``entry_customer``), or,
    for an entry of one write as crmcore wrote them before, its ``customer_id``."""
    if "ops" not in entry:
        customer = entry.get("customer_id")
        return [customer] if isinstance(customer, str) else []
    if "customers" in entry:
        return list(entry["customers"])
    customer = entry_customer(entry)
    return [customer] if customer is not None else []


def new_entry(
    id: str,
    at: str,
    actor: str,
    op: str,
    collection: str,
    record_id: str | None,
    customer_id: Any,
    diff: dict[str, Any],
    seq: int,
    prev: str,
) -> dict[str, Any]:
    """An entry of the chain in the shape crmcore wrote before entries per transaction (one
    per write), before its ``hash``: still read and verified, written by tests and benches."""
    return {
        "id": id,
        "at": at,
        "actor": actor,
        "op": op,
        "collection": collection,
        "record_id": record_id,
        "customer_id": customer_id,
        "diff": diff,
        "seq": seq,
        "prev": prev,
    }


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry without its own hash, MAC and version."""
    body = {k: v for k, v in entry.items() if k not in _NOT_HASHED}
    return sha256(json_canonical(body).encode()).hexdigest()


def chained_hash(entry: Mapping[str, Any], prev: str) -> str:
    """``entry_hash`` of an entry that follows the entry whose hash is ``prev``. Entries
    written since 2026-12-07 do not store ``prev`` (it is the hash of the entry before
    them), but their hash covers it as it covered the stored one: the hash is that of the
    entry with ``"prev": prev``. An entry that stores it is hashed as it is."""
    return entry_hash(entry if "prev" in entry else {**entry, "prev": prev})


def entry_mac(key: bytes, digest: str, role: str = "entry") -> str:
    """The MAC of an entry with hash ``digest``: HMAC-SHA256 over ``crmcore-audit:<role>:
    <digest>``. The head record and anchors name an entry with roles of their own (``head``,
    ``anchor``), so an entry's MAC cannot be copied into a forged head."""
    return hmac.new(key, f"crmcore-audit:{role}:{digest}".encode(), "sha256").hexdigest()


def _mac_fits(keys: tuple[bytes, ...], digest: str, mac: Any, role: str = "entry") -> bool:
    return isinstance(mac, str) and any(
        hmac.compare_digest(entry_mac(k, digest, role), mac) for k in keys
    )


def load_audit_keys(core: Any, environ: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The audit key (``$CRM_AUDIT_KEY`` or ``core.audit_key_file``) followed by its previous
    ones (``$CRM_AUDIT_PREVIOUS_KEYS`` or ``core.audit_previous_key_files``), checked as
    encryption keys are; nothing when no key is configured. ``core``: ``[core]`` settings."""
    env = os.environ if environ is None else environ
    if not (
        env.get(ENV_AUDIT_KEY)
        or core.audit_key_file
        or env.get(ENV_AUDIT_PREVIOUS_KEYS, "").strip()
        or core.audit_previous_key_files
    ):
        return ()  # none configured (and crmcore.encryption, which reads them, not imported)
    from crmcore.encryption import load_previous_secrets, load_secret

    key = load_secret(
        ENV_AUDIT_KEY, core.audit_key_file, "core.audit_key_file", "audit key", environ
    )
    previous = load_previous_secrets(
        ENV_AUDIT_PREVIOUS_KEYS,
        core.audit_previous_key_files,
        "core.audit_previous_key_files",
        "audit key",
        key,
        environ,
    )
    if key is None and previous:
        raise ConfigError(
            "previous audit keys are configured but no current one: set "
            f"${ENV_AUDIT_KEY} or core.audit_key_file"
        )
    return (key, *previous) if key is not None else ()


@attrs.frozen
class Anchor:
    """The chain's head at one moment, kept outside the store: entry ``seq`` had ``hash``."""

    seq: int
    hash: str
    at: str | None = None  # when that entry was written
    exported_at: str | None = None
    store: str | None = None
    mac: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": ANCHOR_FORMAT, **attrs.asdict(self)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> Anchor:
        """An anchor as ``to_json`` wrote it; anything else is refused, naming ``source``."""
        if not isinstance(data, Mapping) or data.get("format") != ANCHOR_FORMAT:
            raise ValidationError(
                f"{source} is not an audit anchor (written by 'crm audit anchor')"
            )
        seq, digest = data.get("seq"), data.get("hash")
        if (
            not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 0
            or not isinstance(digest, str)
            or len(digest) != 64
        ):
            raise ValidationError(
                f"{source}: an anchor needs a 'seq' (a whole number) and a 'hash' (64 hex digits)"
            )
        text = {
            k: data.get(k) if isinstance(data.get(k), str) else None
            for k in ("at", "exported_at", "store", "mac")
        }
        return cls(seq, digest, **text)

    def describe(self) -> str:
        when = f" exported {self.exported_at}" if self.exported_at else ""
        return f"the anchor{when}"


@attrs.frozen
class VerifyReport:
    entries: int
    ok: bool
    problem: str | None = None
    keyed: bool = False  # MACs were checked with the audit key
    notes: tuple[str, ...] = ()
    archived: int = 0  # entries moved to archive files before the live trail's first


class AuditedStore(StoreLayer):
    """A backend store whose writes are appended to the ``audit`` collection."""

    def __init__(self, inner: Store, clock: Clock, keys: tuple[bytes, ...] = ()) -> None:
        """``keys``: the audit key first, then previous ones (MACs they made still verify);
        none, and entries carry no MAC."""
        super().__init__(inner)
        self.clock = clock
        self.keys = keys
        self._specs: dict[str, CollectionSpec] = {}
        self._personal: dict[str, frozenset[str]] = {}
        self._derived: dict[str, DerivedTree] = {}
        self._head: tuple[int, str] | None = None
        self._head_version: int | None = None  # of the head record outside the trail
        self._lock = threading.Lock()
        self._local = threading.local()  # per thread: transaction depth, head to record
        self._audit = inner.ensure_collection(AUDIT_SPEC)
        self._heads = inner.ensure_collection(HEAD_SPEC)

    def declare(self, spec: CollectionSpec, personal: Iterable[str]) -> None:
        self._specs[spec.name] = spec
        self._personal[spec.name] = frozenset(personal)
        if spec.derived:
            self._derived[spec.name] = derived_tree(spec.derived)

    def masked_fields(self, collection: str) -> frozenset[str]:
        """The fields of ``collection`` whose values its entries show as ``***``."""
        return self._personal.get(collection, _NO_FIELDS)

    def collection(self, name: str) -> Collection:
        inner = self.inner.collection(name)
        return inner if name in (AUDIT, HEAD) else AuditedCollection(self, inner)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return _AuditedTransaction(self)

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """The backend's, forgetting the cached chain head when it fails (as ``transaction``)."""

        def body(*a: Any) -> T:
            self._enter()
            done = False
            try:
                result = fn(*a)
                done = True
            finally:
                self._leave(record=done)
            return result

        try:
            return self.inner.run_in_transaction(body, *args)
        except BaseException:
            self._forget_head()
            raise

    # One entry per outermost transaction: each write adds an operation to this thread's
    # pending list, and the entry holding them all is appended, and the head outside the trail
    # recorded, just before the transaction commits. A write outside any transaction is run
    # in one of its own (``AuditedCollection``), so it is its own entry.

    def _enter(self) -> None:
        local = self._local
        depth = getattr(local, "depth", 0)
        if not depth:
            local.ops = []
            local.last = {}  # (collection, id) -> (index in ops, actor, original before)
        local.depth = depth + 1

    def _leave(self, *, record: bool) -> None:
        local = self._local
        local.depth -= 1
        if local.depth:
            return
        ops, local.ops, local.last = local.ops, [], {}
        if record and ops:
            with self._lock:
                self._record_head(*self._append(ops))

    def _forget_head(self) -> None:
        # The entry appended inside a failed transaction was rolled back with it.
        with self._lock:
            self._head = None
            self._head_version = None

    # -- recording -----------------------------------------------------------------------

    def record(self, op: str, collection: str, before: Doc | None, after: Doc | None) -> None:
        """Add one write to the open transaction's entry: ``insert`` (``after``), ``update``
        (both) or ``delete`` (``before``), masked. Successive writes of one record by one
        actor in one transaction are one operation, their net effect."""
        if not getattr(self._local, "depth", 0):
            self.run_in_transaction(self.record, op, collection, before, after)
            return
        personal = self._personal.get(collection, _NO_FIELDS)
        source = after if after is not None else before
        assert source is not None
        record_id = source.get("id")
        spec = self._specs.get(collection)
        key = spec.customer_key if spec is not None else None
        customer = source.get(key) if key else None
        actor = current_actor()
        local = self._local
        known = local.last.get((collection, record_id))
        if op == "update" and known is not None and known[1] == actor:
            index, _actor, original = known
            merged = local.ops[index]
            if original is None:  # inserted in this transaction: the insert, as it ends
                merged[4] = stored_fields(after, personal)  # type: ignore[arg-type]
            else:
                derived = self._derived.get(collection, _NO_TREE)
                merged[4] = changes(original, after, personal, derived)  # type: ignore[arg-type]
            merged[3] = customer if customer is not None else merged[3]
            return
        if op == "insert":
            body: Any = stored_fields(after, personal)  # type: ignore[arg-type]
        elif op == "delete":
            body = stored_fields(before, personal)  # type: ignore[arg-type]
        else:
            body = changes(before, after, personal, self._derived.get(collection, _NO_TREE))  # type: ignore[arg-type]
        if op == "delete":
            local.last.pop((collection, record_id), None)
        else:
            local.last[(collection, record_id)] = (
                len(local.ops),
                actor,
                None if op == "insert" else before,
            )
        local.ops.append([op, collection, record_id, customer, body, actor])

    def record_denial(self, action: str, resource: Any, message: str) -> None:
        """Audit a refused action (``op`` is ``denied``), as a transaction of its own."""
        self.run_in_transaction(
            self._add,
            "denied",
            resource.kind,
            resource.id,
            resource.customer_id,
            {"action": action, "reason": message},
        )

    def record_event(self, op: str, collection: str, diff: Mapping[str, Any]) -> None:
        """Record one operation about a whole collection rather than one record's write (for
        example ``rekey``: documents re-sealed under a new encryption key, with ``diff``
        counting them), in the hash chain like every other. ``diff`` is stored as given, so
        it must hold no personal values."""
        self.run_in_transaction(self._add, op, collection, None, None, dict(diff))

    def _add(
        self, op: str, collection: str, record_id: Any, customer_id: Any, body: dict[str, Any]
    ) -> None:
        self._local.ops.append([op, collection, record_id, customer_id, body, current_actor()])

    def _append(self, ops: list[list[Any]]) -> tuple[int, str, str | None]:
        """Append the entry holding ``ops`` (``[op, collection, id, customer, body, actor]``
        each) as the next of the chain, now; returns the new head. Under ``_lock``."""
        at = iso(self.clock.now())
        actor = ops[0][5]
        customers = sorted({o[3] for o in ops if isinstance(o[3], str)})
        default = customers[0] if len(customers) == 1 else None
        packed: list[Any] = []
        for op, collection, record_id, customer, body, who in ops:
            if record_id is not None and who == actor and customer == default:
                # the short forms: [collection, id, digest] and [collection, id, diff]
                if op == "insert":
                    packed.append([collection, record_id, insert_digest(body)])
                    continue
                if op == "update":
                    packed.append([collection, record_id, body])
                    continue
            item: dict[str, Any] = {"op": op, "in": collection}
            if record_id is not None:
                item["id"] = record_id
            if op == "insert" and record_id is not None:
                item["sha"] = insert_digest(body)
            elif body or op not in ("insert", "delete"):
                item["doc" if op in ("insert", "delete") else "diff"] = body
            if who != actor:
                item["actor"] = who
            if customer != default:
                item["customer"] = customer
            packed.append(item)
        # The one customer, named by a short operation on its own record, is not listed
        # again (``entry_customer`` reads it from there).
        named = default is not None and any(
            type(p) is list and p[0] == CUSTOMERS and p[1] == default for p in packed
        )
        for _attempt in range(50):
            seq, prev = self._head if self._head is not None else self._read_head()
            full: dict[str, Any] = {
                "id": f"aud_{seq + 1}",
                "at": at,
                "actor": actor,
                "ops": packed,
                "seq": seq + 1,
                "prev": prev,
            }
            if customers and not named:
                full["customers"] = customers
            # ``full`` has no "hash" or "version" yet: this is ``entry_hash(full)``, and the
            # encoding it hashes, in ASCII, is the one the store may keep.
            body = canonical(full)
            digest = sha256(body).hexdigest()
            # Stored without ``prev``, the hash before it (``chained_hash``): the last
            # ``"prev":`` of the canonical text is the entry's own (only ``seq`` follows it).
            cut = body.rindex(b'"prev":')
            body = body[:cut] + body[cut + len(prev) + 10 :]
            del full["prev"]
            full["hash"] = digest
            text = ascii_json(body.decode())
            tail = f'"hash":"{digest}"'
            mac = entry_mac(self.keys[0], digest) if self.keys else None
            if mac is not None:
                full["mac"] = mac
                tail += f',"mac":"{mac}"'
            try:
                self._audit.append(full, f"{text[:-1]},{tail}}}", sequence="seq")
            except DuplicateKeyError:
                self._head = None  # another process appended: read the head again
                continue
            self._head = (seq + 1, digest)
            return seq + 1, digest, entry_mac(self.keys[0], digest, "head") if self.keys else None
        raise DuplicateKeyError("audit: could not append after 50 attempts")

    def _read_head(self) -> tuple[int, str]:
        last = self._audit.last("seq")
        if last is not None:
            return last["seq"], last["hash"]
        seal = self.seal_record()  # every entry archived: the next one follows the seal
        return (seal["seq"], seal["hash"]) if seal else (0, GENESIS)

    # -- the head outside the trail ------------------------------------------------------

    def head_record(self) -> dict[str, Any] | None:
        """The head as last recorded outside the trail (``seq``, ``hash``, ``mac``), or None
        for a trail written before crmcore recorded it."""
        try:
            return self._heads.get(HEAD_ID)
        except NotFoundError:
            return None

    def seal_record(self) -> dict[str, Any] | None:
        """The seal of the entries archived so far (``crm audit archive``), kept beside the
        head outside the trail, or None if nothing was archived."""
        try:
            return self._heads.get(SEAL_ID)
        except NotFoundError:
            return None

    def _record_head(self, seq: int, digest: str, mac: str | None) -> None:
        """Move the head record forward to entry ``seq`` (never back: a process that
        appended later may have moved it further already; at the same entry, only to add
        the MAC)."""
        fields = {"seq": seq, "hash": digest, "mac": mac}
        for _attempt in range(50):
            if self._head_version is None:
                current = self.head_record()
                if current is None:
                    try:
                        stored = self._heads.insert({"id": HEAD_ID, **fields})
                    except DuplicateKeyError:
                        continue
                    self._head_version = stored["version"]
                    return
                if current["seq"] > seq or (current["seq"] == seq and current.get("mac") == mac):
                    return
                self._head_version = current["version"]
            try:
                stored = self._heads.update(HEAD_ID, fields, expected_version=self._head_version)
            except (ConflictError, NotFoundError):
                self._head_version = None  # another process moved it: read it again
                continue
            self._head_version = stored["version"]
            return
        raise ConflictError("audit: could not record the chain's head after 50 attempts")

    # -- checking ----------------------------------------------------------------------------

    def newest_first(self, customer_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The live trail's entries, newest first; with ``customer_id``, only those about
        that customer (``entry_customers``: an entry names its one customer by an operation
        on the customer's record rather than in a list, which no query of the store reads,
        so they are picked here). Read through the ``seq`` index in batches of growing size
        (50, 100, … 1,000 numbers), so that the newest few cost one small read."""
        coll = self._audit

        def above_next(below: int | None = None) -> int:
            """One more than the highest number (below ``below``) an entry holds, or 0."""
            numbers: dict[str, Any] = {"$gte": 0} if below is None else {"$gte": 0, "$lt": below}
            top = coll.find({"seq": numbers}, sort=[("seq", -1)], limit=1)
            return int(top[0]["seq"]) + 1 if top else 0

        batch = 50
        high = above_next()
        while high > 0:
            low = max(high - batch, 0)
            found = coll.find({"seq": {"$gte": low, "$lt": high}}, sort=[("seq", -1)])
            for entry in found:
                if customer_id is None or customer_id in entry_customers(entry):
                    yield entry
            if not found:  # past a gap (archived, or numbers skipped): the next one below
                low = above_next(low)
            high = low
            batch = min(batch * 2, 1000)

    def in_order(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """The live trail's entries by ``seq``, read ``batch`` numbers at a time through the
        ``seq`` index, so that walking a long trail holds one batch of decoded entries, not
        all of them. An entry whose ``seq`` is not a whole number is not among them
        (``verify`` counts it apart)."""
        low = 0
        while True:
            found = self._audit.find({"seq": {"$gte": low, "$lt": low + batch}}, sort=[("seq", 1)])
            if found:
                yield from found
                low += batch
                continue
            rest = self._audit.find({"seq": {"$gte": low}}, sort=[("seq", 1)], limit=1)
            if not rest or not _whole(rest[0]["seq"]):
                return
            low = rest[0]["seq"]  # past a gap

    def verify(
        self, anchors: Iterable[Anchor] = (), archived: Mapping[int, str] | None = None
    ) -> VerifyReport:
        """Walk the chain in order and report the first thing that does not fit: an entry
        missing, out of order, altered, or (with the audit key) without a valid MAC; a trail
        that ends before, or differs at, the head recorded outside it or an exported
        ``anchor``; an archive seal that does not hold together, or a trail that does not
        start where the seal ends; with the audit key, a trail that nothing the key made
        vouches for. ``archived``: hashes of archived entries by ``seq`` (from archive files
        checked first), for anchors that name an archived entry."""
        return self._verify(list(anchors), sealed=True, archived=archived or {})

    def _verify(
        self, anchors: list[Anchor], *, sealed: bool, archived: Mapping[int, str] | None = None
    ) -> VerifyReport:
        keys = self.keys
        head = self.head_record()
        wanted = {a.seq for a in anchors} | ({head["seq"]} if head else set())
        seen: dict[int, str] = {}
        prev, expected, count = GENESIS, 1, 0
        keyed_from: int | None = None
        unchecked = False
        seal = self.seal_record()
        sealed_to = 0
        if seal is not None:
            problem = seal_problem(seal, keys)
            if problem:
                return VerifyReport(0, False, problem, bool(keys))
            prev, expected, sealed_to = seal["hash"], seal["seq"] + 1, seal["seq"]
            for item in seal["archives"]:
                seen[item["last"]] = item["hash"]
            for seq, digest in (archived or {}).items():
                seen.setdefault(seq, digest)
        for entry in self.in_order():
            count += 1
            seq = entry["seq"]
            if seq != expected:
                return VerifyReport(
                    count,
                    False,
                    f"entry #{expected} is missing"
                    + (f" (the archive seal ends at #{sealed_to})" if sealed_to else ""),
                    bool(keys),
                )
            if entry.get("prev", prev) != prev:
                return VerifyReport(
                    count, False, f"entry #{seq} does not follow the one before it", bool(keys)
                )
            if chained_hash(entry, prev) != entry["hash"]:
                return VerifyReport(count, False, f"entry #{seq} was altered", bool(keys))
            mac = entry.get("mac")
            if keys and mac is None and keyed_from is not None:
                return VerifyReport(
                    count,
                    False,
                    f"entry #{seq} has no MAC although the "
                    f"entries from #{keyed_from} on have one: it was written "
                    "without the audit key",
                    True,
                )
            if keys and mac is not None:
                if not _mac_fits(keys, entry["hash"], mac):
                    return VerifyReport(
                        count,
                        False,
                        f"entry #{seq} does not carry a valid "
                        "MAC: it was altered and re-hashed by someone without "
                        "the audit key (or the audit key is wrong)",
                        True,
                    )
                keyed_from = seq if keyed_from is None else keyed_from
            unchecked = unchecked or (mac is not None and not keys)
            if seq in wanted:
                seen[seq] = entry["hash"]
            prev, expected = entry["hash"], expected + 1
        last = expected - 1

        archived_count = seal["entries"] if seal is not None else 0

        def broken(problem: str) -> VerifyReport:
            return VerifyReport(count, False, problem, bool(keys), archived=archived_count)

        stray = self._audit.count() - count
        if stray:
            return broken(
                f"the trail holds {stray} entr{'y' if stray == 1 else 'ies'} not numbered "
                f"in its sequence (#1-#{last}): it was altered"
            )

        notes: list[str] = []
        if head is not None:
            never_keyed = head.get("mac") is None and keyed_from is None
            if (
                keys
                and not never_keyed
                and not _mac_fits(keys, head["hash"], head.get("mac"), "head")
            ):
                return broken(
                    "the head recorded outside the trail has no valid MAC: it was "
                    "written without the audit key"
                )
            problem = _differs(
                head["seq"], head["hash"], seen, last, "the head recorded outside the trail"
            )
            if problem:
                return broken(problem)
            if keys and not never_keyed and keyed_from is None:
                keyed_from = head["seq"]  # the head's MAC vouches for the whole trail
        elif count and keys and keyed_from is not None:
            return broken(
                "the head recorded outside the trail is missing (deleted?), so "
                "removed entries at the end could not be noticed"
            )
        elif count:
            notes.append(
                "no head is recorded outside the trail yet (a trail written before "
                "crmcore recorded one): the next write, or 'crm audit anchor', "
                "records it"
            )
        for anchor in anchors:
            if (
                keys
                and anchor.mac is not None
                and not _mac_fits(keys, anchor.hash, anchor.mac, "anchor")
            ):
                return broken(f"{anchor.describe()} has no valid MAC for this audit key")
            if 0 < anchor.seq <= sealed_to and anchor.seq not in seen:
                return broken(
                    f"{anchor.describe()} records entry #{anchor.seq}, which is archived: "
                    "give the archive file that holds it with --archive FILE"
                )
            problem = _differs(anchor.seq, anchor.hash, seen, last, anchor.describe())
            if problem:
                return broken(problem)
        if sealed and keys and count and keyed_from is None:
            return broken(
                "no entry is authenticated by the audit key: if the trail was "
                "written before the key was configured, run 'crm audit anchor' "
                "once to seal it (if it was sealed before, its MACs were stripped: "
                "check it against an exported anchor first)"
            )
        if unchecked:
            notes.append(
                "entries carry MACs but no audit key is configured, so they were "
                "not checked: set $CRM_AUDIT_KEY or [core] audit_key_file"
            )
        return VerifyReport(count, True, None, bool(keys), tuple(notes), archived_count)

    def archive(
        self, before: str, write: Callable[[dict[str, Any], list[dict[str, Any]]], None]
    ) -> dict[str, Any] | None:
        """Move the live trail's oldest entries, those written before ``before`` (an ISO UTC
        time as entries write ``at``), out of the store, all but the newest entry (the
        chain's numbering goes on from it): verify the trail (``StorageError``
        if it is broken, nothing done), describe them (first and last ``seq``, the hash
        before the first and of the last, how many, MAC with the audit key), hand that and
        the entries to ``write`` (which keeps them, in an archive file), then in one
        transaction delete them from the trail, add them to the seal kept beside the head
        (so the next entry still chains to the last archived one and ``verify`` proves it)
        and record an ``archive`` event. Returns the description, or None if no entry is
        that old."""
        report = self.verify()
        if not report.ok:
            raise StorageError(
                f"audit trail broken after {report.entries} entries: {report.problem}; "
                "not archiving it"
            )
        old: list[dict[str, Any]] = []
        newest = self._audit.last("seq")
        seal = self.seal_record()
        first_prev = seal["hash"] if seal else GENESIS  # the live trail follows the seal
        for entry in self.in_order():
            if newest is None or entry["seq"] == newest["seq"]:  # it stays: numbering goes on
                break
            if not isinstance(entry.get("at"), str) or entry["at"] >= before:
                break
            old.append({k: v for k, v in entry.items() if k != "version"})
        if not old:
            return None
        item: dict[str, Any] = {
            "first": old[0]["seq"],
            "last": old[-1]["seq"],
            "prev": old[0].get("prev", first_prev),
            "hash": old[-1]["hash"],
            "entries": len(old),
            "from": old[0]["at"],
            "to": old[-1]["at"],
            "before": before,
            "archived_at": iso(self.clock.now()),
        }
        if self.keys:
            item["mac"] = entry_mac(self.keys[0], seal_digest(item), "archive")
        write(item, old)
        self.run_in_transaction(self._seal, item, [e["id"] for e in old])
        return item

    def _seal(self, item: dict[str, Any], ids: list[str]) -> None:
        seal = self.seal_record()
        archives = list(seal["archives"]) if seal else []
        if (seal["seq"] if seal else 0) + 1 != item["first"]:
            raise ConflictError("audit: another archive ran meanwhile; run it again")
        record: dict[str, Any] = {
            "seq": item["last"],
            "hash": item["hash"],
            "entries": (seal["entries"] if seal else 0) + item["entries"],
            "archives": [*archives, item],
        }
        record["mac"] = entry_mac(self.keys[0], seal_digest(record), "seal") if self.keys else None
        if seal is None:
            self._heads.insert({"id": SEAL_ID, **record})
        else:
            self._heads.update(SEAL_ID, record, expected_version=seal["version"])
        for id in ids:
            self._audit.delete(id)
        self._add(
            "archive",
            AUDIT,
            None,
            None,
            {k: item[k] for k in ("first", "last", "entries", "before")},
        )

    def anchor(self) -> Anchor:
        """Verify the trail, record its head outside it (sealing it with the audit key, which
        upgrades a trail written before either existed) and return that head as an
        ``Anchor`` to keep elsewhere. A broken trail is refused (``StorageError``)."""
        report = self._verify([], sealed=False)
        if not report.ok:
            raise StorageError(
                f"audit trail broken after {report.entries} entries: "
                f"{report.problem}; not anchoring it"
            )
        return self.inner.run_in_transaction(self._anchor)

    def _anchor(self) -> Anchor:
        with self._lock:  # the backend's lock first, as on every write
            last = self._audit.last("seq")
            seq, digest = self._read_head()  # the seal's end when every entry is archived
            key = self.keys[0] if self.keys else None
            self._head_version = None
            if seq:
                self._record_head(seq, digest, entry_mac(key, digest, "head") if key else None)
            self._head = (seq, digest)
        return Anchor(
            seq,
            digest,
            last["at"] if last else None,
            iso(self.clock.now()),
            self.inner.describe(),
            entry_mac(key, digest, "anchor") if key else None,
        )


def seal_digest(record: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a seal or an archive's description, without its
    ``id``, ``version`` and ``mac``: what their MAC authenticates."""
    body = {k: v for k, v in record.items() if k not in ("id", "version", "mac")}
    return sha256(json_canonical(body).encode()).hexdigest()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def seal_problem(seal: Mapping[str, Any], keys: tuple[bytes, ...]) -> str | None:
    """Why the archive seal does not hold together, or None: its archives must follow each
    other from entry #1 on, each starting where the one before ended, and add up to the
    seal's last entry, hash and count; with the audit key, it and each archive carry a
    valid MAC."""
    archives = seal.get("archives")
    if not isinstance(archives, list) or not archives:
        return "the archive seal outside the trail names no archive: it was altered"
    prev: Any = GENESIS
    next_seq, total = 1, 0
    for item in archives:
        if not isinstance(item, Mapping) or not all(
            _whole(item.get(k)) for k in ("first", "last", "entries")
        ):
            return "the archive seal outside the trail is malformed: it was altered"
        if item["first"] != next_seq or item.get("prev") != prev:
            return (
                f"the archive of entries #{item['first']}-#{item['last']} does not follow the "
                "one before it in the archive seal: the seal was altered"
            )
        if item["entries"] != item["last"] - item["first"] + 1:
            return f"the archive of entries #{item['first']}-#{item['last']} miscounts them"
        if keys and not _mac_fits(keys, seal_digest(item), item.get("mac"), "archive"):
            return (
                f"the archive of entries #{item['first']}-#{item['last']} has no valid MAC in "
                "the seal: it was written without the audit key"
            )
        prev, next_seq, total = item.get("hash"), item["last"] + 1, total + item["entries"]
    if seal.get("seq") != next_seq - 1 or seal.get("hash") != prev or seal.get("entries") != total:
        return "the archive seal outside the trail does not match its archives: it was altered"
    if keys and not _mac_fits(keys, seal_digest(seal), seal.get("mac"), "seal"):
        return (
            "the archive seal outside the trail has no valid MAC: it was written without "
            "the audit key"
        )
    return None


def _differs(seq: int, digest: str, seen: Mapping[int, str], last: int, what: str) -> str | None:
    """Why the trail does not hold entry ``seq`` with hash ``digest``, or None if it does."""
    if seq == 0:
        return None if digest == GENESIS else f"{what} names no entry"
    if seq > last:
        gone = f"entry #{seq}" if seq == last + 1 else f"entries #{last + 1}-#{seq}"
        return (
            f"the trail ends at entry #{last} but {what} records entry #{seq}: {gone} were removed"
        )
    if seen.get(seq) != digest:
        return (
            f"entry #{seq} is not the one {what} records: the trail was rewritten "
            "(edited and re-hashed)"
        )
    return None


class AuditedCollection(CollectionLayer):
    """Delegates to the backend's collection and records each write; reads are the backend's
    own (``PASSED_READS``)."""

    PASSED_READS = ("get", "find", "find_one", "iter", "count", "sum", "last", "indexes")

    def __init__(self, store: AuditedStore, inner: Collection) -> None:
        super().__init__(inner)
        self._store = store
        self._inner = inner

    # Each write and its audit entry happen in one backend transaction: atomic together where
    # the backend can, and the backend's lock is always taken before the auditor's. A failed
    # one forgets the chain head it may have moved (``AuditedStore.transaction``).

    def insert(self, doc: Doc) -> Doc:
        return self._store.run_in_transaction(self._insert, doc)

    def _insert(self, doc: Doc) -> Doc:
        stored = self._inner.insert(doc)
        self._store.record("insert", self.name, None, stored)
        return stored

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        with self._store.transaction():
            result = self._inner.insert_many(docs)
            ok = set(result.ids)
            for doc in docs:
                if isinstance(doc, Mapping) and doc.get("id") in ok:
                    self._store.record("insert", self.name, None, doc)
        return result

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        with self._store.transaction():
            befores = {}
            for doc in docs:
                with contextlib.suppress(Exception):
                    befores[doc["id"]] = self._inner.get(doc["id"])
            result = self._inner.upsert_many(docs)
            ok = set(result.ids)
            for doc in docs:
                if isinstance(doc, Mapping) and doc.get("id") in ok:
                    before = befores.get(doc["id"])
                    self._store.record("update" if before else "insert", self.name, before, doc)
        return result

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        with self._store.transaction():
            result = self._inner.import_raw(docs)
            ok = set(result.ids)
            for doc in docs:
                if isinstance(doc, Mapping) and doc.get("id") in ok:
                    self._store.record("insert", self.name, None, doc)
        return result

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        return self._store.run_in_transaction(self._update, id, changes, expected_version)

    def _update(self, id: str, changes: Mapping[str, Any], expected_version: int) -> Doc:
        before = self._inner.get(id)
        after = self._inner.update(id, changes, expected_version=expected_version)
        self._store.record("update", self.name, before, after)
        return after

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self._store.run_in_transaction(self._delete, id, expected_version)

    def _delete(self, id: str, expected_version: int | None) -> None:
        before = self._inner.get(id)
        self._inner.delete(id, expected_version=expected_version)
        self._store.record("delete", self.name, before, None)

    # ensure_index, claim, release: CollectionLayer's (straight to the inner collection; a
    # lease is bookkeeping, not a change the trail records)


class _AuditedTransaction:
    """``AuditedStore.transaction()``: the backend's, recording the chain's head before the
    outermost one commits and forgetting the cached head when it fails (a class, not a
    generator: every write goes through it)."""

    __slots__ = ("_inner", "_store")

    def __init__(self, store: AuditedStore) -> None:
        self._store = store
        self._inner = store.inner.transaction()

    def __enter__(self) -> None:
        self._inner.__enter__()
        self._store._enter()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        store = self._store
        try:
            store._leave(record=kind is None)
        except BaseException as failed:  # the head could not be recorded: roll back
            kind, exc, tb = type(failed), failed, failed.__traceback__
            with contextlib.suppress(BaseException):
                self._inner.__exit__(kind, exc, tb)
            store._forget_head()
            raise
        try:
            self._inner.__exit__(kind, exc, tb)
        except BaseException:
            store._forget_head()
            raise
        if kind is not None:
            store._forget_head()
