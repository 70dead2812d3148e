"""Small typed objects that registration hooks return (conda's pattern).

What registering a plugin needs is defined here (``SettingsSpec``, ``Kinds``, ``LazyCommand``);
the shapes of reports (``crmcore.reportspecs``) and of the API and the web workspace
(``crmcore.webspecs``) are exported from here too, their module imported when a name is
first used, so that a command that shows neither does not define their classes.
"""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from crmcore.exports import exports_on_first_use
from crmcore.schema import str_tuple

if TYPE_CHECKING:
    from crmcore.reportspecs import ReportSection, ReportWindow, SummaryLine
    from crmcore.webspecs import (
        HTTP_METHODS,
        ApiParam,
        ApiRequest,
        ApiRoute,
        Badge,
        CustomerPanel,
        DashboardCard,
        NavEntry,
        PageHandler,
        PageRequest,
        Redirect,
        Render,
        TemplateFolder,
        TranslationCatalog,
        WebPage,
    )

__all__ = [
    "HTTP_METHODS",
    "ApiParam",
    "ApiRequest",
    "ApiRoute",
    "Badge",
    "CustomerPanel",
    "DashboardCard",
    "Kinds",
    "LazyCommand",
    "NavEntry",
    "PageHandler",
    "PageRequest",
    "Redirect",
    "Render",
    "ReportSection",
    "ReportWindow",
    "SettingsSpec",
    "SummaryLine",
    "TemplateFolder",
    "TranslationCatalog",
    "WebPage",
]


@attrs.frozen
class SettingsSpec:
    """A plugin's configuration section: ``[section]`` in crm.toml, structured into ``type``.

    ``type`` is the attrs class, or ``"module:Class"`` naming it: then the module is imported
    only when the section is first structured (a section the configuration does not mention is
    structured, from its defaults, the first time ``crm.settings(section)`` asks for it), so
    registering the plugin stays cheap for commands that never read its settings.
    """

    section: str
    type: builtins.type | str = attrs.field()

    @type.validator
    def _check_type(
        self, _attribute: attrs.Attribute[builtins.type | str], value: builtins.type | str
    ) -> None:
        if isinstance(value, str):
            module, colon, name = value.partition(":")
            if not (module and colon and name):
                raise ValueError(
                    f"SettingsSpec [{self.section}]: type {value!r} is not 'module:Class'"
                )

    def resolve(self) -> builtins.type:
        """The settings class (importing its module when ``type`` names it)."""
        if not isinstance(self.type, str):
            return self.type
        module, _, name = self.type.partition(":")
        found = getattr(importlib.import_module(module), name)
        if not isinstance(found, type):
            raise TypeError(f"{self.type} is {found!r}, not a class")
        return found


def _str_map(value: Mapping[str, str]) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()}


@attrs.frozen
class Kinds:
    """Interaction and task kinds a plugin adds to the core's. ``task_labels`` says how each
    task kind is shown (English, marked with ``N_`` so the plugin's catalog translates it):
    ``Kinds(tasks=("referral_ask",), task_labels={"referral_ask": N_("Referral ask")})``."""

    interactions: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    tasks: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    task_labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)


@attrs.frozen
class LazyCommand:
    """A ``crm`` command that is imported only when it runs (or its own ``--help`` is asked).

    ``crm_cli_commands`` may return a list of these instead of adding commands itself:
    ``LazyCommand("loyalty", "crmcore_loyalty.cli:loyalty_group", "Points and tiers.")``.
    ``target`` names the click command or group as ``"module:attribute"``; ``help`` is the
    line ``crm --help`` shows, so the module is not imported to list it.
    """

    name: str
    target: str = attrs.field()
    help: str = ""

    @target.validator
    def _check_target(self, _attribute: attrs.Attribute[str], value: str) -> None:
        module, colon, attr = value.partition(":")
        if not (module and colon and attr):
            raise ValueError(
                f"LazyCommand {self.name!r}: target {value!r} is not 'module:attribute'"
            )


__getattr__ = exports_on_first_use(
    __name__,
    {
        **dict.fromkeys(("SummaryLine", "ReportSection", "ReportWindow"), "crmcore.reportspecs"),
        **dict.fromkeys(
            (
                "HTTP_METHODS",
                "ApiRequest",
                "ApiParam",
                "ApiRoute",
                "PageRequest",
                "Render",
                "Redirect",
                "PageHandler",
                "WebPage",
                "CustomerPanel",
                "DashboardCard",
                "NavEntry",
                "TemplateFolder",
                "TranslationCatalog",
                "Badge",
            ),
            "crmcore.webspecs",
        ),
    },
)
