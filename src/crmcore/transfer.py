"""Import and export of customers and interactions as CSV, JSONL or .xlsx.

Imports read the whole file first (``crmcore.tabular``: encoding, delimiter, header aliases),
check every row and report each bad row once with its line and field; good rows are written
unless ``atomic`` (then nothing is written when any row is bad). ``dry_run`` writes nothing.
Naive times are read in the store's time zone (``[core] timezone``); interactions dated in the
future are refused unless ``allow_future``. History (interactions) goes through
``crmcore.history``: in time order, batched, idempotent by a row key.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from crmcore.converter import parse_iso, to_doc
from crmcore.customers import EDITABLE as CUSTOMER_FIELDS
from crmcore.customers import parse_external_id
from crmcore.customers import resource as customer_resource
from crmcore.errors import ConflictError, CrmError, NotFoundError, ValidationError
from crmcore.interactions import EDITABLE as INTERACTION_FIELDS
from crmcore.names import INTERACTIONS, TASKS
from crmcore.tabular import (
    CUSTOMER_ALIASES,
    ERROR,
    FORMATS,
    INTERACTION_ALIASES,
    Columns,
    TableFile,
    detect_format,
    match_columns,
    open_table,
)
from crmcore.text import encodable_text, json_text

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.entities import Customer

LIST_SEPARATOR = ";"
CUSTOMER_KEYS = ("external_id", "phone")  # what --upsert matches customers by
INTERACTION_CUSTOMER_KEYS = ("id", "external_id", "phone")  # --customer-key

# Columns of an export that an import accepts: kept (restored) or dropped (the core's own).
CUSTOMER_RESTORED = ("id", "created_at", "updated_at")
CUSTOMER_DROPPED = ("phone_type", "status", "merged_into", "created_by", "updated_by", "version")
INTERACTION_RESTORED = ("id", "created_at")
INTERACTION_DROPPED = ("created_by", "version")


@attrs.frozen
class RowError:
    line: int
    message: str


@attrs.frozen
class ImportReport:
    """What an import did: rows read, written (added), updated, skipped as already imported,
    and every bad row with its line number."""

    rows: int
    written: int
    errors: tuple[RowError, ...]
    dry_run: bool
    ids: tuple[str, ...] = ()
    updated: int = 0
    skipped: int = 0
    unchanged: int = 0  # matched by --upsert, and already as the file says
    notes: tuple[str, ...] = ()  # what the reader decided: encoding, delimiter, time zone …

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["Phone Number=phone", …]`` → ``{"Phone Number": "phone"}``."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValidationError(f"--map takes COLUMN=FIELD, got {pair!r}")
        mapping[source.strip()] = target.strip()
    return mapping


class _Renamer:
    """Renames a row's keys to fields (CSV/xlsx: by the header; JSONL: per key set), and
    collects the columns no field takes, to report once for the whole file."""

    def __init__(
        self,
        table: TableFile,
        allowed: frozenset[str],
        aliases: Mapping[str, Iterable[str]],
        mapping: Mapping[str, str] | None,
        ignored: Iterable[str],
    ) -> None:
        self.allowed, self.aliases, self.mapping = allowed, aliases, mapping or {}
        self.ignored = tuple(ignored)
        self.unknown: dict[str, int] = {}  # column → first line it was seen on
        self.columns: Columns | None = None
        self._by_key: dict[str, str | None] = {}
        if table.format != "jsonl":
            self.columns = match_columns(
                table.header or (), allowed, aliases, self.mapping, self.ignored
            )
            for name in self.columns.unknown:
                self.unknown.setdefault(name or "(blank header)", 1)
        else:
            # Validate --map against the fields even when no row uses it.
            match_columns((), allowed, aliases, self.mapping, self.ignored)

    def rename(self, line: int, row: Mapping[str, Any]) -> dict[str, Any]:
        if self.columns is not None:
            return {k: v for k, v in row.items() if k not in self.ignored}
        out = {}
        for key, value in row.items():
            if key == ERROR:
                out[key] = value
                continue
            if key not in self._by_key:
                found = match_columns(
                    (key,), self.allowed, self.aliases, self.mapping, self.ignored
                ).fields[0]
                self._by_key[key] = found
            field = self._by_key[key]
            if field is None:
                self.unknown.setdefault(key, line)
            elif field not in self.ignored and value is not None:
                out[field] = value
        return out

    def unknown_message(self, path: str) -> str | None:
        if not self.unknown:
            return None
        names = ", ".join(self.unknown)
        line = min(self.unknown.values())
        return (
            f"{path}:{line}: unknown column(s) {names} (map them with --map COLUMN=FIELD, "
            "or pass --skip-unknown to leave them out)"
        )


def _text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"expected text, got {value!r}", field=field)
    if isinstance(value, int | float):
        return str(value)
    raise ValidationError(f"expected text, got {type(value).__name__}", field=field)


def _json_object(value: Any, field: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise ValidationError("expected a JSON object", field=field) from None
    return value


def _external_ids(row: dict[str, Any], id_source: str | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    if "external_ids" in row:
        given = _json_object(row.pop("external_ids"), "external_ids")
        if not isinstance(given, dict):
            raise ValidationError("expected a JSON object of source to id", field="external_ids")
        ids.update({str(k): v for k, v in given.items()})
    if "external_id" in row:
        text = _text(row.pop("external_id"), "external_id").strip()
        if id_source and ":" not in text:
            ids[id_source] = text
        else:
            source, ident = parse_external_id(text)
            ids[source] = ident
    return ids


def _customer_fields(
    row: dict[str, Any], tz: str, id_source: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(fields for add/update, restored stamps)`` from a renamed row."""
    fields = dict(row)
    restore: dict[str, Any] = {}
    status = fields.pop("status", None)
    if status not in (None, "active"):
        raise ValidationError(
            f"only active customers are imported, this one is {status!r}", field="status"
        )
    for key in CUSTOMER_DROPPED:
        fields.pop(key, None)
    for key in CUSTOMER_RESTORED:
        if key in fields:
            value = fields.pop(key)
            restore[key] = _text(value, key) if key == "id" else _parse_time(value, tz, key)
    ids = _external_ids(fields, id_source)
    if ids:
        fields["external_ids"] = ids
    if isinstance(fields.get("tags"), str):
        fields["tags"] = [t for t in fields["tags"].split(LIST_SEPARATOR) if t.strip()]
    for key in ("chat_handles", "ext"):
        if key in fields:
            fields[key] = _json_object(fields[key], key)
            if not isinstance(fields[key], dict):
                raise ValidationError("expected a JSON object", field=key)
    for key in (
        "phone",
        "email",
        "name",
        "notes",
        "region",
        "occupation",
        "organisation",
        "address",
        "owner",
        "source",
        "timezone",
    ):
        if key in fields:
            fields[key] = _text(fields[key], key)
    if "gender" in fields:
        fields["gender"] = _gender(fields["gender"])
    if isinstance(fields.get("birth_date"), str):
        fields["birth_date"] = _date(fields["birth_date"])
    if isinstance(fields.get("do_not_contact"), str):
        text = fields["do_not_contact"].strip().lower()
        if text not in ("true", "false", "yes", "no", "1", "0", "是", "否"):
            raise ValidationError(f"expected true or false, got {text!r}", field="do_not_contact")
        fields["do_not_contact"] = text in ("true", "yes", "1", "是")
    if "do_not_contact" in fields and not isinstance(fields["do_not_contact"], bool):
        raise ValidationError(
            f"expected true or false, got {fields['do_not_contact']!r}", field="do_not_contact"
        )
    if not fields.get("name"):
        raise ValidationError("is required", field="name")
    return fields, restore


_GENDERS = {
    "female": "female",
    "f": "female",
    "女": "female",
    "woman": "female",
    "male": "male",
    "m": "male",
    "男": "male",
    "man": "male",
    "other": "other",
    "其他": "other",
}


def _gender(value: Any) -> str:
    key = str(value).strip().lower()
    if key not in _GENDERS:
        raise ValidationError(
            f"expected female, male or other (or 女/男), got {value!r}", field="gender"
        )
    return _GENDERS[key]


def _date(text: str) -> date | str:
    cleaned = text.strip().replace("/", "-").replace(".", "-")
    for suffix in ("日",):
        cleaned = cleaned.removesuffix(suffix)
    cleaned = cleaned.replace("年", "-").replace("月", "-")
    parts = cleaned.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        with contextlib.suppress(ValueError):
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
    return text  # the entity refuses it, naming the field


def _parse_time(value: Any, tz: str, field: str = "occurred_at") -> datetime:
    """An ISO date or date and time (``2026-03-01``, ``2026-03-01 14:30``, ``…Z``, with an
    offset, or ``/`` for ``-``); naive times are read in ``tz``."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        if len(text) >= 10 and text[4] == "/" and text[7] == "/":
            text = text[:10].replace("/", "-") + text[10:]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                f"expected an ISO date and time, got {value!r}", field=field
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    try:
        return parsed.astimezone(ZoneInfo("UTC"))
    except (OverflowError, ValueError):
        raise ValidationError(f"date out of range: {value!r}", field=field) from None


def _interaction_fields(row: dict[str, Any], tz: str) -> dict[str, Any]:
    fields = dict(row)
    for key in INTERACTION_DROPPED:
        fields.pop(key, None)
    if not fields.get("kind"):
        raise ValidationError("is required", field="kind")
    fields["kind"] = _text(fields["kind"], "kind").strip()
    for key in ("occurred_at", "created_at"):
        if fields.get(key) is not None:
            fields[key] = _parse_time(fields[key], tz, key)
    for key, cast in (("amount", float), ("satisfaction", int)):
        value = fields.get(key)
        if isinstance(value, str):
            text = value.strip().replace(",", "").removeprefix("\u00a5").removeprefix("\uffe5")
            try:
                value = cast(text)
            except ValueError:
                raise ValidationError(
                    f"expected a number, got {fields[key]!r}", field=key
                ) from None
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValidationError(f"expected a number, got {fields[key]!r}", field=key)
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise ValidationError(f"expected a number, got {fields[key]!r}", field=key)
        if key == "satisfaction" and isinstance(value, float):
            if not value.is_integer():
                raise ValidationError(f"expected a whole number 1 to 5, got {value!r}", field=key)
            value = int(value)
        if value is not None:
            fields[key] = value
    if "ext" in fields:
        fields["ext"] = _json_object(fields["ext"], "ext")
    for key in ("summary", "place", "rep", "ref", "channel", "id"):
        if key in fields:
            fields[key] = _text(fields[key], key)
    return fields


def _read(
    crm: CRM,
    table: TableFile,
    renamer: _Renamer,
    skip_unknown: bool,
    prepare: Callable[[int, dict[str, Any]], Any],
    on_row: Callable[[], None] | None,
) -> tuple[list[tuple[int, Any]], list[RowError]]:
    """Check every row; ``(good rows prepared, bad rows)``. Unknown columns are one error."""
    prepared, errors = [], []
    for line, raw in table.rows(renamer.columns):
        try:
            if ERROR in raw:
                raise ValidationError(raw[ERROR])
            row = renamer.rename(line, raw)
            if ERROR in row:
                raise ValidationError(row[ERROR])
            prepared.append((line, prepare(line, row)))
        except CrmError as exc:
            errors.append(RowError(line, str(exc)))
        except RecursionError:
            errors.append(RowError(line, "nested too deeply"))
        if on_row:
            on_row()
    unknown = renamer.unknown_message(table.path)
    if unknown and not skip_unknown:
        raise ValidationError(unknown)
    return prepared, errors


def _notes(crm: CRM, table: TableFile, renamer: _Renamer, times: bool) -> tuple[str, ...]:
    notes = []
    if table.encoding:
        notes.append(f"encoding {table.encoding}")
    if table.delimiter:
        notes.append("delimiter " + {"\t": "tab"}.get(table.delimiter, repr(table.delimiter)))
    if times:
        notes.append(f"times without a zone read as {crm.config.core.timezone}")
    if renamer.unknown:
        notes.append("left out column(s) " + ", ".join(renamer.unknown))
    return tuple(notes)


def import_customers(
    crm: CRM,
    table: TableFile,
    *,
    actor: str,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    atomic: bool = False,
    upsert: bool = False,
    match: str = "external_id",
    id_source: str | None = None,
    skip_unknown: bool = False,
    on_row: Callable[[], None] | None = None,
) -> ImportReport:
    """Validate then add customers. With ``upsert``, a row whose customer already exists
    (same ``id`` when the file has one, else same external id, or same normalised phone with
    ``match="phone"``) updates that customer instead. See the module docstring."""
    if match not in CUSTOMER_KEYS:
        raise ValidationError(f"--match takes {' or '.join(CUSTOMER_KEYS)}, got {match!r}")
    if id_source is not None:
        parse_external_id(f"{id_source}:x")
    tz = crm.config.core.timezone
    allowed = CUSTOMER_FIELDS | {"external_id", *CUSTOMER_RESTORED}
    renamer = _Renamer(table, allowed, CUSTOMER_ALIASES, mapping, CUSTOMER_DROPPED)

    def prepare(_line: int, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        fields, restore = _customer_fields(row, tz, id_source)
        crm.customers.validate(restore=restore, **fields)
        return fields, restore

    prepared, errors = _read(crm, table, renamer, skip_unknown, prepare, on_row)
    total = len(prepared) + len(errors)
    notes = _notes(crm, table, renamer, times=False)
    if dry_run or (atomic and errors):
        return ImportReport(total, 0, tuple(errors), dry_run, notes=notes)

    def existing(fields: dict[str, Any], restore: dict[str, Any]) -> Any:
        if "id" in restore:
            with contextlib.suppress(NotFoundError):
                return crm.customers.get(restore["id"])
        if match == "external_id":
            for source, ident in fields.get("external_ids", {}).items():
                found = crm.customers.by_external_id(source, ident)
                if found is not None:
                    return found
        elif fields.get("phone"):
            matches = crm.customers.find_by_contact(phone=fields["phone"])
            if len(matches) > 1:
                raise ValidationError(
                    f"{len(matches)} customers have this phone "
                    f"({', '.join(c.id for c in matches)}): merge them first",
                    field="phone",
                )
            return matches[0] if matches else None
        return None

    ids: list[str] = []
    updated = unchanged = 0
    with crm.transaction(actor) if atomic else contextlib.nullcontext():
        for line, (fields, restore) in prepared:
            try:
                before = existing(fields, restore) if upsert else None
                if before is not None:
                    after = crm.customers.update(before.id, actor=actor, **fields)
                    if after.version != before.version:
                        updated += 1
                    else:
                        unchanged += 1
                    continue
                if "id" in restore:
                    with contextlib.suppress(NotFoundError):
                        crm.customers.get_any(restore["id"])
                        raise ConflictError(
                            f"customer {restore['id']} exists (pass --upsert to update it)"
                        )
                ids.append(crm.customers.add(actor=actor, restore=restore or None, **fields).id)
            except CrmError as exc:
                if atomic:
                    raise
                errors.append(RowError(line, str(exc)))
    return ImportReport(
        total,
        len(ids),
        tuple(sorted(errors, key=lambda e: e.line)),
        False,
        tuple(ids),
        updated=updated,
        unchanged=unchanged,
        notes=notes,
    )


def import_interactions(
    crm: CRM,
    table: TableFile,
    *,
    actor: str,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    atomic: bool = False,
    customer_key: str | None = None,
    allow_future: bool = False,
    skip_unknown: bool = False,
    batch_size: int = 500,
    on_row: Callable[[], None] | None = None,
    on_written: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate then replay interactions as history (``crmcore.history``): each row's
    customer found by ``customer_key`` (``id``, ``external_id`` or ``phone``; by default the
    first of those columns the file has), every plugin reacting in time order, a re-run adding
    nothing."""
    from crmcore.history import HistoryRow, replay

    if customer_key is not None and customer_key not in INTERACTION_CUSTOMER_KEYS:
        raise ValidationError(
            f"--customer-key takes {', '.join(INTERACTION_CUSTOMER_KEYS)}, got {customer_key!r}"
        )
    tz = crm.config.core.timezone
    now = crm.now()
    allowed = INTERACTION_FIELDS | {
        "customer_id",
        "kind",
        "occurred_at",
        "external_id",
        "phone",
        *INTERACTION_RESTORED,
    }
    renamer = _Renamer(table, allowed, INTERACTION_ALIASES, mapping, INTERACTION_DROPPED)
    cache: dict[tuple[str, str], str] = {}
    checked: dict[str, Customer] = {}  # active customers read for the checks, by id

    def customer_of(row: dict[str, Any]) -> str:
        key = customer_key
        if key is None:
            key = next(
                (
                    k
                    for k, col in (
                        ("id", "customer_id"),
                        ("external_id", "external_id"),
                        ("phone", "phone"),
                    )
                    if col in row
                ),
                "id",
            )
        column = {"id": "customer_id"}.get(key, key)
        for other in ("customer_id", "external_id", "phone"):
            if other != column:
                row.pop(other, None)
        value = row.pop(column, None)
        if value in (None, ""):
            raise ValidationError("is required", field=column)
        value = _text(value, column).strip()
        if (key, value) in cache:
            return cache[(key, value)]
        if key == "id":
            found = value
        elif key == "external_id":
            customer = crm.customers.by_external_id(*parse_external_id(value))
            if customer is None:
                raise ValidationError(f"no customer has external id {value}", field=column)
            found = customer.id
            checked[found] = customer  # active: the rows' checks need not read it again
        else:
            matches = crm.customers.find_by_contact(phone=value)
            if not matches:
                raise ValidationError(f"no customer has phone {value}", field=column)
            if len(matches) > 1:
                raise ValidationError(
                    f"{len(matches)} customers have phone {value}: merge them first", field=column
                )
            found = matches[0].id
        cache[(key, value)] = found
        return found

    def prepare(line: int, row: dict[str, Any]) -> HistoryRow:
        customer_id = customer_of(row)
        fields = _interaction_fields(row, tz)
        key = fields.pop("id", None)
        created = fields.pop("created_at", None)
        when = fields.get("occurred_at") or now
        if when > now and not allow_future:
            raise ValidationError(
                f"{when.isoformat()} is in the future (pass --allow-future "
                "to import planned interactions)",
                field="occurred_at",
            )
        fields["occurred_at"] = when
        crm.interactions.validate(customer_id=customer_id, customers=checked, **fields)
        return HistoryRow(line, customer_id, fields, key, created)

    prepared, errors = _read(crm, table, renamer, skip_unknown, prepare, on_row)
    total = len(prepared) + len(errors)
    notes = _notes(crm, table, renamer, times=True)
    if dry_run or (atomic and errors):
        return ImportReport(total, 0, tuple(errors), dry_run, notes=notes)
    result = replay(
        crm,
        [row for _line, row in prepared],
        actor=actor,
        atomic=atomic,
        batch_size=batch_size,
        on_written=on_written,
    )
    errors.extend(RowError(line, message) for line, message in result.errors)
    return ImportReport(
        total,
        len(result.ids),
        tuple(sorted(errors, key=lambda e: e.line)),
        False,
        tuple(result.ids),
        skipped=result.skipped,
        notes=notes,
    )


CSV_COLUMNS = (
    "id",
    "name",
    "phone",
    "email",
    "gender",
    "birth_date",
    "region",
    "occupation",
    "organisation",
    "address",
    "timezone",
    "owner",
    "tags",
    "source",
    "do_not_contact",
    "notes",
    "external_ids",
    "status",
    "created_at",
    "updated_at",
    "chat_handles",
    "ext",
)


def _flat(value: Any) -> Any:
    """A value as one CSV/xlsx cell: lists joined by ';', mappings as JSON; text stored before
    the text rules (a lone surrogate) comes out escaped (``crmcore.text``)."""
    if isinstance(value, list):
        return encodable_text(LIST_SEPARATOR.join(str(v) for v in value))
    if isinstance(value, dict):
        return json_text(value)
    if isinstance(value, str):
        return encodable_text(value)
    return value


def _write_rows(
    handle: IO[Any],
    fmt: str,
    columns: tuple[str, ...],
    docs: Iterable[dict[str, Any]],
    on_row: Callable[[], None] | None,
) -> int:
    """Write documents as CSV, .xlsx (binary ``handle``) or JSONL; the count."""
    if fmt == "xlsx":
        return _write_xlsx(handle, columns, docs, on_row)
    writer = csv.DictWriter(handle, columns, extrasaction="ignore") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    for doc in docs:
        if writer:
            writer.writerow({k: _flat(v) for k, v in doc.items()})
        else:
            handle.write(json_text(doc) + "\n")
        count += 1
        if on_row:
            on_row()
    return count


def _write_xlsx(
    handle: IO[bytes],
    columns: tuple[str, ...],
    docs: Iterable[dict[str, Any]],
    on_row: Callable[[], None] | None,
) -> int:
    """One sheet, a header row, every cell of text stored as text (never a formula)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    sheet.append(list(columns))
    count = 0
    for doc in docs:
        cells = []
        for column in columns:
            value = _flat(doc.get(column))
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # "=…" stays text: no formula injection
            cells.append(cell)
        sheet.append(cells)
        count += 1
        if on_row:
            on_row()
    book.save(handle)
    return count


def export_customers(
    crm: CRM,
    handle: IO[str],
    fmt: str,
    on_row: Callable[[], None] | None = None,
    actor: str | None = None,
) -> int:
    """Write every active customer (that ``actor`` may read) as CSV, JSONL or .xlsx (then
    ``handle`` is binary); the count. The columns are what ``import_customers`` reads back."""
    query = crm.readable_filter(actor, {}) if actor is not None else None
    return _write_rows(
        handle, fmt, CSV_COLUMNS, (to_doc(c) for c in crm.customers.iter(query)), on_row
    )


INTERACTION_COLUMNS = (
    "id",
    "customer_id",
    "kind",
    "occurred_at",
    "channel",
    "summary",
    "amount",
    "satisfaction",
    "place",
    "rep",
    "ref",
    "created_at",
    "created_by",
    "ext",
)


def export_interactions(
    crm: CRM,
    handle: IO[str],
    fmt: str,
    *,
    customer_id: str | None = None,
    on_row: Callable[[], None] | None = None,
) -> int:
    """Write interactions (all, or one customer's) as CSV or JSONL, in id order; the count.
    The columns match what ``import_interactions`` reads back."""
    query = {"customer_id": customer_id} if customer_id else None
    return _write_rows(
        handle, fmt, INTERACTION_COLUMNS, (to_doc(i) for i in crm.interactions.iter(query)), on_row
    )


def export_customer_file(crm: CRM, customer_id: str, *, actor: str | None = None) -> dict[str, Any]:
    """Everything held about one customer: the record and every record of every declared
    collection that points at them, plus what plugins add through ``crm_customer_records``."""
    customer = crm.customers.get_any(customer_id)
    if actor is not None:
        crm.authorize(actor, "customer.export", customer_resource(customer))
    held: dict[str, Any] = {"customer": to_doc(customer), "collections": {}}
    # the core's tasks and interactions as their records read (a task's title and dedupe key
    # are given back on read: an open task stores its key as ``open_key`` and no title)
    as_read: dict[str, Callable[[], list[Any]]] = {
        TASKS: lambda: crm.tasks.find({"customer_id": customer_id}, sort=[("id", 1)]),
        INTERACTIONS: lambda: crm.interactions.find({"customer_id": customer_id}, sort=[("id", 1)]),
    }
    for spec in crm.collection_specs():
        if spec.customer_key is None or spec.customer_key == "id":
            continue
        if spec.name in as_read:
            docs = [to_doc(record) for record in as_read[spec.name]()]
        else:
            docs = crm.store.collection(spec.name).find(
                {spec.customer_key: customer_id}, sort=[("id", 1)]
            )
        if docs:
            held["collections"][spec.name] = docs
    extra: dict[str, Any] = {}
    for part in crm.plugins.crm_customer_records(crm=crm, customer=customer):
        extra.update(part)
    if extra:
        held["plugins"] = extra
    return held


__all__ = [
    "FORMATS",
    "ImportReport",
    "RowError",
    "detect_format",
    "export_customer_file",
    "export_customers",
    "export_interactions",
    "import_customers",
    "import_interactions",
    "open_table",
    "parse_iso",
    "parse_mapping",
]
