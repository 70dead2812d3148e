"""The typed hook facade (``crmcore.hookcalls``): one method per hook (``crm.events`` for the
event hooks), no hook named in a string elsewhere, every call through pluggy so
``CRM_TRACE_HOOKS=1`` sees it."""

from __future__ import annotations

import inspect
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crmcore import Effects, ExtPatch, hookimpl
from crmcore.contracts import CONTRACT_SPECS
from crmcore.hookcalls import EventCalls, HookCalls
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
    """Event hooks return Effects and are fired by an actor through ``crm.events`` (the
    sweep, ``crm_tick``, returns Effects too but has no actor: ``CRM.tick`` calls it)."""
    annotations = getattr(spec, name).__annotations__
    return annotations.get("return") == "Effects | None" and "actor" in annotations


def event_specs() -> list[tuple[type, str]]:
    return [(spec, name) for spec, name in all_specs() if is_event(spec, name)]


def event_methods() -> list[str]:
    helpers = ("listened", "replayed_row")  # not hooks of their own
    return [n for n in vars(EventCalls) if not n.startswith("_") and n not in helpers]


def test_every_hook_that_is_not_an_event_has_a_facade_method():
    missing = [
        name
        for spec, name in all_specs()
        if not is_event(spec, name) and not callable(getattr(HookCalls, name, None))
    ]
    assert missing == []
    assert callable(HookCalls.crm_tick)  # the sweep is called, not emitted


#: A hook named in a string: called, emitted or asked about (across line breaks too).
BY_NAME = re.compile(
    r"""\b(call|flat|contributions|each|_first|emit|implemented)\(\s*["']crm_"""
    r"""|hook\.crm_|getattr\([^,]*hook, *["']crm_"""
)


def by_name(text: str) -> list[str]:
    """``line: code`` for every hook named in a string in ``text``."""
    lines = text.splitlines()
    found = []
    for match in BY_NAME.finditer(text):
        number = text.count("\n", 0, match.start()) + 1
        found.append(f"{number}: {lines[number - 1].strip()}")
    return found


def test_no_hook_is_called_emitted_or_asked_about_by_name_outside_the_facade():
    offenders = []
    for path in [*ROOT.glob("src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]:
        if path == FACADE:
            continue
        for hit in by_name(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}:{hit}")
    assert offenders == []


@pytest.mark.parametrize(
    "code",
    [
        'crm.emit("crm_complaint_closed", actor=a, ticket=t)',
        'self._kernel.emit(\n    "crm_customer_created", actor=a, customer=c\n)',
        "crm.plugins.implemented('crm_grade_changed')",
        'self.plugins.call(\n    "crm_tick", crm=crm\n)',
        "crm.plugins.hook.crm_tick(crm=crm)",
    ],
)
def test_the_grep_catches_every_way_of_naming_a_hook(code):
    assert by_name(f"x = 1\n{code}\n") != []


def test_the_grep_leaves_typed_calls_alone():
    code = "crm.events.complaint_closed(actor=a, ticket=t)\npm.crm_tick(crm=crm, now=n, worker=w)"
    assert by_name(code) == []


def test_every_event_hook_has_its_typed_method_with_the_specs_arguments():
    specs = event_specs()
    assert len(specs) >= 20  # the core's eight and the contracts'
    for spec, name in specs:
        method = getattr(EventCalls, name.removeprefix("crm_"), None)
        assert callable(method), f"{name} has no method on EventCalls"
        wanted = {k: v for k, v in getattr(spec, name).__annotations__.items() if k != "crm"}
        wanted["return"] = "Effects"
        params = inspect.signature(method).parameters
        assert all(
            p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n != "self"
        ), name
        assert method.__annotations__ == wanted, name
    assert sorted(event_methods()) == sorted(n.removeprefix("crm_") for _s, n in specs)


def test_every_event_method_emits_its_own_hook_with_its_arguments():
    fired: list[tuple[str, dict]] = []

    def emit(hook_name, *, actor, **kwargs):
        fired.append((hook_name, {"actor": actor, **kwargs}))
        return Effects()

    events = EventCalls(emit, lambda name: True)
    for method in event_methods():
        params = [n for n in inspect.signature(getattr(EventCalls, method)).parameters]
        kwargs = {n: object() for n in params if n != "self"}
        assert getattr(events, method)(**kwargs) == Effects()
        assert fired.pop() == (f"crm_{method}", kwargs)


def test_events_go_through_the_kernels_emit_and_apply_what_listeners_return(make_crm):
    class Listener:
        @hookimpl
        def crm_task_completed(self, crm, task, actor):
            return Effects(ext=[ExtPatch(task.customer_id, "listener", {"done": task.id})])

    crm = make_crm([("listener", Listener())])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    task = crm.tasks.create(
        actor="ann", kind="other", title="t", due_at=crm.now(), customer_id=customer.id
    )
    effects = crm.events.task_completed(actor="ann", task=task)
    assert effects.ext and crm.customers.get(customer.id).ext["listener"] == {"done": task.id}
    assert crm.events.task_created(actor="ann", task=task) == Effects()  # nobody listens


def test_listened_says_whether_a_plugin_implements_the_event(make_crm):
    class Listener:
        @hookimpl
        def crm_grade_changed(self, crm, customer, scheme, old, new, reason, actor):
            return None

    bare = make_crm()
    assert not bare.events.listened(bare.events.grade_changed)
    listening = make_crm([("listener", Listener())])
    assert listening.events.listened(listening.events.grade_changed)
    assert not listening.events.listened(listening.events.churn_risk_changed)
    with pytest.raises(TypeError, match="not an event"):
        listening.events.listened(bare.events.grade_changed)  # another CRM's
    with pytest.raises(TypeError, match="not an event"):
        listening.events.listened(print)  # type: ignore[arg-type]


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
