"""Actors, roles and the default permission policy.

Every operation runs as an actor (a name). With ``[security] enforce = true``, the core asks the
``crm_authorize`` hook whether that actor may perform an action (``"customer.update"``) on a
resource; a refusal raises ``PermissionDenied`` and is itself audited. The default policy:

- ``admin`` and system actors (``[security] system_actors``, e.g. ``worker:*``): everything;
- ``auditor``: read-only (``*.read``, ``*.export``), the audit trail included;
- ``manager``: resources whose owner is in the manager's department;
- ``shift_lead``: resources whose owner is in the lead's team;
- ``agent``: their own customers, tasks assigned to them, and unowned resources (first
  contact); for another rep's customer, reading it and logging contacts while holding an open
  task for that customer (covering a colleague, a shift handover).

Only ``admin`` may ``customer.forget``; only ``auditor`` and ``admin`` may ``audit.read``.
Administrative actions (``ADMIN_ACTIONS``: the store's check, repair, compaction, backup and
migration, the configuration, the audit trail's anchor, encryption status and rotation) are
for admins, and those that only read are for auditors too. Actors come from
``[security.actors.<name>]`` (role, team, department) or from a plugin's ``crm_actor`` hook (for
example a rep roster).

System actor names (``[security] system_actors``) are reserved for crmcore's own processes:
``crm worker`` acts as ``worker:<name>`` and plugins reacting to an event act under the
permission of what caused it, but nobody claims such a name at the command line
(``reserved_actor``).
"""

from __future__ import annotations

import enum
import fnmatch
import unicodedata
from typing import Any, Protocol

import attrs

from crmcore.errors import ValidationError
from crmcore.schema import enum_converter


class Role(enum.Enum):
    AGENT = "agent"
    SHIFT_LEAD = "shift_lead"
    MANAGER = "manager"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"


READ_VERBS = frozenset({"read", "export"})
# Administrative actions -> whether they only read (then auditors may do them too); every one
# is for admins. docs/security.md lists them with the commands that ask for them.
ADMIN_ACTIONS: dict[str, bool] = {
    "store.check": True,  # crm check
    "store.repair": False,  # crm check --repair
    "store.compact": False,  # crm compact
    "store.backup": False,  # crm backup: a copy of every record, personal data included
    "store.migrate": False,  # crm migrate
    "config.read": True,  # crm config show
    "config.write": False,  # crm init --force over an existing configuration
    "audit.anchor": True,  # crm audit anchor
    "audit.archive": False,  # crm audit archive (moves entries out of the store)
    "encryption.read": True,  # crm encryption status
    "encryption.rotate": False,  # crm encryption rotate
    "encryption.seal": False,  # crm encryption seal
    "user.read": True,  # crm user list (the workspace's sign-in accounts)
    "user.write": False,  # crm user add / disable / password
}
MAX_ACTOR_LENGTH = 200
# What an agent may do for another rep's customer while holding an open task for them.
WORK_ON_ASSIGNED = frozenset({"customer.read", "interaction.read", "interaction.create"})


_ROLE = enum_converter(Role, "role")


def _role(value: Role | str) -> Role:
    return _ROLE(value)  # a named converter: mypy checks its type


@attrs.frozen
class Actor:
    """Who is acting, with what role, in which team and department."""

    name: str
    role: Role = attrs.field(converter=_role)
    team: str | None = None
    department: str | None = None


@attrs.frozen
class Resource:
    """What an action is on: its kind and id, and the rep responsible for it (``owner``)."""

    kind: str
    id: str | None = None
    owner: str | None = None
    customer_id: str | None = None


@attrs.frozen
class ActorSettings:
    """``[security.actors.<name>]``."""

    role: str = attrs.field(validator=lambda _i, a, v: _check_role(a, v))
    team: str | None = None
    department: str | None = None


def _check_role(attribute: attrs.Attribute, value: str) -> None:
    if value not in {r.value for r in Role if r is not Role.SYSTEM}:
        allowed = ", ".join(r.value for r in Role if r is not Role.SYSTEM)
        raise ValidationError(f"unknown role {value!r} (allowed: {allowed})", field=attribute.name)


@attrs.frozen
class SecuritySettings:
    """``[security]``: whether permissions are enforced, who the actors are."""

    enforce: bool = False
    system_actors: list[str] = attrs.field(factory=lambda: ["system", "worker:*"])
    actors: dict[str, ActorSettings] = attrs.field(factory=dict)


def directory_actor(settings: SecuritySettings, name: str) -> Actor | None:
    """The actor called ``name`` according to the configuration, or None."""
    if is_system_actor(settings, name):
        return Actor(name, Role.SYSTEM)
    entry = settings.actors.get(name)
    if entry is None:
        return None
    return Actor(name, entry.role, entry.team, entry.department)


def is_system_actor(settings: SecuritySettings, name: str) -> bool:
    """Whether ``name`` matches one of ``[security] system_actors`` (``worker:*`` …)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.system_actors)


def check_actor_name(name: str, source: str) -> str:
    """``name`` stripped, if it can name an actor; else a ``ValidationError`` naming
    ``source`` (``--as``, ``$CRM_ACTOR`` …): empty, not valid text (lone surrogates), control
    or formatting characters (NUL, ESC, bidi overrides …), or over 200 characters."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{source} needs a name; it is empty", field="actor")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{source} is not valid text (it cannot be encoded as UTF-8); "
            "name the actor in plain text",
            field="actor",
        ) from None
    bad = next((ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn")), None)
    if bad is not None:
        raise ValidationError(
            f"{source} holds the control or formatting character "
            f"U+{ord(bad):04X}; name the actor in plain text",
            field="actor",
        )
    if len(name) > MAX_ACTOR_LENGTH:
        raise ValidationError(
            f"{source} is longer than {MAX_ACTOR_LENGTH} characters", field="actor"
        )
    return name.strip()


def reserved_actor(settings: SecuritySettings, name: str, source: str) -> str | None:
    """Why ``name`` may not be claimed from ``source``, or None: a system actor's name is
    reserved for crmcore's own processes."""
    if not is_system_actor(settings, name):
        return None
    return (
        f"{source} {name!r} is reserved for crmcore's own processes (it matches "
        f"[security] system_actors {settings.system_actors}); act under your own name "
        "with --as NAME (an admin under [security.actors] for maintenance)"
    )


class _OpenTasks(Protocol):
    def open_for(self, customer_id: str, *, kind: str | None = None) -> list[Any]: ...


class PolicyContext(Protocol):
    """What the default policy reads: actors by name, and a customer's open tasks (the CRM)."""

    def actor(self, name: str) -> Actor | None: ...

    @property
    def tasks(self) -> _OpenTasks: ...


def _assigned(crm: PolicyContext, name: str, customer_id: str | None) -> bool:
    if customer_id is None:
        return False
    return any(t.assignee == name for t in crm.tasks.open_for(customer_id))


def default_policy(
    crm: PolicyContext, actor: Actor, action: str, resource: Resource
) -> tuple[bool, str]:
    """The built-in decision and, when refusing, why."""
    verb = action.rsplit(".", 1)[-1]
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return True, ""
    if action == "audit.read":
        return actor.role is Role.AUDITOR, "only auditors and admins read the audit trail"
    if action == "customer.forget":
        return False, "only admins erase customer data"
    if action == "report.read" and actor.role is Role.AGENT:
        return False, "the team's figures are for shift leads, managers and auditors"
    if action in ADMIN_ACTIONS:
        if ADMIN_ACTIONS[action]:
            return actor.role is Role.AUDITOR, "it is for admins and auditors"
        return False, "it is for admins"
    if actor.role is Role.AUDITOR:
        return verb in READ_VERBS, "auditors are read-only"
    owner = resource.owner
    if owner is None or owner == actor.name:
        return True, ""
    if actor.role is Role.AGENT:
        if action in WORK_ON_ASSIGNED and _assigned(crm, actor.name, resource.customer_id):
            return True, ""
        return False, f"it belongs to {owner}, not to {actor.name}"
    other = crm.actor(owner)
    if actor.role is Role.SHIFT_LEAD:
        same = other is not None and actor.team is not None and other.team == actor.team
        return same, f"its owner {owner} is not in team {actor.team}"
    if actor.role is Role.MANAGER:
        same = (
            other is not None
            and actor.department is not None
            and other.department == actor.department
        )
        return same, f"its owner {owner} is not in department {actor.department}"
    return False, f"role {actor.role.value} has no permissions"
