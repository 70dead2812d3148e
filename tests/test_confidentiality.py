"""Confidentiality end to end: raw store files, fuzzed input, and a demo at debug level."""

import base64
import json
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.cli.main import run
from crmcore.demo import _person
from crmcore.normalize import normalize_phone

SECRETS = {
    "name": "Li Lei",
    "phone": "13800138000",
    "email": "li.lei@example.com",
    "address": "88 Long Road",
}


def raw_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.fixture
def tiny(make_crm, tmp_path):
    def open_(**core):
        return make_crm(
            ["storage_tinydb"],
            core=core,
            storage={"backend": "tinydb", "location": str(tmp_path / "db")},
        )

    return open_


def test_forget_leaves_no_personal_value_in_the_store_files(tiny, tmp_path):
    crm = tiny()
    c = crm.customers.add(actor="ann", **SECRETS)
    crm.interactions.log(
        actor="ann",
        customer_id=c.id,
        kind="visit",
        summary=f"{SECRETS['name']} called from {SECRETS['phone']}",
    )
    crm.tasks.create(
        actor="ann",
        kind="callback",
        title="call",
        due_at=crm.now(),
        customer_id=c.id,
        notes=f"ask {SECRETS['name']} about the order",
    )
    crm.customers.add(actor="ann", name="Wang Fang", phone="13900139000")
    assert SECRETS["phone"].encode() in raw_bytes(tmp_path / "db")
    crm.customers.forget(c.id, actor="dpo")
    crm.close()
    data = raw_bytes(tmp_path / "db")
    for value in SECRETS.values():
        assert value.encode() not in data, value
    assert b"13900139000" in data  # the other customer is untouched


def test_encrypted_personal_fields_never_reach_the_files(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"k" * 32).decode())
    crm = tiny(encrypt_personal=True)
    c = crm.customers.add(actor="ann", **SECRETS)
    crm.interactions.log(
        actor="ann", customer_id=c.id, kind="visit", summary=f"call {SECRETS['phone']}"
    )
    assert crm.customers.find_by_contact(phone=SECRETS["phone"])[0].id == c.id
    crm.close()
    data = raw_bytes(tmp_path / "db")
    for value in SECRETS.values():
        assert value.encode() not in data, value


# -- fuzzing: never a traceback, always a clear one-line error, nothing written ----------

# "worker" is left out: without --once it runs until interrupted, as a daemon should.
WORDS = [
    "customer",
    "add",
    "show",
    "list",
    "update",
    "import",
    "export",
    "log",
    "tasks",
    "due",
    "done",
    "plugins",
    "config",
    "audit",
    "verify",
    "migrate",
    "--name",
    "--phone",
    "--email",
    "--json",
    "--as",
    "--kind",
    "--due",
    "--within",
    "--limit",
    "--at",
    "-o",
    "--format",
    "--map",
    "--atomic",
    "--dry-run",
    "cus_x",
    "tsk_x",
    "0",
    "-1",
    "+2d",
    "2026-13-45",
    "",
    "∞",
    "--",
    "x=y",
    "a" * 300,
    "\x00",
    "🙂",
]


@pytest.fixture
def isolated(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMCORE_PLUGINS", "")
    monkeypatch.setenv("CRM_STORAGE_BACKEND", "memory")
    monkeypatch.setenv("CRM_STORAGE_LOCATION", f"fuzz-{uuid.uuid4()}")
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    return capsys


def _count(capsys) -> int:
    assert run(["--json", "customer", "list", "--limit", "1000"]) == 0
    return len(json.loads(capsys.readouterr().out))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_fuzzed_command_lines_fail_cleanly(isolated, argv):
    code = run(argv)
    captured = isolated.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert code != 70, f"internal error for {argv!r}: {captured.err}"
    if code != 0:  # one line that says what to fix
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, captured.err)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    content=st.one_of(
        st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
        st.lists(
            st.lists(
                st.sampled_from(
                    [
                        "name",
                        "phone",
                        "Li",
                        "12",
                        "138 0013 8000",
                        "",
                        '"',
                        ",",
                        "x@y",
                        "\n",
                        "ü",
                        "=",
                    ]
                ),
                max_size=5,
            ),
            max_size=6,
        ).map(lambda rows: "\n".join(",".join(r) for r in rows)),
    ),
    fmt=st.sampled_from(["csv", "jsonl"]),
)
def test_fuzzed_import_files_fail_cleanly_and_atomic_writes_nothing(
    isolated, tmp_path, content, fmt
):
    path = tmp_path / f"in-{uuid.uuid4().hex}.{fmt}"
    path.write_text(content, encoding="utf-8")
    before = _count(isolated)
    code = run(["customer", "import", str(path), "--atomic"])
    captured = isolated.readouterr()
    assert "Traceback" not in captured.err and code in (0, 2), captured.err
    if code != 0:
        assert _count(isolated) == before


# -- a whole demo at debug level leaks nothing ------------------------------------------


def test_a_debug_level_demo_logs_no_personal_data(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    code = run(
        [
            "--log-level",
            "debug",
            "demo",
            "--customers",
            "40",
            "--days",
            "6",
            "--dir",
            str(tmp_path / "demo"),
            "--seed",
            "11",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    output = captured.out + captured.err
    rng = random.Random(11)
    people = [_person(rng, n) for n in range(40)]
    for person in people:
        phone = normalize_phone(str(person["phone"]), default_country_code="86")
        for value in (person["name"], person["email"], person["phone"], phone, phone[3:]):
            assert str(value) not in output, value
