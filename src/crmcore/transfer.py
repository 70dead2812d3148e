"""Import and export of customers and interactions as CSV or JSONL.

Imports validate every row first and report each bad row with its line number; good rows are
written unless ``atomic`` (then nothing is written when any row is bad). ``dry_run`` writes
nothing at all. A column mapping renames the client's columns to crmcore fields.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from crmcore.converter import parse_iso, to_doc
from crmcore.customers import EDITABLE as CUSTOMER_FIELDS
from crmcore.customers import resource as customer_resource
from crmcore.errors import CrmError, ValidationError
from crmcore.interactions import EDITABLE as INTERACTION_FIELDS
from crmcore.text import encodable_text, json_text

if TYPE_CHECKING:
    from crmcore.app import CRM

FORMATS = ("csv", "jsonl")
LIST_SEPARATOR = ";"


@attrs.frozen
class RowError:
    line: int
    message: str


@attrs.frozen
class ImportReport:
    """What an import did: rows read, written, and every bad row with its line number."""

    rows: int
    written: int
    errors: tuple[RowError, ...]
    dry_run: bool
    ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def detect_format(path: str | Path, explicit: str | None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise ValidationError(f"unknown format {explicit!r} (use csv or jsonl)")
        return explicit
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix in ("json", "ndjson"):
        return "jsonl"
    raise ValidationError(f"cannot tell the format of {path}: name it .csv or .jsonl, or pass "
                          "--format")


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["Phone Number=phone", …]`` → ``{"Phone Number": "phone"}``."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValidationError(f"--map takes COLUMN=FIELD, got {pair!r}")
        mapping[source.strip()] = target.strip()
    return mapping


def read_rows(path: str | Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, row)``; a malformed JSONL line yields its error as a row."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file") from None
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        if fmt == "csv":
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                return
            for row in reader:
                if None in row:
                    yield reader.line_num, {"__error__": "more values than header columns"}
                    continue
                yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}
        else:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, {"__error__": f"not valid JSON ({exc.msg})"}
                    continue
                if not isinstance(row, dict):
                    yield number, {"__error__": "each line must be a JSON object"}
                    continue
                yield number, row


def _rename(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    return {mapping.get(k, k): v for k, v in row.items()}


def _customer_fields(row: dict[str, Any]) -> dict[str, Any]:
    fields = dict(row)
    for key in ("tags",):
        if isinstance(fields.get(key), str):
            fields[key] = [t for t in fields[key].split(LIST_SEPARATOR) if t.strip()]
    for key in ("chat_handles", "ext"):
        if isinstance(fields.get(key), str):
            try:
                fields[key] = json.loads(fields[key])
            except json.JSONDecodeError:
                raise ValidationError("expected a JSON object", field=key) from None
    if isinstance(fields.get("do_not_contact"), str):
        text = fields["do_not_contact"].strip().lower()
        if text not in ("true", "false", "yes", "no", "1", "0"):
            raise ValidationError(f"expected true or false, got {text!r}", field="do_not_contact")
        fields["do_not_contact"] = text in ("true", "yes", "1")
    if "name" not in fields:
        raise ValidationError("is required", field="name")
    return fields


def _interaction_fields(row: dict[str, Any], tz: str) -> dict[str, Any]:
    fields = dict(row)
    for key in ("customer_id", "kind"):
        if not fields.get(key):
            raise ValidationError("is required", field=key)
    when = fields.pop("occurred_at", None)
    if when is not None:
        fields["occurred_at"] = _parse_time(when, tz)
    for key, cast in (("amount", float), ("satisfaction", int)):
        if isinstance(fields.get(key), str):
            try:
                fields[key] = cast(fields[key])
            except ValueError:
                raise ValidationError(f"expected a number, got {fields[key]!r}",
                                      field=key) from None
    if isinstance(fields.get("ext"), str):
        try:
            fields["ext"] = json.loads(fields["ext"])
        except json.JSONDecodeError:
            raise ValidationError("expected a JSON object", field="ext") from None
    return fields


def _parse_time(value: Any, tz: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"expected an ISO date and time, got {value!r}",
                                  field="occurred_at") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed


def _import(rows: Iterable[tuple[int, dict[str, Any]]], *, allowed: frozenset[str],
            mapping: Mapping[str, str] | None, prepare: Callable[[dict[str, Any]], dict[str, Any]],
            write: Callable[[dict[str, Any]], str], transaction: Any, dry_run: bool,
            atomic: bool, on_row: Callable[[], None] | None) -> ImportReport:
    """Check every row (``prepare`` raises CrmError for a bad one), then ``write`` the good
    ones, unless ``dry_run``, or ``atomic`` with any bad row."""
    prepared, errors = [], []
    for line, raw in rows:
        try:
            if "__error__" in raw:
                raise ValidationError(raw["__error__"])
            row = _rename(raw, mapping or {})
            unknown = sorted(set(row) - allowed)
            if unknown:
                raise ValidationError(f"unknown column(s) {', '.join(unknown)} (map them with "
                                      "--map COLUMN=FIELD)")
            prepared.append((line, prepare(row)))
        except CrmError as exc:
            errors.append(RowError(line, str(exc)))
        if on_row:
            on_row()
    total = len(prepared) + len(errors)
    if dry_run or (atomic and errors):
        return ImportReport(total, 0, tuple(errors), dry_run)
    ids = []
    with transaction() if atomic else contextlib.nullcontext():
        for line, fields in prepared:
            try:
                ids.append(write(fields))
            except CrmError as exc:
                if atomic:
                    raise
                errors.append(RowError(line, str(exc)))
    return ImportReport(total, len(ids), tuple(sorted(errors, key=lambda e: e.line)), False,
                        tuple(ids))


def import_customers(crm: CRM, rows: Iterable[tuple[int, dict[str, Any]]], *, actor: str,
                     mapping: Mapping[str, str] | None = None, dry_run: bool = False,
                     atomic: bool = False,
                     on_row: Callable[[], None] | None = None) -> ImportReport:
    """Validate then add customers; see the module docstring for the rules."""
    def prepare(row: dict[str, Any]) -> dict[str, Any]:
        fields = _customer_fields(row)
        crm.customers.validate(**fields)
        return fields

    return _import(rows, allowed=CUSTOMER_FIELDS, mapping=mapping, prepare=prepare,
                   write=lambda fields: crm.customers.add(actor=actor, **fields).id,
                   transaction=crm.transaction, dry_run=dry_run, atomic=atomic, on_row=on_row)


def import_interactions(crm: CRM, rows: Iterable[tuple[int, dict[str, Any]]], *, actor: str,
                        mapping: Mapping[str, str] | None = None, dry_run: bool = False,
                        atomic: bool = False,
                        on_row: Callable[[], None] | None = None) -> ImportReport:
    """Validate then log interactions (each fires ``crm_interaction_logged``)."""
    tz = crm.config.core.timezone

    def prepare(row: dict[str, Any]) -> dict[str, Any]:
        fields = _interaction_fields(row, tz)
        crm.interactions.validate(**fields)
        return fields

    return _import(rows, allowed=INTERACTION_FIELDS | {"customer_id", "kind", "occurred_at"},
                   mapping=mapping, prepare=prepare,
                   write=lambda fields: crm.interactions.log(actor=actor, **fields).id,
                   transaction=crm.transaction, dry_run=dry_run, atomic=atomic, on_row=on_row)


def open_private(path: str | Path) -> IO[str]:
    """Open a file for writing customer data: created readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


CSV_COLUMNS = ("id", "name", "phone", "email", "gender", "birth_date", "region", "occupation",
               "organisation", "address", "timezone", "owner", "tags", "source",
               "do_not_contact", "status", "created_at", "updated_at", "chat_handles", "ext")


def _write_rows(handle: IO[str], fmt: str, columns: tuple[str, ...],
                docs: Iterable[dict[str, Any]],
                on_row: Callable[[], None] | None) -> int:
    """Write documents as CSV (lists joined by ';', mappings as JSON) or JSONL; the count."""
    writer = csv.DictWriter(handle, columns, extrasaction="ignore") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    for doc in docs:
        if writer:  # text stored before the text rules comes out escaped (crmcore.text)
            writer.writerow({k: encodable_text(LIST_SEPARATOR.join(v)) if isinstance(v, list)
                             else json_text(v) if isinstance(v, dict)
                             else encodable_text(v) if isinstance(v, str) else v
                             for k, v in doc.items()})
        else:
            handle.write(json_text(doc) + "\n")
        count += 1
        if on_row:
            on_row()
    return count


def export_customers(crm: CRM, handle: IO[str], fmt: str,
                     on_row: Callable[[], None] | None = None,
                     actor: str | None = None) -> int:
    """Write every active customer (that ``actor`` may read) as CSV or JSONL; the count."""
    query = crm.readable_filter(actor, {}) if actor is not None else None
    return _write_rows(handle, fmt, CSV_COLUMNS,
                       (to_doc(c) for c in crm.customers.iter(query)), on_row)


INTERACTION_COLUMNS = ("id", "customer_id", "kind", "occurred_at", "channel", "summary",
                       "amount", "satisfaction", "place", "rep", "ref", "created_at",
                       "created_by", "ext")


def export_interactions(crm: CRM, handle: IO[str], fmt: str, *,
                        customer_id: str | None = None,
                        on_row: Callable[[], None] | None = None) -> int:
    """Write interactions (all, or one customer's) as CSV or JSONL, in id order; the count.
    The columns match what ``import_interactions`` reads back."""
    query = {"customer_id": customer_id} if customer_id else None
    return _write_rows(handle, fmt, INTERACTION_COLUMNS,
                       (to_doc(i) for i in crm.interactions.iter(query)), on_row)


def export_customer_file(crm: CRM, customer_id: str, *,
                         actor: str | None = None) -> dict[str, Any]:
    """Everything held about one customer: the record and every record of every declared
    collection that points at them, plus what plugins add through ``crm_customer_records``."""
    customer = crm.customers.get_any(customer_id)
    if actor is not None:
        crm.authorize(actor, "customer.export", customer_resource(customer))
    held: dict[str, Any] = {"customer": to_doc(customer), "collections": {}}
    for spec in crm.collection_specs():
        if spec.customer_key is None or spec.customer_key == "id":
            continue
        docs = crm.store.collection(spec.name).find({spec.customer_key: customer_id},
                                                    sort=[("id", 1)])
        if docs:
            held["collections"][spec.name] = docs
    extra: dict[str, Any] = {}
    for part in crm.plugins.call("crm_customer_records", crm=crm, customer=customer):
        if part:
            extra.update(part)
    if extra:
        held["plugins"] = extra
    return held


__all__ = ["FORMATS", "ImportReport", "RowError", "detect_format", "export_customer_file",
           "export_customers", "export_interactions", "import_customers",
           "import_interactions", "open_private", "parse_iso", "parse_mapping", "read_rows"]
