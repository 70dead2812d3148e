"""The ticket status machine, walked along every path (DOMAIN §5)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from crmcore_complaints.api import Complaints, callback_key
from crmcore_complaints.model import Status, Ticket

from crmcore import (
    ConflictError,
    Effects,
    NotFoundError,
    PermissionDenied,
    Priority,
    TaskDraft,
    ValidationError,
    hookimpl,
)

PATH = ["registered", "valid", "dispatched", "in_progress", "resolved", "closed"]


def walk(api: Complaints, customer_id: str, to: str, **open_kwargs) -> Ticket:
    """A ticket taken along the happy path up to status ``to``."""
    fields = {
        "content": "the kettle leaks",
        "category": "product_quality",
        "claim": "compensation",
        "channel": "phone",
        **open_kwargs,
    }
    ticket = api.open(actor="ann", customer_id=customer_id, **fields)
    steps = {
        "valid": lambda t: api.judge(t, actor="ann", valid=True),
        "dispatched": lambda t: api.dispatch(t, actor="dana", handler="hu"),
        "in_progress": lambda t: api.respond(t, actor="hu", message="we are on it"),
        "resolved": lambda t: api.resolve(
            api.approve(
                api.propose(t, actor="hu", solution="replace it", compensation=30), actor="mgr"
            ),
            actor="hu",
            cause="Defective batch",
        ),
        "closed": lambda t: api.close(t, actor="ann"),
    }
    for status in PATH[1 : PATH.index(to) + 1]:
        ticket = steps[status](ticket)
    assert ticket.status == to
    return ticket


def test_happy_path_end_to_end(setup, customer_id, recorder, clock):
    crm, api = setup()
    cid = customer_id(crm)
    ticket = api.open(
        actor="ann",
        customer_id=cid,
        content="the kettle leaks",
        category="product_quality",
        claim="compensation",
        emotions=["angry"],
        channel="phone",
        complainant="Li Wei",
        contact="+86 138 0013 8000",
    )
    assert (ticket.status, ticket.owner, ticket.registered_by) == ("registered", "ann", "ann")
    logged = crm.interactions.for_customer(cid, kinds=["complaint"])
    assert [(i.ref, i.id) for i in logged] == [(ticket.id, ticket.interaction_id)]
    assert crm.records("complaints.tickets", Ticket).count() == 1  # no auto-registered twin

    clock.advance(minutes=30)
    ticket = api.judge(ticket, actor="ann", valid=True, department="customer_service")
    assert ticket.first_response_at == clock.now()
    ticket = api.dispatch(ticket, actor="dana", handler="hu")
    assert (ticket.status, ticket.dispatched_by, ticket.department) == (
        "dispatched",
        "dana",
        "customer_service",
    )
    ticket = api.chase(ticket, actor="dana", note="any news?")
    ticket = api.respond(ticket, actor="hu", message="we will replace it")
    assert ticket.status == "in_progress"
    ticket = api.propose(ticket, actor="hu", solution="replace the kettle", compensation=30)
    approval = crm.tasks.open_by_key(f"complaint-approval:{ticket.id}:1")
    assert approval is not None and approval.kind == "complaint"
    ticket = api.approve(ticket, actor="mgr")
    assert crm.tasks.get(approval.id).status.value == "done"
    ticket = api.resolve(ticket, actor="hu", cause="Defective Batch")
    assert (ticket.status, ticket.compensation, ticket.cause) == ("resolved", 30, "defective_batch")
    assert ticket.resolution == "replace the kettle"
    clock.advance(hours=2)
    ticket = api.close(ticket, actor="ann")
    assert ticket.status == "closed" and ticket.closed_at == clock.now()

    callback = crm.tasks.open_by_key(callback_key(ticket.id))
    assert callback is not None
    assert (callback.kind, callback.ref, callback.assignee) == ("callback", ticket.id, "ann")
    assert callback.due_at == ticket.closed_at + timedelta(hours=24)

    ticket = api.record_callback(ticket, actor="ann", score=5, note="happy")
    assert (ticket.satisfaction, ticket.satisfied, ticket.status) == (5, True, "closed")
    assert crm.tasks.get(callback.id).status.value == "done"

    actions = [t.action for t in api.history(ticket.id)]
    assert actions == [
        "registered",
        "judged",
        "dispatched",
        "chased",
        "responded",
        "proposed",
        "approved",
        "resolved",
        "closed",
        "callback",
    ]
    changes = [(t.from_status, t.to_status) for t in api.history(ticket.id) if t.to_status]
    assert changes == [
        (None, "registered"),
        ("registered", "valid"),
        ("valid", "dispatched"),
        ("dispatched", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
    ]
    hooks = [name for name, _kw in recorder.events]
    assert hooks == ["registered", "resolved", "closed"]
    resolved = recorder.named("resolved")[0]["ticket"]
    # the contract's minimum ticket surface for other plugins
    for name in (
        "id",
        "customer_id",
        "category",
        "status",
        "owner",
        "claim",
        "priority",
        "compensation",
        "satisfaction",
    ):
        assert hasattr(resolved, name)
    assert resolved.status == "resolved" and resolved.claim == "compensation"


def test_invalid_complaint_is_closed_with_the_explanation(setup, customer_id, recorder):
    crm, api = setup()
    ticket = api.open(
        actor="ann", customer_id=customer_id(crm), content="price too high", category="price"
    )
    with pytest.raises(ValidationError, match="explanation"):
        api.judge(ticket, actor="ann", valid=False)
    assert api.get(ticket.id).version == ticket.version  # nothing written
    closed = api.judge(
        ticket,
        actor="ann",
        valid=False,
        explanation="The price is the published list price; we explained it.",
    )
    assert (closed.status, closed.validity) == ("closed", "invalid")
    assert closed.explanation.startswith("The price is")
    assert closed.first_response_at is not None and closed.closed_by == "ann"
    assert [n for n, _ in recorder.events] == ["registered", "closed"]
    assert crm.tasks.open_by_key(callback_key(ticket.id)) is not None
    # the customer disagrees: reopening sends it back to be judged again
    again = api.reopen(closed, actor="ann", reason="customer insists")
    assert (again.status, again.validity, again.cycle) == ("registered", None, 1)
    assert crm.tasks.open_by_key(callback_key(ticket.id)) is None  # callback cancelled


ALL_ACTIONS = {
    "judge": lambda api, t: api.judge(t, actor="x", valid=True),
    "dispatch": lambda api, t: api.dispatch(t, actor="x"),
    "respond": lambda api, t: api.respond(t, actor="x", message="hello"),
    "chase": lambda api, t: api.chase(t, actor="x"),
    "propose": lambda api, t: api.propose(t, actor="x", solution="s"),
    "resolve": lambda api, t: api.resolve(t, actor="x", resolution="r"),
    "close": lambda api, t: api.close(t, actor="x"),
    "reopen": lambda api, t: api.reopen(t, actor="x", reason="r"),
    "wait": lambda api, t: api.wait_on_customer(t, actor="x"),
}
ALLOWED = {
    "registered": {"judge", "respond", "wait"},
    "valid": {"dispatch", "respond", "wait"},
    "dispatched": {"dispatch", "respond", "chase", "propose", "wait"},
    "in_progress": {"dispatch", "respond", "chase", "propose", "resolve", "wait"},
    "resolved": {"close", "reopen"},
    "closed": {"reopen"},
}


@pytest.mark.parametrize("status", PATH)
@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_illegal_transitions_are_refused_naming_the_status(setup, customer_id, status, action):
    crm, api = setup({"require_approval": False})
    ticket = walk(api, customer_id(crm), status)
    if action in ALLOWED[status]:
        ALL_ACTIONS[action](api, ticket)  # accepted
        return
    with pytest.raises(ValidationError) as caught:
        ALL_ACTIONS[action](api, ticket)
    assert f"ticket {ticket.id} is {status}: cannot {action}" in str(caught.value)
    assert api.get(ticket.id).version == ticket.version  # nothing written


def test_two_agents_resolving_one_ticket_at_once(setup, customer_id, recorder):
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "in_progress")
    ticket = api.approve(api.propose(ticket, actor="hu", solution="refund"), actor="mgr")
    seen_by_a, seen_by_b = api.get(ticket.id), api.get(ticket.id)
    api.resolve(seen_by_a, actor="agent-a")
    with pytest.raises(ConflictError) as caught:
        api.resolve(seen_by_b, actor="agent-b")
    assert ticket.id in str(caught.value) and "resolved" in str(caught.value)
    stored = api.get(ticket.id)
    assert stored.resolved_by == "agent-a"
    assert [t.actor for t in api.history(ticket.id) if t.action == "resolved"] == ["agent-a"]
    assert len(recorder.named("resolved")) == 1
    # reading again and retrying gives the clear status message instead
    with pytest.raises(ValidationError, match="is resolved: cannot resolve"):
        api.resolve(ticket.id, actor="agent-b")


def test_agents_in_threads_resolve_once(setup, customer_id, recorder):
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "in_progress")
    ticket = api.approve(api.propose(ticket, actor="hu", solution="refund"), actor="mgr")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def agent(name: str) -> None:
        read = api.get(ticket.id)
        barrier.wait()
        try:
            api.resolve(read, actor=name)
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=agent, args=(f"a{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert len(recorder.named("resolved")) == 1


def test_a_stale_change_of_any_kind_conflicts(setup, customer_id):
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "dispatched")
    api.chase(ticket.id, actor="dana")
    with pytest.raises(ConflictError, match=ticket.id):
        api.respond(ticket, actor="hu", message="stale copy")


@pytest.mark.parametrize(
    ("score", "flag", "reopens"),
    [
        (1, None, True),
        (2, None, True),
        (3, None, False),
        (5, None, False),
        (None, False, True),
        (4, False, True),
        (None, True, False),
        (2, True, True),
    ],
)
def test_callback_answer_boundaries(setup, customer_id, recorder, score, flag, reopens):
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "closed")
    after = api.record_callback(ticket, actor="ann", score=score, satisfied=flag)
    assert after.satisfied is (not reopens)
    assert after.satisfaction == score
    assert after.status == ("in_progress" if reopens else "closed")
    assert len(recorder.named("reopened")) == int(reopens)
    assert crm.tasks.open_by_key(callback_key(ticket.id)) is None


def test_followup_callback_interaction_reopens(setup, customer_id, recorder, clock):
    """The followup contract: a "callback" interaction with ref = ticket id and
    ext["followup"]["satisfied"] = False reopens; the ladder starts over."""
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "closed")
    clock.advance(days=1)
    crm.interactions.log(
        actor="rep-fu",
        customer_id=ticket.customer_id,
        kind="callback",
        ref=ticket.id,
        satisfaction=3,
        ext={"followup": {"satisfied": False, "task_id": "tsk_x"}},
    )
    reopened = api.get(ticket.id)
    assert (reopened.status, reopened.cycle, reopened.reopen_count) == ("in_progress", 1, 1)
    assert reopened.cycle_started_at == clock.now() and reopened.escalation_level == 0
    assert reopened.satisfaction == 3 and reopened.satisfied is False
    assert recorder.named("reopened")[0]["actor"] == "rep-fu"
    assert reopened.resolution_due_at == clock.now() + timedelta(hours=48)
    # handled again, then resolved again
    again = api.resolve(
        api.approve(api.propose(reopened, actor="hu", solution="refund"), actor="mgr"), actor="hu"
    )
    assert again.status == "resolved" and len(recorder.named("resolved")) == 2


def test_a_callback_recorded_followup_style_can_still_complete_its_task(setup, customer_id):
    """followup logs the callback interaction first, then completes its task: reopening on an
    unhappy answer must leave that task open for it (an agent's reopen cancels it)."""
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "closed")
    task = crm.tasks.open_by_key(callback_key(ticket.id))
    with crm.transaction():
        crm.interactions.log(
            actor="rep",
            customer_id=ticket.customer_id,
            kind="callback",
            ref=ticket.id,
            satisfaction=1,
            ext={"followup": {"satisfied": False, "task_id": task.id}},
        )
        crm.tasks.complete(task.id, actor="rep", outcome="unsatisfied")
    assert api.get(ticket.id).status == "in_progress"
    assert crm.tasks.get(task.id).outcome == "unsatisfied"


def test_callback_for_unknown_ticket_is_ignored(setup, customer_id):
    crm, api = setup()
    cid = customer_id(crm)
    crm.interactions.log(
        actor="x", customer_id=cid, kind="callback", ref="tkt_nothing", satisfaction=1
    )
    assert api.find() == []


class FakeFollowup:
    """Stands in for the followup plugin: it answers crm_complaint_closed with the callback."""

    @hookimpl
    def crm_complaint_closed(self, crm, ticket, actor):
        return Effects(
            tasks=[
                TaskDraft(
                    kind="callback",
                    title="callback (followup)",
                    due_at=crm.now() + timedelta(days=2),
                    customer_id=ticket.customer_id,
                    ref=ticket.id,
                    dedupe_key=f"callback:{ticket.id}",
                    source="followup",
                )
            ]
        )


def test_with_followup_loaded_its_callback_is_the_only_one(make_crm, customer_id):
    crm = make_crm(["complaints", ("followup", FakeFollowup())])
    api = Complaints(crm)
    ticket = walk(api, customer_id(crm), "closed")
    tasks = crm.tasks.find({"kind": "callback", "ref": ticket.id})
    assert [(t.source, t.title) for t in tasks] == [("followup", "callback (followup)")]


def test_approval_rules(setup, customer_id):
    crm, api = setup({"departments": {"customer_service": {"manager": "mei"}}})
    ticket = walk(api, customer_id(crm), "in_progress")
    with pytest.raises(ValidationError, match="no approved solution"):
        api.resolve(ticket, actor="hu", resolution="done")
    ticket = api.propose(ticket, actor="hu", solution="refund half", compensation=20)
    assert crm.tasks.open_by_key(f"complaint-approval:{ticket.id}:1").assignee == "mei"
    with pytest.raises(ValidationError, match="still waits"):
        api.propose(ticket, actor="hu", solution="another")
    with pytest.raises(PermissionDenied, match="only mei"):
        api.approve(ticket, actor="hu")
    ticket = api.approve(ticket, actor="mei", approve=False, reason="too little")
    with pytest.raises(ValidationError, match="no approved solution"):
        api.resolve(ticket, actor="hu")
    ticket = api.propose(ticket, actor="hu", solution="refund all", compensation=40)
    ticket = api.approve(ticket, actor="mei")
    with pytest.raises(ValidationError, match="exceeds the approved 40"):
        api.resolve(ticket, actor="hu", compensation=41)
    with pytest.raises(ValidationError, match="already approved"):
        api.approve(ticket, actor="mei", number=2)
    done = api.resolve(ticket, actor="hu", compensation=40)
    assert (done.compensation, done.resolution) == (40, "refund all")


def test_without_a_manager_the_proposer_cannot_approve(setup, customer_id):
    crm, api = setup()
    ticket = api.propose(walk(api, customer_id(crm), "in_progress"), actor="hu", solution="fix")
    with pytest.raises(PermissionDenied, match="someone else"):
        api.approve(ticket, actor="hu")
    assert api.approve(ticket, actor="lead").approved_proposal.decided_by == "lead"


def test_dispatch_by_category_and_capacity(setup, customer_id):
    crm, api = setup(
        {
            "departments": {
                "quality": {"manager": "q", "capacity": 1, "categories": ["product_quality"]},
                "quality_b": {"manager": "qb", "capacity": 2, "categories": ["product_quality"]},
                "customer_service": {"manager": "cs"},
            }
        }
    )
    cid = customer_id(crm)

    def valid(**kw) -> Ticket:
        return walk(api, cid, "valid", **kw)

    # the freer of the two quality departments, then the other, then refusal
    assert api.dispatch(valid(), actor="d").department == "quality_b"
    assert api.dispatch(valid(), actor="d").department == "quality"
    assert api.dispatch(valid(), actor="d").department == "quality_b"
    waiting = valid()
    with pytest.raises(
        ValidationError, match="every department that handles 'product_quality' is at capacity"
    ):
        api.dispatch(waiting, actor="d")
    with pytest.raises(ValidationError, match="quality is at capacity"):
        api.dispatch(waiting, actor="d", department="quality")
    urgent = api.dispatch(waiting, actor="d", priority="urgent")
    assert urgent.priority is Priority.URGENT and urgent.sla_policy == "urgent"
    assert api.history(urgent.id)[-1].details["over_capacity"] is True
    forced = api.dispatch(valid(), actor="d", department="quality", force=True)
    assert forced.department == "quality"
    other = api.dispatch(valid(category="service"), actor="d")
    assert other.department == "customer_service"
    with pytest.raises(ValidationError, match="unknown department 'nope'"):
        api.dispatch(valid(), actor="d", department="nope")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"category": "weather"}, "unknown category 'weather'"),
        ({"content": "  "}, "content"),
        ({"channel": "pigeon"}, "channel"),
        ({"claim": "a pony"}, "claim"),
        ({"emotions": ["furious"]}, "emotions"),
        ({"priority": "asap"}, "priority"),
    ],
)
def test_open_refuses_bad_input_and_writes_nothing(setup, customer_id, fields, error):
    crm, api = setup()
    cid = customer_id(crm)
    base = {"content": "bad service", "category": "service"}
    with pytest.raises(ValidationError, match=error):
        api.open(actor="ann", customer_id=cid, **{**base, **fields})
    assert api.find() == [] and crm.interactions.count({"kind": "complaint"}) == 0


def test_open_for_unknown_customer(setup):
    _crm, api = setup()
    with pytest.raises(NotFoundError):
        api.open(actor="ann", customer_id="cus_nobody", content="x")
    with pytest.raises(NotFoundError, match="no complaint ticket 'tkt_nope'"):
        api.get("tkt_nope")


def test_complaint_interactions_logged_elsewhere_register_tickets(
    setup, customer_id, recorder, clock
):
    crm, api = setup()
    cid = customer_id(crm)
    received = clock.now() - timedelta(hours=3)
    interaction = crm.interactions.log(
        actor="front-desk",
        customer_id=cid,
        kind="complaint",
        channel="chat",
        rep="bo",
        summary="waited an hour",
        occurred_at=received,
        ext={"complaints": {"category": "service", "emotions": ["anxious"]}},
    )
    [ticket] = api.find()
    assert (ticket.owner, ticket.registered_by, ticket.category) == ("bo", "front-desk", "service")
    assert ticket.interaction_id == interaction.id and ticket.opened_at == received
    assert ticket.emotions == ("anxious",) and ticket.channel.value == "chat"
    assert len(recorder.named("registered")) == 1
    assert crm.interactions.count({"kind": "complaint"}) == 1  # no second interaction


def test_auto_registration_can_be_switched_off(setup, customer_id):
    crm, api = setup({"register_from_interactions": False})
    crm.interactions.log(actor="x", customer_id=customer_id(crm), kind="complaint", summary="rude")
    assert api.find() == []


def test_merge_moves_tickets_and_forget_blanks_them(setup, customer_id):
    crm, api = setup()
    keep, dup = customer_id(crm, "Li Wei"), customer_id(crm, "Wei Li")
    ticket = walk(api, dup, "dispatched", complainant="Wei Li", contact="wei@example.com")
    crm.customers.merge(keep, dup, actor="admin")
    moved = api.get(ticket.id)
    assert moved.customer_id == keep
    assert all(t.customer_id == keep for t in api.history(ticket.id))
    crm.customers.forget(keep, actor="admin")
    erased = api.get(ticket.id)
    assert (erased.content, erased.complainant, erased.contact) == ("(erased)",) * 3
    assert api.respond(erased, actor="hu", message="still handled").status == "in_progress"


def test_waiting_on_the_customer_pauses_and_resumes(setup, customer_id, clock):
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "in_progress")
    due = ticket.resolution_due_at
    ticket = api.wait_on_customer(ticket, actor="hu", reason="photos")
    assert ticket.resolution_due_at is None and ticket.next_escalation_at is None
    with pytest.raises(ValidationError, match="already waits"):
        api.wait_on_customer(ticket, actor="hu")
    clock.advance(hours=5)
    ticket = api.resume(ticket, actor="hu", note="photos came")
    assert ticket.resolution_due_at == due + timedelta(hours=5)
    assert len(ticket.pauses) == 1
    with pytest.raises(ValidationError, match="not waiting"):
        api.resume(ticket, actor="hu")


def test_notes_and_the_actor_is_required(setup, customer_id):
    crm, api = setup()
    ticket = walk(api, customer_id(crm), "registered")
    api.note(ticket.id, actor="ann", note="customer called again")
    assert api.history(ticket.id)[-1].note == "customer called again"
    with pytest.raises(ValidationError, match="actor"):
        api.judge(ticket, actor=" ", valid=True)
    assert Status.CLOSED == "closed"


def test_judging_can_correct_the_category(setup, customer_id):
    crm, api = setup(
        {
            "sla": [
                {"name": "quality", "categories": ["product_quality"], "resolution_hours": 24},
                {"name": "standard"},
            ]
        }
    )
    ticket = api.open(actor="ann", customer_id=customer_id(crm), content="x")
    assert (ticket.category, ticket.sla_policy) == ("other", "standard")
    with pytest.raises(ValidationError, match="unknown category 'weather'"):
        api.judge(ticket, actor="ann", valid=True, category="weather")
    judged = api.judge(ticket, actor="ann", valid=True, category="product_quality")
    assert (judged.category, judged.sla_policy) == ("product_quality", "quality")
    assert judged.resolution_due_at == judged.opened_at + timedelta(hours=24)
    assert api.history(ticket.id)[-1].details["category"] == "product_quality"


def test_the_complaint_hooks_are_the_contracts_declared_always():
    """The specs live in ``crmcore.contracts`` and every plugin manager declares them, with or
    without this plugin; the plugin declares nothing of its own."""
    from crmcore_complaints import plugin

    from crmcore.contracts import ComplaintsContract
    from crmcore.plugins import PluginManager

    pm = PluginManager()
    assert not hasattr(plugin, "crm_addhooks")
    caller = pm.hook.crm_complaint_notify
    assert caller.spec.namespace is ComplaintsContract and caller.spec.opts["firstresult"]
    for name in ("registered", "escalated", "resolved", "reopened", "closed", "sla_breached"):
        assert getattr(pm.hook, f"crm_complaint_{name}").spec.namespace is ComplaintsContract


def test_an_interaction_it_ignores_costs_no_action(setup, customer_id):
    """A purchase or a follow-up (most interactions) asks nothing of complaints: the hook
    answers None at once instead of an Action the core runs to find out."""
    from crmcore_complaints import plugin

    crm, _api = setup()
    cid = customer_id(crm)
    customer = crm.customers.get(cid)
    for kind, ref in (("purchase", None), ("follow_up", None), ("callback", None)):
        logged = crm.interactions.log(actor="x", customer_id=cid, kind=kind, ref=ref)
        assert plugin.crm_interaction_logged(crm, logged, customer, "x") is None, kind
    complaint = crm.interactions.log(actor="x", customer_id=cid, kind="complaint", summary="rude")
    assert plugin.crm_interaction_logged(crm, complaint, customer, "x").actions
