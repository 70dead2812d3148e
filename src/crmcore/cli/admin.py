"""``crm init|plugins|config|check|compact|backup|report|demo``."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import click
from rich.table import Table

from crmcore.cli.context import (
    as_json,
    fresh_group,
    open_crm_from,
    out_table,
    print_json,
    progress_bar,
    resolve_when,
    say,
    state,
)
from crmcore.cli.params import WHEN
from crmcore.config import DEFAULT_FILE
from crmcore.errors import StorageError, ValidationError
from crmcore.report import build_report


def profile_names() -> list[str]:
    files = resources.files("crmcore") / "profiles"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def profile_text(name: str) -> str:
    if name not in profile_names():
        raise ValidationError(f"unknown profile {name!r} (available: "
                              f"{', '.join(profile_names())})")
    return (resources.files("crmcore") / "profiles" / f"{name}.toml").read_text("utf-8")


@click.command("init")
@click.option("--profile", default="default", show_default=True,
              help="An industry stack: default, telecom, hospital, retail.")
@click.option("--path", "path", default=DEFAULT_FILE, show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the configuration.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def init(ctx: click.Context, profile: str, path: str, force: bool) -> None:
    """Write a working crm.toml for a profile and create its store."""
    text = profile_text(profile)
    target = Path(path)
    if target.exists() and not force:
        raise ValidationError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(0o600)  # it may hold a database URI with credentials
    state(ctx).config_path = str(target)
    crm = open_crm_from(ctx)
    say(ctx, f"wrote {target} (profile {profile}); store: {crm.store.describe()}",
        path=str(target), profile=profile)


@click.command("plugins")
@click.pass_context
def plugins(ctx: click.Context) -> None:
    """Installed plugins: name, version, hooks and status (failed ones say why)."""
    pm = state(ctx).plugins
    infos = pm.infos() if pm else []
    rows = [attrs.asdict(i) for i in infos]
    if as_json(ctx):
        print_json(ctx, rows)
        return
    table = Table(header_style="bold")
    for header in ("plugin", "version", "status", "hooks"):
        table.add_column(header, overflow="fold")
    for info in infos:
        status = info.status if not info.error else f"{info.status}: {info.error}"
        table.add_row(info.name, info.version or "", status, ", ".join(info.hooks))
    state(ctx).console.print(table)


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


def _mask_uri(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", value)
    return value


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """The effective configuration, plugin defaults included (secrets masked)."""
    crm = open_crm_from(ctx)
    cfg = crm.config
    data: dict[str, Any] = {
        "file": str(cfg.path) if cfg.path else None,
        "core": attrs.asdict(cfg.core),
        "storage": {**attrs.asdict(cfg.storage), "location": _mask_uri(cfg.storage.location)},
        "plugins": {"loaded": crm.plugins.names()},
    }
    for section in sorted(crm._settings):
        value = crm.settings(section)
        data[section] = attrs.asdict(value) if attrs.has(type(value)) else value
    if as_json(ctx):
        print_json(ctx, data)
        return
    rows = []
    for section, values in data.items():
        if isinstance(values, dict):
            rows += [{"key": f"{section}.{k}", "value": v} for k, v in values.items()]
        else:
            rows.append({"key": section, "value": values})
    out_table(ctx, rows, [("key", "key"), ("value", "value")])


def _store_call(ctx: click.Context, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call an optional store method; a backend without it says so in one line."""
    try:
        return getattr(open_crm_from(ctx).store, method)(*args, **kwargs)
    except NotImplementedError as exc:
        raise StorageError(str(exc)) from None


@click.command("check")
@click.option("--repair", is_flag=True, help="Salvage what can be read from damaged files.")
@click.pass_context
def check(ctx: click.Context, repair: bool) -> None:
    """Verify the store's integrity and count its records; warn about settings that leave a
    rule unable to act (printed on stderr)."""
    counts = _store_call(ctx, "check", repair=repair)
    crm = open_crm_from(ctx)
    for warning in crm.plugins.flat("crm_config_warnings", crm=crm):
        click.echo(f"warning: {warning}", err=True)
    out_table(ctx, [{"collection": k, "records": v} for k, v in sorted(counts.items())],
              [("collection", "collection"), ("records", "records")], title="store is sound")


@click.command("compact")
@click.pass_context
def compact(ctx: click.Context) -> None:
    """Rewrite the store's files to reclaim space."""
    _store_call(ctx, "compact")
    say(ctx, "compacted")


@click.command("backup")
@click.argument("destination", type=click.Path())
@click.pass_context
def backup(ctx: click.Context, destination: str) -> None:
    """Write a consistent copy of the store to DESTINATION while it stays in use."""
    _store_call(ctx, "backup", destination)
    say(ctx, f"backed up to {destination}", destination=destination)


def _options(pairs: tuple[str, ...], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@click.command("migrate")
@click.option("--from", "source_backend", metavar="BACKEND",
              help="Source backend (default: the configured one).")
@click.option("--from-location", metavar="PATH|URI", help="Default: the configured location.")
@click.option("--from-option", multiple=True, metavar="KEY=VALUE")
@click.option("--to", "target_backend", required=True, metavar="BACKEND",
              help="Target backend, e.g. mongodb or tinydb.")
@click.option("--to-location", required=True, metavar="PATH|URI")
@click.option("--to-option", multiple=True, metavar="KEY=VALUE",
              help="A target backend option, e.g. database=crm (repeatable).")
@click.pass_context
def migrate_command(ctx: click.Context, source_backend: str | None, from_location: str | None,
                    from_option: tuple[str, ...], target_backend: str, to_location: str,
                    to_option: tuple[str, ...]) -> None:
    """Copy every record to another (empty) store and verify counts and checksums."""
    from crmcore.app import open_store
    from crmcore.clock import SystemClock
    from crmcore.config import Config, find_config
    from crmcore.migrate import migrate, plan

    st = state(ctx)
    path = find_config(st.config_path)
    base = Config.load(path) if path else Config.from_dict({})
    source_cfg = attrs.evolve(base, storage=attrs.evolve(
        base.storage, backend=source_backend or base.storage.backend,
        location=from_location or base.storage.location,
        options=_options(from_option, "--from-option") if from_option else
        base.storage.options))
    target_cfg = attrs.evolve(base, storage=attrs.evolve(
        base.storage, backend=target_backend, location=to_location,
        options=_options(to_option, "--to-option")))
    pm = st.plugins
    assert pm is not None
    source = open_store(pm, source_cfg, SystemClock())
    try:
        target = open_store(pm, target_cfg, SystemClock())
        try:
            total = sum(plan(source).values())
            with progress_bar(ctx, total=total, description="migrating") as advance:
                report = migrate(source, target, progress=lambda _name, n: advance(n))
        finally:
            target.close()
    finally:
        source.close()
    if as_json(ctx):
        print_json(ctx, {"ok": report.ok, "documents": report.documents,
                         "problems": report.problems(),
                         "collections": {c.name: {"source": c.source_count,
                                                  "target": c.target_count,
                                                  "checksum": c.target_checksum}
                                         for c in report.collections}})
    else:
        out_table(ctx, [{"collection": c.name, "source": c.source_count,
                         "target": c.target_count, "sha256": c.target_checksum[:16],
                         "ok": "yes" if c.ok else "NO"} for c in report.collections],
                  [("collection", "collection"), ("source", "source"), ("target", "target"),
                   ("sha256", "sha-256"), ("ok", "verified")], title=report.summary())
    if not report.ok:
        raise StorageError("migration did not verify: " + "; ".join(report.problems()))


@click.command("report")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML page.")
@click.option("--since", type=WHEN, help="Start of the period (default: the beginning).")
@click.option("--until", type=WHEN, help="End of the period (default: now).")
@click.option("--period", type=click.Choice(["day", "week", "month"]),
              help="The current day, week or month (business time zone), up to now.")
@click.option("--team", help="Only this team's reps.")
@click.option("--rep", help="Only this rep.")
@click.pass_context
def report(ctx: click.Context, html_path: str | None, since: Any, until: Any,
           period: str | None, team: str | None, rep: str | None) -> None:
    """The measures managers watch: grades, follow-ups, callbacks, complaints, loyalty;
    over a period and for a team or a rep when asked."""
    from crmcore.registry import ReportWindow
    from crmcore.render import render_html, render_terminal
    from crmcore.report import period_window

    crm = open_crm_from(ctx)
    if period and (since or until):
        raise ValidationError("give --period or --since/--until, not both")
    start, end = resolve_when(crm, since), resolve_when(crm, until)
    if period:
        start, end = period_window(crm.now(), period, crm.config.core.timezone)
    sections = build_report(crm, window=ReportWindow(since=start, until=end, team=team,
                                                     rep=rep))
    if as_json(ctx):
        print_json(ctx, [attrs.asdict(s) for s in sections])
    else:
        render_terminal(state(ctx).console, sections)
    if html_path:
        render_html(sections, html_path, title="crmcore report", generated=crm.now())
        click.echo(f"wrote {html_path}", err=True)


@click.command("demo")
@click.option("--profile", default="retail", show_default=True)
@click.option("--customers", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--days", default=60, show_default=True, type=click.IntRange(min=1))
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Keep the store here (default: a new temporary folder).")
@click.option("--seed", default=7, show_default=True, help="Random seed; same seed, same run.")
@click.pass_context
def demo(ctx: click.Context, profile: str, customers: int, days: int, directory: str | None,
         seed: int) -> None:
    """Simulate an industry stack on the embedded store, then report on it."""
    from crmcore.demo import run_demo

    run_demo(ctx, profile=profile, customers=customers, days=days, directory=directory,
             seed=seed)


def register(cli: click.Group) -> None:
    for command in (init, plugins, fresh_group(config_group), check, compact, backup,
                    migrate_command, report, demo):
        cli.add_command(command)
