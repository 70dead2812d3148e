"""Every core hook: documented in docs/hooks.md with its exact signature, and tested here.

The two guard tests at the bottom fail when a hook is added without docs or without a
``test_hook_<name>`` test in this module (datasette's practice).
"""

from __future__ import annotations

import inspect
import random
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import click
import pytest
from click.testing import CliRunner

from crmcore import (
    ApiParam,
    ApiRoute,
    Effects,
    ExtPatch,
    Kinds,
    RecordWrite,
    ReportSection,
    SettingsSpec,
    SummaryLine,
    TaskDraft,
    TaskUpdate,
    hookimpl,
    hookspec,
    i18n,
)
from crmcore.cli.main import load_plugin_commands, make_cli
from crmcore.errors import ValidationError
from crmcore.history import HistoryRow, replay
from crmcore.hookspecs import CrmHookSpecs
from crmcore.i18n import lazy
from crmcore.registry import (
    Badge,
    CustomerPanel,
    DashboardCard,
    NavEntry,
    Redirect,
    Render,
    TemplateFolder,
    TranslationCatalog,
    WebPage,
)
from crmcore.report import build_report
from crmcore.storage import CollectionSpec, IndexSpec, StorageBackend
from crmcore.storage.memory import MemoryStore
from crmcore.testing.audit import operations
from crmcore.transfer import export_customer_file

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def hook_names() -> list[str]:
    return sorted(n for n in dir(CrmHookSpecs) if n.startswith("crm_"))


def signature_text(name: str) -> str:
    sig = inspect.signature(getattr(CrmHookSpecs, name))
    params = [p for p in sig.parameters if p != "self"]
    return f"{name}({', '.join(params)}) -> {sig.return_annotation}"


def follow_up_for(customer_id: str, crm, days: int = 1) -> TaskDraft:
    return TaskDraft(
        kind="follow_up",
        title="follow up",
        customer_id=customer_id,
        due_at=crm.now() + timedelta(days=days),
        dedupe_key=f"fu:{customer_id}",
        source="probe",
    )


class Probe:
    """A plugin recording what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def record(self, name: str, **kwargs) -> None:
        self.calls.append((name, kwargs))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def test_hook_crm_addhooks(make_crm):
    class ExtraSpecs:
        @hookspec
        def crm_probe_event(self, crm, value: int, actor: str) -> Effects | None:
            """A plugin's own hook."""

    class Provider:
        @hookimpl
        def crm_addhooks(self, pluginmanager):
            pluginmanager.add_hookspecs(ExtraSpecs)

    class Listener:
        @hookimpl(optionalhook=True)
        def crm_probe_event(self, crm, value, actor):
            return Effects(ext=[ExtPatch(crm.customers.find()[0].id, "probe", {"v": value})])

    crm = make_crm([("provider", Provider()), ("listener", Listener())])
    assert crm.plugins.hook.crm_probe_event.spec is not None  # the provider declared it
    customer = crm.customers.add(actor="ann", name="Li Lei")
    crm.emit("crm_probe_event", actor="ann", value=7)
    assert crm.customers.get(customer.id).ext["probe"] == {"v": 7}
    # the provider alone: its hook exists and firing it with no implementer is fine
    alone = make_crm([("provider", Provider())])
    assert alone.emit("crm_probe_event", actor="ann", value=1) == Effects()
    # without the provider, the optional implementation still loads cleanly
    make_crm([("listener", Listener())])
    # an undeclared hook is a clear plugin error, not an AttributeError
    from crmcore.errors import PluginError

    with pytest.raises(PluginError, match="no hook named 'crm_nobody'"):
        make_crm().emit("crm_nobody", actor="ann")


def test_hook_crm_configure(make_crm):
    from crmcore.errors import ConfigError

    class NeedsTastings:
        @hookimpl
        def crm_configure(self, crm):
            if "tasting" not in crm.interaction_kinds:
                raise ConfigError(
                    "needy.kinds[0]: interaction kind 'tasting' is not declared "
                    "by any loaded plugin"
                )

    class Kinded:
        @hookimpl
        def crm_kinds(self):
            return Kinds(interactions=["tasting"])

    with pytest.raises(ConfigError, match=r"needy\.kinds\[0\]"):
        make_crm([("needy", NeedsTastings())])
    make_crm([("needy", NeedsTastings()), ("kinded", Kinded())])


def test_hook_crm_storage_backends(make_crm):
    opened = []

    class Backend:
        @hookimpl
        def crm_storage_backends(self):
            def factory(options):
                opened.append(options)
                return MemoryStore()

            return [StorageBackend("probe-store", factory, "for tests")]

    crm = make_crm(
        [("backend", Backend())],
        storage={"backend": "probe-store", "location": "here", "options": {"x": 1}},
    )
    assert opened[0].location == "here" and opened[0].options == {"x": 1}
    assert crm.customers.add(actor="ann", name="Li").id.startswith("cus_")


def test_hook_crm_collections(make_crm):
    class Declares:
        @hookimpl
        def crm_collections(self):
            return [
                CollectionSpec(
                    "declares.notes",
                    (IndexSpec([("key", 1)], unique=True, sparse=True),),
                    customer_key="customer_id",
                )
            ]

    crm = make_crm([("declares", Declares())])
    notes = crm.collection("declares.notes")
    notes.insert({"id": "n1", "key": "k", "customer_id": "c"})
    assert [i.name for i in notes.indexes()] == ["u_key"]
    from crmcore.errors import DuplicateKeyError

    with pytest.raises(DuplicateKeyError):
        notes.insert({"id": "n2", "key": "k"})
    assert "declares.notes" in {s.name for s in crm.collection_specs()}


def test_hook_crm_settings(make_crm):
    @attrs.frozen
    class ProbeSettings:
        days: int = 3

    class Configured:
        @hookimpl
        def crm_settings(self):
            return SettingsSpec("configured", ProbeSettings)

    assert (
        make_crm([("configured", Configured())], settings={"configured": {"days": 5}})
        .settings("configured")
        .days
        == 5
    )


def test_hook_crm_kinds(make_crm):
    from crmcore.errors import ValidationError

    class Kinded:
        @hookimpl
        def crm_kinds(self):
            return Kinds(interactions=["tasting"], tasks=["tasting_invite"])

    crm = make_crm([("kinded", Kinded())])
    customer = crm.customers.add(actor="ann", name="Li")
    crm.interactions.log(actor="ann", customer_id=customer.id, kind="tasting")
    crm.tasks.create(actor="ann", kind="tasting_invite", title="invite", due_at=crm.now())
    plain = make_crm()
    other = plain.customers.add(actor="ann", name="Li")
    with pytest.raises(ValidationError, match="unknown interaction kind 'tasting'"):
        plain.interactions.log(actor="ann", customer_id=other.id, kind="tasting")


def test_hook_crm_customer_created(make_crm):
    probe = Probe()

    class Plugin:
        @hookimpl
        def crm_customer_created(self, crm, customer, actor):
            probe.record("created", customer=customer, actor=actor)
            return Effects(
                tasks=[
                    TaskDraft(
                        kind="first_contact",
                        title="say hello",
                        customer_id=customer.id,
                        due_at=crm.now() + timedelta(days=7),
                    )
                ],
                ext=[ExtPatch(customer.id, "probe", {"seen": True})],
            )

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    assert probe.calls[0][1]["actor"] == "ann" and probe.calls[0][1]["customer"].id == customer.id
    assert customer.ext == {"probe": {"seen": True}}  # the returned customer has the patch
    assert [t.kind for t in crm.tasks.open_for(customer.id)] == ["first_contact"]


def test_hook_crm_customer_adding(make_crm):
    """Ext values given before the insert are stored with it (one write: version 1), merged
    over the caller's, and ``crm_customer_created`` sees them."""
    seen: list = []

    class Plugin:
        @hookimpl
        def crm_customer_adding(self, crm, customer, actor):
            seen.append(("adding", customer.ext, actor))
            return {"probe": {"code": "K7QX2M", "given": "plugin"}}

        @hookimpl
        def crm_customer_created(self, crm, customer, actor):
            seen.append(("created", customer.ext, actor))

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li", ext={"probe": {"given": "caller", "x": 1}})
    ext = {"probe": {"code": "K7QX2M", "given": "plugin", "x": 1}}
    assert customer.ext == ext and customer.version == 1
    stored = crm.customers.get(customer.id)
    assert stored.ext == ext and stored.version == 1  # written once, by the insert
    assert seen == [
        ("adding", {"probe": {"given": "caller", "x": 1}}, "ann"),
        ("created", ext, "ann"),
    ]
    assert len(crm.customers.find({"ext.probe.code": "K7QX2M"})) == 1


@pytest.mark.parametrize(
    "given, error",
    [
        ({"probe": "not a dict"}, "must return ext values by namespace"),
        (["probe"], "must return ext values by namespace"),
        ({"probe": {"bad": object()}}, None),  # not JSON: the ext validator refuses it
    ],
)
def test_customer_adding_bad_values_add_nothing(make_crm, given, error):
    from crmcore.errors import CrmError, PluginError

    class Plugin:
        @hookimpl
        def crm_customer_adding(self, crm, customer, actor):
            return given

    crm = make_crm([("p", Plugin())])
    with pytest.raises(CrmError) as raised:
        crm.customers.add(actor="ann", name="Li")
    if error is not None:
        assert isinstance(raised.value, PluginError) and raised.value.plugin == "p"
        assert error in str(raised.value)
    assert crm.customers.find({}) == []


def test_customer_adding_may_not_write(make_crm):
    from crmcore.errors import PluginError
    from crmcore.kernel import DirectWriteError

    class Plugin:
        @hookimpl
        def crm_customer_adding(self, crm, customer, actor):
            crm.customers.add(actor=actor, name="Sneaky")

    crm = make_crm([("p", Plugin())])
    with pytest.raises(PluginError, match="wrote directly from inside the event hook") as raised:
        crm.customers.add(actor="ann", name="Li")
    assert raised.value.plugin == "p" and isinstance(raised.value.__cause__, DirectWriteError)
    assert crm.customers.find({}) == []


def test_hook_crm_customer_updated(make_crm):
    probe = Probe()

    class Plugin:
        @hookimpl
        def crm_customer_updated(self, crm, before, after, actor):
            probe.record("updated", before=before, after=after)

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    crm.customers.update(customer.id, actor="bo", region="North")
    before, after = probe.calls[0][1]["before"], probe.calls[0][1]["after"]
    assert (before.region, after.region, after.updated_by) == (None, "North", "bo")
    crm.customers.update(customer.id, actor="bo", region="North")  # no change: no event
    assert len(probe.calls) == 1


def test_hook_crm_customers_merged(make_crm):
    probe = Probe()

    class Plugin:
        @hookimpl
        def crm_customers_merged(self, crm, kept, merged, actor):
            probe.record("merged", kept=kept.id, merged=merged.id, status=merged.status.value)

    crm = make_crm([("p", Plugin())])
    a = crm.customers.add(actor="ann", name="Li", phone="13800138000")
    b = crm.customers.add(actor="ann", name="Li L", phone="13800138000")
    crm.customers.merge(a.id, b.id, actor="ann")
    assert probe.calls == [("merged", {"kept": a.id, "merged": b.id, "status": "merged"})]


def test_hook_crm_customer_forgotten(make_crm):
    probe = Probe()

    class Plugin:
        @hookimpl
        def crm_customer_forgotten(self, crm, customer, actor):
            probe.record("forgotten", id=customer.id, erased_name=customer.name, actor=actor)

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    crm.customers.forget(customer.id, actor="dpo")
    assert probe.calls == [
        ("forgotten", {"id": customer.id, "erased_name": "(erased)", "actor": "dpo"})
    ]


def test_hook_crm_interaction_logged(make_crm):
    class Plugin:
        @hookimpl
        def crm_interaction_logged(self, crm, interaction, customer, actor):
            return Effects(
                tasks=[follow_up_for(customer.id, crm)],
                ext=[ExtPatch(customer.id, "probe", {"last": interaction.kind})],
            )

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    for kind in ("purchase", "visit", "visit"):
        crm.interactions.log(actor="ann", customer_id=customer.id, kind=kind)
    assert crm.customers.get(customer.id).ext["probe"] == {"last": "visit"}
    assert len(crm.tasks.open_for(customer.id)) == 1  # deduplicated by key


def test_hook_crm_interactions_replayed(make_crm):
    """A history import hands a folding plugin its rows at once; its Effects are applied, and
    ``crm.replay_at`` moves the clock to an event's time inside its actions."""
    seen: list[tuple[list[str], datetime]] = []

    class Plugin:
        @hookimpl
        def crm_interactions_replayed(self, crm, events, customers, actor):
            def act():
                with crm.replay_at(events[0].occurred_at):
                    seen.append(([e.kind for e in events], crm.now()))
                return Effects(ext=[ExtPatch(c, "probe", {"n": len(events)}) for c in customers])

            return Effects.run(act)

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    start = crm.now() - timedelta(days=30)
    rows = [
        HistoryRow(2 + n, customer.id, {"kind": kind, "occurred_at": start + timedelta(days=n)})
        for n, kind in enumerate(["visit", "purchase", "visit"])
    ]
    now = crm.now()
    replay(crm, rows, actor="ann")
    assert seen == [(["visit", "purchase", "visit"], start)]
    assert crm.now() == now
    assert crm.customers.get(customer.id).ext["probe"] == {"n": 3}


def test_hook_crm_replay_per_row(make_crm):
    """A customer a plugin names goes row by row, through ``crm_interaction_logged``."""
    per_row: list[str] = []
    batches: list[int] = []

    class Plugin:
        @hookimpl
        def crm_replay_per_row(self, crm, events, customers):
            return [e.customer_id for e in events if e.kind == "complaint"]

        @hookimpl
        def crm_interaction_logged(self, crm, interaction, customer, actor):
            per_row.append(interaction.kind)

        @hookimpl
        def crm_interactions_replayed(self, crm, events, customers, actor):
            batches.append(len(events))

    crm = make_crm([("p", Plugin())])
    quiet = crm.customers.add(actor="ann", name="Li")
    cross = crm.customers.add(actor="ann", name="Wang")
    start = crm.now() - timedelta(days=30)
    rows = [
        HistoryRow(2 + n, cid, {"kind": kind, "occurred_at": start + timedelta(days=n)})
        for n, (cid, kind) in enumerate(
            [(quiet.id, "visit"), (cross.id, "visit"), (cross.id, "complaint")]
        )
    ]
    replay(crm, rows, actor="ann")
    assert per_row == ["visit", "complaint"] and batches == [1]


def test_hook_crm_task_created(make_crm):
    probe = Probe()

    class Plugin:
        @hookimpl
        def crm_task_created(self, crm, task, actor):
            probe.record("task", kind=task.kind)
            if task.kind == "callback":  # a cascade: one task leads to another
                return Effects(
                    tasks=[TaskDraft(kind="other", title="prepare the call", due_at=task.due_at)]
                )
            return None

    crm = make_crm([("p", Plugin())])
    crm.tasks.create(actor="ann", kind="callback", title="call back", due_at=crm.now())
    assert probe.names() == ["task", "task"]
    assert sorted(t.kind for t in crm.tasks.find()) == ["callback", "other"]


def test_effects_that_loop_forever_are_stopped(make_crm):
    from crmcore.errors import PluginError

    class Looper:
        @hookimpl
        def crm_task_created(self, crm, task, actor):
            return Effects(tasks=[TaskDraft(kind="other", title="again", due_at=task.due_at)])

    crm = make_crm([("looper", Looper())])
    with pytest.raises(PluginError, match="more than 8 levels deep"):
        crm.tasks.create(actor="ann", kind="other", title="start", due_at=crm.now())
    assert crm.tasks.count() == 0  # rolled back whole


def test_hook_crm_task_completed(make_crm):
    class Plugin:
        @hookimpl
        def crm_task_completed(self, crm, task, actor):
            if task.kind == "follow_up":
                return Effects(
                    tasks=[
                        TaskDraft(
                            kind="follow_up",
                            title="next",
                            due_at=crm.now() + timedelta(days=7),
                            customer_id=task.customer_id,
                            dedupe_key=task.dedupe_key,
                        )
                    ]
                )
            return None

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    first = crm.tasks.create(
        actor="ann",
        dedupe_key=f"fu:{customer.id}",
        **attrs.asdict(
            follow_up_for(customer.id, crm),
            recurse=False,
            filter=lambda a, _v: a.name not in ("dedupe_key",),
        ),
    )
    crm.tasks.complete(first.id, actor="ann", outcome="reached")
    (nxt,) = crm.tasks.open_for(customer.id)
    assert nxt.id != first.id and nxt.due_at == crm.now() + timedelta(days=7)


def test_hook_crm_task_cancelled(make_crm):
    seen = []

    class Plugin:
        @hookimpl
        def crm_task_cancelled(self, crm, task, actor):
            seen.append((task.kind, task.outcome, actor))
            if task.kind == "callback":  # hand a cancelled callback to someone else's queue
                return Effects(
                    tasks=[
                        TaskDraft(
                            kind="other",
                            title="call instead",
                            due_at=task.due_at,
                            customer_id=task.customer_id,
                        )
                    ]
                )
            if task.kind == "other":  # effects cancelling a task fire the hook as well
                return Effects(
                    task_updates=[TaskUpdate(dedupe_key="chain", cancel=True, reason="superseded")]
                )
            return None

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    call = crm.tasks.create(
        actor="ann", kind="callback", title="call", due_at=crm.now(), customer_id=customer.id
    )
    crm.tasks.cancel(call.id, actor="bo", reason="customer asked")
    assert seen == [("callback", "customer asked", "bo")]
    (instead,) = crm.tasks.open_for(customer.id)
    assert instead.kind == "other"

    chained = crm.tasks.create(
        actor="ann", kind="follow_up", title="x", due_at=crm.now(), dedupe_key="chain"
    )
    crm.tasks.cancel(instead.id, actor="ann")
    assert seen[1:] == [("other", "cancelled", "ann"), ("follow_up", "superseded", "ann")]
    assert crm.tasks.get(chained.id).status.value == "cancelled"

    with pytest.raises(ValidationError, match="only open tasks change"):
        crm.tasks.cancel(chained.id, actor="ann")  # already cancelled: nothing fires
    assert len(seen) == 3

    other = crm.customers.add(actor="ann", name="Li")
    crm.tasks.create(
        actor="ann",
        kind="follow_up",
        title="y",
        due_at=crm.now(),
        customer_id=other.id,
        dedupe_key=f"fu:{other.id}",
    )
    crm.customers.merge(customer.id, other.id, actor="ann")
    assert seen[3][0] == "follow_up" and seen[3][2] == "ann"


def test_hook_crm_tick(make_crm, clock):
    class Plugin:
        @hookimpl
        def crm_tick(self, crm, now, worker):
            return Effects(
                tasks=[
                    TaskDraft(
                        kind="other",
                        title=f"daily {now:%Y-%m-%d}",
                        due_at=now,
                        dedupe_key=f"daily:{now:%Y-%m-%d}",
                    )
                ],
                task_updates=[TaskUpdate(dedupe_key="old", cancel=True, reason="swept")],
            )

    crm = make_crm([("p", Plugin())])
    crm.tasks.create(actor="ann", kind="other", title="old", due_at=clock.now(), dedupe_key="old")
    reports = [crm.tick("w1"), crm.tick("w2")]
    assert [r.tasks_created for r in reports] == [1, 0]
    clock.advance(days=1)
    crm.tick("w1")
    assert sorted(t.title for t in crm.tasks.find({"status": "open"})) == [
        "daily 2026-01-05",
        "daily 2026-01-06",
    ]
    assert crm.tasks.find({"title": "old"})[0].outcome == "swept"


SECURE = {
    "enforce": True,
    "actors": {
        "ann": {"role": "agent", "team": "north"},
        "lee": {"role": "shift_lead", "team": "north"},
    },
}


def test_hook_crm_actor(make_crm):
    from crmcore.errors import PermissionDenied
    from crmcore.security import Actor, Role

    class Roster:
        @hookimpl
        def crm_actor(self, crm, name):
            return Actor(name, Role.AGENT, team="south") if name.startswith("rep-") else None

    crm = make_crm([("roster", Roster())], settings={"security": SECURE})
    assert crm.actor("rep-1") == Actor("rep-1", Role.AGENT, "south")
    assert crm.actor("ann").role is Role.AGENT  # the roster says None: config answers
    mine = crm.customers.add(actor="rep-1", name="Li", owner="rep-1")
    with pytest.raises(PermissionDenied, match="rep-2 \\(agent\\) may not update customer"):
        crm.customers.update(mine.id, actor="rep-2", region="North")


def test_hook_crm_actor_names(make_crm):
    from crmcore import ReportWindow
    from crmcore.security import Actor, Role

    class Roster:
        @hookimpl
        def crm_actor(self, crm, name):
            return Actor(name, Role.AGENT, team="south") if name.startswith("rep-") else None

    class Listed(Roster):
        @hookimpl
        def crm_actor_names(self, crm):
            return ["rep-1", "rep-2"]

    crm = make_crm([("roster", Listed())], settings={"security": SECURE})
    assert crm.plugins.crm_actor_names(crm=crm) == ["rep-1", "rep-2"]
    assert ReportWindow(team="south").reps(crm) == ["rep-1", "rep-2"]
    # a plugin that describes actors without listing them: the names cannot be complete
    crm = make_crm([("roster", Roster())], settings={"security": SECURE})
    assert crm.plugins.crm_actor_names(crm=crm) is None
    assert ReportWindow(team="south").reps(crm) is None


def test_hook_crm_authorize(make_crm):
    from crmcore.errors import PermissionDenied

    calls = []

    class NoWeekendRefunds:
        @hookimpl
        def crm_authorize(self, crm, actor, action, resource):
            calls.append((actor.name, action, resource.kind))
            if action == "interaction.create" and actor.role.value == "agent":
                return False
            return None  # the default policy decides the rest

    crm = make_crm([("policy", NoWeekendRefunds())], settings={"security": SECURE})
    customer = crm.customers.add(actor="ann", name="Li", owner="ann")
    with pytest.raises(PermissionDenied, match="refused by a plugin's policy"):
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="visit")
    assert ("ann", "interaction.create", "interaction") in calls
    crm.interactions.log(actor="lee", customer_id=customer.id, kind="visit")
    (denied,) = operations(crm, op="denied")
    assert denied["actor"] == "ann" and denied["diff"]["action"] == "interaction.create"


def test_hook_crm_cli_commands(make_crm):
    class Plugin:
        @hookimpl
        def crm_cli_commands(self, cli):
            @cli.command("hello")
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

    from crmcore.plugins import PluginManager

    pm = PluginManager()
    pm.register(Plugin(), "hello")

    class Broken:
        @hookimpl
        def crm_cli_commands(self, cli):
            raise RuntimeError("cannot add commands")

    pm.register(Broken(), "broken")
    group = make_cli()
    load_plugin_commands(group, pm)
    result = CliRunner().invoke(group, ["hello"], obj=None)
    assert result.output == "hello from a plugin\n"
    assert {i.name: i.status for i in pm.infos()}["broken"] == "failed"


def test_hook_crm_report_sections(make_crm):
    class Plugin:
        @hookimpl
        def crm_report_sections(self, crm, now):
            return [ReportSection("Probe", ("k", "v"), [("a", 1)], chart={"a": 1}, order=50)]

    crm = make_crm([("p", Plugin())])
    titles = [s.title for s in build_report(crm)]
    assert "Probe" in titles and titles.index("Probe") > titles.index("Customers and contacts")


def test_hook_crm_customer_summary(make_crm):
    class Plugin:
        @hookimpl
        def crm_customer_summary(self, crm, customer):
            return [SummaryLine("grade", f"B: {customer.name} is promising")]

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    lines = crm.plugins.flat("crm_customer_summary", crm=crm, customer=customer)
    assert lines == [SummaryLine("grade", "B: Li is promising")]


def test_hook_crm_simulate(make_crm):
    seen = []

    class Plugin:
        @hookimpl
        def crm_simulate(self, crm, now, rng, actor):
            seen.append((now, rng.random(), actor))

    crm = make_crm([("p", Plugin())])
    crm.plugins.call("crm_simulate", crm=crm, now=crm.now(), rng=random.Random(1), actor="sim")
    assert seen == [(crm.now(), random.Random(1).random(), "sim")]


def test_hook_crm_api_routes(make_crm):
    def hello(request):
        return {"hello": request.path["name"]}

    class Plugin:
        @hookimpl
        def crm_api_routes(self, crm):
            return [
                ApiRoute(
                    "get",
                    "/p/hello/{name}",
                    hello,
                    "Say hello",
                    query=[ApiParam("loud", "shout", type="boolean")],
                )
            ]

    crm = make_crm([("p", Plugin())])
    [route] = crm.plugins.flat("crm_api_routes", crm=crm)
    assert (route.method, route.path, route.query[0].type) == ("GET", "/p/hello/{name}", "boolean")
    with pytest.raises(ValueError, match="method"):
        ApiRoute("FETCH", "/p", hello, "bad method")
    with pytest.raises(ValueError, match="path"):
        ApiRoute("GET", "p/x", hello, "no leading slash")


def test_hook_crm_customer_records(make_crm):
    class Plugin:
        @hookimpl
        def crm_collections(self):
            return [CollectionSpec("p.notes", customer_key="customer_id")]

        @hookimpl
        def crm_customer_records(self, crm, customer):
            return {"p": {"external_id": f"ext-{customer.name}"}}

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li")
    crm.apply(
        Effects(
            records=[
                RecordWrite(
                    "p.notes", {"id": "n1", "customer_id": customer.id, "text": "likes tea"}
                )
            ]
        ),
        actor="ann",
    )
    held = export_customer_file(crm, customer.id)
    assert held["plugins"] == {"p": {"external_id": "ext-Li"}}
    assert held["collections"]["p.notes"][0]["text"] == "likes tea"


def test_hook_crm_config_warnings(make_crm, crm_cli):
    class Plugin:
        @hookimpl
        def crm_config_warnings(self, crm):
            return [f"p: the rota is empty in {crm.config.core.timezone}"]

    crm = make_crm([("p", Plugin())])
    assert crm.plugins.flat("crm_config_warnings", crm=crm) == ["p: the rota is empty in UTC"]
    # crm check prints every plugin's warnings on stderr, one line each, and still exits 0
    # (with complaints' default ladder and no rota, it has two; see tests/stacks for more)
    cli = crm_cli("complaints")
    code, out, err = cli("--json", "check")
    assert code == 0, err
    assert out.lstrip().startswith("[")
    warnings = err.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: complaints: ") for w in warnings)


# -- guards ------------------------------------------------------------------------------


def test_hook_crm_demo_ready(make_crm):
    class Plugin:
        @hookimpl
        def crm_demo_ready(self, crm, config_path):
            return [f"try: crm --config {config_path} p hello"]

    crm = make_crm([("p", Plugin())])
    assert crm.plugins.flat("crm_demo_ready", crm=crm, config_path="/d/crm.toml") == [
        "try: crm --config /d/crm.toml p hello"
    ]


def test_hook_crm_quiet_until(make_crm):
    class Night:
        @hookimpl
        def crm_quiet_until(self, crm, customer, now):
            return now.replace(hour=8, minute=0) if now.hour < 8 else None

    nobody = make_crm()
    customer = nobody.customers.add(actor="ann", name="Li")
    assert nobody.plugins.call(
        "crm_quiet_until", crm=nobody, customer=customer, now=nobody.now()
    ) == [None]
    crm = make_crm([("night", Night())])
    early = crm.now().replace(hour=3)
    assert crm.plugins.call("crm_quiet_until", crm=crm, customer=customer, now=early) == [
        early.replace(hour=8, minute=0)
    ]


def _page(request):
    return Render("p/page.html", {"who": request.actor})


def test_hook_crm_web_pages(make_crm):
    class Plugin:
        @hookimpl
        def crm_web_pages(self, crm):
            return [WebPage("/p/things/{thing_id}", _page, methods=["get", "post"])]

    crm = make_crm([("p", Plugin())])
    [(plugin, page)] = crm.plugins.contributions("crm_web_pages", crm=crm)
    assert (plugin, page.methods, page.path) == ("p", ("GET", "POST"), "/p/things/{thing_id}")
    with pytest.raises(ValueError, match="path"):
        WebPage("p/no-slash", _page)
    with pytest.raises(ValueError, match="redirect"):
        Redirect("https://elsewhere.example/")
    assert Redirect("/p/things/1", notice="done").location == "/p/things/1"


def test_hook_crm_customer_panels(make_crm):
    class Plugin:
        @hookimpl
        def crm_customer_panels(self, crm):
            return [
                CustomerPanel(
                    "p",
                    lazy("Things"),
                    lambda request, customer: Render("p/panel.html", {"id": customer.id}),
                )
            ]

    crm = make_crm([("p", Plugin())])
    [panel] = crm.plugins.flat("crm_customer_panels", crm=crm)
    customer = crm.customers.add(actor="ann", name="Li")
    assert panel.render(None, customer).context == {"id": customer.id}
    assert str(panel.title) == "Things"


def test_hook_crm_dashboard_cards(make_crm):
    class Plugin:
        @hookimpl
        def crm_dashboard_cards(self, crm):
            return [DashboardCard("p", "Things", lambda request: None, order=5)]

    crm = make_crm([("p", Plugin())])
    [card] = crm.plugins.flat("crm_dashboard_cards", crm=crm)
    assert (card.name, card.order, card.render(None)) == ("p", 5, None)


def test_hook_crm_nav_entries(make_crm):
    class Plugin:
        @hookimpl
        def crm_nav_entries(self, crm):
            return [NavEntry("/p", lazy("Things"), roles=["shift_lead"])]

    crm = make_crm([("p", Plugin())])
    [entry] = crm.plugins.flat("crm_nav_entries", crm=crm)
    assert (entry.path, entry.roles) == ("/p", ("shift_lead",))


def test_hook_crm_customer_badges(make_crm):
    class Plugin:
        @hookimpl
        def crm_customer_badges(self, crm, customer):
            return [Badge("Grade", customer.ext.get("p", {}).get("grade", "C"), rank=3)]

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li", ext={"p": {"grade": "A"}})
    assert crm.plugins.flat("crm_customer_badges", crm=crm, customer=customer) == [
        Badge("Grade", "A", rank=3)
    ]


def test_hook_crm_customers_badges(make_crm):
    """A plugin with the batch hook is asked once for a page's customers (and not per
    customer); a plugin with only ``crm_customer_badges`` is still asked per customer."""
    asked: list[tuple[str, int]] = []

    class Batch:
        @hookimpl
        def crm_customer_badges(self, crm, customer):
            asked.append(("batch, one", 1))
            return [Badge("Grade", "?", rank=3)]

        @hookimpl
        def crm_customers_badges(self, crm, customers):
            asked.append(("batch", len(customers)))
            return {c.id: [Badge("Grade", c.ext["p"]["grade"], rank=3)] for c in customers}

    class Single:
        @hookimpl
        def crm_customer_badges(self, crm, customer):
            asked.append(("single", 1))
            return [Badge("Tier", "gold", rank=5)]

    crm = make_crm([("p", Batch()), ("q", Single())])
    li = crm.customers.add(actor="ann", name="Li", ext={"p": {"grade": "A"}})
    wu = crm.customers.add(actor="ann", name="Wu", ext={"p": {"grade": "B"}})
    marks = crm.plugins.crm_customers_badges(crm=crm, customers=[li, wu])
    assert marks == {
        li.id: [Badge("Grade", "A", rank=3), Badge("Tier", "gold", rank=5)],
        wu.id: [Badge("Grade", "B", rank=3), Badge("Tier", "gold", rank=5)],
    }
    assert sorted(asked) == [("batch", 2), ("single", 1), ("single", 1)]


def test_hook_crm_web_templates(make_crm, tmp_path):
    class Plugin:
        @hookimpl
        def crm_web_templates(self):
            return [TemplateFolder(tmp_path)]

    crm = make_crm([("p", Plugin())])
    assert crm.plugins.contributions("crm_web_templates") == [("p", TemplateFolder(tmp_path))]


def test_hook_crm_translations(make_crm, tmp_path):
    po = tmp_path / "zh_CN" / "LC_MESSAGES" / "p.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Things"\nmsgstr "东西"\n',
        "utf-8",
    )

    class Plugin:
        @hookimpl
        def crm_translations(self):
            return [TranslationCatalog(tmp_path, "p")]

    crm = make_crm([("p", Plugin())])
    assert i18n.gettext("zh_CN", crm.plugins)("Things") == "东西"
    with i18n.activate(i18n.translations("zh_CN", crm.plugins)):
        assert str(lazy("Things")) == "东西"


def test_every_hook_has_a_test():
    module = sys.modules[__name__]
    missing = [n for n in hook_names() if not hasattr(module, f"test_hook_{n}")]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_every_hook_is_documented_with_its_exact_signature():
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(crm_\w+)\(", text, flags=re.M))
    assert documented == set(hook_names()), "docs/hooks.md and hookspecs.py disagree"
    for name in hook_names():
        assert f"### `{signature_text(name)}`" in text, f"signature of {name} in docs/hooks.md"


def test_every_hook_has_a_docstring():
    for name in hook_names():
        assert (getattr(CrmHookSpecs, name).__doc__ or "").strip(), name
