"""``crm init|plugins|config|check|compact|backup|report|demo``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import click

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
from crmcore.cli.policy import require
from crmcore.config import DEFAULT_FILE, profile_text
from crmcore.errors import StorageError, ValidationError


@click.command("init")
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="An industry stack: default, telecom, hospital, retail.",
)
@click.option(
    "--path",
    "path",
    default=DEFAULT_FILE,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the configuration.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def init(ctx: click.Context, profile: str, path: str, force: bool) -> None:
    """Write a working crm.toml for a profile and create its store."""
    from crmcore.outputs import check_target, configured_paths, write_output

    text = profile_text(profile)
    target = Path(path)
    if target.exists() and not force:
        raise ValidationError(f"{target} exists; pass --force to overwrite it")

    # Never into the store of the configuration in use (overwriting that file is --force's job).
    stores = [p for p in configured_paths(state(ctx).config_path) if not p.is_file()]
    if target.exists():
        _may_overwrite(ctx, target)
    if not target.parent.is_dir():  # refuse before creating the folders it needs
        check_target(target, protected=stores, folder=True, what="--path")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError(
                f"--path: cannot create {target.parent}: {exc.strerror or exc}"
            ) from None
    write_output(target, text, protected=stores, what="--path")  # 0600: it may hold a URI
    state(ctx).config_path = str(target)
    crm = open_crm_from(ctx)
    say(
        ctx,
        f"wrote {target} (profile {profile}); store: {crm.store.describe()}",
        path=str(target),
        profile=profile,
    )


def _may_overwrite(ctx: click.Context, target: Path) -> None:
    """``init --force`` over a configuration that enforces permissions is ``config.write``
    under it (one that does not load enforces nothing, so it may be replaced)."""
    from crmcore.config import Config
    from crmcore.errors import CrmError

    try:
        enforced = Config.load(target).security.enforce
    except (CrmError, OSError):
        return
    if enforced:
        st = state(ctx)
        st.config_path = str(target)
        require(ctx, "config.write", "configuration")
        assert st.crm is not None
        st.crm.close()  # opened again below, on the new configuration
        st.crm = None


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
    from rich.table import Table

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
    crm = require(ctx, "config.read", "configuration")
    cfg = crm.config
    data: dict[str, Any] = {
        "file": str(cfg.path) if cfg.path else None,
        "core": attrs.asdict(cfg.core),
        "storage": {**attrs.asdict(cfg.storage), "location": _mask_uri(cfg.storage.location)},
        "plugins": {"loaded": crm.plugins.names()},
    }
    for section in crm.settings_sections():
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
    rule unable to act (printed on stderr).

    Every stored record of a declared type must also load as that type; with --repair, the
    records that do not are set aside (and said so) instead of kept."""
    crm = require(ctx, "store.repair" if repair else "store.check", "store")
    counts = _store_call(ctx, "check", repair=repair, validate=schema_validator(crm))
    for note in _notes(crm.store):
        click.echo(f"note: {note}", err=True)
    for warning in crm.plugins.crm_config_warnings(crm=crm):
        click.echo(f"warning: {warning}", err=True)
    out_table(
        ctx,
        [{"collection": k, "records": v} for k, v in sorted(counts.items())],
        [("collection", "collection"), ("records", "records")],
        title="store repaired" if repair else "store is sound",
    )


def schema_validator(crm: Any) -> Any:
    """``validate(collection, doc)`` for ``Store.check``: why a stored document of a declared
    record type would not load as that type (None if it loads)."""
    from crmcore import names
    from crmcore.converter import from_doc
    from crmcore.tasks import with_title

    types = {
        spec.name: cls
        for spec in crm.collection_specs()
        if (cls := spec.record_class()) is not None
    }

    def validate(name: str, doc: dict[str, Any]) -> str | None:
        record_type = types.get(name)
        if record_type is None:
            return None
        try:
            from_doc(record_type, with_title(doc) if name == names.TASKS else doc, validate=True)
        except Exception as exc:  # whatever fails to load is what we are looking for
            return _one_line(str(exc)) or type(exc).__name__
        return None

    return validate


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _notes(store: Any) -> list[str]:
    """What the backend under the store's layers said during its last check, if anything."""
    while store is not None:
        notes = getattr(store, "check_notes", None)
        if notes is not None:
            return list(notes)
        store = getattr(store, "inner", None)
    return []


@click.command("compact")
@click.pass_context
def compact(ctx: click.Context) -> None:
    """Rewrite the store's files to reclaim space."""
    require(ctx, "store.compact", "store")
    _store_call(ctx, "compact")
    say(ctx, "compacted")


@click.command("backup")
@click.argument("destination")  # checked by crmcore.outputs (click.Path chokes on a NUL)
@click.pass_context
def backup(ctx: click.Context, destination: str) -> None:
    """Write a consistent copy of the store to DESTINATION while it stays in use."""
    from crmcore.outputs import check_target, protected_paths

    crm = require(ctx, "store.backup", "store")
    target = check_target(
        destination, protected=protected_paths(crm.config), folder=True, what="backup"
    )
    _store_call(ctx, "backup", str(target))
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
@click.option(
    "--from",
    "source_backend",
    metavar="BACKEND",
    help="Source backend (default: the configured one).",
)
@click.option("--from-location", metavar="PATH|URI", help="Default: the configured location.")
@click.option("--from-option", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--to",
    "target_backend",
    required=True,
    metavar="BACKEND",
    help="Target backend, e.g. mongodb or tinydb.",
)
@click.option("--to-location", required=True, metavar="PATH|URI")
@click.option(
    "--to-option",
    multiple=True,
    metavar="KEY=VALUE",
    help="A target backend option, e.g. database=crm (repeatable).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Finish an interrupted migration into this target (copies what is missing).",
)
@click.pass_context
def migrate_command(
    ctx: click.Context,
    source_backend: str | None,
    from_location: str | None,
    from_option: tuple[str, ...],
    target_backend: str,
    to_location: str,
    to_option: tuple[str, ...],
    resume: bool,
) -> None:
    """Copy every record to another (empty) store and verify it against the source's
    manifest (counts and checksums); --resume finishes a run that stopped halfway."""
    from crmcore.app import open_store
    from crmcore.clock import SystemClock
    from crmcore.config import resolve_config
    from crmcore.migrate import migrate, plan

    st = state(ctx)
    base = resolve_config(st.config_path)
    if base.security.enforce:  # asked of the configured store, closed before copying
        require(ctx, "store.migrate", "store")
        assert st.crm is not None
        st.crm.close()
        st.crm = None
    source_cfg = attrs.evolve(
        base,
        storage=attrs.evolve(
            base.storage,
            backend=source_backend or base.storage.backend,
            location=from_location or base.storage.location,
            options=_options(from_option, "--from-option") if from_option else base.storage.options,
        ),
    )
    target_cfg = attrs.evolve(
        base,
        storage=attrs.evolve(
            base.storage,
            backend=target_backend,
            location=to_location,
            options=_options(to_option, "--to-option"),
        ),
    )
    pm = st.plugins
    assert pm is not None
    source = open_store(pm, source_cfg, SystemClock())
    try:
        target = open_store(pm, target_cfg, SystemClock())
        try:
            total = sum(plan(source).values())
            with progress_bar(ctx, total=total, description="migrating") as advance:
                report = migrate(
                    source, target, progress=lambda _name, n: advance(n), resume=resume
                )
        finally:
            target.close()
    finally:
        source.close()
    if as_json(ctx):
        print_json(
            ctx,
            {
                "ok": report.ok,
                "documents": report.documents,
                "resumed": report.resumed,
                "problems": report.problems(),
                "collections": {
                    c.name: {
                        "source": c.source_count,
                        "target": c.target_count,
                        "copied": c.copied,
                        "checksum": c.target_checksum,
                    }
                    for c in report.collections
                },
            },
        )
    else:
        out_table(
            ctx,
            [
                {
                    "collection": c.name,
                    "source": c.source_count,
                    "target": c.target_count,
                    "sha256": c.target_checksum[:16],
                    "ok": "yes" if c.ok else "NO",
                }
                for c in report.collections
            ],
            [
                ("collection", "collection"),
                ("source", "source"),
                ("target", "target"),
                ("sha256", "sha-256"),
                ("ok", "verified"),
            ],
            title=report.summary(),
        )
    if not report.ok:
        raise StorageError("migration did not verify: " + "; ".join(report.problems()))


@click.command("report")
@click.option("--html", "html_path", metavar="FILE", help="Also write a self-contained HTML page.")
@click.option("--since", type=WHEN, help="Start of the period (default: the beginning).")
@click.option("--until", type=WHEN, help="End of the period (default: now).")
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    help="The current day, week or month (business time zone), up to now.",
)
@click.option("--team", help="Only this team's reps.")
@click.option("--rep", help="Only this rep.")
@click.option(
    "--lang",
    type=click.Choice(["en", "zh_CN"]),
    help="Language of the report (the --html page's default: the store's: [core] locale, "
    "else Chinese for a store in China's time zone, else English; the terminal's: English).",
)
@click.pass_context
def report(
    ctx: click.Context,
    html_path: str | None,
    since: Any,
    until: Any,
    period: str | None,
    team: str | None,
    rep: str | None,
    lang: str | None,
) -> None:
    """The measures managers watch: grades, follow-ups, callbacks, complaints, loyalty;
    over a period and for a team or a rep when asked."""
    from crmcore.outputs import check_target, protected_paths
    from crmcore.registry import ReportWindow
    from crmcore.render import render_html, render_terminal
    from crmcore.report import build_report, effective_window, period_window

    crm = open_crm_from(ctx)
    protected = protected_paths(crm.config)
    if html_path:
        check_target(html_path, protected=protected, what="--html")  # before any output
    if period and (since or until):
        raise ValidationError("give --period or --since/--until, not both")
    start, end = resolve_when(crm, since), resolve_when(crm, until)
    if period:
        start, end = period_window(crm.now(), period, crm.config.core.timezone)
    now = crm.now()
    window = effective_window(ReportWindow(since=start, until=end, team=team, rep=rep), now)
    sections = build_report(crm, now, window=window)
    if as_json(ctx):
        print_json(ctx, [attrs.asdict(s) for s in sections])
    elif lang:
        from crmcore import i18n

        render_terminal(state(ctx).console, sections, i18n.gettext(lang, crm.plugins))
    else:
        render_terminal(state(ctx).console, sections)
    if html_path:
        from crmcore import i18n

        locale = lang or i18n.default_locale(crm.config)
        translate = i18n.gettext(locale, crm.plugins)
        render_html(
            sections,
            html_path,
            title=translate(i18n.N_("crmcore report")),
            generated=now,
            protected=protected,
            window=window,
            zone=crm.config.core.timezone,
            translate=translate,
            lang=locale,
        )
        click.echo(f"wrote {html_path}", err=True)


@click.command("demo")
@click.option("--profile", default="retail", show_default=True)
@click.option("--customers", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--days", default=60, show_default=True, type=click.IntRange(1, 36_525))
@click.option(
    "--dir",
    "directory",
    metavar="FOLDER",
    help="Keep the store here (default: a new temporary folder).",
)
@click.option("--seed", default=7, show_default=True, help="Random seed; same seed, same run.")
@click.pass_context
def demo(
    ctx: click.Context, profile: str, customers: int, days: int, directory: str | None, seed: int
) -> None:
    """Simulate an industry stack on the embedded store, then report on it."""
    from crmcore.demo import run_demo

    run_demo(ctx, profile=profile, customers=customers, days=days, directory=directory, seed=seed)


def register(cli: click.Group) -> None:
    for command in (
        init,
        plugins,
        fresh_group(config_group),
        check,
        compact,
        backup,
        migrate_command,
        report,
        demo,
    ):
        cli.add_command(command)
