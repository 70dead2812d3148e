"""The complaints API: ``Complaints(crm)``, used by the CLI, the worker and host applications.

Every change reads the ticket, checks the status machine, and writes with the version it read:
if someone else changed the ticket meanwhile the write raises ``ConflictError`` naming the
ticket, and nothing is overwritten. Pass the ``Ticket`` you read (rather than its id) to have
your read version checked. Each change leaves a trace in ``complaints.traces`` and runs in one
store transaction with the hooks it fires.

``Complaints`` gathers in one object the parts the flow is made of, each in its module:
``tickets`` (the ticket book: reading, permission checks, version-checked writes, traces),
``intake`` (registering), ``lifecycle`` (the status machine and the callback), ``escalation``
(SLA state, the ladder and the worker's sweep), ``improvement`` (improvement actions) and
``outbox`` (notifications).
"""

from __future__ import annotations

from crmcore import CRM
from crmcore.stash import StashKey
from crmcore_complaints.escalation import WAKE_BATCH, Escalation
from crmcore_complaints.improvement import ImprovementActions
from crmcore_complaints.intake import Intake, perks_of
from crmcore_complaints.lifecycle import Lifecycle
from crmcore_complaints.names import (
    SECTION,
    TASK_SOURCE,
    approval_key,
    callback_key,
    escalation_key,
    improvement_key,
)
from crmcore_complaints.outbox import Notifier
from crmcore_complaints.tickets import UNRESOLVED_STATUSES, TicketBook, as_priority

__all__ = [
    "SECTION",
    "TASK_SOURCE",
    "UNRESOLVED_STATUSES",
    "WAKE_BATCH",
    "Complaints",
    "approval_key",
    "as_priority",
    "callback_key",
    "escalation_key",
    "improvement_key",
    "perks_of",
]


_API: StashKey[Complaints] = StashKey()  # one per CRM: see Complaints.of


class Complaints:
    """Complaint tickets from registration to archive (DOMAIN §5).

    Each method is the named part's own (documented there): ``get``, ``find``, ``history`` …
    are ``TicketBook``'s, ``open`` is ``Intake``'s, ``judge`` … ``record_callback`` are
    ``Lifecycle``'s, ``state`` and ``sweep`` are ``Escalation``'s, ``add_action`` and
    ``close_action`` are ``ImprovementActions``' ``add`` and ``close``.
    """

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.notifier = Notifier(crm)
        self.book = TicketBook(crm, self.notifier)
        self.intake = Intake(self.book)
        self.lifecycle = Lifecycle(self.book, self.notifier)
        self.escalation = Escalation(self.book, self.lifecycle, self.notifier)
        self.improvement = ImprovementActions(crm, self.book)
        # what the parts share, and the records behind them
        self.settings = self.book.settings
        self.zone = self.book.zone
        self.scheduler = self.book.scheduler
        self.log = self.book.log
        self.tickets = self.book.tickets
        self.traces = self.book.traces
        self.outbox = self.notifier.records
        self.actions = self.improvement.records
        # reading
        self.get = self.book.get
        self.involved = self.book.involved
        self.authorize = self.book.authorize
        self.find = self.book.find
        self.history = self.book.history
        self.department_load = self.book.department_load
        self.state = self.escalation.state
        self.escalation_traces = self.escalation.escalation_traces
        self.sla_elapsed = self.escalation.sla_elapsed
        # registering
        self.open = self.intake.open
        self.register_from_interaction = self.intake.register_from_interaction
        # the status machine
        self.judge = self.lifecycle.judge
        self.dispatch = self.lifecycle.dispatch
        self.respond = self.lifecycle.respond
        self.chase = self.lifecycle.chase
        self.propose = self.lifecycle.propose
        self.approve = self.lifecycle.approve
        self.resolve = self.lifecycle.resolve
        self.close = self.lifecycle.close
        self.reopen = self.lifecycle.reopen
        self.hand_over = self.lifecycle.hand_over
        self.wait_on_customer = self.lifecycle.wait_on_customer
        self.resume = self.lifecycle.resume
        self.note = self.lifecycle.note
        # callbacks and satisfaction
        self.record_callback = self.lifecycle.record_callback
        self.apply_callback = self.lifecycle.apply_callback
        # the worker
        self.due_for_wake = self.escalation.due_for_wake
        self.sweep = self.escalation.sweep
        self.wake = self.escalation.wake
        # improvement actions
        self.add_action = self.improvement.add
        self.close_action = self.improvement.close
        self.weekly_rate = self.improvement.weekly_rate
        # the default notifier
        self.deliver_to_outbox = self.notifier.deliver

    @classmethod
    def of(cls, crm: CRM) -> Complaints:
        """The API of ``crm``, built once per CRM (kept in ``crm.stash``): hooks use this."""
        return crm.stash.get_or_build(_API, lambda: cls(crm))
