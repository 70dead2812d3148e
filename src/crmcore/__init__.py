"""crmcore: a small plugin-based CRM core (customers, interactions, tasks) on pluggy.

Host applications start with ``open_crm``; plugin authors with ``hookimpl`` and the types in
``crmcore.effects``, ``crmcore.registry`` and ``crmcore.storage``.
"""

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
