"""The points ledger: append-only entries, lots spent soonest-to-expire first, one writer at a time.

Rules (README "Ledger rules" says the same for users):

- The balance is the sum of the customer's entries. The account keeps it as a running total
  (``Account.balance``), written by every posting in the same transaction as the entries, so
  an earn reads no ledger (``earn``'s quick path); ``rebuild_balance`` recomputes it from the
  entries, and an account without one (None) is read the careful way and given one.
- Every entry has a unique ``key`` = ``"<kind>|<source>"``: a source event (a purchase, a referral,
  a complaint ticket …) posts at most one entry of a kind, however often it is replayed, and
  the store's unique index enforces it across processes.
- Writes to one customer's ledger are serialised by the customer's ``Account`` record: a batch is
  planned from what was read, then committed by writing the account with the version that was
  read (``ConflictError`` when another writer got there first: re-read, re-plan, retry). The
  account write carries the batch itself (``pending``) on a backend without transactions, so it
  is the one atomic commit point there; missing entries of the last batch are rolled forward.
  Hence two concurrent redemptions can never both pass the balance check: the balance never
  goes negative.
- Earn entries and positive adjustments are *lots* that expire ``[loyalty.expiry] days`` after
  they are credited. Redemptions and negative adjustments consume lots soonest-to-expire first
  (first in, first out when every lot lives equally long), so expiry takes only what is left
  of each lot. Points past their expiry date cannot be spent even before the sweep has
  expired them: a redemption first expires them, then checks the balance.
- A clawback names the lot it reverses. It takes what is left of that lot first, then, up to
  what the customer spent of that lot, from other lots; never more than the balance. What it
  cannot take is recorded as ``shortfall`` (the balance never goes negative).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import ConflictError, DuplicateKeyError, NotFoundError, ValidationError
from crmcore.converter import from_doc, to_doc
from crmcore.i18n import N_, msg
from crmcore.schema import personal_fields
from crmcore_loyalty.records import (
    ACCOUNTS,
    ADJUST,
    CLAWBACK,
    EARN,
    EXPIRE,
    LEDGER,
    REDEEM,
    Account,
    LedgerEntry,
    account_id,
    entry_key,
)

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_loyalty.settings import LoyaltySettings

MAX_ATTEMPTS = 25
PERSONAL = personal_fields(LedgerEntry)
Plan = Callable[["LedgerState"], list[LedgerEntry]]


@attrs.define
class Lot:
    """An earn entry (or positive adjustment) and what became of its points so far."""

    entry: LedgerEntry
    remaining: int
    spent: int = 0  # consumed by redemptions and negative adjustments
    expired: int = 0
    clawed: int = 0  # taken from this lot by clawbacks (of this lot or of others)
    recovered: int = 0  # taken from other lots by clawbacks of this lot
    requested: int = 0  # clawback asked of this lot so far (taken + shortfall)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def expires_at(self) -> datetime | None:
        return self.entry.expires_at

    def overdue(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now and self.remaining > 0


def _fifo_key(lot: Lot) -> tuple[bool, str, int, str]:
    when = lot.entry.expires_at
    return (when is None, when.isoformat() if when else "", lot.entry.seq, lot.entry.id)


@attrs.frozen
class LedgerState:
    """One customer's ledger as read: the account, the entries in order, balance and lots."""

    customer_id: str
    account: Account
    stored: bool  # whether the account exists in the store yet
    entries: tuple[LedgerEntry, ...]
    balance: int
    lots: dict[str, Lot]
    unflushed: tuple[dict, ...] = ()  # entries of the last committed batch not yet inserted

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(e.key for e in self.entries)

    def by_key(self, key: str) -> LedgerEntry | None:
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None

    def lot_for(self, source: str) -> Lot | None:
        """The lot earned by ``source``, if any."""
        entry = self.by_key(entry_key(EARN, source))
        return None if entry is None else self.lots.get(entry.id)

    def overdue(self, now: datetime) -> list[Lot]:
        """Lots past their expiry date that still hold points."""
        return sorted((lot for lot in self.lots.values() if lot.overdue(now)), key=_fifo_key)

    def available(self, now: datetime) -> int:
        """Points that can be spent at ``now`` (the balance less points past expiry)."""
        return self.balance - sum(lot.remaining for lot in self.overdue(now))


def replay(entries: Iterable[LedgerEntry]) -> tuple[tuple[LedgerEntry, ...], int, dict[str, Lot]]:
    """Order entries and compute the balance and each lot's fate (see the module rules).

    A debit that finds too few points in the lots before it (a ledger joined by a merge
    before the kept account numbered on after both: its later postings were numbered among
    the merged customer's entries) takes the rest from the lots that come after it, so the
    lots always add up to the balance."""
    ordered = tuple(sorted(entries, key=lambda e: (e.seq, e.at, e.id)))
    lots: dict[str, Lot] = {}
    balance = 0
    owed: list[tuple[LedgerEntry, Lot | None, int]] = []  # debits not covered yet
    for entry in ordered:
        balance += entry.points
        if entry.points > 0:
            lot = lots[entry.id] = Lot(entry, entry.points)
            while owed and lot.remaining:
                debit, target, need = owed[0]
                take = min(need, lot.remaining)
                lot.remaining -= take
                _book(lot, debit.kind, take)
                if debit.kind == CLAWBACK and target is not None:
                    target.recovered += take
                if take == need:
                    owed.pop(0)
                else:
                    owed[0] = (debit, target, need - take)
            continue
        need = -entry.points
        target = lots.get(entry.lot) if entry.lot else None
        if entry.kind == CLAWBACK and target is not None:
            target.requested += need + entry.shortfall
        if target is not None and target.remaining and need:
            take = min(need, target.remaining)
            target.remaining -= take
            need -= take
            _book(target, entry.kind, take)
        if not need:
            continue
        for lot in sorted((x for x in lots.values() if x.remaining), key=_fifo_key):
            take = min(need, lot.remaining)
            lot.remaining -= take
            need -= take
            _book(lot, entry.kind, take)
            if entry.kind == CLAWBACK and target is not None:
                target.recovered += take
            if not need:
                break
        if need:
            owed.append((entry, target, need))
    return ordered, balance, lots


def _book(lot: Lot, kind: str, points: int) -> None:
    if kind == EXPIRE:
        lot.expired += points
    elif kind == CLAWBACK:
        lot.clawed += points
    else:
        lot.spent += points


def numbered_to(state: LedgerState) -> int:
    """The ``seq`` the next posting numbers on from: the account's, or a higher one among the
    entries read (a merge joins another customer's entries, numbered by their own account)."""
    return max([state.account.seq, *(e.seq for e in state.entries)])


def _changed_meanwhile(customer_id: str) -> ConflictError:
    """A posting inside an outer transaction read a stale account: the caller retries."""
    return ConflictError(
        msg("customer %(customer)s: account changed meanwhile; try again", customer=customer_id)
    )


def _kept_changing(customer_id: str) -> ConflictError:
    """Every attempt at a posting read a stale account."""
    return ConflictError(
        msg(
            "customer %(customer)s: the points ledger kept changing underneath "
            "(%(attempts)s attempts); try again",
            customer=customer_id,
            attempts=MAX_ATTEMPTS,
        )
    )


class _Stale(Exception):
    """Someone else wrote this customer's account since we read it."""


class _Careful(Exception):
    """The quick path cannot post here (no kept balance): read the whole ledger instead.
    ``account`` is what the quick path read (None: no account), for the careful path's first
    look, so the account is not read twice."""

    def __init__(self, account: Account | None) -> None:
        super().__init__()
        self.account = account


_UNREAD: Any = object()


class Ledger:
    """Read and post one customer's points (see the module docstring for the rules)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._entries = crm.records(LEDGER, LedgerEntry)
        self._accounts = crm.records(ACCOUNTS, Account)

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    # -- reading ---------------------------------------------------------------------------

    def account(self, customer_id: str) -> Account | None:
        try:
            return self._accounts.get(account_id(customer_id))
        except NotFoundError:
            return None

    def state(self, customer_id: str, *, account: Account | None = _UNREAD) -> LedgerState:
        """The customer's ledger now, including a committed batch not yet fully inserted.
        ``account``: the customer's account as just read (None: none), read here if not given."""
        if account is _UNREAD:
            account = self.account(customer_id)
        stored = account is not None
        if account is None:
            account = Account(id=account_id(customer_id), customer_id=customer_id)
        entries = self._entries.find({"customer_id": customer_id})
        keys = {e.key for e in entries}
        unflushed = []
        for doc in account.pending:
            if doc["key"] in keys:
                continue
            if self._entries.find_one({"key": doc["key"]}) is None:
                entries.append(from_doc(LedgerEntry, doc))
                keys.add(doc["key"])
                unflushed.append(doc)
        ordered, balance, lots = replay(entries)
        return LedgerState(customer_id, account, stored, ordered, balance, lots, tuple(unflushed))

    def balance(self, customer_id: str) -> int:
        """The customer's points: the sum of their ledger (the account's running total
        where it keeps one)."""
        account = self.account(customer_id)
        if account is not None and self._kept(account):
            assert account.balance is not None
            return account.balance
        return self.state(customer_id).balance

    def _atomic(self) -> bool:
        return bool(self._crm.store.capabilities.transactions)

    def _kept(self, account: Account) -> bool:
        """Whether ``account``'s running balance can be trusted without reading the ledger:
        kept, and no batch of a backend without transactions that may be half inserted."""
        return account.balance is not None and not account.pending and self._atomic()

    def history(self, customer_id: str, *, limit: int | None = None) -> list[LedgerEntry]:
        """The customer's entries, newest first."""
        entries = list(reversed(self.state(customer_id).entries))
        return entries if limit is None else entries[:limit]

    def find(self, filter: dict | None = None) -> list[LedgerEntry]:
        return self._entries.find(filter)

    def accounts(self, filter: dict | None = None) -> list[Account]:
        """Accounts matching ``filter`` (several customers' at once)."""
        return self._accounts.find(filter)

    def iter(self, filter: dict | None = None) -> Iterable[LedgerEntry]:
        return self._entries.iter(filter)

    # -- posting ---------------------------------------------------------------------------

    def post(
        self, customer_id: str, plan: Plan, *, account: Account | None = _UNREAD
    ) -> list[LedgerEntry]:
        """Plan entries from the current state and commit them, retrying on a concurrent write.

        ``plan`` may raise ``ValidationError`` (nothing is written) or return ``[]``.
        ``account``: the account as just read, for the first attempt (see ``state``).
        """
        for _attempt in range(MAX_ATTEMPTS):
            if account is _UNREAD:
                state = self.state(customer_id)
            else:
                state = self.state(customer_id, account=account)
                account = _UNREAD  # a retry reads again
            drafts = plan(state)
            if not drafts:
                return []
            seq = numbered_to(state)
            entries = [attrs.evolve(d, seq=seq + i) for i, d in enumerate(drafts, start=1)]
            if state.balance + sum(e.points for e in entries) < 0:
                raise ValidationError(
                    msg(
                        "customer %(customer)s: the balance would go negative", customer=customer_id
                    )
                )
            docs = [to_doc(e) for e in entries]
            balance = state.balance + sum(e.points for e in entries)
            try:
                with self._crm.transaction(entries[0].actor):
                    self._roll_forward(state)
                    self._commit(state, seq + len(entries), self.pending_of(docs), balance)
                    for doc in docs:
                        self._insert(doc)
            except _Stale:
                continue
            return entries
        raise _kept_changing(customer_id)

    def _roll_forward(self, state: LedgerState) -> None:
        for doc in state.unflushed:
            self._insert(doc)

    def pending_of(self, docs: list[dict]) -> list[dict]:
        """What the account keeps of a batch: nothing where the store's transactions are
        atomic (the entries commit with it), else the batch without personal fields (the
        note), so nothing personal sits outside the ledger's own, erasable, field."""
        if self._atomic():
            return []
        return [{**doc, **dict.fromkeys(PERSONAL, "")} for doc in docs]

    def _commit(
        self, state: LedgerState, seq: int, docs: list[dict], balance: int, **also: Any
    ) -> None:
        try:
            if state.stored:
                self._accounts.update(state.account, seq=seq, pending=docs, balance=balance, **also)
            else:
                self._accounts.insert(
                    attrs.evolve(state.account, seq=seq, pending=docs, balance=balance, **also)
                )
        except ConflictError as exc:  # a stale version, or the account created meanwhile
            raise _Stale from exc

    def rebuild_balance(self, customer_id: str, *, actor: str) -> int:
        """Recompute the customer's running balance from their ledger and store it (the
        careful read: a half-inserted batch is rolled forward); returns the balance."""
        nested = self._crm.in_transaction()
        for _attempt in range(MAX_ATTEMPTS):
            try:
                with self._crm.transaction(actor):
                    state = self.state(customer_id)
                    if not state.entries and not state.stored:
                        return 0  # nothing posted, nothing to keep
                    account = state.account
                    seq = numbered_to(state)
                    settled = not state.unflushed and not (account.pending and self._atomic())
                    if settled and account.balance == state.balance and account.seq == seq:
                        return state.balance
                    self._roll_forward(state)
                    pending = [] if self._atomic() else account.pending
                    self._commit(state, seq, pending, state.balance)
                    return state.balance
            except _Stale:
                if nested:
                    raise _changed_meanwhile(customer_id) from None
        raise ConflictError(
            msg(
                "customer %(customer)s: the points ledger kept changing underneath; try again",
                customer=customer_id,
            )
        )

    def rebuild_balances(self, *, actor: str) -> tuple[int, int]:
        """Recompute every customer's running balance where it differs from their ledger, or
        whose account numbers below an entry of theirs (a merge before the kept account
        numbered on after the joined entries): one pass over the ledger, then
        ``rebuild_balance`` for each;
        ``(customers with an account or entries, balances written)``."""
        sums: dict[str, int] = {}
        seqs: dict[str, int] = {}
        for doc in self._entries.collection.iter():
            who = doc["customer_id"]
            sums[who] = sums.get(who, 0) + doc["points"]
            seqs[who] = max(seqs.get(who, 0), doc.get("seq", 0))
        own = {a.customer_id: a for a in self._accounts.iter() if a.id == account_id(a.customer_id)}
        fixed = 0
        customers = sorted(set(sums) | set(own))
        for customer_id in customers:
            account = own.get(customer_id)
            if (
                account is not None
                and not account.pending
                and account.balance == sums.get(customer_id, 0)
                and account.seq >= seqs.get(customer_id, 0)
            ):
                continue
            before = account.balance if account is not None else None
            if self.rebuild_balance(customer_id, actor=actor) != before:
                fixed += 1
        return len(customers), fixed

    def _insert(self, doc: dict) -> None:
        # A duplicate is already there: rolled forward by another reader, or posted elsewhere.
        with contextlib.suppress(DuplicateKeyError):
            self._entries.collection.insert(doc)

    def insert_entries(self, docs: list[dict]) -> None:
        """Insert entries at once (a history replay's); one already there is left as is."""
        if docs:
            self._entries.collection.insert_many(docs)

    def update_account(self, account: Account, stored: bool, **changes: Any) -> Account:
        """Write account fields with the version read (``ConflictError`` when stale). With no
        changes it only claims the account (bumps its version): a per-customer lock."""
        try:
            if stored:
                return self._accounts.update(account, **changes)
            return self._accounts.insert(attrs.evolve(account, **changes))
        except ConflictError as exc:
            raise ConflictError(
                msg(
                    "customer %(customer)s: account changed meanwhile", customer=account.customer_id
                )
            ) from exc

    # -- the operations --------------------------------------------------------------------

    def entry(
        self,
        state: LedgerState,
        *,
        kind: str,
        points: int,
        source: str,
        reason: str,
        actor: str,
        now: datetime,
        expires_at: datetime | None = None,
        lot: str | None = None,
        ref: str | None = None,
        shortfall: int = 0,
        note: str = "",
    ) -> LedgerEntry:
        return LedgerEntry(
            id=self._crm.new_id("lpe_"),
            customer_id=state.customer_id,
            kind=kind,
            points=points,
            source=source,
            key=entry_key(kind, source),
            reason=reason,
            at=now,
            actor=actor,
            expires_at=expires_at,
            lot=lot,
            ref=ref,
            shortfall=shortfall,
            note=note,
        )

    def lifetime(self, now: datetime) -> datetime | None:
        """When points credited at ``now`` expire (None: never)."""
        days = self.settings.expiry.days
        return now + timedelta(days=days) if days else None

    def _expiries(self, state: LedgerState, *, actor: str, now: datetime) -> list[LedgerEntry]:
        return [
            self.entry(
                state,
                kind=EXPIRE,
                points=-lot.remaining,
                source=f"expire:{lot.id}",
                reason=lot.entry.reason,
                actor=actor,
                now=now,
                lot=lot.id,
                note=N_("points past their expiry date"),
            )
            for lot in state.overdue(now)
        ]

    def earn(
        self,
        customer_id: str,
        *,
        source: str,
        points: int | Callable[[LedgerState], int],
        reason: str,
        actor: str,
        ref: str | None = None,
        note: str = "",
        now: datetime | None = None,
        guard: Callable[[LedgerState], bool] | None = None,
        also: Callable[[Account], dict[str, Any]] | None = None,
    ) -> LedgerEntry | None:
        """Credit ``points`` for ``source`` once; None if it already earned (or points <= 0).

        ``points`` may be a function of the state the entry is posted on (points that depend
        on the account's tier: read once, under the same lock as the write).
        ``guard`` (optional) sees the state the entry would be posted on and may veto it (a cap:
        checked under the same lock as the write, so concurrent writers cannot both pass).
        ``also`` (optional): more fields of the account, from the account as read under the
        lock, written with the posting when it takes the quick path (a purchase's spend
        totals: one account write); called only for the write that commits, if any.
        """
        when = now or self._crm.now()
        key = entry_key(EARN, source)

        def lot(state: LedgerState, credit: int) -> LedgerEntry:
            return self.entry(
                state,
                kind=EARN,
                points=credit,
                source=source,
                reason=reason,
                actor=actor,
                now=when,
                expires_at=self.lifetime(when),
                ref=ref,
                note=note,
            )

        read: Account | None = _UNREAD
        if guard is None:
            try:
                return self._earn_quickly(customer_id, actor, points, lot, also)
            except _Careful as careful:
                read = careful.account

        def plan(state: LedgerState) -> list[LedgerEntry]:
            if key in state.keys:
                return []
            credit = points(state) if callable(points) else points
            if credit <= 0:
                return []
            if guard is not None and not guard(state):
                return []
            return [lot(state, credit)]

        written = self.post(customer_id, plan, account=read)
        return written[0] if written else None

    def _earn_quickly(
        self,
        customer_id: str,
        actor: str,
        points: int | Callable[[LedgerState], int],
        lot: Callable[[LedgerState, int], LedgerEntry],
        also: Callable[[Account], dict[str, Any]] | None = None,
    ) -> LedgerEntry | None:
        """An earn on the account's running balance, reading no ledger: the entry is
        inserted first (its unique key refuses a source that earned already, writing
        nothing), then the account with the new balance. ``_Careful`` (nothing written)
        where the account keeps no balance: no account yet (a merge may have moved entries
        to this customer before accounts kept balances), or one from before them."""
        ahead = self.account(customer_id)
        if ahead is None or not self._kept(ahead):
            raise _Careful(ahead)  # decided before any transaction: none fails for it
        nested = self._crm.in_transaction()
        for _attempt in range(MAX_ATTEMPTS):
            try:
                with self._crm.transaction(actor):
                    account = self.account(customer_id)  # under the write lock
                    if account is None or not self._kept(account):
                        raise _Careful(_UNREAD)
                    assert account.balance is not None
                    # the state ``points`` sees: the account (its tier), no entries read
                    state = LedgerState(customer_id, account, True, (), account.balance, {})
                    credit = points(state) if callable(points) else points
                    if credit <= 0:
                        return None
                    entry = attrs.evolve(lot(state, credit), seq=account.seq + 1)
                    try:
                        self._entries.collection.insert(to_doc(entry))
                    except DuplicateKeyError:
                        return None  # this source earned already (a replayed event)
                    more = also(account) if also is not None else {}
                    self._commit(state, entry.seq, [], account.balance + credit, **more)
                    return entry
            except _Stale:
                # Only a read outside this transaction can be stale; inside an outer one the
                # insert above stays with it, so the whole operation must fail and retry.
                if nested:
                    raise _changed_meanwhile(customer_id) from None
        raise _kept_changing(customer_id)

    def redeem(
        self,
        customer_id: str,
        points: int,
        *,
        actor: str,
        reference: str | None = None,
        note: str = "",
        now: datetime | None = None,
    ) -> LedgerEntry:
        """Spend ``points``; refused (nothing written) when more than the spendable balance.

        With a ``reference`` (an order number …) the redemption is idempotent: repeating it
        returns the first one instead of spending twice.
        """
        if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
            raise ValidationError(
                msg(
                    "points to redeem must be a whole number > 0, got %(points)s",
                    points=repr(points),
                ),
                field="points",
            )
        when = now or self._crm.now()
        source = (
            f"redeem:{customer_id}:{reference}"
            if reference
            else f"redeem:{self._crm.new_id('red_')}"
        )
        key = entry_key(REDEEM, source)
        found: list[LedgerEntry] = []

        def plan(state: LedgerState) -> list[LedgerEntry]:
            existing = state.by_key(key)
            if existing is not None:
                if -existing.points != points:
                    raise ValidationError(
                        msg(
                            "reference %(reference)s was already used to redeem %(points)s points",
                            reference=repr(reference),
                            points=-existing.points,
                        ),
                        field="reference",
                    )
                found.append(existing)
                return []
            available = state.available(when)
            if points > available:
                raise ValidationError(
                    msg(
                        "cannot redeem %(points)s points: customer %(customer)s has "
                        "%(available)s available",
                        points=points,
                        customer=customer_id,
                        available=available,
                    ),
                    field="points",
                )
            return [
                *self._expiries(state, actor=actor, now=when),
                self.entry(
                    state,
                    kind=REDEEM,
                    points=-points,
                    source=source,
                    reason=REDEEM,
                    actor=actor,
                    now=when,
                    ref=reference,
                    note=note,
                ),
            ]

        written = self.post(customer_id, plan)
        return written[-1] if written else found[0]

    def adjust(
        self,
        customer_id: str,
        points: int,
        *,
        actor: str,
        note: str,
        reference: str | None = None,
        now: datetime | None = None,
    ) -> LedgerEntry:
        """A manual correction (± points) with a stated reason; never below zero."""
        if isinstance(points, bool) or not isinstance(points, int) or points == 0:
            raise ValidationError(
                msg(
                    "an adjustment must be a non-zero whole number, got %(points)s",
                    points=repr(points),
                ),
                field="points",
            )
        if not isinstance(note, str) or not note.strip():
            raise ValidationError(msg("say why: an adjustment needs a reason"), field="reason")
        when = now or self._crm.now()
        source = (
            f"adjust:{customer_id}:{reference}"
            if reference
            else f"adjust:{self._crm.new_id('adj_')}"
        )
        key = entry_key(ADJUST, source)
        found: list[LedgerEntry] = []

        def plan(state: LedgerState) -> list[LedgerEntry]:
            existing = state.by_key(key)
            if existing is not None:
                if existing.points != points:
                    raise ValidationError(
                        msg(
                            "reference %(reference)s was already used for an adjustment of "
                            "%(points)s",
                            reference=repr(reference),
                            points=existing.points,
                        ),
                        field="reference",
                    )
                found.append(existing)
                return []
            expiries: list[LedgerEntry] = []
            if points < 0:
                available = state.available(when)
                if -points > available:
                    raise ValidationError(
                        msg(
                            "cannot remove %(points)s points: customer %(customer)s has "
                            "%(available)s available",
                            points=-points,
                            customer=customer_id,
                            available=available,
                        ),
                        field="points",
                    )
                expiries = self._expiries(state, actor=actor, now=when)
            return [
                *expiries,
                self.entry(
                    state,
                    kind=ADJUST,
                    points=points,
                    source=source,
                    reason=ADJUST,
                    actor=actor,
                    now=when,
                    expires_at=self.lifetime(when) if points > 0 else None,
                    ref=reference,
                    note=note.strip(),
                ),
            ]

        written = self.post(customer_id, plan)
        return written[-1] if written else found[0]

    def clawback(
        self,
        customer_id: str,
        source: str,
        *,
        cause: str,
        actor: str,
        requested: int | Callable[[Lot], int] | None = None,
        note: str = "",
        now: datetime | None = None,
    ) -> LedgerEntry | None:
        """Take back (up to ``requested`` of) the points that ``source`` earned, once per
        ``cause``. None when ``source`` earned nothing or was already taken back in full.

        ``requested`` may be a function of the lot as it stands under the write lock (for
        refunds: what the remaining purchase no longer earns). None: everything still open.
        """
        when = now or self._crm.now()
        earned_key = entry_key(EARN, source)

        def plan(state: LedgerState) -> list[LedgerEntry]:
            earned = state.by_key(earned_key)
            if earned is None:
                return []
            clawback_source = f"clawback:{earned.id}:{cause}"
            if entry_key(CLAWBACK, clawback_source) in state.keys:
                return []
            lot = state.lots[earned.id]
            open_points = earned.points - lot.requested
            asked = requested(lot) if callable(requested) else requested
            want = open_points if asked is None else min(asked, open_points)
            if want <= 0:
                return []
            take_lot = min(want, lot.remaining)
            recoverable = max(0, lot.spent - lot.recovered)
            take_other = min(want - take_lot, recoverable, state.balance - lot.remaining)
            shortfall = want - take_lot - take_other
            return [
                self.entry(
                    state,
                    kind=CLAWBACK,
                    points=-(take_lot + take_other),
                    source=clawback_source,
                    reason=earned.reason,
                    actor=actor,
                    now=when,
                    lot=earned.id,
                    ref=earned.ref,
                    shortfall=shortfall,
                    note=note,
                )
            ]

        written = self.post(customer_id, plan)
        return written[0] if written else None

    def expire_due(
        self, customer_id: str, *, actor: str, now: datetime | None = None
    ) -> list[LedgerEntry]:
        """Expire every lot of the customer past its date (idempotent: one entry per lot)."""
        when = now or self._crm.now()
        return self.post(customer_id, lambda state: self._expiries(state, actor=actor, now=when))

    def requested_clawback(
        self, state: LedgerState, reasons: Iterable[str], since: datetime
    ) -> int:
        """Points requested back (taken + shortfall) from lots of ``reasons`` since ``since``."""
        wanted = set(reasons)
        return sum(
            -e.points + e.shortfall
            for e in state.entries
            if e.kind == CLAWBACK and e.reason in wanted and e.at >= since
        )
