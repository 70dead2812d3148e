"""The rule for reactions (docs/hooks.md): event hooks return Effects; the kernel refuses any
write made while an event hook is being called, and counts every emit toward the depth guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmcore import (
    Action,
    Effects,
    InteractionDraft,
    PluginError,
    RecordWrite,
    TaskDraft,
    TaskUpdate,
    hookimpl,
)
from crmcore.storage import CollectionSpec


def _writes(crm, customer):
    """Ways a plugin could write directly while it is being called."""
    notes = crm.collection("writer.notes")
    return {
        "raw": lambda: notes.insert({"id": "n1", "customer_id": customer.id}),
        "records": lambda: crm.records("writer.notes", dict).collection.update(
            "n0", {"text": "x"}, expected_version=1
        ),
        "api": lambda: crm.customers.update(customer.id, actor="p", notes="direct"),
        "log": lambda: crm.interactions.log(actor="p", customer_id=customer.id, kind="note"),
        "task": lambda: crm.tasks.create(actor="p", kind="other", title="t", due_at=crm.now()),
        "transaction": lambda: crm.transaction("p").__enter__(),
        "apply": lambda: crm.apply(
            Effects(tasks=[TaskDraft(kind="other", title="t", due_at=crm.now())]), actor="p"
        ),
        "emit": lambda: crm.events.customer_updated(actor="p", before=customer, after=customer),
    }


@pytest.mark.parametrize(
    "how", ["api", "log", "task", "transaction", "apply", "emit", "raw", "records"]
)
def test_an_event_hook_that_writes_directly_is_refused_and_nothing_is_kept(make_crm, how):
    class Writer:
        @hookimpl
        def crm_collections(self):
            return [CollectionSpec("writer.notes", customer_key="customer_id")]

        @hookimpl
        def crm_interaction_logged(self, crm, interaction, customer):
            _writes(crm, customer)[how]()

    crm = make_crm([("writer", Writer())])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    crm.collection("writer.notes").insert({"id": "n0", "customer_id": customer.id})  # outside: fine
    with pytest.raises(PluginError) as raised:
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="purchase", amount=5)
    assert raised.value.plugin == "writer"
    assert "directly from inside the event hook crm_interaction_logged" in str(raised.value)
    assert "return" in str(raised.value) and "Effects" in str(raised.value)
    assert crm.interactions.count() == 0  # the triggering write rolled back with it
    assert crm.tasks.count() == 0
    assert crm.customers.get(customer.id).notes == ""
    assert [d["id"] for d in crm.collection("writer.notes").find()] == ["n0"]
    assert "text" not in crm.collection("writer.notes").get("n0")


def test_crm_tick_is_held_to_the_rule_too(make_crm):
    class Sweeper:
        @hookimpl
        def crm_tick(self, crm, now, worker):
            crm.tasks.create(actor="p", kind="other", title="swept", due_at=now)

    crm = make_crm([("sweeper", Sweeper())])
    with pytest.raises(PluginError, match="event hook crm_tick"):
        crm.tick("w1")
    assert crm.tasks.count() == 0


def test_reacting_grants_permission_not_a_direct_write(make_crm):
    class Sneaky:
        @hookimpl
        def crm_customer_created(self, crm, customer):
            with crm.reacting():
                crm.customers.update(customer.id, actor="p", notes="x")

    crm = make_crm([("sneaky", Sneaky())])
    with pytest.raises(PluginError, match="directly from inside the event hook"):
        crm.customers.add(actor="ann", name="Li Lei")
    assert crm.customers.count() == 0


def test_an_action_writes_through_the_api_after_every_hook_has_returned(make_crm):
    seen = []

    class Tagger:
        @hookimpl
        def crm_customer_created(self, crm, customer, actor):
            return Effects.run(
                lambda: crm.customers.update(customer.id, actor=actor, tags=["new"]),
                "tag new customers",
            )

    class Reader:
        @hookimpl(trylast=True)
        def crm_customer_created(self, crm, customer):
            seen.append(crm.customers.get(customer.id).tags)  # the same snapshot as Tagger's

    updated = []

    class Watcher:
        @hookimpl
        def crm_customer_updated(self, crm, before, after):
            updated.append(after.tags)

    crm = make_crm([("tagger", Tagger()), ("reader", Reader()), ("watcher", Watcher())])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    assert seen == [()]
    assert customer.tags == ("new",)  # add re-reads the customer after effects
    assert updated == [("new",)]  # the action's own event fired and was applied


def test_an_action_may_return_effects_and_runs_inside_the_events_transaction(make_crm):
    inside = []

    class Plugin:
        @hookimpl
        def crm_customer_created(self, crm, customer, actor):
            def act():
                inside.append(crm.in_transaction())
                return Effects(
                    tasks=[
                        TaskDraft(
                            kind="first_contact",
                            title="call",
                            due_at=crm.now(),
                            customer_id=customer.id,
                        )
                    ]
                )

            return Effects(actions=[Action(act)])

        @hookimpl
        def crm_tick(self, crm, now):
            return Effects.run(lambda: inside.append(crm.in_transaction()))

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    assert [t.kind for t in crm.tasks.open_for(customer.id)] == ["first_contact"]
    report = crm.tick("w1")
    assert inside == [True, False]  # a sweep's action batches its own transactions
    assert report.tasks_created == 0


def test_an_interaction_draft_is_logged_and_fires_its_event(make_crm):
    logged = []

    class Plugin:
        @hookimpl
        def crm_task_completed(self, crm, task):
            return Effects(
                interactions=[
                    InteractionDraft(
                        task.customer_id,
                        "follow_up",
                        task.completed_at,
                        {"summary": task.outcome, "rep": "ann", "ext": {"p": {"task": task.id}}},
                    )
                ]
            )

        @hookimpl
        def crm_interaction_logged(self, crm, interaction):
            logged.append(interaction.kind)

    crm = make_crm([("p", Plugin())])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    task = crm.tasks.create(
        actor="ann", kind="follow_up", title="call", due_at=crm.now(), customer_id=customer.id
    )
    crm.clock.advance(timedelta(hours=1))
    crm.tasks.complete(task.id, actor="ann", outcome="reached")
    [interaction] = crm.interactions.for_customer(customer.id)
    assert (interaction.kind, interaction.summary, interaction.rep) == (
        "follow_up",
        "reached",
        "ann",
    )
    assert interaction.occurred_at == crm.now()
    assert interaction.ext == {"p": {"task": task.id}}
    assert logged == ["follow_up"]


def test_every_emit_counts_toward_the_depth_guard_however_it_was_reached(make_crm):
    """A reaction that writes through the API (an Action) and so triggers itself is stopped:
    the guard counts every emit on the thread, not only chains of Effects."""

    class Looper:
        @hookimpl
        def crm_task_created(self, crm, task, actor):
            return Effects.run(
                lambda: crm.tasks.create(
                    actor=actor, kind="other", title="again", due_at=task.due_at
                )
            )

    crm = make_crm([("looper", Looper())])
    with pytest.raises(PluginError, match="more than 8 levels deep"):
        crm.tasks.create(actor="ann", kind="other", title="start", due_at=crm.now())
    assert crm.tasks.count() == 0  # rolled back whole


def test_depth_is_counted_per_thread_and_released_after_an_error(make_crm):
    class Once:
        @hookimpl
        def crm_task_created(self, crm, task, actor):
            if task.kind == "other":
                return Effects.run(
                    lambda: crm.tasks.create(
                        actor=actor, kind="other", title="again", due_at=task.due_at
                    )
                )
            return None

    crm = make_crm([("once", Once())])
    with pytest.raises(PluginError):
        crm.tasks.create(actor="ann", kind="other", title="start", due_at=crm.now())
    assert getattr(crm.kernel.local, "emits", 0) == 0
    assert getattr(crm.kernel.local, "hook", None) is None
    crm.tasks.create(actor="ann", kind="callback", title="fine", due_at=crm.now())
    assert crm.tasks.count() == 1


def test_a_sweep_reports_what_its_actions_returned(make_crm):
    class Sweeper:
        @hookimpl
        def crm_collections(self):
            return [CollectionSpec("sweeper.log")]

        @hookimpl
        def crm_tick(self, crm, now, worker):
            def sweep():
                return Effects(
                    tasks=[TaskDraft(kind="other", title="due", due_at=now, dedupe_key="d")],
                    task_updates=[TaskUpdate(dedupe_key="d", priority=3)],
                    records=[RecordWrite("sweeper.log", {"id": crm.new_id("log_")})],
                )

            return Effects(
                actions=[Action(sweep)],
                records=[RecordWrite("sweeper.log", {"id": crm.new_id("log_")})],
            )

    crm = make_crm([("sweeper", Sweeper())])
    report = crm.tick("w1")
    assert (report.tasks_created, report.tasks_updated, report.records_written) == (1, 1, 2)
    assert crm.collection("sweeper.log").count() == 2


def test_an_action_that_fails_is_reported_naming_its_plugin_and_nothing_is_kept(make_crm):
    class Broken:
        @hookimpl
        def crm_customer_created(self, crm, customer, actor):
            return Effects.run(lambda: {}["missing"], "broken: look something up")

    crm = make_crm([("broken", Broken())])
    with pytest.raises(PluginError, match="plugin 'broken': a reaction failed: KeyError"):
        crm.customers.add(actor="ann", name="Li Lei")
    assert crm.customers.count() == 0


def test_combine_hands_a_single_answer_on_as_it_is():
    """Most events get one plugin's answer or none: no new Effects is built for them."""
    from crmcore.effects import NOTHING

    one = Effects(
        tasks=[TaskDraft(kind="other", title="t", due_at=datetime(2026, 1, 1, tzinfo=UTC))]
    )
    other = Effects.run(lambda: None, "x")
    assert Effects.combine([]) is NOTHING
    assert Effects.combine([None, NOTHING]) is NOTHING
    assert Effects.combine([None, one, NOTHING]) is one
    both = Effects.combine([one, None, other])
    assert both.tasks == one.tasks and both.actions == other.actions
    with pytest.raises(TypeError, match="not Effects"):
        Effects.combine([None, {"tasks": []}])
