"""Plugins' ``LazyCommand``s: listed without importing their module, imported when they run."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys

import click
import pytest

from crmcore import LazyCommand, hookimpl
from crmcore.cli import main as cli_main
from crmcore.cli.main import build, make_cli
from crmcore.plugins import make_plugin_manager
from crmcore.testing.cli import one_line_error

# The installed ``crm``, as its console script starts it, reporting which CLI modules it
# imported (on stderr, after the command's own output).
PROBE = (
    "import sys; from crmcore.cli.main import run; code = run(sys.argv[1:]); "
    "print(sorted(m for m in sys.modules if m.endswith('.cli') and m.startswith("
    "'crmcore_')), file=sys.stderr); sys.exit(code)"
)


def _crm(*args: str, tmp_path) -> tuple[int, str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, ast.literal_eval(done.stderr.strip().splitlines()[-1])


def test_help_lists_lazy_commands_without_importing_them(tmp_path) -> None:
    code, out, imported = _crm("--help", tmp_path=tmp_path)
    assert code == 0
    assert "loyalty   " in out and "Loyalty points: balance, history, redeem" in out
    assert "complaints" in out and "grade" in out and "service" in out
    for lazy in (
        "crmcore_loyalty.cli",
        "crmcore_grading.cli",
        "crmcore_complaints.cli",
        "crmcore_service.cli",
    ):
        assert lazy not in imported


def test_a_lazy_command_is_imported_for_its_own_help(tmp_path) -> None:
    code, out, imported = _crm("loyalty", "--help", tmp_path=tmp_path)
    assert code == 0 and "balance" in out and "--json" in out
    assert "crmcore_loyalty.cli" in imported and "crmcore_grading.cli" not in imported


MODULES_PROBE = (
    "import sys; from crmcore.cli.main import run; code = run(sys.argv[2:]); "
    "print(sorted(set(sys.modules) & set(sys.argv[1].split(','))), file=sys.stderr); "
    "sys.exit(code)"
)


def imported_by(tmp_path, args, names) -> list[str]:
    """Which of ``names`` (modules or top-level packages) ``crm ARGS`` imports, run as a
    process in a folder ``crm init`` set up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", "init"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    done = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE, ",".join(names), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stderr.strip().splitlines()[-1])


HEAVY = ("structlog", "pymongo", "starlette", "uvicorn", "asyncio", "phonenumbers")


@pytest.mark.parametrize("args", [("--help",), ("customer", "list")])
def test_core_commands_import_no_logging_mongo_web_server_or_phones(tmp_path, args) -> None:
    assert imported_by(tmp_path, args, HEAVY) == []


# What registering the plugins must not import: their APIs, engines and settings (a command
# reads them when it needs them), and for ``--help`` not even their record models, the store
# or rich (imported by the first table printed).
NOT_FOR_REGISTRATION = (
    "crmcore_followup.cli",
    "crmcore_complaints.api",
    "crmcore_complaints.settings",
    "crmcore_followup.api",
    "crmcore_followup.settings",
    "crmcore_grading.engine",
    "crmcore_grading.settings",
    "crmcore_loyalty.api",
    "crmcore_loyalty.settings",
    "crmcore_service.api",
    "crmcore_service.settings",
)
NOT_FOR_HELP = (
    *NOT_FOR_REGISTRATION,
    "rich",
    "crmcore_web.apikeys",
    "crmcore_complaints.model",
    "crmcore_service.model",
    "crmcore_loyalty.records",
    "crmcore_storage_tinydb.store",
    # the core's services, audit trail, encryption and file formats: imported by the commands
    # that use them (the CLI modules import them inside their commands)
    "crmcore.app",
    "crmcore.audit",
    "crmcore.customers",
    "crmcore.kernel",
    "crmcore.transfer",
    "crmcore.encryption",
    "crmcore.keyrotation",
    "crmcore.report",
    "crmcore.outputs",
    "crmcore.storage.memory",
    "crmcore.retry",
    # the example plugin registers as a third party would: its plugin module only
    "crmcore_nps.cli",
    "crmcore_nps.surveys",
)


# What ``crm customer list`` must not import: besides the above, the record classes that plugins
# name in their collections (``CollectionSpec(record_type="module:Class")``) and the shapes of
# reports, charts, the API and the web workspace: their attrs classes are not defined at all.
NOT_FOR_LIST = (
    *NOT_FOR_REGISTRATION,
    "rich",
    "crmcore_complaints.model",
    "crmcore_service.model",
    "crmcore_web.apikeys",
    "crmcore_web.users",
    "crmcore_web.sessions",
    "crmcore_nps.model",
    "crmcore_loyalty.records",
    "crmcore_followup.records",
    "crmcore_followup.handovers",
    "crmcore_grading.records",
    "crmcore.reportspecs",
    "crmcore.webspecs",
    "crmcore.charts",
    # no audit or encryption key configured: nothing for it to read
    "crmcore.encryption",
)


@pytest.mark.parametrize(
    ("args", "forbidden"),
    # a table written to a pipe is written without rich (crmcore.cli.plaintable)
    [
        (("--help",), (*NOT_FOR_HELP, "crmcore.reportspecs", "crmcore.webspecs")),
        (("customer", "list"), NOT_FOR_LIST),
    ],
)
def test_core_commands_do_not_import_what_plugins_load_on_use(tmp_path, args, forbidden) -> None:
    assert imported_by(tmp_path, args, forbidden) == []


class _Broken:
    @hookimpl
    def crm_cli_commands(self, cli):
        return [
            LazyCommand("broken", "crmcore_no_such_module.cli:group", "Never loads."),
            LazyCommand("notacommand", "crmcore.registry:LazyCommand", "Not click."),
        ]


@pytest.fixture
def broken_cli(monkeypatch):
    def with_broken(**kwargs):
        return make_plugin_manager(extra=[("brokenplugin", _Broken())], **kwargs)

    monkeypatch.setattr(cli_main, "make_plugin_manager", with_broken)
    monkeypatch.setenv("CRMCORE_PLUGINS", "storage_tinydb")
    monkeypatch.delenv("CRM_CONFIG", raising=False)


def test_a_lazy_command_whose_module_fails_is_one_line_and_exit_7(broken_cli, capsys) -> None:
    assert cli_main.run(["--help"]) == 0  # still listed; the rest of the CLI works
    assert "broken" in capsys.readouterr().out
    assert cli_main.run(["broken", "--help"]) == 7
    line = one_line_error(capsys.readouterr().err)
    assert "plugin 'brokenplugin'" in line and "'broken' could not be loaded" in line
    assert "ModuleNotFoundError" in line
    assert cli_main.run(["notacommand"]) == 7
    assert "is not a click command" in one_line_error(capsys.readouterr().err)


def test_a_plugin_returning_something_else_is_marked_failed() -> None:
    class Wrong:
        @hookimpl
        def crm_cli_commands(self, cli):
            return ["loyalty"]

    pm = make_plugin_manager(load_entry_points=False, extra=[("wrong", Wrong())])
    group = make_cli()
    cli_main.load_plugin_commands(group, pm)
    assert {i.name: i.status for i in pm.infos()}["wrong"] == "failed"
    assert "loyalty" not in group.list_commands(click.Context(group))


def test_lazy_and_eager_registrations_of_one_name_the_later_wins() -> None:
    group = make_cli()
    group.add_lazy("a", LazyCommand("customer", "x.y:z", "replaced"))
    assert "customer" not in group.commands and "customer" in group.lazy
    group.add_command(click.Command("customer"))
    assert "customer" in group.commands and "customer" not in group.lazy


def test_every_bundled_command_is_reachable(monkeypatch) -> None:
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    group, _pm = build([])
    names = group.list_commands(click.Context(group))
    assert {"loyalty", "referral", "grade", "complaints", "service"} <= set(group.lazy)
    for name in names:  # every lazy target imports and is a click command
        assert isinstance(group.get_command(click.Context(group), name), click.Command)
    assert group.lazy == {}


def test_every_lazy_command_is_listed_with_its_own_help_line(monkeypatch) -> None:
    """``crm --help`` lists a lazy command by the help its plugin registered: that line is
    the one the command itself gives once imported."""
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    group, _pm = build([])
    ctx = click.Context(group)
    listed = {name: spec.help for name, (_plugin, spec) in group.lazy.items()}
    assert {"reps", "callbacks", "handover", "followup", "tasks"} <= set(listed)
    for name, help_line in listed.items():
        command = group.get_command(ctx, name)
        assert command is not None
        for limit in (40, 80, 200):
            shown = click.Command(name, help=help_line).get_short_help_str(limit)
            assert shown == command.get_short_help_str(limit), name


def test_followup_extends_the_tasks_group_of_each_cli_it_loads_in(monkeypatch) -> None:
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    from crmcore.cli.tasks import tasks_group as core_tasks

    groups = []
    for _ in range(2):
        group, _pm = build([])
        tasks = group.get_command(click.Context(group), "tasks")
        assert isinstance(tasks, click.Group)
        assert "overdue-by-grade" in tasks.commands and "add" in tasks.commands
        assert any("--grade" in p.opts for p in tasks.commands["due"].params)
        groups.append(tasks)
    assert groups[0] is not groups[1] and groups[0].commands is not groups[1].commands
    assert "overdue-by-grade" not in core_tasks.commands  # the core's own group unchanged
    assert not any("--grade" in getattr(p, "opts", ()) for p in core_tasks.commands["due"].params)


def test_lazy_command_target_must_name_module_and_attribute() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        LazyCommand("x", "just_a_module", "help")


def test_option_values_spelt_out_in_the_cli_agree_with_their_modules() -> None:
    """The CLI spells out a few values its options need at import (so that ``crm --help``
    does not import the modules that own them); they must stay the same."""
    from crmcore import keyrotation, transfer
    from crmcore.cli import customers, encryption

    assert customers.CUSTOMER_KEYS == transfer.CUSTOMER_KEYS
    assert customers.INTERACTION_CUSTOMER_KEYS == transfer.INTERACTION_CUSTOMER_KEYS
    assert encryption.BATCH == keyrotation.BATCH


def test_a_command_loads_the_plugins_once(tmp_path, monkeypatch, capsys) -> None:
    """The CLI's plugin manager (made to list the commands) is the open CRM's too, when it
    was made for the same plugins: entry points are read and plugins registered once."""
    from crmcore import app

    made = []

    def counted(**kwargs):
        pm = make_plugin_manager(**kwargs)
        made.append(pm)
        return pm

    monkeypatch.setattr(cli_main, "make_plugin_manager", counted)
    monkeypatch.setattr(app, "make_plugin_manager", counted)
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli_main.run(["init"]) == 0
    made.clear()
    assert cli_main.run(["customer", "add", "--name", "Anna Berg"]) == 0
    assert len(made) == 1
    assert "added" in capsys.readouterr().out


def test_a_plugin_manager_for_other_plugins_is_not_reused(tmp_path) -> None:
    from crmcore.app import open_crm

    config = {"storage": {"backend": "memory"}}
    narrow = make_plugin_manager(allowed={"grading"})
    with_extra = make_plugin_manager(extra=[("x", object())])
    everything = make_plugin_manager()
    with open_crm(config, plugin_manager=narrow) as crm:
        assert crm.plugins is not narrow  # the configuration loads every installed plugin
    with open_crm(config, plugin_manager=with_extra) as crm:
        assert crm.plugins is not with_extra
    with open_crm(config, plugin_manager=everything) as crm:
        assert crm.plugins is everything
    with open_crm(config, plugins=["grading"], plugin_manager=narrow) as crm:
        assert crm.plugins is narrow


def test_a_customer_list_wider_than_the_output_is_folded_without_rich(tmp_path) -> None:
    """The table is wider than ``$COLUMNS``: ``crm customer list`` to a pipe folds it as
    rich would (the same bytes as rich's table of the same rows) without importing rich."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    env["COLUMNS"] = "70"
    crm = [sys.executable, "-m", "crmcore.cli.main"]
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run([*crm, "init"], check=True, **run)  # type: ignore[call-overload]
    for name, tags in (("Anna Berg-Lindqvist", ["vip", "wholesale"]), ("张三丰", [])):
        extra = [arg for tag in tags for arg in ("--tag", tag)]
        command = [*crm, "--as", "rep1", "customer", "add", "--name", name, *extra]
        subprocess.run([*command, "--email", "anna.berg@example.com"], check=True, **run)  # type: ignore[call-overload]
    listed = subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-c", MODULES_PROBE, "rich", "customer", "list"], check=True, **run
    )
    assert ast.literal_eval(listed.stderr.strip().splitlines()[-1]) == []
    rows = subprocess.run(  # type: ignore[call-overload]
        [*crm, "--json", "customer", "list"], check=True, **run
    )
    from rich.table import Table

    from crmcore.cli.console import SafeConsole

    table = Table(header_style="bold")
    for header in ("id", "name", "phone", "e-mail", "region", "owner", "tags"):
        table.add_column(header, overflow="fold")
    for row in json.loads(rows.stdout):
        cells = [row["id"], row["name"], "", row.get("email") or "", "", "", ", ".join(row["tags"])]
        table.add_row(*cells)
    out = io.StringIO()
    SafeConsole(
        file=out, width=70, highlight=False, soft_wrap=False, markup=False, emoji=False
    ).print(table)
    assert listed.stdout == out.getvalue()
    assert max(len(line) for line in listed.stdout.splitlines()) == 70  # folded to fit


GENERATED_PROBE = (
    "import linecache, sys; from crmcore.cli.main import run; code = run(sys.argv[1:]); "
    "print(sorted(k for k in linecache.cache if k.startswith('<')), file=sys.stderr); "
    "sys.exit(code)"
)


def test_customer_list_generates_no_structure_function_for_the_customers_it_reads(
    tmp_path,
) -> None:
    """The stored customers are read by the converter's record loader: the cattrs structure
    function it stands for is not compiled just to check that it is cattrs' own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 120}
    crm = [sys.executable, "-m", "crmcore.cli.main"]
    subprocess.run([*crm, "init"], check=True, **run)  # type: ignore[call-overload]
    subprocess.run([*crm, "customer", "add", "--name", "Anna Berg"], check=True, **run)  # type: ignore[call-overload]
    done = subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-c", GENERATED_PROBE, "customer", "list"], check=True, **run
    )
    assert "Anna Berg" in done.stdout
    generated = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    assert "<cattrs generated unstructure crmcore.entities.Customer>" in generated  # the table
    assert not [
        k for k in generated if k.startswith("<cattrs generated structure crmcore.entities.")
    ]
