"""``crm.customers``: add, get, update, find and merge customers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs

from crmcore import names
from crmcore.compactdocs import without_defaults
from crmcore.converter import from_doc, from_docs, to_doc
from crmcore.effects import TaskUpdate
from crmcore.entities import Customer, CustomerStatus, Task
from crmcore.errors import (
    ConflictError,
    NotFoundError,
    PluginError,
    StorageError,
    ValidationError,
)
from crmcore.ids import new_id
from crmcore.kernel import Kernel
from crmcore.markers import N_
from crmcore.normalize import normalize_email, parse_phone
from crmcore.retry import retried
from crmcore.schema import personal_fields
from crmcore.search import LIMIT as SEARCH_LIMIT
from crmcore.search import SearchResult, search_customers
from crmcore.searchkeys import FIELD as SEARCH_FIELD
from crmcore.searchkeys import customer_keys
from crmcore.security import Resource, check_actor_name
from crmcore.storage import Collection, SortSpec
from crmcore.text import check_name

#: Records of a merged customer's history moved per transaction.
MERGE_BATCH = 500
#: The fields a customer's search keys are made of (``crmcore.searchkeys``).
SEARCHED = frozenset({"name", "phone", "email"})


class OpenTasks(Protocol):
    """What a merge and an erasure do to a customer's open tasks (``crm.tasks``)."""

    def open_for(self, customer_id: str, *, kind: str | None = None) -> list[Task]: ...

    def apply_update(self, update: TaskUpdate, *, actor: str) -> Task | None: ...

    def cancel_deduped_for(self, customer_id: str, *, actor: str, reason: str) -> int: ...


def load(coll: Collection, id: str, kernel: Kernel | None = None) -> Customer:
    """The customer ``id`` from the customers collection (as ``kernel``'s transaction sees
    it, given one); a merged one says where it went (``NotFoundError``). No permission
    check: ``Customers.get`` with ``actor`` does that."""
    doc = coll.get(id)
    customer = from_doc(Customer, doc if kernel is None else kernel.overlaid(names.CUSTOMERS, doc))
    if customer.status is CustomerStatus.MERGED:
        raise NotFoundError(f"customer {id} was merged into {customer.merged_into}")
    return customer


def _ext_values(given: object) -> bool:
    """Whether a plugin's answer to ``crm_customer_adding`` is ext values by namespace."""
    return isinstance(given, Mapping) and all(
        isinstance(ns, str) and isinstance(v, Mapping) for ns, v in given.items()
    )


def check_present(coll: Collection, id: str) -> None:
    """``NotFoundError`` unless customer ``id`` is stored and not merged away, as ``load``
    says, without building the record (a task's draft names its customer)."""
    doc = coll.get(id)
    if doc.get("status") == CustomerStatus.MERGED.value:
        raise NotFoundError(f"customer {id} was merged into {doc.get('merged_into')}")


_EXT = attrs.fields(Customer).ext


class _Patch:
    """The ``ext`` patches of one customer kept in a transaction: values by namespace."""

    __slots__ = ("actor", "values")

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.values: dict[str, dict[str, Any]] = {}

    def apply(self, ext: Mapping[str, Any]) -> dict[str, Any]:
        """``ext`` with the kept values merged into their namespaces."""
        merged = dict(ext)
        for namespace, values in self.values.items():
            merged[namespace] = {**ext.get(namespace, {}), **values}
        return merged


class _PendingPatches(threading.local):
    """Per thread: the customers' ``ext`` patches its open transaction has not written yet."""

    patches: dict[str, _Patch] | None = None

    def add(self, id: str, namespace: str, values: Mapping[str, Any], actor: str) -> None:
        if self.patches is None:
            self.patches = {}
        patch = self.patches.get(id)
        if patch is None:
            patch = self.patches[id] = _Patch(actor)
        patch.values[namespace] = {**patch.values.get(namespace, {}), **values}


def resource(customer: Customer) -> Resource:
    """A customer as a permission resource."""
    return Resource("customer", customer.id, customer.owner, customer.id)


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        return "(erased)"
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return None


def erased_fields() -> dict[str, Any]:
    """What ``forget`` writes over a customer: every field declared personal on ``Customer``
    (the one list that audit masking, encryption at rest and log masking also use), blanked."""
    blank: dict[str, Any] = {name: None for name in personal_fields(Customer)}
    blank.update(name="(erased)", chat_handles={}, external_ids={}, notes="")
    return blank


# Fields a caller may set; the rest (id, version, timestamps, status …) belong to the core.
EDITABLE = frozenset(
    {
        "name",
        "phone",
        "email",
        "address",
        "birth_date",
        "chat_handles",
        "gender",
        "region",
        "occupation",
        "organisation",
        "timezone",
        "do_not_contact",
        "owner",
        "tags",
        "source",
        "ext",
        "external_ids",
        "notes",
    }
)

# Fields an import may carry over from an exported record (``restore`` of ``add``).
RESTORABLE = frozenset({"id", "created_at", "updated_at"})


def external_key(source: str, ident: str) -> str:
    """The stored key of an external id: ``"shop:C-1042"``."""
    return f"{source}:{ident}"


def parse_external_id(text: str) -> tuple[str, str]:
    """``"shop:C-1042"`` → ``("shop", "C-1042")``; a ``ValidationError`` otherwise."""
    source, sep, ident = str(text).strip().partition(":")
    if not sep or not source or not ident.strip():
        raise ValidationError(
            f"expected SOURCE:ID such as shop:C-1042, got {text!r}", field="external_id"
        )
    return source.strip().lower(), ident.strip()


def require_actor(actor: object) -> str:
    """Every write names who did it, in plain text (``security.check_actor_name``: no
    control or bidi characters to disguise it in the audit trail)."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError(
            "every write needs an actor: pass actor='<user or system id>'", field="actor"
        )
    return check_actor_name(actor, "actor")


class Customers:
    """The customer file (DOMAIN §1)."""

    def __init__(self, kernel: Kernel, tasks: OpenTasks) -> None:
        self._kernel = kernel
        self._tasks = tasks
        self._coll = kernel.store.collection(names.CUSTOMERS)
        self._pending = _PendingPatches()
        kernel.at_transaction_end(self._finish)
        kernel.read_overlays[names.CUSTOMERS] = self._with_patches

    def _clean(self, fields: Mapping[str, Any], stored: Customer | None = None) -> dict[str, Any]:
        """``fields`` checked and normalised; given the ``stored`` customer (an update), its
        phone sent back as stored (E.164) keeps its type without being parsed again."""
        if not EDITABLE.issuperset(fields):
            unknown = sorted(set(fields) - EDITABLE)
            raise ValidationError(f"unknown or read-only customer field(s): {', '.join(unknown)}")
        out = dict(fields)
        raw = out.get("phone")
        if (
            stored is not None
            and raw is not None
            and raw == stored.phone
            and raw.startswith("+")  # E.164 reads the same whatever the default country
        ):
            out["phone_type"] = stored.phone_type
        elif raw is not None:
            phone = parse_phone(
                raw, default_country_code=self._kernel.config.core.default_country_code
            )
            out["phone"], out["phone_type"] = phone.e164, phone.type
        elif "phone" in out:
            out["phone_type"] = None
        if "external_ids" in out:
            ids = out["external_ids"]
            if not isinstance(ids, Mapping):
                raise ValidationError("expected a mapping of source to id", field="external_ids")
            out["external_ids"] = {
                str(k).strip().lower(): v.strip() if isinstance(v, str) else v
                for k, v in ids.items()
            }
        if out.get("email") is not None:
            if not isinstance(out["email"], str):
                raise ValidationError("expected text", field="email")
            out["email"] = normalize_email(out["email"])
        if "timezone" in out:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(str(out["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValidationError(
                    f"unknown time zone {out['timezone']!r}", field="timezone"
                ) from None
        if "name" in out and isinstance(out["name"], str):
            check_name(out["name"], "name")  # before spaces are tidied: a newline is refused
            out["name"] = " ".join(out["name"].split())
        return out

    def _build(
        self,
        actor: str,
        fields: Mapping[str, Any],
        version: int = 0,
        restore: Mapping[str, Any] | None = None,
    ) -> Customer:
        clean = self._clean(fields)
        clean.setdefault("timezone", self._kernel.config.core.timezone)
        now = self._kernel.now()
        stamps: dict[str, Any] = {"id": new_id("cus_", now), "created_at": now, "updated_at": now}
        if restore:
            unknown = sorted(set(restore) - RESTORABLE)
            if unknown:
                raise ValidationError(f"cannot restore customer field(s): {', '.join(unknown)}")
            if "id" in restore and not (
                isinstance(restore["id"], str)
                and restore["id"].startswith("cus_")
                and restore["id"][4:].isalnum()
            ):
                raise ValidationError(
                    f"expected a customer id (cus_…), got {restore['id']!r}", field="id"
                )
            stamps.update(restore)
        return Customer(created_by=actor, updated_by=actor, version=version, **stamps, **clean)

    def validate(self, *, restore: Mapping[str, Any] | None = None, **fields: Any) -> Customer:
        """Check fields as ``add`` would, writing nothing; returns the customer it would add."""
        return self._build("validation", fields, restore=restore)

    @retried
    def add(
        self, *, actor: str, name: str, restore: Mapping[str, Any] | None = None, **fields: Any
    ) -> Customer:
        """Add a customer; fires ``crm_customer_created``. Phones and e-mails are normalised.

        ``restore`` (imports of exported files) keeps the record's ``id``, ``created_at`` and
        ``updated_at``; an id already in use is a ``ConflictError``."""
        # Built as stored: an insert is always version 1 (the storage contract).
        customer = self._build(
            require_actor(actor), {"name": name, **fields}, version=1, restore=restore
        )
        self._kernel.authorize(
            customer.created_by, "customer.create", Resource("customer", owner=customer.owner)
        )
        with self._kernel.transaction(customer.created_by):
            customer = self._with_plugin_ext(customer)
            doc = to_doc(customer)
            doc[SEARCH_FIELD] = customer_keys(doc)
            # stored without the fields holding their blank default (null, empty: every query
            # reads a missing field as null, and ``from_doc`` gives the default back)
            doc = without_defaults(Customer, doc)
            self._coll.insert(doc)
            self._claim_keys(customer.id, customer.external_ids, {})
            effects = self._kernel.events.customer_created(
                actor=customer.created_by, customer=customer
            )
            changed = bool(effects) and self._written_since_insert(customer.id)
        return self.get(customer.id) if changed else customer

    def _written_since_insert(self, id: str) -> bool:
        """Whether a reaction changed the customer this transaction inserted: an ``ext``
        patch kept for its end, or a write (the version moved; read from the transaction's
        cache where the backend has one)."""
        patches = self._pending.patches
        return bool(patches and id in patches) or self._coll.get(id).get("version") != 1

    def _with_plugin_ext(self, customer: Customer) -> Customer:
        """``customer`` with the ``ext`` values plugins give it before its insert
        (``crm_customer_adding``), merged over the caller's, checked as ``ext`` is."""
        plugins, host, actor = self._kernel.plugins, self._kernel.host, customer.created_by
        with self._kernel.refusing_writes("crm_customer_adding"):
            given = [
                g
                for g in plugins.crm_customer_adding(crm=host, customer=customer, actor=actor)
                if g is not None
            ]
        if not given:
            return customer
        if not all(_ext_values(g) for g in given):
            with self._kernel.refusing_writes("crm_customer_adding"):
                named = plugins.crm_customer_adding_by_plugin(
                    crm=host, customer=customer, actor=actor
                )
            plugin, wrong = next(
                ((p, g) for p, g in named if not _ext_values(g)), ("unknown", given)
            )
            raise PluginError(
                plugin,
                "crm_customer_adding must return ext values by namespace (a dict of dicts), "
                f"not {wrong!r}",
            )
        ext = dict(customer.ext)
        for values in given:
            for namespace, more in values.items():
                ext[namespace] = {**ext.get(namespace, {}), **more}
        return attrs.evolve(customer, ext=ext)  # the ext validator checks what they gave

    def _claim_keys(self, id: str, new: Mapping[str, str], old: Mapping[str, str]) -> None:
        """Record this customer's external ids in ``customer_keys`` (the key is the document
        id, so a second customer with the same source and id is refused on every backend)."""
        keys = self._kernel.store.collection(names.CUSTOMER_KEYS)
        for source, ident in old.items():
            if new.get(source) != ident:
                with contextlib.suppress(NotFoundError):
                    keys.delete(external_key(source, ident))
        for source, ident in new.items():
            if old.get(source) == ident:
                continue
            key = external_key(source, ident)
            try:
                keys.insert({"id": key, "customer_id": id, "source": source})
            except ConflictError:
                other = keys.get(key)["customer_id"]
                raise ValidationError(
                    f"external id {key} already belongs to customer {other}", field="external_ids"
                ) from None

    def by_external_id(self, source: str, ident: str) -> Customer | None:
        """The customer known in system ``source`` as ``ident`` (merged ones resolved to the
        customer they were merged into), or None."""
        try:
            doc = self._kernel.store.collection(names.CUSTOMER_KEYS).get(
                external_key(source.strip().lower(), ident.strip())
            )
        except NotFoundError:
            return None
        customer = self.get_any(doc["customer_id"])
        while customer.status is CustomerStatus.MERGED and customer.merged_into:
            customer = self.get_any(customer.merged_into)
        return customer if customer.status is CustomerStatus.ACTIVE else None

    def sharing_phone(self, customer: Customer) -> list[Customer]:
        """Other active customers with the same normalised phone."""
        if customer.phone is None:
            return []
        return [c for c in self.find({"phone": customer.phone}) if c.id != customer.id]

    def get(self, id: str, *, actor: str | None = None) -> Customer:
        """The customer with this id; a merged one says where it went. With ``actor``, the
        read is checked against the permission policy."""
        customer = from_doc(Customer, self._doc(id))
        if customer.status is CustomerStatus.MERGED:
            raise NotFoundError(f"customer {id} was merged into {customer.merged_into}")
        if actor is not None:
            self._kernel.authorize(actor, "customer.read", resource(customer))
        return customer

    def get_any(self, id: str) -> Customer:
        """The record with this id whatever its status (tombstones included)."""
        return from_doc(Customer, self._doc(id))

    def _doc(self, id: str) -> dict[str, Any]:
        """The stored document with this thread's ``ext`` patches not yet written."""
        return self._with_patches(self._coll.get(id))

    def _with_patches(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (read by id) with this thread's kept ``ext`` patches of it: every read by
        id in the transaction sees them (``crm.collection("customers").get`` too)."""
        patches = self._pending.patches
        if patches:
            patch = patches.get(doc.get("id"))  # type: ignore[arg-type]
            if patch is not None:
                doc["ext"] = patch.apply(doc.get("ext") or {})
        return doc

    @retried
    def update(
        self, id: str, *, actor: str, expected_version: int | None = None, **changes: Any
    ) -> Customer:
        """Change core fields; fires ``crm_customer_updated``. Pass the ``expected_version`` you
        read to be told (``ConflictError``) if someone else changed the customer meanwhile."""
        actor = require_actor(actor)
        if not EDITABLE.issuperset(changes):
            self._clean(changes)  # says which fields, before the customer is read
        self._flush(id)  # ext patches kept in this transaction come first
        before = self.get(id)
        clean = self._clean(changes, before)
        self._kernel.authorize(actor, "customer.update", resource(before))
        if expected_version is not None and before.version != expected_version:
            raise ConflictError(
                f"customer {id} changed since you read it (version "
                f"{before.version}, you read {expected_version}); reload"
            )
        if before.status is not CustomerStatus.ACTIVE:
            raise ValidationError(f"customer {id} is {before.status.value}; it cannot change")
        if "ext" in clean:
            clean["ext"] = {**before.ext, **clean["ext"]}
        if "external_ids" in clean:
            clean["external_ids"] = {**before.external_ids, **clean["external_ids"]}
        after = attrs.evolve(before, **clean, updated_at=self._kernel.now(), updated_by=actor)
        if after == attrs.evolve(before, updated_at=after.updated_at, updated_by=actor):
            return before  # nothing changed: write nothing
        doc = to_doc(after)
        changed = {k: doc[k] for k in (*clean, "updated_at", "updated_by")}
        if any(getattr(after, f) != getattr(before, f) for f in SEARCHED & clean.keys()):
            changed[SEARCH_FIELD] = customer_keys(doc)  # keys change only with what they index
        with self._kernel.transaction(actor):
            stored = from_doc(
                Customer, self._coll.update(id, changed, expected_version=before.version)
            )
            if "external_ids" in clean:
                self._claim_keys(id, stored.external_ids, before.external_ids)
            effects = self._kernel.events.customer_updated(actor=actor, before=before, after=stored)
        return self.get(id) if effects else stored

    @retried
    def patch_ext(
        self, id: str, namespace: str, values: Mapping[str, Any], *, actor: str
    ) -> Customer:
        """Merge ``values`` into ``ext[namespace]`` without firing events (used by Effects).

        Every patch of one customer made in a transaction (grading's, loyalty's, …) is kept
        and written once, as one update, just before the transaction commits; ``get`` and
        ``get_any`` see it at once, queries after the commit. The write retries on a version
        conflict, since a namespace patch does not depend on other fields.
        """
        outermost = not self._kernel.in_transaction()
        with self._kernel.transaction(actor):
            current = self._doc(id)  # the stored document: no record built to patch it
            stored = current.get("ext") or {}
            merged = {**stored.get(namespace, {}), **values}
            if stored.get(namespace) == merged:
                return from_doc(Customer, current)
            # the other namespaces were checked when they were patched
            _EXT.validator(None, _EXT, {namespace: merged})  # type: ignore[misc]
            self._pending.add(id, namespace, values, actor)
            current["ext"] = {**stored, namespace: merged}
        # written as the transaction ended: as stored (version included) if it was ours
        return self.get_any(id) if outermost else from_doc(Customer, current)

    def _finish(self, committing: bool) -> None:
        """At the end of a thread's outermost transaction: write the kept ``ext`` patches
        (committing), or forget them (rolled back)."""
        if not committing:
            self._pending.patches = None
            return
        while self._pending.patches:
            self._flush(next(iter(self._pending.patches)))

    def _flush(self, id: str) -> None:
        """Write customer ``id``'s kept ``ext`` patches as one update (none kept: nothing)."""
        patches = self._pending.patches
        patch = patches.pop(id, None) if patches else None
        if patch is None:
            return
        for _attempt in range(5):
            current = self._coll.get(id)
            stored = current.get("ext") or {}
            ext = patch.apply(stored)
            if ext == stored:
                return
            changed = {ns: ext[ns] for ns in patch.values if stored.get(ns) != ext.get(ns)}
            _EXT.validator(None, _EXT, changed)  # type: ignore[misc]
            try:
                with self._kernel.transaction(patch.actor):
                    self._coll.update(id, {"ext": ext}, expected_version=current["version"])
                return
            except ConflictError:
                continue
        raise ConflictError(
            f"customer {id}: ext[{', '.join(map(repr, patch.values))}] kept changing "
            "underneath; giving up after 5 attempts"
        )

    @retried
    def forget(self, id: str, *, actor: str) -> Customer:
        """Erase a customer's personal data everywhere, keeping anonymous statistics.

        Blanks the customer's personal fields and those of every record (core and plugin) in
        collections with a ``customer_key``, cancels the customer's open tasks, fires
        ``crm_customer_forgotten``, then compacts the store where the backend can, so old
        values do not linger in its files. The audit trail holds only masked values.
        """
        actor = require_actor(actor)
        self._flush(id)  # ext patches kept in this transaction come first
        customer = self.get_any(id)
        self._kernel.authorize(actor, "customer.forget", resource(customer))
        if customer.status is CustomerStatus.ERASED:
            self._finish_erasure(id)  # a first call may have stopped before the compaction
            return customer
        now = self._kernel.now()
        with self._kernel.transaction(actor):
            for task in self._tasks.open_for(id):
                self._tasks.apply_update(
                    TaskUpdate(task_id=task.id, cancel=True, reason=N_("customer data erased")),
                    actor=actor,
                )
            for spec in self._kernel.specs.values():
                if (
                    spec.customer_key is None
                    or spec.name == names.CUSTOMERS
                    or spec.record_type is None
                ):
                    continue
                fields = spec.personal_fields()
                coll = self._kernel.store.collection(spec.name)
                for doc in list(coll.iter({spec.customer_key: id})):
                    blank = {
                        f: _blank(doc[f])
                        for f in fields
                        if doc.get(f) not in (None, "", [], {}, "(erased)")
                    }
                    if blank:
                        coll.update(doc["id"], blank, expected_version=doc["version"])
            keys = self._kernel.store.collection(names.CUSTOMER_KEYS)
            for key in list(keys.iter({"customer_id": id})):  # merged-in ones too
                keys.delete(key["id"])
            blank = erased_fields()
            erased = attrs.evolve(
                customer, **blank, status=CustomerStatus.ERASED, updated_at=now, updated_by=actor
            )
            doc = to_doc(erased)
            self._coll.update(
                id,
                {
                    **{k: doc[k] for k in (*blank, "status", "updated_at", "updated_by")},
                    SEARCH_FIELD: [],
                },
                expected_version=customer.version,
            )
            self._kernel.events.customer_forgotten(actor=actor, customer=erased)
        self._finish_erasure(id)
        return self.get_any(id)

    def _finish_erasure(self, id: str) -> None:
        """Compact, so that the erased values leave the backend's files; if that fails (a
        full disk), say that the erasure is committed but unfinished, and how to finish it:
        calling ``forget`` again compacts again."""
        try:
            self._kernel.store.compact()
        except NotImplementedError:  # e.g. nothing on disk to rewrite
            return
        except StorageError as exc:
            raise StorageError(
                f"customer {id} is erased, but the old values are still in the store's files "
                f"because compacting failed ({exc}); free some space and run 'crm customer "
                f"forget {id} --yes' again to finish"
            ) from None

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
        include_inactive: bool = False,
        actor: str | None = None,
    ) -> list[Customer]:
        """Customers matching a storage filter (active ones unless ``include_inactive``).

        With ``actor`` under enforced permissions, an agent sees only the customers they may
        read (their own and unowned ones)."""
        query = self._active(filter, include_inactive)
        if actor is not None:
            query = self._kernel.readable_filter(actor, query)
        return from_docs(Customer, self._coll.find(query, sort=sort, limit=limit, skip=skip))

    def search(
        self,
        text: str,
        *,
        actor: str | None = None,
        limit: int = SEARCH_LIMIT,
        filter: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Active customers found by a name or part of one, a phone written any way (or its
        last 4+ digits) or an e-mail, through the store's index on their search keys: best
        first (the whole name, phone or e-mail; then names beginning with ``text``; then
        those holding each of its words), at most ``limit``, ``more`` if others match. With
        ``actor``, only those they may read; ``filter`` narrows further."""
        return search_customers(
            self,
            text,
            actor=actor,
            limit=limit,
            filter=filter,
            default_country_code=self._kernel.config.core.default_country_code,
        )

    def refresh_search_keys(
        self, *, actor: str, everything: bool = False, batch_size: int = MERGE_BATCH
    ) -> int:
        """Give customers stored before search keys existed (they have none) the keys their
        fields call for, in transactions of ``batch_size``; with ``everything``, rewrite every
        customer's keys (after an encryption key rotation, whose keyed hashes they are).
        Returns how many changed. ``crm db upgrade`` runs it; a second run changes nothing."""
        actor = require_actor(actor)
        query: dict[str, Any] = {} if everything else {SEARCH_FIELD: None}
        todo = [(doc["id"], customer_keys(doc), doc["version"]) for doc in self._coll.iter(query)]
        for start in range(0, len(todo), batch_size):
            with self._kernel.transaction(actor):
                for id, keys, version in todo[start : start + batch_size]:
                    self._coll.update(id, {SEARCH_FIELD: keys}, expected_version=version)
        return len(todo)

    def iter(
        self, filter: Mapping[str, Any] | None = None, *, include_inactive: bool = False
    ) -> Iterator[Customer]:
        """Stream customers in id order."""
        for doc in self._coll.iter(self._active(filter, include_inactive)):
            yield from_doc(Customer, doc)

    def count(
        self, filter: Mapping[str, Any] | None = None, *, include_inactive: bool = False
    ) -> int:
        """Customers matching ``filter`` (active ones unless ``include_inactive``)."""
        if not filter and not include_inactive:
            # every customer less the merged and erased ones: the store counts the first
            # without reading, and the few others by a narrow filter, where "status is
            # active" would be checked on every document
            others = [s.value for s in CustomerStatus if s is not CustomerStatus.ACTIVE]
            return self._coll.count() - self._coll.count({"status": {"$in": others}})
        return self._coll.count(self._active(filter, include_inactive))

    @staticmethod
    def _active(filter: Mapping[str, Any] | None, include_inactive: bool) -> dict[str, Any]:
        query = dict(filter or {})
        if not include_inactive and "status" not in query:
            query["status"] = CustomerStatus.ACTIVE.value
        return query

    def find_by_contact(
        self, *, phone: str | None = None, email: str | None = None, actor: str | None = None
    ) -> list[Customer]:
        """Active customers with this phone or e-mail (normalised before matching)."""
        given = {k: v for k, v in (("phone", phone), ("email", email)) if v}
        clean = {k: v for k, v in self._clean(given).items() if k in given}
        if not clean:
            return []
        return self.find({"$or": [{k: v} for k, v in clean.items()]}, actor=actor)

    def find_duplicates(self) -> list[list[Customer]]:
        """Groups of active customers sharing a normalised phone or e-mail."""
        parent: dict[str, str] = {}

        def root(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        seen: dict[tuple[str, str], str] = {}
        by_id: dict[str, Customer] = {}
        for customer in self.iter():
            parent.setdefault(customer.id, customer.id)
            for kind, value in (("phone", customer.phone), ("email", customer.email)):
                if value is None:
                    continue
                key = (kind, value)
                if key in seen:
                    parent[root(customer.id)] = root(seen[key])
                    by_id[customer.id] = customer
                    by_id.setdefault(seen[key], self.get(seen[key]))
                else:
                    seen[key] = customer.id
        groups: dict[str, list[Customer]] = {}
        for id, customer in by_id.items():
            groups.setdefault(root(id), []).append(customer)
        return sorted(
            (sorted(g, key=lambda c: c.id) for g in groups.values()), key=lambda g: g[0].id
        )

    def _move_history(self, duplicate_id: str, keep_id: str, actor: str) -> None:
        """Re-point the duplicate's history in bounded transactions (see ``merge``)."""
        for spec in self._kernel.specs.values():
            if spec.customer_key is None or spec.name in (names.CUSTOMERS, names.TASKS):
                continue
            coll = self._kernel.store.collection(spec.name)
            while batch := coll.find({spec.customer_key: duplicate_id}, limit=MERGE_BATCH):
                with self._kernel.transaction(actor):
                    for doc in batch:
                        coll.update(
                            doc["id"], {spec.customer_key: keep_id}, expected_version=doc["version"]
                        )

    @retried
    def merge(self, keep_id: str, duplicate_id: str, *, actor: str) -> Customer:
        """Fold ``duplicate_id`` into ``keep_id``.

        Records in every collection with a ``customer_key`` move to the kept customer; empty
        fields of the kept one are filled from the duplicate; tags and ext namespaces are
        joined; open de-duplicated tasks of the duplicate are cancelled (plugins recreate them
        for the kept customer); the duplicate becomes a tombstone without personal data.

        History (every such collection but tasks) moves first, in transactions of at most
        ``MERGE_BATCH`` records, so no transaction grows with a customer's history (MongoDB
        ends a transaction after 60 s). A merge that stops there leaves the duplicate active
        with part of its history moved, and running it again finishes it; the last step
        (tasks, the records written meanwhile, the kept customer and the tombstone) is one
        transaction.
        """
        actor = require_actor(actor)
        if keep_id == duplicate_id:
            raise ValidationError("cannot merge a customer into itself")
        self._flush(keep_id)  # ext patches kept in this transaction come first
        self._flush(duplicate_id)
        keep = self.get(keep_id)
        dup = self.get(duplicate_id)
        for target in (keep, dup):
            self._kernel.authorize(actor, "customer.merge", resource(target))
        fills: dict[str, Any] = {}
        for name in EDITABLE - {"tags", "ext", "name"}:
            if getattr(keep, name) in (None, "", {}) and getattr(dup, name) not in (None, "", {}):
                fills[name] = getattr(dup, name)
        fills["tags"] = tuple(sorted(set(keep.tags) | set(dup.tags)))
        fills["ext"] = {**dup.ext, **keep.ext}
        fills["external_ids"] = {**dup.external_ids, **keep.external_ids}
        now = self._kernel.now()
        self._move_history(duplicate_id, keep_id, actor)
        with self._kernel.transaction(actor):
            # a cancel reason is a message id (shown in the reader's language): which
            # customer it went to is the tombstone's ``merged_into``
            self._tasks.cancel_deduped_for(
                duplicate_id, actor=actor, reason=N_("merged into another customer")
            )
            for spec in self._kernel.specs.values():
                if spec.customer_key is None or spec.name == names.CUSTOMERS:
                    continue
                coll = self._kernel.store.collection(spec.name)
                for doc in list(coll.iter({spec.customer_key: duplicate_id})):
                    coll.update(
                        doc["id"], {spec.customer_key: keep_id}, expected_version=doc["version"]
                    )
            merged = attrs.evolve(keep, **fills, updated_at=now, updated_by=actor)
            doc = to_doc(merged)
            self._coll.update(
                keep_id,
                {
                    **{k: doc[k] for k in (*fills, "updated_at", "updated_by")},
                    SEARCH_FIELD: customer_keys(doc),
                },
                expected_version=keep.version,
            )
            blank: dict[str, Any] = {name: None for name in personal_fields(Customer)}
            blank.update(name="(merged)", chat_handles={}, external_ids={}, notes="")
            tomb = attrs.evolve(
                dup,
                **blank,
                status=CustomerStatus.MERGED,
                merged_into=keep_id,
                updated_at=now,
                updated_by=actor,
            )
            tdoc = to_doc(tomb)
            self._coll.update(
                duplicate_id,
                {
                    **{
                        k: tdoc[k]
                        for k in (*blank, "status", "merged_into", "updated_at", "updated_by")
                    },
                    SEARCH_FIELD: [],
                },
                expected_version=dup.version,
            )
            self._kernel.events.customers_merged(
                actor=actor,
                kept=self.get(keep_id),
                merged=self.get_any(duplicate_id),
            )
        return self.get(keep_id)
