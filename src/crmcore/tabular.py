"""Reading the files clients send: CSV (any common encoding and delimiter), JSONL and .xlsx.

- Encoding: a byte-order mark decides (UTF-8, UTF-16); else strict UTF-8; else the
  ``charset-normalizer`` detector (GB18030/GBK from Excel on Chinese Windows, Big5, Latin-1 …);
  or ``--encoding``. A file that is mostly UTF-8 with broken bytes is refused naming the line,
  rather than guessed into mojibake; a binary file is refused.
- Delimiter: ``,`` ``;`` tab or ``|``, whichever the header line uses most (outside quotes).
- CSV rows that cannot be parsed (an unterminated quote, a field over ``MAX_FIELD`` characters)
  are bad rows naming their line; the rest of the file is still read.
- Header names are matched to fields ignoring case, spaces and punctuation, with built-in
  English and Chinese aliases (``ALIASES``); ``--map`` adds the client's own names.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import attrs

from crmcore.errors import ValidationError

FORMATS = ("csv", "jsonl", "xlsx")
DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD = 131_072  # Python's csv limit: a longer field is a bad row, not a crash
DETECT_BYTES = 1 << 20  # the detector reads at most this much of a file
ERROR = "__error__"  # key of a row that could not be read: its value says why
# What detection chooses among when a file is not UTF-8/UTF-16, in order of preference.
DETECTED = ("gb18030", "big5", "cp1252", "latin_1")

Row = dict[str, Any]


def header_key(name: str) -> str:
    """``"Phone Number"``, ``"phone_number"``, ``"PHONE-NUMBER"`` → ``"phonenumber"``."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    return "".join(ch for ch in text if ch.isalnum())


# Built-in names of columns, by field (matched through ``header_key``). Documented in
# docs/import.md; keep the two in step.
CUSTOMER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "姓名",
        "名字",
        "客户姓名",
        "客户名称",
        "客户名",
        "联系人",
        "full name",
        "customer name",
        "contact name",
        "client name",
    ),
    "phone": (
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "电话号码",
        "联系电话",
        "移动电话",
        "mobile",
        "mobile phone",
        "cell",
        "cell phone",
        "tel",
        "telephone",
        "phone number",
        "phone no",
    ),
    "email": ("邮箱", "电子邮箱", "电子邮件", "邮件", "e-mail", "email address", "mail"),
    "address": ("地址", "住址", "联系地址", "通讯地址", "家庭住址", "street address"),
    "gender": ("性别", "sex"),
    "birth_date": ("生日", "出生日期", "出生年月日", "birthday", "date of birth", "dob"),
    "region": ("地区", "区域", "所在地区", "省份", "城市", "地域", "area", "city", "province"),
    "occupation": ("职业", "工作", "job", "job title", "profession"),
    "organisation": (
        "单位",
        "工作单位",
        "公司",
        "公司名称",
        "机构",
        "company",
        "organization",
        "employer",
        "org",
    ),
    "notes": ("备注", "说明", "note", "remarks", "comment", "comments"),
    "tags": ("标签", "tag", "labels"),
    "owner": ("负责人", "客户经理", "归属人", "销售", "rep", "account manager", "sales rep"),
    "source": ("来源", "客户来源", "lead source"),
    "do_not_contact": ("勿扰", "免打扰", "拒绝联系", "dnc"),
    "timezone": ("时区", "time zone"),
    "external_id": ("外部编号", "外部id", "客户编号", "会员号", "会员编号", "会员卡号"),
}

INTERACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("客户id", "customer"),
    "external_id": ("外部编号", "外部id", "客户编号", "会员号", "会员编号", "会员卡号"),
    "phone": CUSTOMER_ALIASES["phone"],
    "kind": ("类型", "类别", "业务类型", "type", "event", "event type"),
    "occurred_at": (
        "时间",
        "日期",
        "发生时间",
        "交易时间",
        "购买时间",
        "下单时间",
        "date",
        "time",
        "datetime",
        "date time",
        "when",
        "timestamp",
    ),
    "channel": ("渠道", "方式", "联系方式", "medium"),
    "summary": ("内容", "摘要", "备注", "说明", "描述", "description", "notes", "note"),
    "amount": (
        "金额",
        "消费金额",
        "实付金额",
        "订单金额",
        "价格",
        "total",
        "price",
        "value",
        "sum",
    ),
    "satisfaction": ("满意度", "评分", "rating", "score"),
    "place": ("地点", "门店", "店铺", "store", "shop", "location"),
    "rep": ("经办人", "客服", "员工", "店员", "staff", "agent", "employee"),
    "ref": ("订单号", "单号", "订单编号", "流水号", "order", "order id", "order no", "reference"),
}


@attrs.frozen
class Columns:
    """How a file's header maps to fields: ``fields[i]`` for column ``i`` (None: unknown)."""

    names: tuple[str, ...]
    fields: tuple[str | None, ...]

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(n for n, f in zip(self.names, self.fields, strict=True) if f is None)


def match_columns(
    names: Iterable[str],
    allowed: Iterable[str],
    aliases: Mapping[str, Iterable[str]],
    mapping: Mapping[str, str] | None = None,
    ignored: Iterable[str] = (),
) -> Columns:
    """Map header ``names`` to ``allowed`` fields: ``mapping`` first (its keys matched like
    headers), then the field names themselves, then ``aliases``. ``ignored`` fields are
    accepted and dropped (an export's read-only columns). Two columns naming one field are
    refused."""
    allowed = set(allowed)
    table: dict[str, str] = {}
    for field, names_of in aliases.items():
        for alias in names_of:
            table.setdefault(header_key(alias), field)
    for field in (*allowed, *ignored):
        table[header_key(field)] = field
    given = {}
    for source, target in (mapping or {}).items():
        if target not in allowed and target not in ignored:
            known = ", ".join(sorted(allowed))
            raise ValidationError(f"--map {source}={target}: no field {target!r} (fields: {known})")
        given[header_key(source)] = target
    names = tuple(str(n) if n is not None else "" for n in names)
    fields: list[str | None] = []
    seen: dict[str, str] = {}
    for name in names:
        key = header_key(name)
        taken: str | None = given.get(key) or table.get(key)
        if taken is not None and taken not in allowed and taken not in ignored:
            taken = None  # an alias of a field this import does not take
        if taken is not None and taken not in ignored:
            if taken in seen:
                raise ValidationError(
                    f"columns {seen[taken]!r} and {name!r} both give "
                    f"{taken}: drop one, or --map one elsewhere"
                )
            seen[taken] = name
        fields.append(taken)
    return Columns(names, tuple(fields))


# -- reading text ----------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as a NUL in every other byte of ASCII text."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    evens, odds = sample[0::2], sample[1::2]
    if odds.count(0) > 0.4 * len(odds) and evens.count(0) < 0.1 * len(evens):
        return "utf-16-le"
    if evens.count(0) > 0.4 * len(evens) and odds.count(0) < 0.1 * len(odds):
        return "utf-16-be"
    return None


def decode(data: bytes, path: str, encoding: str | None = None) -> tuple[str, str]:
    """``(text, encoding used)``; ``ValidationError`` naming the file (and line) if it cannot
    be read as text."""
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise ValidationError(
                f"--encoding {encoding}: unknown encoding (try utf-8, gb18030, utf-16, latin-1)"
            ) from None
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{path}:{_line_of(data, exc.start)}: not valid {codec} "
                f"(byte {exc.start}); check --encoding"
            ) from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise ValidationError(
                    f"{path}:{_line_of(data, exc.start)}: starts with a "
                    f"{codec} byte-order mark but is not valid {codec}"
                ) from None
    wide = _utf16_without_bom(data)
    if wide:
        try:
            return data.decode(wide), wide
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        broken = exc
    if b"\0" in data[:DETECT_BYTES]:
        raise ValidationError(
            f"{path}: is a binary file, not text (save it as CSV, JSONL or .xlsx)"
        )
    # Mostly UTF-8 (multi-byte sequences decode) with some broken bytes: a damaged UTF-8 file,
    # not another encoding. Say where, rather than guess.
    head = data[:DETECT_BYTES]
    replaced = head.decode("utf-8", errors="replace")
    valid_multibyte = sum(1 for ch in replaced if ord(ch) > 0x7F and ch != "\ufffd")
    if valid_multibyte >= max(3, replaced.count("\ufffd")):
        raise ValidationError(
            f"{path}:{_line_of(data, broken.start)}: not valid UTF-8 (byte "
            f"{broken.start}); repair the file or pass --encoding"
        )
    from charset_normalizer import from_bytes

    # Only the encodings clients' files come in: left free, the detector reads short GBK text
    # as Korean (cp949) as often as not. Anything else is given with --encoding.
    best = from_bytes(head, cp_isolation=list(DETECTED)).best()
    if best is not None:
        codec = codecs.lookup(best.encoding).name
    else:  # too little text to judge (rare characters): the first CJK codec that reads it
        for candidate in DETECTED[:2]:
            try:
                return data.decode(candidate), candidate
            except UnicodeDecodeError:
                continue
        raise ValidationError(
            f"{path}: cannot tell its text encoding (is it a binary file?); pass --encoding"
        )
    if codec in ("gbk", "gb2312", "hz"):
        codec = "gb18030"  # the superset: every GBK file reads the same, and more
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{path}:{_line_of(data, exc.start)}: looks like {codec} but is "
            "not valid there; pass --encoding"
        ) from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most, outside quotes (``,`` when none)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | str]]:
    """``(line, fields)`` per record, or ``(line, reason)`` for one that cannot be parsed. An
    unterminated quote is reported at the line it opens, and reading goes on after it."""
    lines = [ln for ln in re.split(r"(?<=\n)", text) if ln]
    start = 0
    while start < len(lines):
        reader = csv.reader(iter(lines[start:]), delimiter=delimiter, strict=True)
        while True:
            first = start + reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                message = str(exc)
                if "field larger than field limit" in message:
                    yield first, f"a field is longer than {MAX_FIELD:,} characters"
                    continue
                if "unexpected end of data" in message:
                    yield (
                        first,
                        (
                            "unterminated quote: the quoted field opened on this line "
                            "never closes (it would swallow the rest of the file)"
                        ),
                    )
                    start = first  # go on from the next line
                    break
                if "line contains NUL" in message or "NUL" in message:
                    yield first, "contains a NUL character"
                    continue
                yield first, f"malformed CSV ({message})"
                continue
            yield first, record
        else:  # pragma: no cover - the loop only ends by return or break
            return


def _cell(value: Any) -> Any:
    """An .xlsx cell as import reads it: text stays text, whole numbers lose their '.0',
    dates become ISO text."""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


@attrs.define
class TableFile:
    """An import file opened: its format, what was detected, and its header (CSV/xlsx)."""

    path: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header: tuple[str, ...] | None = None
    _records: Iterator[tuple[int, list[Any] | str]] | None = None
    _jsonl: list[str] | None = None

    def rows(self, columns: Columns | None) -> Iterator[tuple[int, Row]]:
        """``(line, {field: value})``; a row that could not be read holds ``ERROR``. Empty
        cells are left out; CSV/xlsx need ``columns`` (from ``match_columns``)."""
        if self.format == "jsonl":
            yield from self._json_rows()
            return
        assert columns is not None and self._records is not None
        width = len(columns.names)
        for line, record in self._records:
            if isinstance(record, str):
                yield line, {ERROR: record}
                continue
            if not any(v not in (None, "") for v in record):
                continue  # a blank line
            if len(record) > width and any(v not in (None, "") for v in record[width:]):
                yield line, {ERROR: f"{len(record)} values for {width} header columns"}
                continue
            row = {}
            for field, value in zip(columns.fields, record, strict=False):
                if field is None or value is None:
                    continue
                if isinstance(value, str):
                    value = value.strip()
                    if not value:
                        continue
                row[field] = value
            yield line, row

    def _json_rows(self) -> Iterator[tuple[int, Row]]:
        assert self._jsonl is not None
        for number, line in enumerate(self._jsonl, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, {ERROR: f"not valid JSON ({exc.msg})"}
                continue
            except RecursionError:
                yield number, {ERROR: "JSON nested too deeply"}
                continue
            if not isinstance(row, dict):
                yield number, {ERROR: "each line must be a JSON object"}
                continue
            yield number, row


def detect_format(path: str | Path, explicit: str | None) -> str:
    """The format named, or the one the file name says."""
    if explicit:
        if explicit not in FORMATS:
            raise ValidationError(f"unknown format {explicit!r} (use csv, jsonl or xlsx)")
        return explicit
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix in ("json", "ndjson"):
        return "jsonl"
    if suffix in ("txt", "tsv"):
        return "csv"
    raise ValidationError(
        f"cannot tell the format of {path}: name it .csv, .jsonl or .xlsx, or pass --format"
    )


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read: {exc.strerror}") from None


def open_table(
    path: str | Path, fmt: str, *, encoding: str | None = None, delimiter: str | None = None
) -> TableFile:
    """Open an import file; ``ValidationError`` (one line, naming the file) when it cannot be
    read at all. Rows that cannot be read are reported by ``TableFile.rows``."""
    path = str(path)
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValidationError(f"--delimiter takes one character, got {delimiter!r}")
    data = _read_bytes(path)
    if fmt == "xlsx":
        return _open_xlsx(path, data)
    text, used = decode(data, path, encoding)
    if "\0" in text:
        raise ValidationError(
            f"{path}: contains NUL characters: a binary file, or text in "
            "another encoding (pass --encoding)"
        )
    if fmt == "jsonl":
        return TableFile(path, fmt, used, jsonl=text.split("\n"))
    if text.startswith("\ufeff"):
        text = text[1:]
    first_line = text.split("\n", 1)[0]
    sep = delimiter or sniff_delimiter(first_line)
    records = csv_records(text, sep)
    header: tuple[str, ...] = ()
    for _line, record in records:
        if isinstance(record, str):
            raise ValidationError(f"{path}:1: cannot read the header: {record}")
        if any(v.strip() for v in record):
            header = tuple(v.strip() for v in record)
            break
    return TableFile(path, fmt, used, sep, header, records=records)


def _open_xlsx(path: str, data: bytes) -> TableFile:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError):
        raise ValidationError(
            f"{path}: not an .xlsx workbook (save it from Excel as .xlsx, or export CSV)"
        ) from None
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        raise ValidationError(f"{path}: the workbook has no sheet")

    def records() -> Iterator[tuple[int, list[Any]]]:
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in values]
            while cells and cells[-1] in (None, ""):
                cells.pop()
            yield number, cells

    iterator = records()
    header: tuple[str, ...] = ()
    for _number, cells in iterator:
        if any(c not in (None, "") for c in cells):
            header = tuple("" if c is None else str(c).strip() for c in cells)
            break
    return TableFile(path, "xlsx", None, None, header, records=iterator)


__all__ = [
    "CUSTOMER_ALIASES",
    "ERROR",
    "FORMATS",
    "INTERACTION_ALIASES",
    "Columns",
    "TableFile",
    "csv_records",
    "decode",
    "detect_format",
    "header_key",
    "match_columns",
    "open_table",
    "sniff_delimiter",
]
