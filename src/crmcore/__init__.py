"""crmcore: a small plugin-based CRM core (customers, interactions, tasks) on pluggy.

Host applications start with ``open_crm``; plugin authors with ``hookimpl`` and the types in
``crmcore.effects``, ``crmcore.registry`` and ``crmcore.storage``.

Each name below is imported from its module on first use (PEP 562): ``import crmcore`` or a
plugin's ``from crmcore import hookimpl`` costs only the modules actually asked for, which
keeps ``crm --help`` and registering plugins cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore.app import CRM, TickReport, open_crm
    from crmcore.clock import Clock, ManualClock, SystemClock
    from crmcore.config import Config
    from crmcore.effects import (
        Action,
        Effects,
        ExtPatch,
        InteractionDraft,
        RecordWrite,
        TaskDraft,
        TaskUpdate,
    )
    from crmcore.entities import (
        Channel,
        Customer,
        CustomerStatus,
        Gender,
        Interaction,
        Priority,
        Task,
        TaskStatus,
    )
    from crmcore.errors import (
        ConfigError,
        ConflictError,
        CrmError,
        DuplicateKeyError,
        NotFoundError,
        PermissionDenied,
        PluginError,
        StorageError,
        TransientConflict,
        ValidationError,
    )
    from crmcore.hookspecs import hookimpl, hookspec
    from crmcore.registry import (
        ApiParam,
        ApiRequest,
        ApiRoute,
        Kinds,
        LazyCommand,
        ReportSection,
        ReportWindow,
        SettingsSpec,
        SummaryLine,
    )
    from crmcore.retry import retrying

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "CRM": "crmcore.app",
    "TickReport": "crmcore.app",
    "open_crm": "crmcore.app",
    "Clock": "crmcore.clock",
    "ManualClock": "crmcore.clock",
    "SystemClock": "crmcore.clock",
    "Config": "crmcore.config",
    "Action": "crmcore.effects",
    "Effects": "crmcore.effects",
    "ExtPatch": "crmcore.effects",
    "InteractionDraft": "crmcore.effects",
    "RecordWrite": "crmcore.effects",
    "TaskDraft": "crmcore.effects",
    "TaskUpdate": "crmcore.effects",
    "Channel": "crmcore.entities",
    "Customer": "crmcore.entities",
    "CustomerStatus": "crmcore.entities",
    "Gender": "crmcore.entities",
    "Interaction": "crmcore.entities",
    "Priority": "crmcore.entities",
    "Task": "crmcore.entities",
    "TaskStatus": "crmcore.entities",
    "ConfigError": "crmcore.errors",
    "ConflictError": "crmcore.errors",
    "CrmError": "crmcore.errors",
    "DuplicateKeyError": "crmcore.errors",
    "NotFoundError": "crmcore.errors",
    "PermissionDenied": "crmcore.errors",
    "PluginError": "crmcore.errors",
    "StorageError": "crmcore.errors",
    "TransientConflict": "crmcore.errors",
    "ValidationError": "crmcore.errors",
    "hookimpl": "crmcore.hookspecs",
    "hookspec": "crmcore.hookspecs",
    "ApiParam": "crmcore.registry",
    "ApiRequest": "crmcore.registry",
    "ApiRoute": "crmcore.registry",
    "Kinds": "crmcore.registry",
    "LazyCommand": "crmcore.registry",
    "ReportSection": "crmcore.registry",
    "ReportWindow": "crmcore.registry",
    "SettingsSpec": "crmcore.registry",
    "SummaryLine": "crmcore.registry",
    "retrying": "crmcore.retry",
}

__all__ = [
    "CRM",
    "Action",
    "ApiParam",
    "ApiRequest",
    "ApiRoute",
    "Channel",
    "Clock",
    "Config",
    "ConfigError",
    "ConflictError",
    "CrmError",
    "Customer",
    "CustomerStatus",
    "DuplicateKeyError",
    "Effects",
    "ExtPatch",
    "Gender",
    "Interaction",
    "InteractionDraft",
    "Kinds",
    "LazyCommand",
    "ManualClock",
    "NotFoundError",
    "PermissionDenied",
    "PluginError",
    "Priority",
    "RecordWrite",
    "ReportSection",
    "ReportWindow",
    "SettingsSpec",
    "StorageError",
    "SummaryLine",
    "SystemClock",
    "Task",
    "TaskDraft",
    "TaskStatus",
    "TaskUpdate",
    "TickReport",
    "TransientConflict",
    "ValidationError",
    "__version__",
    "hookimpl",
    "hookspec",
    "open_crm",
    "retrying",
]


__getattr__ = exports_on_first_use(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
