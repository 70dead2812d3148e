"""Permissions: each role against each action, refusals audited, reads narrowed by role."""

import pytest

from crmcore import PermissionDenied
from crmcore.testing.audit import operations

ACTORS = {
    "ann": {"role": "agent", "team": "north", "department": "service"},
    "abe": {"role": "agent", "team": "south", "department": "service"},
    "lee": {"role": "shift_lead", "team": "north", "department": "service"},
    "sue": {"role": "shift_lead", "team": "south", "department": "service"},
    "max": {"role": "manager", "department": "service"},
    "mia": {"role": "manager", "department": "sales"},
    "aud": {"role": "auditor"},
    "root": {"role": "admin"},
}


@pytest.fixture
def crm(make_crm):
    return make_crm(settings={"security": {"enforce": True, "actors": ACTORS}})


@pytest.fixture
def anns(crm):
    """A customer owned by ann (agent, team north, department service) with a task."""
    customer = crm.customers.add(actor="root", name="Li Lei", owner="ann")
    task = crm.tasks.create(
        actor="root",
        kind="callback",
        title="call",
        due_at=crm.now(),
        customer_id=customer.id,
        assignee="ann",
    )
    return customer, task


ACTIONS = {
    "read customer": lambda crm, c, t, who: crm.customers.get(c.id, actor=who),
    "update customer": lambda crm, c, t, who: crm.customers.update(
        c.id, actor=who, region=f"by {who}"
    ),
    "log interaction": lambda crm, c, t, who: crm.interactions.log(
        actor=who, customer_id=c.id, kind="visit"
    ),
    "read history": lambda crm, c, t, who: crm.interactions.for_customer(c.id, actor=who),
    "complete task": lambda crm, c, t, who: crm.tasks.complete(t.id, actor=who),
    "export customer": lambda crm, c, t, who: __import__(
        "crmcore.transfer", fromlist=["x"]
    ).export_customer_file(crm, c.id, actor=who),
    "forget customer": lambda crm, c, t, who: crm.customers.forget(c.id, actor=who),
    "read ann's figures": lambda crm, c, t, who: crm.authorize(
        who,
        "report.read",
        __import__("crmcore.security", fromlist=["x"]).Resource("report", owner="ann"),
    ),
}

# who may do each action on ann's customer (owner ann, team north, department service)
ALLOWED = {
    "read customer": {"ann", "lee", "max", "aud", "root"},
    "update customer": {"ann", "lee", "max", "root"},
    "log interaction": {"ann", "lee", "max", "root"},
    "read history": {"ann", "lee", "max", "aud", "root"},
    "complete task": {"ann", "lee", "max", "root"},
    "export customer": {"ann", "lee", "max", "aud", "root"},
    "forget customer": {"root"},
    "read ann's figures": {"lee", "max", "aud", "root"},  # agents: not even their own
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("who", [*sorted(ACTORS), "stranger"])
def test_role_matrix(crm, anns, action, who):
    customer, task = anns
    allowed = who in ALLOWED[action]
    if allowed:
        ACTIONS[action](crm, customer, task, who)
        return
    with pytest.raises(PermissionDenied, match=f"^{who}"):
        ACTIONS[action](crm, customer, task, who)
    denied = operations(crm, op="denied", actor=who)
    assert len(denied) == 1 and denied[0]["diff"]["reason"].startswith(who)


def test_an_agent_holding_a_task_may_work_on_another_reps_customer(crm, anns):
    customer, _task = anns
    with pytest.raises(PermissionDenied):
        crm.interactions.log(actor="abe", customer_id=customer.id, kind="callback")
    crm.tasks.create(
        actor="root",
        kind="callback",
        title="cover for ann",
        due_at=crm.now(),
        customer_id=customer.id,
        assignee="abe",
    )
    crm.interactions.log(actor="abe", customer_id=customer.id, kind="callback")
    crm.customers.get(customer.id, actor="abe")
    with pytest.raises(PermissionDenied):  # reading and logging only, not changing the file
        crm.customers.update(customer.id, actor="abe", region="South")


def test_plugins_reacting_to_an_authorised_action_are_not_checked_again(make_crm):
    from crmcore import Effects, InteractionDraft, hookimpl

    class LogsOnCompletion:
        @hookimpl
        def crm_task_completed(self, crm, task, actor):
            return Effects(interactions=[InteractionDraft(task.customer_id, "follow_up")])

    crm = make_crm(
        [("p", LogsOnCompletion())], settings={"security": {"enforce": True, "actors": ACTORS}}
    )
    customer = crm.customers.add(actor="root", name="Li", owner="ann")
    task = crm.tasks.create(
        actor="root",
        kind="follow_up",
        title="call",
        due_at=crm.now(),
        customer_id=customer.id,
        assignee="abe",
    )
    crm.tasks.complete(task.id, actor="abe")  # abe may complete his task; the plugin logs
    assert [i.created_by for i in crm.interactions.for_customer(customer.id)] == ["abe"]
    with pytest.raises(PermissionDenied):  # but abe asking directly is still checked
        crm.interactions.log(actor="abe", customer_id=customer.id, kind="visit")


def test_refused_writes_change_nothing(crm, anns):
    customer, _task = anns
    with pytest.raises(PermissionDenied, match="it belongs to ann, not to abe"):
        crm.customers.update(customer.id, actor="abe", region="South")
    assert crm.customers.get(customer.id).region is None


def test_audit_trail_is_for_auditors_and_admins(crm, make_crm):
    from crmcore.cli.audit import audit_group  # noqa: F401  (the CLI checks audit.read)
    from crmcore.security import Resource

    for who in ("ann", "lee", "max"):
        with pytest.raises(PermissionDenied, match="only auditors and admins"):
            crm.authorize(who, "audit.read", Resource("audit"))
    crm.authorize("aud", "audit.read", Resource("audit"))
    crm.authorize("root", "audit.read", Resource("audit"))


def test_lists_are_narrowed_to_what_the_role_may_read(crm):
    for owner in ("ann", "abe", None):
        crm.customers.add(actor="root", name=f"owned by {owner}", owner=owner)
    crm.customers.add(actor="root", name="sales", owner="mia")

    def names(who):
        return sorted(c.name for c in crm.customers.find(actor=who))

    assert names("ann") == ["owned by None", "owned by ann"]
    assert names("lee") == ["owned by None", "owned by ann"]
    assert names("max") == ["owned by None", "owned by abe", "owned by ann"]
    assert len(names("aud")) == 4 and len(names("root")) == 4


def test_system_actors_and_workers_may_do_everything(crm, anns):
    customer, _ = anns
    crm.customers.update(customer.id, actor="system", region="North")
    crm.tick("w1")  # runs as worker:w1


def test_without_enforcement_everything_is_allowed(make_crm):
    crm = make_crm()
    customer = crm.customers.add(actor="anyone", name="Li", owner="ann")
    crm.customers.update(customer.id, actor="someone-else", region="North")


def test_bad_security_configuration_names_the_key(make_crm):
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match=r"security\.actors\.ann\.role: unknown role 'boss'"):
        make_crm(settings={"security": {"enforce": True, "actors": {"ann": {"role": "boss"}}}})


def test_writes_inside_reacting_are_part_of_an_action_already_authorised(crm, anns):
    customer, _ = anns
    with pytest.raises(PermissionDenied):
        crm.interactions.log(actor="abe", customer_id=customer.id, kind="visit")
    with crm.reacting():  # e.g. a complaint's resolution, allowed, logging its refund
        logged = crm.interactions.log(actor="abe", customer_id=customer.id, kind="visit")
    assert logged.created_by == "abe"
    with pytest.raises(PermissionDenied):  # the standing ends with the block
        crm.interactions.log(actor="abe", customer_id=customer.id, kind="visit")
