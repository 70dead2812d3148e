"""Replaying history: past interactions logged in bulk, as if they had been logged live.

Rows are replayed in time order, each through ``crm_interaction_logged`` with the CRM's clock
at the row's time (``crm.replaying`` is true, ``crm.wall_now()`` gives the present), so every
plugin's signals, grades, tiers and ledgers come out as they would have live, while reactions
that create work for people skip events older than their window.

A plugin implementing ``crm_interactions_replayed`` folds batches instead: customers that a
plugin names in ``crm_replay_per_row`` (they depend on other customers, or on another plugin's
per-row reaction) go first, row by row through every plugin in time order; the others come in
batches of whole customers (each customer's rows in time order: they are independent of each
other), stored row by row with the per-row calls of the plugins without the batch hook, then
handed to the batch hook at once.

Rows are written in batches, one transaction each. Each row's interaction id is derived from
the row (its ``id`` column, else its content and how many identical rows came before it in
the file), so a re-run, or a run resumed after the process was killed, skips what is stored
and adds nothing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import builtin
from crmcore.compactdocs import without_defaults
from crmcore.converter import iso, to_doc
from crmcore.entities import Customer, Interaction
from crmcore.errors import CrmError, ValidationError
from crmcore.ids import _encode
from crmcore.security import Resource

if TYPE_CHECKING:
    from crmcore.app import CRM

ID_PREFIX = "int_"


@attrs.frozen
class HistoryRow:
    """One checked row: its line, customer, interaction fields (``kind``, ``occurred_at`` …),
    and the file's own key for it (an ``id`` column), if any."""

    line: int
    customer_id: str
    fields: dict[str, Any]
    key: str | None = None
    created_at: datetime | None = None


@attrs.frozen
class ReplayResult:
    ids: tuple[str, ...]
    skipped: int  # rows already stored (an earlier run, or the same row twice)
    errors: tuple[tuple[int, str], ...]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def row_ids(rows: Sequence[HistoryRow]) -> list[str]:
    """The interaction id of each row: ordered by the row's time, the same on every run."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        when: datetime = row.fields["occurred_at"]
        if row.key and row.key.startswith(ID_PREFIX) and len(row.key) == len(ID_PREFIX) + 26:
            out.append(row.key)  # an exported interaction keeps its id
            continue
        if row.key:
            content = "key\0" + row.key
        else:
            content = json.dumps(
                [row.customer_id, _plain(row.fields)], sort_keys=True, ensure_ascii=False
            )
            seen[content] = seen.get(content, 0) + 1
            content += f"\0{seen[content]}"  # the n-th identical row is another event
        digest = int.from_bytes(hashlib.blake2b(content.encode(), digest_size=10).digest(), "big")
        ms = max(0, int(when.timestamp() * 1000))
        out.append(ID_PREFIX + _encode(ms, 10) + _encode(digest, 16))
    return out


def replay(
    crm: CRM,
    rows: Sequence[HistoryRow],
    *,
    actor: str,
    atomic: bool = False,
    batch_size: int = 500,
    on_written: Callable[[int], None] | None = None,
    fold: bool = True,
) -> ReplayResult:
    """Log ``rows`` as history (see the module docstring). A batch that fails is rolled back
    and replayed row by row, so each bad row is reported once (``(line, message)``) and the
    others are written; with ``atomic``, the first failure rolls everything back and raises.
    ``fold=False`` sends every row to every plugin through ``crm_interaction_logged`` (the
    per-row path the batch hook must equal; slower)."""
    ids = row_ids(rows)
    order = sorted(range(len(rows)), key=lambda i: rows[i].fields["occurred_at"])
    coll = crm.store.collection(builtin.INTERACTIONS)
    allowed: set[str] = set()
    written: list[str] = []
    errors: list[tuple[int, str]] = []
    batch_size = max(1, batch_size)
    folded = fold and crm.events.listened(crm.events.interactions_replayed)
    per_row = crm.plugins.crm_interaction_logged_per_row()

    # rows stored already (an earlier run, or the same row twice) are skipped
    todo: list[int] = []
    seen: set[str] = set()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        wanted = sorted({ids[i] for i in chunk} - seen)
        present = {d["id"] for d in coll.find({"id": {"$in": wanted}})} if wanted else set()
        for i in chunk:
            if ids[i] not in present and ids[i] not in seen:
                todo.append(i)
            seen.add(ids[i])
    skipped = len(rows) - len(todo)

    def customer_of(row: HistoryRow) -> Customer:
        customer = crm.customers.get(row.customer_id)
        if customer.id not in allowed:
            crm.authorize(
                actor,
                "interaction.create",
                Resource("interaction", None, customer.owner, customer.id),
            )
            allowed.add(customer.id)
        return customer

    built: dict[int, Interaction] = {}

    def interaction_of(i: int, clock: Any) -> Interaction:
        if i in built:
            return built.pop(i)
        row = rows[i]
        return Interaction(
            id=ids[i],
            customer_id=row.customer_id,
            created_at=row.created_at or clock.wall.now(),
            created_by=actor,
            version=1,  # as inserted
            **row.fields,
        )

    def write(clock: Any, batch: Sequence[int], folding: bool) -> list[str]:
        """Store ``batch`` (in time order), each row followed by its per-row reactions: of
        every plugin, or (``folding``) of the plugins without the batch hook, the batch hook
        then getting every row at once."""
        if folding and per_row is None:
            return write_at_once(clock, batch)
        stored_events = []
        customers: dict[str, Customer] = {}
        for i in batch:
            if folding and per_row is None and rows[i].customer_id in customers:
                customer = customers[rows[i].customer_id]  # nothing reacted to the last row
            else:
                customer = customer_of(rows[i])
            customers.setdefault(customer.id, customer)
            interaction = interaction_of(i, clock)
            clock.set(interaction.occurred_at)
            inserted = coll.insert(without_defaults(Interaction, to_doc(interaction)))
            stored = interaction
            if inserted["version"] != interaction.version:  # pragma: no cover - a new record
                stored = attrs.evolve(interaction, version=inserted["version"])
            if not folding:
                crm.events.interaction_logged(actor=actor, interaction=stored, customer=customer)
            elif per_row is not None:
                crm.events.replayed_row(per_row, actor=actor, interaction=stored, customer=customer)
            stored_events.append(stored)
        if folding and stored_events:
            crm.events.interactions_replayed(
                actor=actor, events=tuple(stored_events), customers=customers
            )
        return [e.id for e in stored_events]

    def write_at_once(clock: Any, batch: Sequence[int]) -> list[str]:
        """``write`` when no plugin reacts row by row: the rows stored in one bulk insert,
        then the batch hook."""
        customers: dict[str, Customer] = {}
        events = []
        for i in batch:
            if rows[i].customer_id not in customers:
                customers[rows[i].customer_id] = customer_of(rows[i])
            events.append(interaction_of(i, clock))
        result = coll.insert_many([without_defaults(Interaction, to_doc(e)) for e in events])
        if result.errors:  # rolled back with the batch, which is then tried row by row
            raise ValidationError(result.errors[0].message)
        clock.set(events[-1].occurred_at)
        crm.events.interactions_replayed(actor=actor, events=tuple(events), customers=customers)
        return [e.id for e in events]

    def batches(clock: Any) -> Iterator[tuple[list[int], bool]]:
        """The batches to write: the rows of customers that go row by row in time order,
        then the others a few whole customers at a time (each customer's rows in order)."""
        if not folded:
            for start in range(0, len(todo), batch_size):
                yield todo[start : start + batch_size], False
            return
        customers: dict[str, Customer] = {}
        unknown: set[str] = set()
        for i in todo:
            cid = rows[i].customer_id
            if cid not in customers and cid not in unknown:
                try:
                    customers[cid] = customer_of(rows[i])
                except CrmError:
                    unknown.add(cid)  # reported row by row, with its line
        for i in todo:
            if rows[i].customer_id in customers:
                built[i] = interaction_of(i, clock)
        events = list(built.values())
        wanted = crm.plugins.crm_replay_per_row(crm=crm, events=events, customers=customers)
        one_by_one = unknown.union(*wanted.values())
        timed = [i for i in todo if rows[i].customer_id in one_by_one]
        for start in range(0, len(timed), batch_size):
            yield timed[start : start + batch_size], False
        by_customer: dict[str, list[int]] = {}
        for i in todo:
            if rows[i].customer_id not in one_by_one:
                by_customer.setdefault(rows[i].customer_id, []).append(i)
        batch: list[int] = []
        for mine in by_customer.values():
            batch.extend(mine)
            if len(batch) >= batch_size:
                yield batch, True
                batch = []
        if batch:
            yield batch, True

    whole = crm.transaction(actor) if atomic else contextlib.nullcontext()
    with crm.replay_clock() as clock, whole:
        for batch, folding in batches(clock):
            try:
                with crm.transaction(actor):
                    batch_ids = write(clock, batch, folding)
                written.extend(batch_ids)
            except CrmError as exc:
                if atomic:
                    raise
                first_error = exc
                for i in batch:  # the batch rolled back: again one row at a time
                    try:
                        with crm.transaction(actor):
                            written.extend(write(clock, [i], folding))
                    except CrmError as row_exc:
                        errors.append((rows[i].line, str(row_exc)))
                if not errors:  # pragma: no cover - a conflict that went away on retry
                    crm.log.debug("history batch retried", reason=str(first_error))
            if on_written:
                on_written(len(batch))
        if on_written and skipped:
            on_written(skipped)
    return ReplayResult(tuple(written), skipped, tuple(errors))
