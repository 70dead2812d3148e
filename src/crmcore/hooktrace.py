"""``CRM_TRACE_HOOKS=1``: print every hook call on stderr (datasette's DATASETTE_TRACE_PLUGINS).

One line per call, after it returns: the hook, the plugins called (in call order), the duration
and the arguments. Arguments are described, never dumped: an entity or record shows as its type
and id (``<Customer cus_1>``), text is masked like log output (e-mail addresses and phone
numbers), so customer data does not reach the terminal. Hooks that no plugin implements are not
called at all, so they print nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import IO, Any

import pluggy

from crmcore.logs import mask_text

ENV_TRACE = "CRM_TRACE_HOOKS"
MAX_TEXT = 60

_local = threading.local()


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``CRM_TRACE_HOOKS`` asks for tracing (1, true, yes, on)."""
    env = os.environ if environ is None else environ
    return env.get(ENV_TRACE, "").strip().lower() in {"1", "true", "yes", "on"}


def describe(value: Any) -> str:
    """A short, masked description of a hook argument."""
    if value is None or isinstance(value, bool | int | float | Enum):
        return repr(value.value if isinstance(value, Enum) else value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        text = mask_text(value)
        return repr(text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…")
    if isinstance(value, list | tuple | set | frozenset):
        return f"<{type(value).__name__} of {len(value)}>"
    ident = getattr(value, "id", None)
    if isinstance(ident, str):
        return f"<{type(value).__name__} {ident}>"
    name = getattr(value, "name", None)
    if isinstance(name, str) and type(value).__name__ in {"Actor", "Group", "Command"}:
        return f"<{type(value).__name__} {mask_text(name)}>"
    return f"<{type(value).__name__}>"


def install(pm: pluggy.PluginManager, stream: IO[str] | None = None) -> None:
    """Print every call of ``pm``'s hooks on ``stream`` (stderr when None)."""

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        stack = getattr(_local, "starts", None)
        if stack is None:
            stack = _local.starts = []
        stack.append(time.perf_counter())

    def after(
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        took = (time.perf_counter() - _local.starts.pop()) * 1000
        plugins = ", ".join(impl.plugin_name for impl in reversed(impls))
        args = " ".join(f"{k}={describe(v)}" for k, v in kwargs.items())
        failed = outcome.exception
        status = f" raised {type(failed).__name__}" if failed is not None else ""
        out = stream if stream is not None else sys.stderr
        out.write(f"hook {hook_name} [{plugins}] {took:.2f}ms{status} {args}\n".rstrip() + "\n")
        out.flush()

    pm.add_hookcall_monitoring(before, after)


__all__ = ["ENV_TRACE", "describe", "enabled", "install"]
