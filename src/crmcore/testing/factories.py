"""Build CRMs for tests: in-memory storage, an injected clock, exactly the plugins you name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crmcore.app import CRM, open_crm
from crmcore.clock import Clock, ManualClock
from crmcore.config import Config

# A Monday morning, so business-hour rules have a whole week ahead.
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def make_test_crm(
    plugins: Sequence[str | tuple[str, object]] = (),
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    core: Mapping[str, Any] | None = None,
    storage: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
    schema_upgrade: bool = False,
) -> CRM:
    """A CRM for tests.

    ``plugins`` lists installed plugins by entry-point name (``"grading"``) and/or
    ``(name, plugin_object)`` pairs; nothing else loads, whatever the environment holds.
    ``settings`` maps plugin sections to their tables (as in crm.toml). Storage is in memory
    unless ``storage`` says otherwise (``{"backend": "tinydb", "location": str(tmp_path)}``).
    ``schema_upgrade`` opens it as ``crm db upgrade`` does. Record classes that plugins name
    in their collections (``record_type="module:Class"``) are resolved, so that personal fields
    given beside a name that are not the class's fail the plugin's tests (``crm`` itself
    imports a named class only when it is used).
    """
    by_name = [p for p in plugins if isinstance(p, str)]
    objects = [p for p in plugins if not isinstance(p, str)]
    data: dict[str, Any] = {
        "core": dict(core or {}),
        "storage": dict(storage or {"backend": "memory", "location": None}),
        "plugins": {"enabled": by_name},
        **{k: dict(v) for k, v in (settings or {}).items()},
    }
    config = Config.from_dict(data, environ={})
    crm = open_crm(
        config,
        clock=clock or ManualClock(START),
        plugins=by_name,
        extra_plugins=objects,
        load_entry_points=bool(by_name),
        schema_upgrade=schema_upgrade,
    )
    try:
        for spec in crm.collection_specs():
            spec.record_class()
    except BaseException:
        crm.close()
        raise
    return crm
