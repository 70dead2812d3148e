"""Importer fuzzing (issues 18 and 23): malformed files in many encodings, delimiters, quotings,
with huge fields, deep nesting, bad dates, amounts and phones.

For every file: no traceback, no exit 70; with ``--atomic`` a file with any bad row writes
nothing; without it exactly the good rows are written and each bad row is reported once, with
its line (and the field, where a field is at fault). Bounded and derandomized, so CI runs the
same cases every time; case counts are in ``FUZZ_CASES`` (at least 150 in all).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.cli.main import run
from crmcore.storage.memory import MemoryStore

FUZZ = settings(
    derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
FUZZ_CASES = {"customers_csv": 120, "customers_jsonl": 60, "interactions_csv": 50, "whole_file": 30}

FULL_WIDTH = "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10"
GOOD = {
    "phone": [
        "13800138000",
        "+86 139 0013 9000",
        "0086 137-0013-7000",
        FULL_WIDTH,
        "8613600136000",
        "(010) 8888 6666",
    ],
    "email": ["li@example.com", "WANG@Example.CN", None],
    "birth_date": ["1990-05-01", "1985/12/31", "2001年2月3日", None],
    "gender": ["male", "女", "F", None],
    "region": ["北京", "Zürich", "São Paulo", None],
}
BAD = {  # field -> values refused with that field named
    "phone": ["12", "138 0013 800", "call me", "+999 1234 5678"],
    "email": ["x@", "@example.com", "a b@c.de"],
    "birth_date": ["1990-13-45", "yesterday", "1990/02/30"],
    "gender": ["unknown", "2"],
    "do_not_contact": ["maybe"],
}
NAME_TEXT = st.text(
    st.characters(categories=("L", "N", "Zs"), exclude_characters="\x85"), max_size=12
)


class Runner:
    """``crm`` in-process on a fresh named in-memory store for each file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location = ""

    def fresh(self) -> None:
        if self.location:
            MemoryStore.drop_shared(self.location)
        self.location = f"fuzz-{uuid.uuid4()}"
        os.environ["CRM_STORAGE_LOCATION"] = self.location

    def __call__(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(list(args))
        return code, out.getvalue(), err.getvalue()

    def count(self, kind: str = "customer") -> int:
        if kind == "customer":
            code, out, _ = self("--json", "customer", "list", "--limit", "100000")
        else:
            code, out, _ = self("--json", "interaction", "list", self.customer, "--limit", "100000")
        assert code == 0
        return len(json.loads(out))

    def names(self) -> list[str]:
        _, out, _ = self("--json", "customer", "list", "--limit", "100000")
        return [c["name"] for c in json.loads(out)]


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMCORE_PLUGINS", "")
    monkeypatch.setenv("CRM_STORAGE_BACKEND", "memory")
    monkeypatch.setenv("CRM_STORAGE_LOCATION", "unset")
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    monkeypatch.delenv("CRM_TRACEBACK", raising=False)
    (tmp_path / "crm.toml").write_text(
        '[core]\ndefault_country_code = "86"\ntimezone = "Asia/Shanghai"\n'
    )
    made = Runner(tmp_path)
    yield made
    if made.location:
        MemoryStore.drop_shared(made.location)


def sane(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err


def error_lines(err: str, path: str) -> list[int]:
    lines = []
    for text in err.strip().splitlines():
        assert text.startswith(f"{path}:"), err
        lines.append(int(text.split(":")[1]))
    assert len(lines) == len(set(lines)), f"a bad row reported twice: {err}"
    return lines


def check_import(runner: Runner, path: str, rows: list[dict], *extra: str) -> None:
    """``rows``: the generator's own account: ``{"line", "marker", "bad": field or reason}``."""
    bad_lines = {r["line"]: r["bad"] for r in rows if r["bad"]}
    runner.fresh()
    code, out, err = runner("customer", "import", path, "--atomic", *extra)
    sane(code, err)
    if bad_lines:
        assert code == 2 and runner.count() == 0, (out, err)
    else:
        assert code == 0 and runner.count() == len(rows), (out, err)
    runner.fresh()
    code, out, err = runner("customer", "import", path, *extra)
    sane(code, err)
    reported = error_lines(err, path)
    assert sorted(reported) == sorted(bad_lines), (bad_lines, err)
    for text in err.strip().splitlines():
        line = int(text.split(":")[1])
        why = bad_lines[line]
        assert why in text, (why, text)
    names = runner.names()
    good = sorted(r["marker"] for r in rows if not r["bad"])
    assert sorted(n.split()[0] for n in names) == good, (names, err)
    assert f"imported {len(good)} of {len(rows)}" in out, out


def _row(draw, i: int, allow_bad: bool, latin: bool) -> tuple[dict, str | None]:
    marker = f"R{i}x"
    name_tail = draw(NAME_TEXT)
    if latin:
        name_tail = name_tail.encode("latin-1", "ignore").decode("latin-1")
    values = {"name": f"{marker} {name_tail}".strip()}
    for field, choices in GOOD.items():
        value = draw(st.sampled_from(choices))
        if value is not None and not (latin and not value.isascii() and field == "region"):
            values[field] = value
    bad = None
    if allow_bad and draw(st.booleans()):
        field = draw(st.sampled_from(sorted(BAD)))
        values[field] = draw(st.sampled_from(BAD[field]))
        bad = f"{field}: "
    if latin:
        values = {k: v for k, v in values.items() if k == "name" or all(ord(ch) < 256 for ch in v)}
    return values, bad


COLUMNS = {
    "name": ["name", "Name", "姓名", "客户名称"],
    "phone": ["phone", "手机号", "Phone Number"],
    "email": ["email", "E-mail", "邮箱"],
    "birth_date": ["birth_date", "生日", "DOB"],
    "gender": ["gender", "性别"],
    "region": ["region", "地区"],
    "do_not_contact": ["do_not_contact", "免打扰"],
}


@st.composite
def customer_csv(draw):
    encoding = draw(
        st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16", "utf-16-le", "latin-1"])
    )
    latin = encoding == "latin-1"
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    damage = draw(
        st.sampled_from(
            ["none", "none", "unterminated", "huge", "extra_values", "blank_lines", "crlf"]
        )
    )
    n = draw(st.integers(1, 8))
    header = {
        f: draw(st.sampled_from([c for c in cols if not latin or c.isascii()]))
        for f, cols in COLUMNS.items()
    }
    rows, records = [], []
    for i in range(n):
        values, bad = _row(draw, i, allow_bad=True, latin=latin)
        records.append(values)
        rows.append({"marker": f"R{i}x", "bad": bad})
    newline = "\r\n" if damage == "crlf" else "\n"
    quote_free = damage == "unterminated"

    def cell(value: str) -> str:
        if quote_free:
            return value.replace('"', "").replace(delimiter, " ")
        if any(ch in value for ch in (delimiter, '"', "\n", "\r")) or value != value.strip():
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [delimiter.join(cell(header[f]) for f in COLUMNS)]
    victim = draw(st.integers(0, n - 1))
    for i, values in enumerate(records):
        fields = [cell(values.get(f, "")) for f in COLUMNS]
        if damage == "huge" and i == victim:
            fields[COLUMNS.__len__() - 2] = "x" * 140_000  # region, over the CSV field limit
            rows[i]["bad"] = "longer than 131,072 characters"
        if damage == "extra_values" and i == victim:
            fields.append("surplus")
            rows[i]["bad"] = "values for"
        if damage == "unterminated" and i == victim:
            fields[0] = '"' + fields[0]
            rows[i]["bad"] = "unterminated quote"
        lines.append(delimiter.join(fields))
        if damage == "blank_lines" and draw(st.booleans()):
            lines.append("")
    line = 2
    physical = 2
    for text in lines[1:]:
        if text == "":
            physical += 1
            continue
        rows[line - 2]["line"] = physical
        physical += 1
        line += 1
    data = newline.join(lines) + newline
    try:
        raw = data.encode(encoding)
    except UnicodeEncodeError:
        raw = data.encode("utf-8")
    return raw, rows


@given(customer_csv())
@settings(FUZZ, max_examples=FUZZ_CASES["customers_csv"])
def test_fuzzed_customer_csv(runner, case):
    raw, rows = case
    Path("c.csv").write_bytes(raw)
    check_import(runner, "c.csv", rows)


@st.composite
def customer_jsonl(draw):
    n = draw(st.integers(1, 8))
    lines, rows = [], []
    for i in range(n):
        values, bad = _row(draw, i, allow_bad=True, latin=False)
        damage = draw(
            st.sampled_from(
                ["none", "none", "none", "not_json", "not_object", "nested", "wrong_type", "nan"]
            )
        )
        text = json.dumps(values, ensure_ascii=draw(st.booleans()))
        if damage == "not_json":
            text, bad = text[:-1], "not valid JSON"
        elif damage == "not_object":
            text, bad = json.dumps([values]), "must be a JSON object"
        elif damage == "nested":
            text, bad = "[" * 50_000 + "]" * 50_000, "nested too deeply"
        elif damage == "wrong_type":
            text = json.dumps({**values, "region": {"deep": [1, 2]}})
            bad = "region: "
        elif damage == "nan":
            text = json.dumps({**values, "do_not_contact": float("nan")})
            bad = "do_not_contact"
        lines.append(text)
        rows.append({"marker": f"R{i}x", "bad": bad, "line": i + 1})
    return ("\n".join(lines) + "\n").encode(), rows


@given(customer_jsonl())
@settings(FUZZ, max_examples=FUZZ_CASES["customers_jsonl"])
def test_fuzzed_customer_jsonl(runner, case):
    raw, rows = case
    Path("c.jsonl").write_bytes(raw)
    check_import(runner, "c.jsonl", rows)


@st.composite
def history_csv(draw):
    n = draw(st.integers(1, 8))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    lines = [
        delimiter.join(
            ["客户编号" if draw(st.booleans()) else "external_id", "时间", "类型", "金额", "满意度"]
        )
    ]
    rows = []
    for i in range(n):
        when = draw(
            st.sampled_from(
                [
                    "2025-03-01 10:00",
                    "2024-12-31",
                    "2025/01/02 08:30",
                    "2025-06-01T10:00:00+08:00",
                    "2025-06-01T02:00:00Z",
                ]
            )
        )
        amount = draw(st.sampled_from(["99.5", "1,200", "\uffe530", "", "0"]))
        kind = draw(st.sampled_from(["purchase", "visit", "consultation"]))
        sat = draw(st.sampled_from(["", "5", "1"]))
        who = "shop:1"
        bad = None
        fault = draw(
            st.sampled_from(
                [
                    "none",
                    "none",
                    "date",
                    "future",
                    "amount",
                    "negative",
                    "kind",
                    "customer",
                    "satisfaction",
                ]
            )
        )
        if fault == "date":
            when, bad = (
                draw(st.sampled_from(["yesterday", "2025-02-30", "0000-01-01"])),
                "occurred_at: ",
            )
        elif fault == "future":
            when, bad = "2099-01-01", "in the future"
        elif fault == "amount":
            amount, bad = draw(st.sampled_from(["abc", "nan", "1e999"])), "amount: "
        elif fault == "negative":
            amount, bad = "-5", "amount"
        elif fault == "kind":
            kind, bad = "gossip", "kind: "
        elif fault == "customer":
            who, bad = "shop:404", "no customer has external id"
        elif fault == "satisfaction":
            sat, bad = draw(st.sampled_from(["9", "4.5", "good"])), "satisfaction"
        lines.append(
            delimiter.join(
                f'"{v}"' if delimiter in v else v for v in (who, when, kind, amount, sat)
            )
        )
        rows.append({"bad": bad, "line": i + 2})
    return ("\n".join(lines) + "\n").encode(draw(st.sampled_from(["utf-8", "gb18030"]))), rows


@given(history_csv())
@settings(FUZZ, max_examples=FUZZ_CASES["interactions_csv"])
def test_fuzzed_history_csv(runner, case):
    raw, rows = case
    Path("h.csv").write_bytes(raw)
    bad_lines = {r["line"]: r["bad"] for r in rows if r["bad"]}
    for atomic in (True, False):
        runner.fresh()
        code, out, err = runner(
            "--json", "customer", "add", "--name", "Li", "--external-id", "shop:1"
        )
        runner.customer = json.loads(out)["id"]
        code, out, err = runner("interaction", "import", "h.csv", *(["--atomic"] if atomic else []))
        sane(code, err)
        written = runner.count("interaction")
        if atomic:
            assert written == (0 if bad_lines else len(rows)), err
            continue
        reported = error_lines(err, "h.csv")
        assert sorted(reported) == sorted(bad_lines), (bad_lines, err)
        for text in err.strip().splitlines():
            assert bad_lines[int(text.split(":")[1])] in text, text
        assert written == len(rows) - len(bad_lines), (out, err)


@given(
    st.sampled_from(
        [
            "binary",
            "random",
            "broken_utf8",
            "nul",
            "empty",
            "header_only",
            "xlsx_garbage",
            "utf16_odd",
        ]
    ),
    st.binary(min_size=0, max_size=400),
)
@settings(FUZZ, max_examples=FUZZ_CASES["whole_file"])
def test_fuzzed_whole_files_are_one_line_or_read(runner, kind, blob):
    suffix = ".xlsx" if kind == "xlsx_garbage" else ".csv"
    path = f"f{suffix}"
    data = {
        "binary": b"\x00\x01\x02PK" + blob,
        "random": blob,
        "broken_utf8": "name,region\n李雷,北京\n韩梅梅,上海\n".encode() + b"\xff" + blob,
        "nul": b"name\nLi\x00Lei\n" + blob,
        "empty": b"",
        "header_only": b"name,phone\n",
        "xlsx_garbage": b"PK\x03\x04" + blob,
        "utf16_odd": "name\nLi\n".encode("utf-16") + b"\x00",
    }[kind]
    Path(path).write_bytes(data)
    runner.fresh()
    code, _out, err = runner("customer", "import", path, "--atomic")
    sane(code, err)
    if code == 2 and not err.startswith(f"{path}:"):
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        assert runner.count() == 0
