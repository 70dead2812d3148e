"""Fuzzing the command line: malformed arguments to the main commands, run through ``run`` (what
the installed ``crm`` script calls) with every bundled plugin loaded.

Every case must end in a clear outcome: exit 0, or a one-line ``error:`` and a non-zero exit that
is not 70 (internal error) — never a traceback — and a refused command leaves the store exactly
as it was. Bounded: a fixed table of cases plus a fixed number of generated ones, derandomized,
no deadline, so CI runs the same cases in well under a minute.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.app import open_crm
from crmcore.cli.main import EXIT_INTERNAL, run
from crmcore.converter import from_doc
from crmcore.entities import Customer, Interaction, Task
from crmcore.storage.memory import MemoryStore
from crmcore.tasks import with_title

PLUGINS = ["grading", "followup", "complaints", "loyalty", "nps"]
GENERATED = 260  # generated cases; the table below adds the hand-picked ones


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A shared in-memory store with a customer, a task, a ticket and an interaction."""
    location = f"fuzz-{uuid.uuid4()}"
    cwd = tmp_path_factory.mktemp("fuzz")
    (cwd / "rows.csv").write_text("name\nAnn\n", encoding="utf-8")
    (cwd / "folder").mkdir()
    env = {
        "CRMCORE_PLUGINS": ",".join(PLUGINS),
        "CRM_STORAGE_BACKEND": "memory",
        "CRM_STORAGE_LOCATION": location,
        "COLUMNS": "100",
    }
    with mock.patch.dict(os.environ, env), contextlib.chdir(cwd):
        crm = open_crm({"storage": {"backend": "memory", "location": location}}, plugins=PLUGINS)
        ann = crm.customers.add(actor="ann", name="Ann", phone="13800138000", owner="ann")
        bo = crm.customers.add(actor="ann", name="Bo", email="bo@example.com")
        task = crm.tasks.create(
            actor="ann",
            kind="callback",
            title="Call Ann",
            due_at=crm.now(),
            customer_id=ann.id,
            assignee="ann",
        )
        crm.interactions.log(actor="ann", customer_id=ann.id, kind="purchase", amount=10.0)
        crm.close()
        yield {
            "CID": ann.id,
            "CID2": bo.id,
            "TID": task.id,
            "location": location,
            "cwd": str(cwd),
            **env,
        }
    MemoryStore.drop_shared(location)


def _snapshot(location: str) -> str:
    store = MemoryStore.shared(location)
    return repr(
        [
            (name, sorted(map(repr, store.collection(name).iter())))
            for name in sorted(store.collection_names())
        ]
    )


def _valid_records(location: str) -> None:
    """Everything the commands wrote passes the entities' own rules (text rules included)."""
    store = MemoryStore.shared(location)
    for name, cls in (("customers", Customer), ("interactions", Interaction), ("tasks", Task)):
        for doc in store.collection(name).iter():
            from_doc(cls, with_title(doc) if name == "tasks" else doc, validate=True)


class _Stream(io.TextIOWrapper):
    """A stream encoding as a real process's does: stdout strict UTF-8 (text it cannot encode
    is an error, as on a terminal or a pipe), stderr with backslash escapes."""

    def __init__(self, errors: str) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors=errors, write_through=True)

    def getvalue(self) -> str:
        return self.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]


@contextlib.contextmanager
def _captured() -> Iterator[tuple[_Stream, _Stream]]:
    out, err = _Stream("strict"), _Stream("backslashreplace")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


def check(world: dict[str, str], args: list[str]) -> tuple[int, str, str]:
    """Run ``crm *args``; assert the outcome is clear and a refusal wrote nothing."""
    args = [world.get(a, a) if a in ("CID", "CID2", "TID") else a for a in args]
    env = {k: v for k, v in world.items() if k.isupper()}
    before = _snapshot(world["location"])
    with (
        mock.patch.dict(os.environ, env),
        contextlib.chdir(world["cwd"]),
        _captured() as (out, err),
    ):
        code = run(list(args))
    out_text, err_text = out.getvalue(), err.getvalue()
    shown = f"crm {args!r} -> {code}\nstdout: {out_text[:2000]}\nstderr: {err_text[:2000]}"
    assert code != EXIT_INTERNAL, shown
    assert "Traceback" not in err_text and "internal error" not in err_text, shown
    _valid_records(world["location"])
    if code != 0:
        assert _snapshot(world["location"]) == before, "a refused command wrote:\n" + shown
        lines = [line for line in err_text.splitlines() if not line.startswith("Usage:")]
        assert any(line.startswith("error: ") for line in lines), shown
    elif "--json" in args and out_text.strip() and not out_text.startswith("Usage:"):
        json.loads(out_text)  # pure JSON (help text, asked for with -h, is text)
    return code, out_text, err_text


# -- the table: one case per known kind of mistake -----------------------------------------------

SURROGATE, ESC, RLO = "\ud800", "\x1b[2J", "\u202e"
HUGE = "9" * 400
CASES = [
    # text that must be refused
    ["customer", "add", "--name", SURROGATE],
    ["customer", "add", "--name", "\udced\udca0\udc80"],
    ["customer", "add", "--name", ESC],
    ["customer", "add", "--name", f"a{RLO}b"],
    ["customer", "add", "--name", "a\x00b"],
    ["customer", "add", "--name", ""],
    ["customer", "add", "--name", " \t "],
    ["customer", "add", "--name", "x", "--phone", HUGE],
    ["customer", "add", "--name", "x", "--email", SURROGATE],
    ["customer", "add", "--name", "x", "--tag", "a\nb"],
    ["customer", "add", "--name", "x", "--timezone", "Mars/Olympus"],
    ["customer", "add", "--name", "x", "--timezone", "../../etc/passwd"],
    ["customer", "add", "--name", "x", "--timezone", "\x00"],
    ["customer", "add", "--name", "x", "--birth-date", "0000-00-00"],
    ["customer", "add", "--name", "x", "--birth-date", "99999-01-01"],
    ["customer", "add", "--name", "x", "--gender", "robot"],
    ["customer", "update", "CID", "--name", SURROGATE],
    ["customer", "update", "CID"],
    ["customer", "update", "CID", "--region", ESC],
    ["customer", "update", "CID", "--name", "y", "--expected-version", HUGE],
    ["customer", "update", "CID", "--name", "y", "--expected-version", "-1"],
    ["customer", "update", "nope", "--name", "y"],
    ["customer", "update", "", "--name", "y"],
    ["customer", "show", ""],
    ["customer", "show", SURROGATE],
    ["customer", "show", ESC],
    ["customer", "show", "CID", "--history", "-5"],
    ["customer", "show", "CID", "--history", HUGE],
    ["customer", "list", "--limit", "0"],
    ["customer", "list", "--limit", HUGE],
    ["customer", "list", "--skip", "-1"],
    ["customer", "list", "--phone", SURROGATE],
    ["customer", "list", "--email", "@@"],
    ["customer", "list", "--owner", ""],
    ["customer", "merge", "CID", "CID"],
    ["customer", "merge", "CID", "nope"],
    ["customer", "forget", "CID"],
    ["customer", "forget", "nope", "--yes"],
    ["customer", "export", "--format", "xml"],
    ["customer", "export", "nope"],
    ["customer", "import", "missing.csv"],
    ["customer", "import", "folder"],
    ["customer", "import", ""],
    ["customer", "import", "rows.csv", "--map", "nonsense"],
    ["customer", "import", "rows.csv", "--format", "xls"],
    ["customer", "import", f"{SURROGATE}.csv"],
    # dates, numbers and durations at their extremes
    ["log", "CID", "--kind", "purchase", "--at", "0001-01-01"],
    ["log", "CID", "--kind", "purchase", "--at", "9999-12-31T23:59:59.999999-12:00"],
    ["log", "CID", "--kind", "purchase", "--at", "0001-01-01T00:00:00+14:00"],
    ["log", "CID", "--kind", "purchase", "--at", "+999999999d"],
    ["log", "CID", "--kind", "purchase", "--at", "-1e308d"],
    ["log", "CID", "--kind", "purchase", "--at", "2026-02-30"],
    ["log", "CID", "--kind", "purchase", "--at", "-"],
    ["log", "CID", "--kind", "purchase", "--at", ""],
    ["log", "CID", "--kind", "purchase", "--amount", "nan"],
    ["log", "CID", "--kind", "purchase", "--amount", "inf"],
    ["log", "CID", "--kind", "purchase", "--amount", "-1"],
    ["log", "CID", "--kind", "purchase", "--amount", "1e309"],
    ["log", "CID", "--kind", "purchase", "--amount", HUGE],
    ["log", "CID", "--kind", "purchase", "--satisfaction", "6"],
    ["log", "CID", "--kind", "Purchase!"],
    ["log", "CID", "--kind", ""],
    ["log", "CID", "--kind", "purchase", "--summary", "\x00"],
    ["log", "CID", "--kind", "purchase", "--rep", ESC],
    ["log", "nope", "--kind", "purchase"],
    ["log", "CID", "--kind", "purchase", "--channel", "pigeon"],
    ["tasks", "due", "--rep", ""],
    ["tasks", "due", "--within", "1e999d"],
    ["tasks", "due", "--within", "-1d"],
    ["tasks", "due", "--within", "99999999999w"],
    ["tasks", "due", "--limit", "0"],
    ["tasks", "due", "--kind", SURROGATE],
    ["tasks", "due", "--customer", ""],
    ["tasks", "due", "--grade", "Z"],
    ["tasks", "add", "--kind", "callback", "--title", "x", "--due", "0001-01-01"],
    ["tasks", "add", "--kind", "callback", "--title", "\n", "--due", "+1d"],
    ["tasks", "add", "--kind", "nope", "--title", "x", "--due", "+1d"],
    ["tasks", "add", "--kind", "callback", "--title", "x", "--due", "+1d", "--customer", "nope"],
    ["tasks", "add", "--kind", "callback", "--title", "x", "--due", "+1d", "--priority", "max"],
    ["tasks", "done", "nope"],
    ["tasks", "done", ""],
    ["tasks", "done", "TID", "--outcome", ESC],
    ["tasks", "assign", "TID", ""],
    ["tasks", "assign", "TID", SURROGATE],
    ["tasks", "reschedule", "TID", "9999-12-31"],
    ["tasks", "reschedule", "TID", "+99999999w"],
    ["tasks", "reschedule", "TID", "yesterday"],
    ["tasks", "cancel", "TID", "--reason", ""],
    ["tasks", "cancel", "TID", "--reason", SURROGATE],
    ["tasks", "show", SURROGATE],
    ["worker", "--once", "--name", ""],
    ["worker", "--once", "--name", ESC],
    ["worker", "--interval", "0"],
    ["worker", "--iterations", "0"],
    ["interaction", "list", "nope"],
    ["interaction", "list", "CID", "--limit", "-1"],
    ["interaction", "export", "--customer", SURROGATE, "--format", "csv"],
    # plugins' commands
    ["complaints", "open", "--customer", "CID", "--content", SURROGATE],
    ["complaints", "open", "--customer", "CID", "--content", "x", "--category", ESC],
    ["complaints", "open", "--customer", "CID", "--content", "x", "--received", "0001-01-01"],
    ["complaints", "open", "--customer", "nope", "--content", "x"],
    ["complaints", "open", "--customer", "CID", "--content", ""],
    ["complaints", "show", "nope"],
    ["complaints", "list", "--status", "weird"],
    ["loyalty", "balance", "nope"],
    ["loyalty", "adjust", "CID", HUGE, "--reason", "x"],
    ["loyalty", "adjust", "CID", "-" + HUGE, "--reason", "x"],
    ["loyalty", "adjust", "CID", "50", "--reason", SURROGATE],
    ["loyalty", "adjust", "CID", "50", "--reason", ""],
    ["loyalty", "redeem", "CID", "0"],
    ["loyalty", "redeem", "CID", "100000000"],
    ["loyalty", "history", "CID", "--limit", "-1"],
    ["grade", "show", "nope"],
    ["grade", "set", "CID", "--demand", "maybe"],
    ["grade", "list", "--grade", "Q"],
    ["grade", "history", SURROGATE],
    ["followup", "show", "nope"],
    ["callbacks", "list", "--rep", ""],
    ["handover", "--rep", ""],
    ["reps", "add", ""],
    ["reps", "add", SURROGATE],
    ["referral", "code", "nope"],
    ["nps", "report", "--days", HUGE],
    ["demo", "--days", HUGE],
    ["demo", "--days", "99999999"],
    ["demo", "--customers", "0"],
    ["handover", "--shift-end", "+99999999999w"],
    ["report", "--days", HUGE],
    ["nps", "report", "--days", "99999999999"],
    # global options and the command line itself
    ["--as", SURROGATE, "customer", "add", "--name", "x"],
    ["--as", ESC, "customer", "add", "--name", "x"],
    ["--config", "missing.toml", "customer", "list"],
    ["--config", "folder", "customer", "list"],
    ["--config", SURROGATE, "customer", "list"],
    ["--config", "", "customer", "list"],
    ["--log-level", "loud", "plugins"],
    ["--log-format", "xml", "plugins"],
    ["nosuchcommand"],
    ["customer", "nosuch"],
    ["customer", "add", "--nosuch", "x"],
    ["customer", "add", "--name"],
    ["tasks", "due", "--limit"],
    ["--json"],
    ["customer", "list", "--json", "--json"],
    ["plugins", "--json", "extra"],
    [SURROGATE],
    [ESC],
    [""],
    ["--"],
    ["-"],
    ["customer", "show", "--", "-x"],
    ["config", "show", "--json", "--section", "nope"],
]


@pytest.mark.parametrize("args", CASES, ids=[str(i) for i in range(len(CASES))])
def test_a_malformed_command_line_gets_a_clear_answer_and_writes_nothing(world, args):
    check(world, args)


# -- generated: a command shape, then each argument from a pool of nasty values ----------------

SHAPES = [
    ["customer", "add", "--name", "{}"],
    ["customer", "add", "--name", "x", "--phone", "{}"],
    ["customer", "add", "--name", "x", "--email", "{}"],
    ["customer", "add", "--name", "x", "--birth-date", "{}"],
    ["customer", "add", "--name", "x", "--timezone", "{}"],
    ["customer", "add", "--name", "x", "--tag", "{}", "--region", "{}"],
    ["customer", "update", "{}", "--owner", "{}"],
    ["customer", "update", "CID", "--name", "{}"],
    ["customer", "show", "{}"],
    ["customer", "list", "--owner", "{}", "--limit", "{}"],
    ["customer", "list", "--phone", "{}"],
    ["customer", "merge", "{}", "{}"],
    ["customer", "export", "{}"],
    ["customer", "forget", "{}", "--yes"],
    ["log", "{}", "--kind", "{}"],
    ["log", "CID", "--kind", "visit", "--at", "{}"],
    ["log", "CID", "--kind", "visit", "--amount", "{}", "--summary", "{}"],
    ["log", "CID", "--kind", "visit", "--satisfaction", "{}", "--place", "{}"],
    ["tasks", "due", "--rep", "{}", "--within", "{}"],
    ["tasks", "due", "--kind", "{}"],
    ["tasks", "add", "--kind", "callback", "--title", "{}", "--due", "{}"],
    ["tasks", "done", "{}", "--outcome", "{}"],
    ["tasks", "assign", "{}", "{}"],
    ["tasks", "reschedule", "TID", "{}"],
    ["tasks", "cancel", "{}", "--reason", "{}"],
    ["tasks", "show", "{}"],
    ["interaction", "list", "{}", "--kind", "{}"],
    ["complaints", "open", "--customer", "CID", "--content", "{}", "--category", "{}"],
    ["complaints", "open", "--customer", "{}", "--content", "x", "--received", "{}"],
    ["complaints", "show", "{}"],
    ["loyalty", "balance", "{}"],
    ["loyalty", "adjust", "CID", "{}", "--reason", "{}"],
    ["loyalty", "redeem", "{}", "{}"],
    ["grade", "show", "{}"],
    ["grade", "history", "{}"],
    ["--as", "{}", "customer", "add", "--name", "x"],
    ["{}", "list"],
    ["customer", "{}"],
    ["worker", "--once", "--name", "{}"],
    ["tasks", "due", "--limit", "{}"],
]

nasty_text = st.one_of(
    st.text(max_size=12),  # any unicode, control characters included
    st.text(st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Co"]), min_size=1, max_size=6),
    st.sampled_from(
        [
            "",
            " ",
            "\t",
            "\n",
            "-",
            "--",
            "--json",
            "-h",
            "None",
            "null",
            "0",
            "-0",
            "nan",
            "inf",
            "-inf",
            "1e309",
            "-1",
            HUGE,
            "x" * 5000,
            "'",
            '"',
            "\\",
            "[/b]",
            ":smile:",
            "%s%n",
            "{}",
            "../../x",
            "/dev/full",
            "CID",
            "TID",
            "cus_",
            "cus_00000000000000000000000000",
            SURROGATE,
            ESC,
            RLO,
        ]
    ),
)
nasty_dates = st.one_of(
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "1899-12-31",
            "3000-01-01",
            "2026-02-29",
            "2026-13-01",
            "+0d",
            "-0s",
            "+1.5w",
            "+99999999999999d",
            "+1e3d",
            "2026-01-01T25:00",
            "2026-01-01T00:00+25:00",
            "2026-01-01Z",
            "Z",
            "T",
        ]
    ),
    st.dates().map(str),
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
    st.builds(
        lambda s, n, u: f"{s}{n}{u}",
        st.sampled_from("+-"),
        st.integers(0, 10**20),
        st.sampled_from("smhdwy"),
    ),
)
nasty = st.one_of(nasty_text, nasty_dates, st.integers(-(10**30), 10**30).map(str))


@settings(
    max_examples=GENERATED,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(shape=st.sampled_from(SHAPES), data=st.data())
def test_generated_malformed_command_lines_get_clear_answers_and_write_nothing(world, shape, data):
    args = [
        data.draw(nasty, label=f"arg{i}") if part == "{}" else part for i, part in enumerate(shape)
    ]
    if data.draw(st.booleans(), label="json"):
        args.insert(data.draw(st.integers(0, len(args)), label="at"), "--json")
    check(world, args)


@pytest.mark.parametrize(
    "args",
    [
        ["customer", "list", "--limit", "1000"],
        ["--json", "customer", "list", "--limit", "1000"],
        ["customer", "export"],
        ["customer", "export", "--format", "csv"],
        ["customer", "duplicates"],
        ["tasks", "due", "--within", "100w"],
        ["interaction", "export"],
    ],
)
def test_after_the_fuzz_the_store_still_lists_and_exports(world, args):
    assert check(world, args)[0] == 0


# -- the installed script, in real processes, on the embedded store -------------------------------

CRM = Path(sys.executable).with_name("crm")
# As a shell passes them: bytes that are not UTF-8 reach Python as surrogate escapes.
PROCESS_CASES = [
    [b"customer", b"add", b"--name", b"\xed\xa0\x80"],
    [b"customer", b"add", b"--name", b"\xff"],
    [b"customer", b"add", b"--name", b"a\x1b[2Jb"],
    [b"customer", b"add", b"--name", b""],
    [b"customer", b"add", b"--name", b"x", b"--region", "\u202e".encode()],
    [b"customer", b"update", b"CID", b"--owner", b"\xc3"],
    [b"customer", b"show", b"\xed\xa0\x80"],
    [b"log", b"CID", b"--kind", b"purchase", b"--at", b"0001-01-01"],
    [b"log", b"CID", b"--kind", b"purchase", b"--summary", b"a\x07b"],
    [b"tasks", b"due", b"--rep", b""],
    [b"tasks", b"due", b"--within", b"99999999999w"],
    [b"--as", b"\xed\xa0\x80", b"customer", b"add", b"--name", b"x"],
    [b"customer", b"import", b"\xed\xa0\x80.csv"],
    [b"customer", b"list", b"--json", b"--limit", b"0"],
]


def _store_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name != "store.lock":
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, object]:
    cwd = tmp_path_factory.mktemp("installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    subprocess.run(
        [str(CRM), "init", "--profile", "retail"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    added = subprocess.run(
        [str(CRM), "--json", "customer", "add", "--name", "Ann"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return {"cwd": cwd, "env": env, "CID": json.loads(added.stdout)["id"].encode()}


@pytest.mark.parametrize("args", PROCESS_CASES, ids=[str(i) for i in range(len(PROCESS_CASES))])
def test_the_installed_script_answers_malformed_bytes_clearly(installed, args):
    args = [installed["CID"] if a == b"CID" else a for a in args]
    data = Path(installed["cwd"]) / "crm-data"  # type: ignore[arg-type]
    before = _store_digest(data)
    done = subprocess.run(
        [os.fsencode(CRM), *args],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        timeout=120,
    )
    err = done.stderr.decode("utf-8")  # stderr is UTF-8 text, whatever was typed
    shown = f"{args!r} -> {done.returncode}: {err}"
    assert done.returncode not in (0, EXIT_INTERNAL), shown
    assert "Traceback" not in err and "internal error" not in err, shown
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, shown
    assert "\x1b" not in err and "\u202e" not in err, shown
    done.stdout.decode("utf-8")
    assert _store_digest(data) == before, shown


def test_the_suite_is_as_large_as_promised():
    assert len(CASES) + GENERATED >= 300
