"""SLA targets, breaches and the escalation ladder, driven by the injected clock and the worker."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from crmcore_complaints.api import Complaints, callback_key
from crmcore_complaints.model import Notification, Ticket
from crmcore_complaints.roles import UNSTAFFED, on_shift
from crmcore_complaints.settings import Shift

from crmcore import ConfigError, ConflictError, hookimpl
from crmcore.i18n import gettext, translate
from crmcore.testing import START  # Monday 2026-01-05 09:00 UTC

ROTA = {
    "shifts": [
        {"lead": "wu", "start": "08:00", "end": "20:00"},
        {"lead": "lin", "start": "20:00", "end": "08:00"},
    ],
    "departments": {"customer_service": {"manager": "mei"}},
}
BUSINESS = {
    **ROTA,
    "sla": [
        {"name": "office", "clock": "business", "first_response_hours": 2, "resolution_hours": 40}
    ],
}
FRIDAY_17 = datetime(2026, 1, 9, 17, tzinfo=UTC)


def escalations(api: Complaints, ticket_id: str) -> list[dict]:
    return [t.details for t in reversed(api.escalation_traces(ticket_id=ticket_id))]


def tick_at(crm, clock, when: datetime, worker: str = "w1") -> None:
    clock.set(when)
    crm.tick(worker)


def dispatched(api: Complaints, customer_id: str) -> Ticket:
    ticket = api.open(
        actor="ann", customer_id=customer_id, content="no signal at home", category="service"
    )
    ticket = api.judge(ticket, actor="ann", valid=True)
    return api.dispatch(ticket, actor="dana", handler="hu")


def test_calendar_ladder_fires_at_the_exact_instants(setup, customer_id, clock, recorder):
    crm, api = setup(ROTA)
    ticket = dispatched(api, customer_id(crm))
    assert ticket.next_escalation_at == START + timedelta(hours=24)

    tick_at(crm, clock, START + timedelta(hours=24) - timedelta(microseconds=1))
    assert escalations(api, ticket.id) == []
    tick_at(crm, clock, START + timedelta(hours=24))
    [first] = escalations(api, ticket.id)
    assert (first["level"], first["target"], first["assignee"]) == (1, "shift_lead", "wu")
    assert first["how"] == "shift lead on duty"
    task = crm.tasks.get(first["task_id"])
    assert (task.kind, task.assignee, task.ref, task.due_at) == (
        "complaint",
        "wu",
        ticket.id,
        START + timedelta(hours=24),
    )
    assert task.dedupe_key == f"complaint-escalation:{ticket.id}:0:1"
    event = recorder.named("escalated")[0]
    assert (event["level"], event["target"], event["at"]) == (1, "wu", START + timedelta(hours=24))
    outbox = api.outbox.find({"ticket_id": ticket.id, "kind": "escalation"})
    assert [(n.recipient, n.role) for n in outbox] == [("wu", "shift_lead")]

    tick_at(crm, clock, START + timedelta(hours=30))  # repeated sweeps change nothing
    tick_at(crm, clock, START + timedelta(hours=30), worker="w2")
    assert len(escalations(api, ticket.id)) == 1
    assert api.get(ticket.id).next_escalation_at == START + timedelta(hours=48)

    tick_at(crm, clock, START + timedelta(hours=48))
    second = escalations(api, ticket.id)[1]
    assert (second["level"], second["assignee"]) == (2, "mei")
    assert api.get(ticket.id).next_escalation_at is None  # the ladder has no third level
    tick_at(crm, clock, START + timedelta(days=10))
    assert len(recorder.named("escalated")) == 2


def test_business_hours_ladder_from_friday_17(setup, customer_id, clock, recorder):
    crm, api = setup(BUSINESS)
    clock.set(FRIDAY_17)
    ticket = dispatched(api, customer_id(crm))
    # Fri 17-18 = 1h, Mon 9h, Tue 9h, Wed 09:00 + 5h
    level_1 = datetime(2026, 1, 14, 14, tzinfo=UTC)
    # + Wed 4h, Thu 9h, Fri 9h = 46h by Fri 18:00; Mon 09:00 + 2h
    level_2 = datetime(2026, 1, 19, 11, tzinfo=UTC)
    assert ticket.next_escalation_at == level_1
    assert ticket.resolution_due_at == datetime(2026, 1, 16, 12, tzinfo=UTC)  # 40 biz hours
    for when in (
        datetime(2026, 1, 10, 17, tzinfo=UTC),  # 24 calendar hours: not yet
        datetime(2026, 1, 12, 18, tzinfo=UTC),
        level_1 - timedelta(seconds=1),
    ):
        tick_at(crm, clock, when)
        assert escalations(api, ticket.id) == []
    tick_at(crm, clock, level_1)
    assert [e["level"] for e in escalations(api, ticket.id)] == [1]
    assert recorder.named("escalated")[0]["at"] == level_1
    assert api.get(ticket.id).next_escalation_at == level_2
    tick_at(crm, clock, level_2 - timedelta(seconds=1))
    assert len(escalations(api, ticket.id)) == 1
    tick_at(crm, clock, level_2)
    assert [(e["level"], e["assignee"]) for e in escalations(api, ticket.id)] == [
        (1, "wu"),
        (2, "mei"),
    ]


def test_business_hours_in_the_business_time_zone(setup, customer_id, clock):
    crm, api = setup(BUSINESS, core={"timezone": "Asia/Shanghai"})
    shanghai = ZoneInfo("Asia/Shanghai")
    clock.set(datetime(2026, 1, 9, 17, tzinfo=shanghai))
    ticket = dispatched(api, customer_id(crm))
    assert ticket.next_escalation_at == datetime(2026, 1, 14, 14, tzinfo=shanghai)
    tick_at(crm, clock, datetime(2026, 1, 14, 14, tzinfo=shanghai))
    # 14:00 in Shanghai is inside the 08:00-20:00 day shift there
    assert escalations(api, ticket.id)[0]["assignee"] == "wu"


def test_waiting_on_the_customer_pauses_the_ladder(setup, customer_id, clock, recorder):
    crm, api = setup(ROTA)
    ticket = dispatched(api, customer_id(crm))
    clock.set(START + timedelta(hours=2))
    ticket = api.wait_on_customer(ticket, actor="hu", reason="needs the invoice")
    assert ticket.wake_at is None
    tick_at(crm, clock, START + timedelta(hours=30))  # paused: nothing is due
    assert escalations(api, ticket.id) == [] and recorder.named("breached") == []
    clock.set(START + timedelta(hours=12))  # (the clock may go back in a test only)
    ticket = api.resume(api.get(ticket.id), actor="hu")
    # 24h of clock time, of which 10h paused
    assert ticket.next_escalation_at == START + timedelta(hours=34)
    tick_at(crm, clock, START + timedelta(hours=34) - timedelta(seconds=1))
    assert escalations(api, ticket.id) == []
    tick_at(crm, clock, START + timedelta(hours=34))
    assert [e["level"] for e in escalations(api, ticket.id)] == [1]
    assert api.sla_elapsed(api.get(ticket.id)) == timedelta(hours=24)


def test_pause_in_business_hours(setup, customer_id, clock):
    crm, api = setup(BUSINESS)
    clock.set(FRIDAY_17)
    ticket = dispatched(api, customer_id(crm))
    clock.set(datetime(2026, 1, 12, 9, tzinfo=UTC))
    ticket = api.wait_on_customer(ticket, actor="hu")
    clock.set(datetime(2026, 1, 13, 9, tzinfo=UTC))  # all of Monday's 9 hours paused
    ticket = api.resume(ticket, actor="hu")
    assert ticket.next_escalation_at == datetime(2026, 1, 15, 14, tzinfo=UTC)


def test_sla_breaches_are_events_once_each(setup, customer_id, clock, recorder):
    crm, api = setup(ROTA)
    ticket = api.open(
        actor="ann", customer_id=customer_id(crm), content="wrong bill", category="price"
    )
    assert ticket.first_response_due_at == START + timedelta(hours=12)
    tick_at(crm, clock, START + timedelta(hours=12) - timedelta(seconds=1))
    assert recorder.named("breached") == []
    tick_at(crm, clock, START + timedelta(hours=12))
    [breach] = recorder.named("breached")
    assert (breach["target"], breach["due_at"]) == ("first_response", START + timedelta(hours=12))
    notes = api.outbox.find({"kind": "sla_breach"})
    assert [(n.recipient, n.role) for n in notes] == [("ann", "owner")]
    assert api.get(ticket.id).first_response_breached
    tick_at(crm, clock, START + timedelta(hours=13))
    assert len(recorder.named("breached")) == 1
    # a late response does not count as a second breach
    api.judge(api.get(ticket.id), actor="ann", valid=True)
    assert len(recorder.named("breached")) == 1
    tick_at(crm, clock, START + timedelta(hours=48))
    targets = [b["target"] for b in recorder.named("breached")]
    assert targets == ["first_response", "resolution"]
    stored = api.get(ticket.id)
    assert stored.resolution_breached and stored.resolution_breaches == 1


def test_late_actions_record_breaches_without_a_worker(setup, customer_id, clock, recorder):
    crm, api = setup({"require_approval": False})
    ticket = api.open(actor="ann", customer_id=customer_id(crm), content="late", category="price")
    clock.advance(hours=13)
    ticket = api.judge(ticket, actor="ann", valid=True)
    assert ticket.first_response_breached
    ticket = api.respond(api.dispatch(ticket, actor="d"), actor="hu", message="hi")
    clock.advance(hours=50)
    ticket = api.resolve(ticket, actor="hu", resolution="refunded")
    assert ticket.resolution_breaches == 1
    assert [b["target"] for b in recorder.named("breached")] == ["first_response", "resolution"]


def test_a_missed_sweep_escalates_every_passed_level_once(setup, customer_id, clock, recorder):
    crm, api = setup(ROTA)
    ticket = dispatched(api, customer_id(crm))
    tick_at(crm, clock, START + timedelta(hours=60))
    assert [(e["level"], e["scheduled_at"]) for e in escalations(api, ticket.id)] == [
        (1, (START + timedelta(hours=24)).isoformat()),
        (2, (START + timedelta(hours=48)).isoformat()),
    ]
    assert [e["level"] for e in recorder.named("escalated")] == [1, 2]
    # 60h is in the night shift, so level 1 went to the night lead
    assert escalations(api, ticket.id)[0]["assignee"] == "lin"


def test_resolving_in_time_stops_the_ladder(setup, customer_id, clock, recorder):
    crm, api = setup(ROTA)
    ticket = dispatched(api, customer_id(crm))
    ticket = api.respond(ticket, actor="hu", message="on it")
    ticket = api.approve(api.propose(ticket, actor="hu", solution="fix"), actor="mei")
    clock.set(START + timedelta(hours=23))
    ticket = api.resolve(ticket, actor="hu")
    assert ticket.next_escalation_at is None and ticket.resolution_due_at is not None
    tick_at(crm, clock, START + timedelta(days=3))
    assert recorder.named("escalated") == [] and recorder.named("breached") == []


def test_reopen_restarts_the_ladder_with_new_dedupe_keys(setup, customer_id, clock, recorder):
    crm, api = setup(ROTA)
    ticket = dispatched(api, customer_id(crm))
    tick_at(crm, clock, START + timedelta(hours=24))
    ticket = api.respond(api.get(ticket.id), actor="hu", message="sorry")
    ticket = api.approve(api.propose(ticket, actor="hu", solution="fix"), actor="mei")
    ticket = api.resolve(ticket, actor="hu")
    clock.set(START + timedelta(hours=30))
    ticket = api.reopen(ticket, actor="ann", reason="still broken")
    assert ticket.next_escalation_at == START + timedelta(hours=54)
    tick_at(crm, clock, START + timedelta(hours=54))
    keys = sorted(
        t.dedupe_key
        for t in crm.tasks.find({"kind": "complaint", "ref": ticket.id})
        if "escalation" in (t.dedupe_key or "")
    )
    assert keys == [
        f"complaint-escalation:{ticket.id}:0:1",
        f"complaint-escalation:{ticket.id}:1:1",
    ]
    assert api.get(ticket.id).escalations == 2


def test_escalation_task_done_leaves_a_trace(setup, customer_id, clock):
    crm, api = setup(ROTA)
    ticket = dispatched(api, customer_id(crm))
    tick_at(crm, clock, START + timedelta(hours=24))
    task_id = escalations(api, ticket.id)[0]["task_id"]
    crm.tasks.complete(task_id, actor="wu", outcome="called the customer, replacement sent")
    handled = [t for t in api.history(ticket.id) if t.action == "escalation_handled"]
    assert [(t.actor, t.details["level"]) for t in handled] == [("wu", 1)]


@pytest.mark.parametrize(
    ("settings", "assignee", "how"),
    [
        ({}, None, UNSTAFFED),
        ({"escalation": [{"after_hours": 24, "target": "department_manager"}]}, None, UNSTAFFED),
        # the owner is the lead on duty: the next rung (the department manager) gets it
        (
            {"shifts": [{"lead": "ann"}], "departments": {"customer_service": {"manager": "mei"}}},
            "mei",
            "shift_lead is the owner or unset; next rung: manager of customer_service",
        ),
        # the owner is the lead and the manager: no one above them, left for the team
        (
            {"shifts": [{"lead": "ann"}], "departments": {"customer_service": {"manager": "ann"}}},
            None,
            UNSTAFFED,
        ),
        ({"escalation": [{"after_hours": 24, "target": "person:ann"}]}, None, UNSTAFFED),
        (
            {"departments": {"customer_service": {"manager": "mei"}}},
            "mei",
            "no shift lead on duty; manager of customer_service",
        ),
        (
            {
                "shifts": [{"lead": "wu", "days": ["mon"]}],  # Tuesday: not on the rota
                "departments": {"customer_service": {"manager": "mei"}},
            },
            "mei",
            "no shift lead on duty; manager of customer_service",
        ),
        ({"shifts": [{"lead": "wu", "days": ["tue"]}]}, "wu", "shift lead on duty"),
        (
            {
                "shifts": [{"lead": "cs-lead", "departments": ["quality"]}, {"lead": "any-lead"}],
                "departments": {
                    "quality": {"categories": ["product_quality"]},
                    "customer_service": {},
                },
            },
            "any-lead",
            "shift lead on duty",
        ),
        (
            {"escalation": [{"after_hours": 24, "target": "person:boss"}]},
            "boss",
            "named in the escalation ladder",
        ),
        (
            {"escalation": [{"after_hours": 24, "target": "dispatcher"}]},
            "dana",
            "dispatched the ticket",
        ),
    ],
)
def test_escalation_targets_are_resolved_at_that_moment(
    setup, customer_id, clock, settings, assignee, how
):
    crm, api = setup(settings)
    ticket = dispatched(api, customer_id(crm))
    tick_at(crm, clock, START + timedelta(hours=24))
    [first] = escalations(api, ticket.id)
    assert (first["assignee"], first["how"]) == (assignee, how)
    assert crm.tasks.get(first["task_id"]).assignee == assignee
    assert assignee != api.get(ticket.id).owner


def test_escalation_never_goes_to_the_owner_on_the_second_rung(setup, customer_id, clock):
    crm, api = setup(
        {"shifts": [{"lead": "wu"}], "departments": {"customer_service": {"manager": "ann"}}}
    )
    ticket = dispatched(api, customer_id(crm))  # ann owns it and manages the department
    tick_at(crm, clock, START + timedelta(hours=24))
    tick_at(crm, clock, START + timedelta(hours=48))
    first, second = escalations(api, ticket.id)
    assert first["assignee"] == "wu"
    assert (second["assignee"], second["how"]) == (None, UNSTAFFED)
    assert crm.tasks.get(second["task_id"]).assignee is None


def test_owner_is_no_escalation_target(setup):
    with pytest.raises(ConfigError, match="above its owner"):
        setup({"escalation": [{"after_hours": 24, "target": "owner"}]})


@pytest.mark.parametrize(
    ("start", "end", "days", "local", "expected"),
    [
        ("08:00", "20:00", ["mon"], datetime(2026, 1, 5, 8, 0), True),
        ("08:00", "20:00", ["mon"], datetime(2026, 1, 5, 19, 59, 59), True),
        ("08:00", "20:00", ["mon"], datetime(2026, 1, 5, 20, 0), False),
        ("08:00", "20:00", ["mon"], datetime(2026, 1, 6, 9, 0), False),
        ("20:00", "08:00", ["mon"], datetime(2026, 1, 5, 23, 0), True),
        ("20:00", "08:00", ["mon"], datetime(2026, 1, 6, 7, 59), True),  # Monday's night shift
        ("20:00", "08:00", ["mon"], datetime(2026, 1, 6, 8, 0), False),
        ("20:00", "08:00", ["mon"], datetime(2026, 1, 5, 7, 0), False),  # Sunday's, not on rota
        ("00:00", "24:00", ["sun"], datetime(2026, 1, 11, 23, 59), True),
    ],
)
def test_on_shift_boundaries(start, end, days, local, expected):
    assert on_shift(Shift(lead="x", days=days, start=start, end=end), local) is expected


def test_tier_matched_policy(setup, customer_id):
    crm, api = setup(
        {
            "sla": [
                {
                    "name": "vip",
                    "tiers": ["vip"],
                    "first_response_hours": 0.25,
                    "resolution_hours": 8,
                },
                {"name": "standard"},
            ]
        }
    )
    vip = customer_id(crm, "Big Spender")
    crm.customers.update(vip, actor="x", ext={"grading": {"grades": {"pyramid": "vip"}}})
    t_vip = api.open(actor="ann", customer_id=vip, content="x", category="service")
    t_std = api.open(actor="ann", customer_id=customer_id(crm, "Small"), content="x")
    assert (t_vip.sla_policy, t_vip.tier) == ("vip", "vip")
    assert t_vip.resolution_due_at == START + timedelta(hours=8)
    assert (t_std.sla_policy, t_std.tier) == ("standard", None)


def test_chat_policy_matches_by_channel(setup, customer_id, clock, recorder):
    """DOMAIN §7: chat gets a reply within 60 seconds."""
    crm, api = setup(
        {
            "sla": [
                {
                    "name": "chat",
                    "channels": ["chat"],
                    "first_response_hours": 1 / 60,
                    "resolution_hours": 24,
                },
                {"name": "standard"},
            ]
        }
    )
    cid = customer_id(crm)
    chat = api.open(actor="ann", customer_id=cid, content="x", channel="chat")
    phone = api.open(actor="ann", customer_id=cid, content="x", channel="phone")
    assert (chat.sla_policy, phone.sla_policy) == ("chat", "standard")
    assert chat.first_response_due_at == START + timedelta(seconds=60)
    tick_at(crm, clock, START + timedelta(seconds=60))
    assert [b["ticket"].id for b in recorder.named("breached")] == [chat.id]


def test_auto_close_after_silence(setup, customer_id, clock, recorder):
    crm, api = setup({"require_approval": False, "auto_close_after_days": 7})
    ticket = dispatched(api, customer_id(crm))
    ticket = api.resolve(
        api.respond(ticket, actor="hu", message="m"), actor="hu", resolution="refunded"
    )
    assert ticket.auto_close_at == START + timedelta(days=7)
    tick_at(crm, clock, START + timedelta(days=7) - timedelta(seconds=1))
    assert api.get(ticket.id).status == "resolved"
    tick_at(crm, clock, START + timedelta(days=7))
    closed = api.get(ticket.id)
    assert (closed.status, closed.closed_by) == ("closed", "worker:w1")
    assert recorder.named("closed")[0]["actor"] == "worker:w1"
    assert crm.tasks.open_by_key(callback_key(ticket.id)) is not None
    [trace] = [t for t in api.history(ticket.id) if t.action == "closed"]
    assert trace.note == "no answer from the customer within 7 days of the resolution"
    assert trace.note_key == "no answer from the customer within %(days)s days of the resolution"
    zh = gettext("zh_CN", crm.plugins)
    assert translate(trace.note_message, zh) == "解决后 7 天内客户未答复"


def test_auto_close_can_be_off(setup, customer_id, clock):
    crm, api = setup({"require_approval": False, "auto_close_after_days": 0})
    ticket = dispatched(api, customer_id(crm))
    ticket = api.resolve(
        api.respond(ticket, actor="hu", message="m"), actor="hu", resolution="refunded"
    )
    assert ticket.wake_at is None
    tick_at(crm, clock, START + timedelta(days=70))
    assert api.get(ticket.id).status == "resolved"


@pytest.fixture
def two_workers(make_crm, recorder):
    """Two CRMs (two worker processes) on one shared store."""
    location = f"complaints-{uuid.uuid4()}"
    storage = {"backend": "memory", "location": location}
    crms = [
        make_crm(
            ["complaints", ("recorder", recorder)], storage=storage, settings={"complaints": ROTA}
        )
        for _ in range(2)
    ]
    yield crms
    from crmcore.storage.memory import MemoryStore

    MemoryStore.drop_shared(location)


def test_two_workers_escalate_exactly_once(two_workers, customer_id, clock, recorder):
    crm_a, crm_b = two_workers
    api_a, api_b = Complaints(crm_a), Complaints(crm_b)
    ticket = dispatched(api_a, customer_id(crm_a))
    clock.set(START + timedelta(hours=24))
    seen_a, seen_b = api_a.due_for_wake(clock.now()), api_b.due_for_wake(clock.now())
    assert [t.id for t in seen_a] == [t.id for t in seen_b] == [ticket.id]
    assert api_a.wake(seen_a[0], clock.now(), "a") is True
    with pytest.raises(ConflictError, match=ticket.id):
        api_b.wake(seen_b[0], clock.now(), "b")
    assert api_b.sweep(clock.now(), "b") == 0
    assert len(recorder.named("escalated")) == 1
    assert crm_b.tasks.count({"kind": "complaint", "ref": ticket.id}) == 1


def test_many_concurrent_workers_escalate_exactly_once(two_workers, customer_id, clock, recorder):
    crm_a, crm_b = two_workers
    api = Complaints(crm_a)
    tickets = [dispatched(api, customer_id(crm_a, f"C{i}")) for i in range(5)]
    clock.set(START + timedelta(hours=50))
    barrier = threading.Barrier(6)

    def work(i: int) -> None:
        barrier.wait()
        (crm_a if i % 2 else crm_b).tick(f"w{i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((e["ticket"].id, e["level"]) for e in recorder.named("escalated")) == sorted(
        (t.id, level) for t in tickets for level in (1, 2)
    )
    assert crm_a.tasks.count({"kind": "complaint"}) == 10
    assert api.traces.count({"action": "escalated"}) == 10
    assert api.outbox.count({"kind": "escalation"}) == 10


class LoudNotifier:
    """A third-party notifier that handles every notification (the outbox then stays empty)."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    from crmcore import hookimpl as _hookimpl

    @_hookimpl
    def crm_complaint_notify(self, crm, notification):
        self.sent.append(notification)
        return True


def test_a_pluggable_notifier_takes_over_from_the_outbox(make_crm, customer_id, clock):
    notifier = LoudNotifier()
    crm = make_crm(["complaints", ("sms", notifier)], settings={"complaints": ROTA})
    api = Complaints(crm)
    ticket = dispatched(api, customer_id(crm))
    tick_at(crm, clock, START + timedelta(hours=24))
    assert [(n.kind, n.recipient, n.ticket_id) for n in notifier.sent] == [
        ("escalation", "wu", ticket.id)
    ]
    assert api.outbox.count() == 0


class Perks:
    """Stands in for loyalty's ``crm_customer_perks``."""

    @hookimpl
    def crm_customer_perks(self, crm, customer):
        return ["priority_handling"] if customer.name == "Gold" else []


def test_priority_handling_raises_priority_and_picks_the_perk_policy(make_crm, customer_id):
    crm = make_crm(
        ["complaints", ("perks", Perks())],
        settings={
            "complaints": {
                "sla": [
                    {
                        "name": "vip",
                        "perks": ["priority_handling"],
                        "first_response_hours": 0.5,
                        "resolution_hours": 8,
                    },
                    {"name": "standard"},
                ]
            }
        },
    )
    api = Complaints(crm)
    gold = api.open(
        actor="ann", customer_id=customer_id(crm, "Gold"), content="x", category="service"
    )
    plain = api.open(
        actor="ann", customer_id=customer_id(crm, "Plain"), content="x", category="service"
    )
    assert (gold.sla_policy, gold.priority.name, gold.perks) == (
        "vip",
        "HIGH",
        ("priority_handling",),
    )
    assert (plain.sla_policy, plain.priority.name, plain.perks) == ("standard", "NORMAL", ())
    assert gold.resolution_due_at == START + timedelta(hours=8)


def test_tier_path_tries_several_places(setup, customer_id):
    crm, api = setup(
        {
            "tier_path": "grading.grades.hospital, grading.grades.pyramid",
            "sla": [
                {"name": "vip", "tiers": ["big", "vip"], "resolution_hours": 8},
                {"name": "standard"},
            ],
        }
    )
    big = customer_id(crm, "Big")
    crm.customers.update(big, actor="x", ext={"grading": {"grades": {"hospital": "big"}}})
    ticket = api.open(actor="ann", customer_id=big, content="x", category="service")
    assert (ticket.tier, ticket.sla_policy) == ("big", "vip")
