"""The typed hook facade (``crmcore.hookcalls``): one method per hook, no hook named in a
string elsewhere, every call through pluggy so ``CRM_TRACE_HOOKS=1`` sees it."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from crmcore import hookimpl
from crmcore.contracts import CONTRACT_SPECS
from crmcore.hookcalls import HookCalls
from crmcore.hookspecs import CrmHookSpecs
from crmcore.hooktrace import describe, install
from crmcore.plugins import PluginManager, make_plugin_manager
from crmcore.storage import CollectionSpec

ROOT = Path(__file__).resolve().parents[1]
FACADE = ROOT / "src" / "crmcore" / "hookcalls.py"
CRM = Path(sys.executable).with_name("crm")


def all_specs() -> list[tuple[type, str]]:
    return [
        (spec, n)
        for spec in (CrmHookSpecs, *CONTRACT_SPECS)
        for n in dir(spec)
        if n.startswith("crm_")
    ]


def is_event(spec: type, name: str) -> bool:
    """Event hooks return Effects and are fired by name through ``CRM.emit``."""
    return getattr(spec, name).__annotations__.get("return") == "Effects | None"


def test_every_hook_that_is_not_an_event_has_a_facade_method():
    missing = [
        name
        for spec, name in all_specs()
        if not is_event(spec, name) and not callable(getattr(HookCalls, name, None))
    ]
    assert missing == []
    assert callable(HookCalls.crm_tick)  # the sweep is called, not emitted


def test_no_hook_is_called_by_name_outside_the_facade():
    pattern = re.compile(
        r"""(call|flat|contributions|each|_first)\(\s*["']crm_"""
        r"""|hook\.crm_|getattr\([^,]*hook, *["']crm_"""
    )
    offenders = []
    for path in [*ROOT.glob("src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]:
        if path == FACADE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


class Collections:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("extra.things")]


def test_contributions_go_through_pluggy_one_plugin_at_a_time():
    stream = io.StringIO()
    pm = make_plugin_manager(load_entry_points=False, extra=[("extra", Collections())])
    install(pm._pm, stream)
    found = pm.crm_collections()
    assert ("extra", CollectionSpec("extra.things")) in found
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("hook crm_collections [extra] ") for line in lines)
    assert any(line.startswith("hook crm_collections [core] ") for line in lines)


def test_a_failing_cli_plugin_is_marked_failed_through_the_facade():
    class Broken:
        @hookimpl
        def crm_cli_commands(self, cli):
            raise RuntimeError("nope")

    pm = make_plugin_manager(load_entry_points=False, extra=[("broken", Broken())])
    import click

    pm.crm_cli_commands(cli=click.Group("crm"))
    assert pm.status("broken") == "failed"


def test_described_arguments_hide_customer_data():
    assert describe(None) == "None" and describe(3) == "3"
    assert describe("call li@example.com on +86 138 0013 8000").count("example.com") == 0

    class Record:
        id = "tkt_9"
        content = "my fridge broke, call 13800138000"

    assert describe(Record()) == "<Record tkt_9>"
    assert describe([1, 2]) == "<list of 2>"


def test_tracing_is_off_unless_asked():
    pm = PluginManager(trace=False)
    assert pm._pm._inner_hookexec.__name__ != "traced_hookexec"


def test_crm_trace_hooks_prints_every_hook_call_masked_on_stderr(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRM_", "CRMCORE_")) and k != "PYTHONPATH"
    }
    env.update(
        {
            "CRM_STORAGE_BACKEND": "tinydb",
            "CRM_STORAGE_LOCATION": str(tmp_path / "d"),
            "CRMCORE_PLUGINS": "storage_tinydb,followup",
            "CRM_TRACE_HOOKS": "1",
        }
    )
    done = subprocess.run(
        [
            str(CRM),
            "--json",
            "--as",
            "ann",
            "customer",
            "add",
            "--name",
            "Zhang Wei",
            "--phone",
            "+86 138 0013 8000",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    import json

    added = json.loads(done.stdout)  # stdout stays pure JSON
    lines = [line for line in done.stderr.splitlines() if line.startswith("hook ")]
    created = [line for line in lines if line.startswith("hook crm_customer_created ")]
    assert created and "followup" in created[0] and "ms " in created[0]
    assert f"<Customer {added['id']}>" in created[0] and "actor='ann'" in created[0]
    assert any(line.startswith("hook crm_collections [") for line in lines)
    assert "Zhang" not in done.stderr and "0013" not in done.stderr
    env.pop("CRM_TRACE_HOOKS")
    quiet = subprocess.run(
        [str(CRM), "--json", "customer", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quiet.returncode == 0 and "hook crm_" not in quiet.stderr


def test_contributions_keep_every_wrapper_around_each_plugin():
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def crm_collections(self):
            result = yield
            seen.append(f"wrapped {len(result)}")
            return result

    pm = make_plugin_manager(
        load_entry_points=False, extra=[("extra", Collections()), ("wrap", Wrapper())]
    )
    owners = {plugin for plugin, _spec in pm.crm_collections()}
    assert owners == {"core", "extra"}  # the wrapper contributes nothing of its own
    assert len(seen) == 2  # it wrapped each plugin's call
