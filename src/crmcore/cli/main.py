"""``crm``: the entry point. Loads plugins' commands, maps errors to one line and an exit code.

``--json`` is accepted before the command (``crm --json customer list``) or anywhere after it
(``crm customer list --json``), for every command, plugins' included. Logs (and warnings about
plugins that fail to load) go to stderr, so stdout holds only the command's output.

Exit codes: 0 success; 1 other errors; 2 usage, validation or configuration; 3 not found;
4 conflict; 5 permission denied; 6 storage; 7 plugin; 70 internal error (a bug: rerun with
``CRM_TRACEBACK=1`` to see it); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Sequence

import click

import crmcore.cli.startup  # first (see its docstring)
from crmcore.cli import admin, audit, customers, db, encryption, tasks
from crmcore.cli.context import CliState
from crmcore.cli.lazy import CrmGroup
from crmcore.config import find_config
from crmcore.errors import CrmError
from crmcore.logs import defer_logging
from crmcore.plugins import PluginManager, allowed_from_env, make_plugin_manager
from crmcore.security import check_actor_name
from crmcore.text import for_terminal

crmcore.cli.startup.imported()

EXIT_INTERNAL = 70


def make_cli() -> CrmGroup:
    """A fresh ``crm`` group with the core's commands (plugins add theirs in ``build``)."""

    @click.group(
        cls=CrmGroup,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.option(
        "--config",
        "config_path",
        metavar="PATH",
        envvar="CRM_CONFIG",
        help="Configuration file (default: $CRM_CONFIG, else ./crm.toml).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
    @click.option(
        "--as",
        "actor",
        metavar="ACTOR",
        help="Who is acting (default: $CRM_ACTOR, else [core] default_actor).",
    )
    @click.option(
        "--log-level",
        default="warning",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
    )
    @click.option(
        "--log-format", default="console", show_default=True, type=click.Choice(["console", "json"])
    )
    @click.version_option(package_name="crmcore", prog_name="crm")
    @click.pass_context
    def cli(
        ctx: click.Context,
        config_path: str | None,
        as_json: bool,
        actor: str | None,
        log_level: str,
        log_format: str,
    ) -> None:
        """crmcore: customers, interactions and tasks, with plugins for everything else."""
        defer_logging(log_level, log_format)
        if actor is not None:  # refused for every command, even one that acts as itself
            actor = check_actor_name(actor, "--as")
        plugins = ctx.obj.plugins if isinstance(ctx.obj, CliState) else None
        ctx.obj = CliState(config_path, as_json, actor, plugins)

    for module in (admin, audit, customers, db, encryption, tasks):
        module.register(cli)
    assert isinstance(cli, CrmGroup)
    return cli


def _preparse_config(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    found = find_config()
    return str(found) if found else None


def _enabled_plugins(argv: Sequence[str]) -> set[str] | None:
    env = allowed_from_env()
    if env is not None:
        return env
    path = _preparse_config(argv)
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            enabled = tomllib.load(handle).get("plugins", {}).get("enabled")
    except (OSError, ValueError, RecursionError, AttributeError):
        # not readable, not UTF-8, not TOML: the command reports it when it opens the config
        return None
    if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
        return None  # likewise: the configuration's own check names the bad key
    return set(enabled)


def load_plugin_commands(group: CrmGroup, pm: PluginManager) -> None:
    """Let each plugin add commands, or return ``LazyCommand``s that are imported when they
    run; a plugin that fails here (or returns something else) is marked failed, not fatal."""
    for plugin, specs in pm.crm_cli_commands(cli=group):
        for spec in specs:
            group.add_lazy(plugin, spec)


def _json_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and isinstance(ctx.find_root().obj, CliState):
        ctx.find_root().obj.as_json = True


def _json_option() -> click.Option:
    return click.Option(
        ["--json"],
        is_flag=True,
        expose_value=False,
        callback=_json_flag,
        help="Machine-readable JSON output (as 'crm --json …').",
    )


def add_json_option(group: click.Group) -> None:
    """Give every command and group under ``group`` its own ``--json`` flag (the root's
    ``--json`` works before the command name; this one after it)."""
    for command in group.commands.values():
        _add_json(command)


def _add_json(command: click.Command) -> None:
    if not any("--json" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(_json_option())
    if isinstance(command, click.Group):
        add_json_option(command)


def build(argv: Sequence[str]) -> tuple[CrmGroup, PluginManager]:
    pm = make_plugin_manager(allowed=_enabled_plugins(argv))
    group = make_cli()
    load_plugin_commands(group, pm)
    add_json_option(group)
    group.on_load = _add_json  # lazy commands get theirs when they are imported
    return group, pm


def _preparse_logging(argv: Sequence[str]) -> tuple[str, str]:
    """``--log-level``/``--log-format`` as given, so that what is logged while plugins load
    (before click parses anything) already goes to stderr in the chosen form."""
    found = {"--log-level": "warning", "--log-format": "console"}
    allowed = {
        "--log-level": ("debug", "info", "warning", "error"),
        "--log-format": ("console", "json"),
    }
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if name in found and not eq and i + 1 < len(argv):
            value = argv[i + 1]
        if name in found and value in allowed[name]:
            found[name] = value
    return found["--log-level"], found["--log-format"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; never shows a traceback for a user's mistake."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = run(args)
    sys.exit(code)


def _check_arguments(args: Sequence[str]) -> None:
    """Refuse arguments no command line can carry: text the file system encoding cannot
    encode even with ``surrogateescape`` (how Python hands over bytes that are not UTF-8)."""
    encoding = sys.getfilesystemencoding()
    for number, arg in enumerate(args, start=1):
        try:
            arg.encode(encoding, "surrogateescape")
        except UnicodeEncodeError as exc:
            raise click.UsageError(
                f"argument {number} is not valid text (U+"
                f"{ord(arg[exc.start]):04X} at position {exc.start})"
            ) from None


def run(args: list[str]) -> int:
    try:
        _check_arguments(args)
        defer_logging(*_preparse_logging(args))
        with crmcore.cli.startup.starting():
            group, pm = build(args)
        result = group.main(
            args=args, prog_name="crm", standalone_mode=False, obj=CliState(None, False, None, pm)
        )
        # without standalone mode, click returns ctx.exit(code)'s code instead of exiting
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())} (see 'crm --help')", err=True)
        return exc.exit_code
    except CrmError as exc:
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("CRM_TRACEBACK"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {_one_line(str(exc))} (this is a "
            "bug; rerun with CRM_TRACEBACK=1 and report it)",
            err=True,
        )
        return EXIT_INTERNAL


def _one_line(text: str) -> str:
    """One line for the terminal: whitespace folded, control and bidi characters escaped."""
    return for_terminal(" ".join(text.split()), one_line=True)


if __name__ == "__main__":  # pragma: no cover
    main()
