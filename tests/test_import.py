"""Issue 23 (and issue 18's importer cases): files as clients send them, phones, external ids,
round trips. History replay through the plugins is in test_history_import.py."""

from __future__ import annotations

import json

import pytest

from crmcore.testing.cli import one_line_error


@pytest.fixture
def cli(crm_cli):
    return crm_cli()


def customers(cli) -> list[dict]:
    code, out, err = cli("--json", "customer", "list", "--limit", "1000")
    assert code == 0, err
    return json.loads(out)


def names(cli) -> list[str]:
    return sorted(c["name"] for c in customers(cli))


CHINESE = (
    "姓名;手机号;邮箱;性别;地区;职业;单位;生日;备注\n"
    "李雷;138 0013 8000;li@example.com;男;北京;工程师;某公司;1990/05/01;老客户\n"
    "韩梅梅;\uff11\uff13\uff19\uff10\uff10\uff11\uff13\uff19\uff10\uff10\uff10;;女;上海;;;;\n"
)


@pytest.mark.parametrize(
    "encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig", "utf-16", "utf-16-le"]
)
def test_chinese_file_in_any_common_encoding_and_semicolons(cli, tmp_path, encoding):
    (tmp_path / "c.csv").write_bytes(CHINESE.encode(encoding))
    code, out, err = cli("customer", "import", "c.csv")
    assert code == 0, err
    assert "imported 2 of 2 customers; 0 bad row(s)" in out and "delimiter ';'" in out
    by_name = {c["name"]: c for c in customers(cli)}
    li = by_name["李雷"]
    assert (
        li["phone"],
        li["gender"],
        li["region"],
        li["occupation"],
        li["organisation"],
        li["birth_date"],
        li["notes"],
    ) == ("13800138000", "male", "北京", "工程师", "某公司", "1990-05-01", "老客户")
    assert by_name["韩梅梅"]["phone"] == "13900139000"  # full-width digits read as digits


def test_encoding_can_be_given_and_a_wrong_one_is_one_line(cli, tmp_path):
    (tmp_path / "c.csv").write_bytes(CHINESE.encode("gbk"))
    code, _, err = cli("customer", "import", "c.csv", "--encoding", "utf-8")
    assert code == 2 and "c.csv:1: not valid utf-8" in one_line_error(err)
    code, _, err = cli("customer", "import", "c.csv", "--encoding", "klingon")
    assert code == 2 and "unknown encoding" in one_line_error(err)
    code, out, err = cli("customer", "import", "c.csv", "--encoding", "gb18030")
    assert code == 0 and "imported 2 of 2" in out, err


def test_headers_match_ignoring_case_spaces_and_punctuation(cli, tmp_path):
    # the README's own example: --map "Phone Number=phone" with a file that says "Name"
    (tmp_path / "clients.csv").write_text(
        "Name,Phone Number,E-Mail,Birth Date\n"
        "Li Lei,138 0013 8000,LI@example.com,1990-05-01\n"
        "Wang Fang,13900139000,,\n"
        "Zhao Min,13700137000,,\n"
    )
    code, out, err = cli(
        "customer", "import", "clients.csv", "--map", "Phone Number=phone", "--dry-run"
    )
    assert code == 0 and "would import 3 of 3 customers" in out, err
    code, out, err = cli("customer", "import", "clients.csv", "--map", "phone number=phone")
    assert code == 0 and "imported 3 of 3 customers" in out, err
    li = next(c for c in customers(cli) if c["name"] == "Li Lei")
    assert (li["email"], li["birth_date"]) == ("li@example.com", "1990-05-01")


def test_map_to_an_unknown_field_and_two_columns_for_one_field_are_refused(cli, tmp_path):
    (tmp_path / "c.csv").write_text("name,手机,电话\nLi,13800138000,13900139000\n")
    code, _, err = cli("customer", "import", "c.csv")
    assert code == 2 and "columns '手机' and '电话' both give phone" in one_line_error(err)
    code, _, err = cli("customer", "import", "c.csv", "--map", "电话=fax")
    assert code == 2 and "--map 电话=fax: no field 'fax'" in one_line_error(err)


def test_tab_and_pipe_delimiters_are_sniffed(cli, tmp_path):
    (tmp_path / "t.csv").write_text("name\tphone\nLi, Lei\t13800138000\n")
    (tmp_path / "p.txt").write_text("name|phone\nWang; Fang|13900139000\n")
    assert cli("customer", "import", "t.csv")[0] == 0
    assert cli("customer", "import", "p.txt")[0] == 0
    assert names(cli) == ["Li, Lei", "Wang; Fang"]


# -- issue 18: files that used to crash with exit 70 ---------------------------------------


def test_latin1_file_is_read(cli, tmp_path):
    (tmp_path / "c.csv").write_bytes(
        "name,city\nJosé Müller,Zürich\nFrançois,Genève\n".replace("city", "region").encode(
            "latin-1"
        )
    )
    code, _out, err = cli("customer", "import", "c.csv")
    assert code == 0, err
    assert names(cli) == ["François", "José Müller"]


def test_binary_file_is_one_line(cli, tmp_path):
    (tmp_path / "c.csv").write_bytes(bytes(range(256)) * 20)
    code, _, err = cli("customer", "import", "c.csv")
    assert code == 2 and "c.csv: is a binary file" in one_line_error(err)
    assert names(cli) == []


def test_invalid_utf8_names_its_line(cli, tmp_path):
    good = "name,region\n" + "".join(f"李{i},北京\n" for i in range(20))
    (tmp_path / "c.csv").write_bytes(good.encode() + b"Bad \xff\xfe name,x\n")
    code, _, err = cli("customer", "import", "c.csv")
    assert code == 2 and "c.csv:22: not valid UTF-8" in one_line_error(err)
    assert names(cli) == []


def test_field_over_the_csv_limit_is_a_bad_row(cli, tmp_path):
    (tmp_path / "c.csv").write_text(
        "name,address\nLi,short\nWang," + "x" * 200_000 + "\nZhao,short\n"
    )
    code, out, err = cli("customer", "import", "c.csv")
    assert code == 2
    assert err.strip().splitlines() == ["c.csv:3: a field is longer than 131,072 characters"]
    assert "imported 2 of 3" in out and names(cli) == ["Li", "Zhao"]


def test_deeply_nested_jsonl_is_a_bad_row(cli, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "c.jsonl").write_text(
        '{"name": "Li"}\n'
        + deep
        + "\n"
        + '{"name": "Wang", "ext": '
        + '{"a":' * 5000
        + "1"
        + "}" * 5001
        + "\n"
    )
    code, _out, err = cli("customer", "import", "c.jsonl")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines == ["c.jsonl:2: JSON nested too deeply", "c.jsonl:3: JSON nested too deeply"]
    assert names(cli) == ["Li"]


def test_unterminated_quote_is_a_bad_row_naming_its_line(cli, tmp_path):
    (tmp_path / "c.csv").write_text(
        'name,phone\nLi,13800138000\n"Wang, 13900139000\nZhang,13700137000\nZhao,13600136000\n'
    )
    code, out, err = cli("customer", "import", "c.csv")
    assert code == 2
    assert err.strip().splitlines() == [
        "c.csv:3: unterminated quote: the quoted field opened on this line never closes (it "
        "would swallow the rest of the file)"
    ]
    assert "imported 3 of 4" in out
    assert names(cli) == ["Li", "Zhang", "Zhao"]


def test_a_row_with_more_values_than_columns_is_bad(cli, tmp_path):
    (tmp_path / "c.csv").write_text("name,phone\nLi,13800138000,extra\nWang,,\n")
    code, _out, err = cli("customer", "import", "c.csv")
    assert code == 2 and err.strip() == "c.csv:2: 3 values for 2 header columns"
    assert names(cli) == ["Wang"]


# -- phones ----------------------------------------------------------------------------------


@pytest.fixture
def cn_cli(cli, tmp_path):
    (tmp_path / "crm.toml").write_text(
        '[core]\ndefault_country_code = "86"\ntimezone = "Asia/Shanghai"\n'
    )
    return cli


FULL_WIDTH = "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10"  # 13800138000


@pytest.mark.parametrize(
    "written",
    [
        "8613800138000",
        FULL_WIDTH,
        "\uff0b86 138 0013 8000",
        "0086-138-0013-8000",
        "(+86) 138.0013.8000",
    ],
)
def test_every_way_of_writing_a_number_gives_one_form(cn_cli, written):
    code, _out, err = cn_cli("--json", "customer", "add", "--name", "Li", "--phone", written)
    assert code == 0, err
    (li,) = customers(cn_cli)
    assert (li["phone"], li["phone_type"]) == ("+8613800138000", "mobile")


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("12345", "phone: "),
        ("138 0013 800", "no such number in CN"),
        ("+44 20 7946 09581234", "phone: "),
        ("phone me", "not a phone number"),
    ],
)
def test_invalid_numbers_are_refused_with_the_reason(cn_cli, written, reason):
    code, _, err = cn_cli("customer", "add", "--name", "Li", "--phone", written)
    assert code == 2 and reason in one_line_error(err)
    assert customers(cn_cli) == []


def test_trunk_zero_and_number_types(cn_cli):
    for name, phone in (
        ("uk", "+44 (0)20 7946 0958"),
        ("land", "010-8888 6666"),
        ("free", "400 810 8888"),
    ):
        assert cn_cli("customer", "add", "--name", name, "--phone", phone)[0] == 0
    by_name = {c["name"]: (c["phone"], c["phone_type"]) for c in customers(cn_cli)}
    assert by_name == {
        "uk": ("+442079460958", "fixed_line"),
        "land": ("+861088886666", "fixed_line"),
        "free": ("+864008108888", "shared_cost"),
    }


def test_a_duplicate_phone_is_reported_on_add_and_refused_when_unique(cn_cli, tmp_path):
    code, out, _ = cn_cli("--json", "customer", "add", "--name", "Li", "--phone", "13800138000")
    first = json.loads(out)["id"]
    code, out, err = cn_cli(
        "--json", "customer", "add", "--name", "Li Lei", "--phone", "+86 138-0013-8000"
    )
    assert code == 0
    assert json.loads(out)["same_phone"] == [first]
    assert f"note: the same phone belongs to customer(s) {first}" in err


def test_a_duplicate_phone_is_refused_when_contacts_are_unique(cli, tmp_path):
    (tmp_path / "crm.toml").write_text('[core]\ndefault_country_code = "86"\nunique_phone = true\n')
    code, _, err = cli("customer", "add", "--name", "Li 3", "--phone", "\uff18\uff1613900139000")
    assert code == 0, err
    code, _, err = cli("customer", "add", "--name", "Li 4", "--phone", "139 0013 9000")
    assert code == 4 and "phone" in one_line_error(err)
    assert len(customers(cli)) == 1


# -- external ids and upserts ----------------------------------------------------------------


def test_external_ids_are_unique_per_source(cli):
    code, out, _ = cli(
        "--json",
        "customer",
        "add",
        "--name",
        "Li",
        "--external-id",
        "shop:C-1",
        "--external-id",
        "wechat:abc",
    )
    li = json.loads(out)["id"]
    code, _, err = cli("customer", "add", "--name", "Other", "--external-id", "shop:C-1")
    assert code == 2 and f"external id shop:C-1 already belongs to customer {li}" in one_line_error(
        err
    )
    assert cli("customer", "add", "--name", "Other", "--external-id", "crm2:C-1")[0] == 0
    code, out, _ = cli("--json", "customer", "list", "--external-id", "SHOP:C-1")
    assert [c["id"] for c in json.loads(out)] == [li]
    code, _, err = cli("customer", "add", "--name", "X", "--external-id", "nocolon")
    assert code == 2 and "expected SOURCE:ID" in one_line_error(err)


def test_changing_an_external_id_frees_the_old_one(cli):
    code, out, _ = cli("--json", "customer", "add", "--name", "Li", "--external-id", "shop:1")
    li = json.loads(out)["id"]
    assert cli("customer", "update", li, "--external-id", "shop:2")[0] == 0
    assert cli("customer", "add", "--name", "New", "--external-id", "shop:1")[0] == 0
    code, _, err = cli("customer", "add", "--name", "Dup", "--external-id", "shop:2")
    assert code == 2 and li in err


def test_upsert_by_external_id_updates_instead_of_duplicating(cli, tmp_path):
    (tmp_path / "c.csv").write_text(
        "name,external_id,region\nLi,shop:1,Beijing\nWang,shop:2,Shanghai\n"
    )
    assert cli("customer", "import", "c.csv")[0] == 0
    code, _, err = cli("customer", "import", "c.csv")  # without --upsert: refused per row
    assert code == 2 and "c.csv:2: external_ids: external id shop:1 already belongs" in err
    (tmp_path / "c.csv").write_text(
        "name,external_id,region\nLi Lei,shop:1,Beijing\nWang,shop:2,Shanghai\nZhao,shop:3,\n"
    )
    code, out, err = cli("customer", "import", "c.csv", "--upsert")
    assert code == 0, err
    assert "imported 1 of 3 customers, 1 updated" in out
    assert names(cli) == ["Li Lei", "Wang", "Zhao"]
    code, out, _ = cli("customer", "import", "c.csv", "--upsert")  # a re-run changes nothing
    assert code == 0 and "imported 0 of 3 customers, 3 unchanged; 0 bad row(s)" in out
    assert len(customers(cli)) == 3


def test_bare_external_ids_take_the_id_source(cli, tmp_path):
    (tmp_path / "c.csv").write_text("name,会员号\nLi,1001\n")
    code, _, err = cli("customer", "import", "c.csv")
    assert code == 2 and "expected SOURCE:ID" in err
    assert cli("customer", "import", "c.csv", "--id-source", "shop")[0] == 0
    assert customers(cli)[0]["external_ids"] == {"shop": "1001"}


def test_upsert_by_phone(cn_cli, tmp_path):
    cn_cli("customer", "add", "--name", "Li", "--phone", "13800138000")
    (tmp_path / "c.csv").write_text(
        "name,phone,occupation\nLi Lei,+86 138 0013 8000,teacher\nWang,13900139000,\n"
    )
    code, _out, err = cn_cli("customer", "import", "c.csv", "--upsert", "--match", "phone")
    assert code == 0, err
    assert {c["name"]: c["occupation"] for c in customers(cn_cli)} == {
        "Li Lei": "teacher",
        "Wang": None,
    }


def test_interactions_attach_by_external_id_or_phone(cn_cli, tmp_path):
    cn_cli("customer", "add", "--name", "Li", "--phone", "13800138000", "--external-id", "shop:1")
    (tmp_path / "h.csv").write_text(
        "会员号,日期,类型,金额\nshop:1,2025-03-01 10:00,purchase,99\nshop:9,2025-03-02,purchase,5\n"
    )
    code, out, err = cn_cli("interaction", "import", "h.csv")
    assert code == 2 and err.strip() == "h.csv:3: external_id: no customer has external id shop:9"
    assert "times without a zone read as Asia/Shanghai" in out
    (tmp_path / "p.csv").write_text("phone,date,type,amount\n138 0013 8000,2025-04-01,visit,\n")
    code, out, err = cn_cli("interaction", "import", "p.csv", "--customer-key", "phone")
    assert code == 0, err
    li = customers(cn_cli)[0]["id"]
    code, out, _ = cn_cli("--json", "interaction", "list", li)
    got = sorted((i["kind"], i["occurred_at"]) for i in json.loads(out))
    # naive times are in the store's zone (Asia/Shanghai, UTC+8)
    assert got == [
        ("purchase", "2025-03-01T02:00:00.000000Z"),
        ("visit", "2025-03-31T16:00:00.000000Z"),
    ]


def test_future_dated_interactions_need_allow_future(cli, tmp_path):
    code, out, _ = cli("--json", "customer", "add", "--name", "Li")
    li = json.loads(out)["id"]
    (tmp_path / "h.csv").write_text(f"customer_id,kind,occurred_at\n{li},visit,2099-01-01\n")
    code, _, err = cli("interaction", "import", "h.csv")
    assert code == 2 and "h.csv:2: occurred_at: 2099-01-01T00:00:00+00:00 is in the future" in err
    code, out, err = cli("interaction", "import", "h.csv", "--allow-future")
    assert code == 0 and "imported 1 of 1" in out, err


# -- round trips and .xlsx -------------------------------------------------------------------


def _seed(cli) -> str:
    _code, out, _ = cli(
        "--json",
        "customer",
        "add",
        "--name",
        "李雷",
        "--phone",
        "13800138000",
        "--email",
        "li@example.com",
        "--gender",
        "male",
        "--birth-date",
        "1990-05-01",
        "--tag",
        "vip",
        "--tag",
        "new",
        "--external-id",
        "shop:1",
        "--owner",
        "ann",
        "--region",
        "=SUM(A1)",
    )
    li = json.loads(out)["id"]
    cli("customer", "add", "--name", 'Wang, "Fang"', "--do-not-contact")
    cli(
        "log",
        li,
        "--kind",
        "purchase",
        "--amount",
        "12.5",
        "--summary",
        "kettle; blue",
        "--at",
        "2026-01-04T10:00",
    )
    cli("log", li, "--kind", "visit", "--channel", "in_person", "--at", "2026-01-05")
    return li


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_exports_round_trip_through_import_unchanged(crm_cli, fmt):
    import pathlib

    source = crm_cli()
    _seed(source)
    for kind in ("customer", "interaction"):
        code, _, err = source(kind, "export", "--format", fmt, "-o", f"{kind}.{fmt}")
        assert code == 0, err
        code, _, err = source(kind, "export", "--format", "jsonl", "-o", f"first-{kind}.jsonl")
        assert code == 0, err
    target = crm_cli()  # a fresh, empty store from here on
    assert customers(target) == []
    for kind in ("customer", "interaction"):
        code, out, err = target(kind, "import", f"{kind}.{fmt}")
        assert code == 0, (kind, out, err)
    for kind in ("customer", "interaction"):
        code, _, err = target(kind, "export", "--format", "jsonl", "-o", f"again-{kind}.jsonl")
        assert code == 0, err

    for kind in ("customer", "interaction"):
        first = [
            json.loads(x) for x in pathlib.Path(f"first-{kind}.jsonl").read_text().splitlines()
        ]
        again = [
            json.loads(x) for x in pathlib.Path(f"again-{kind}.jsonl").read_text().splitlines()
        ]
        for doc in (*first, *again):  # who wrote it and which version: the importing run's
            for key in ("created_by", "updated_by", "version"):
                doc.pop(key, None)
        assert again == first
    # and a second import of the same history adds nothing
    code, out, err = target("interaction", "import", f"interaction.{fmt}")
    assert code == 0 and "imported 0 of 2 interactions, 2 already imported" in out, err


def test_xlsx_import_reads_numbers_dates_and_chinese_headers(cli, tmp_path):
    from datetime import date

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机号", "生日", "地区"])
    sheet.append(["李雷", 13800138000, date(1990, 5, 1), "北京"])
    sheet.append([None, None, None, None])
    sheet.append(["韩梅梅", "13900139000", None, None])
    book.save(tmp_path / "c.xlsx")
    code, out, err = cli("customer", "import", "c.xlsx")
    assert code == 0 and "imported 2 of 2" in out, err
    li = next(c for c in customers(cli) if c["name"] == "李雷")
    assert (li["phone"], li["birth_date"]) == ("13800138000", "1990-05-01")


def test_xlsx_export_does_not_turn_text_into_formulas(cli, tmp_path):
    _seed(cli)
    assert cli("customer", "export", "--format", "xlsx", "-o", "c.xlsx")[0] == 0
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "c.xlsx").active
    cells = [c for row in sheet.iter_rows() for c in row if c.value == "=SUM(A1)"]
    assert cells and all(c.data_type == "s" for c in cells)
    code, _, err = cli("customer", "export", "--format", "xlsx")
    assert code == 2 and "--format xlsx needs -o FILE" in one_line_error(err)


def test_not_an_xlsx_is_one_line(cli, tmp_path):
    (tmp_path / "c.xlsx").write_text("name\nLi\n")
    code, _, err = cli("customer", "import", "c.xlsx")
    assert code == 2 and "c.xlsx: not an .xlsx workbook" in one_line_error(err)


def test_issue_18_import_files_in_a_real_process(tmp_path):
    """The files that used to end in 'internal error' (exit 70), through the installed CLI."""
    import os
    import subprocess
    import sys

    files = {
        "latin1.csv": ("name\nJosé\n".encode("latin-1"), 0),
        "utf16.csv": ("name\n李雷\n".encode("utf-16"), 0),
        "binary.csv": (bytes(range(256)), 2),
        "broken.csv": ("name\n李雷\n韩梅梅\n".encode() + b"\xff\xfe\n", 2),
        "huge.csv": (("name,address\nLi," + "x" * 140_000 + "\n").encode(), 2),
        "deep.jsonl": (("[" * 100_000 + "]" * 100_000 + "\n").encode(), 2),
        "quote.csv": (b'name,phone\n"Wang,13900139000\nZhang,13700137000\n', 2),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    env.update(CRM_STORAGE_BACKEND="memory", CRMCORE_PLUGINS="")
    for name, (data, expected) in files.items():
        (tmp_path / name).write_bytes(data)
        proc = subprocess.run(
            [sys.executable, "-m", "crmcore.cli.main", "customer", "import", name],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == expected, (name, proc.stderr)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
        if expected:
            (line,) = proc.stderr.strip().splitlines()
            assert line.startswith((f"{name}:", f"error: {name}")), line


def test_docs_list_every_built_in_alias():
    from pathlib import Path

    from crmcore.tabular import CUSTOMER_ALIASES, INTERACTION_ALIASES

    text = (Path(__file__).parents[1] / "docs" / "import.md").read_text("utf-8")
    for aliases in (CUSTOMER_ALIASES, INTERACTION_ALIASES):
        for field, names in aliases.items():
            row = next(line for line in text.splitlines() if line.startswith(f"| `{field}` |"))
            assert all(name in row for name in names), field


def test_forget_and_merge_clear_notes_and_free_external_ids(cli):
    _, out, _ = cli("--json", "customer", "add", "--name", "Li", "--external-id", "shop:1")
    li = json.loads(out)["id"]
    _, out, _ = cli("--json", "customer", "add", "--name", "Li 2", "--external-id", "shop:2")
    dup = json.loads(out)["id"]
    assert cli("customer", "merge", li, dup)[0] == 0
    _, out, _ = cli("--json", "customer", "list", "--external-id", "shop:2")
    assert [c["id"] for c in json.loads(out)] == [li]  # the duplicate's id now finds the kept
    assert cli("customer", "forget", li, "--yes")[0] == 0
    _code, out, _ = cli("--json", "customer", "list", "--external-id", "shop:1")
    assert json.loads(out) == []
    assert cli("customer", "add", "--name", "New", "--external-id", "shop:1")[0] == 0
    assert cli("customer", "add", "--name", "New 2", "--external-id", "shop:2")[0] == 0


def test_customers_stored_before_the_new_fields_still_load(crm):
    from crmcore.converter import to_doc

    li = crm.customers.add(actor="ann", name="Li", phone="+8613800138000")
    doc = {
        k: v
        for k, v in to_doc(li).items()
        if k not in ("external_ids", "phone_type", "notes", "version")
    }
    doc["id"] = li.id[:-1] + ("A" if li.id[-1] != "A" else "B")
    raw = crm.store
    while hasattr(raw, "inner"):
        raw = raw.inner
    raw.collection("customers").insert(doc)  # as an older crmcore stored it
    assert not {"external_ids", "phone_type", "notes"} & set(
        raw.collection("customers").get(doc["id"])
    )
    old = crm.customers.get(doc["id"])
    assert (old.name, old.external_ids, old.phone_type, old.notes) == ("Li", {}, None, "")
