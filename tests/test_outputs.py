"""Files the user names for output: never inside the store or onto the configuration, written
whole or not at all, private whatever the umask (``crmcore.outputs`` and its commands)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crmcore import open_crm
from crmcore.cli.main import run
from crmcore.errors import ValidationError
from crmcore.outputs import atomic_output, check_target, private_folder, write_output
from crmcore.testing.cli import one_line_error

CUSTOMERS = 60


def crm(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``crm ARGS`` in a real subprocess, in ``folder`` (where ``crm init`` wrote crm.toml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with crm.toml as ``crm init`` writes it and a store of 60 customers."""
    folder = tmp_path_factory.mktemp("shop")
    assert crm(folder, "init").returncode == 0
    with open_crm(folder / "crm.toml") as app:
        for n in range(CUSTOMERS):
            app.customers.add(actor="rep1", name=f"Customer {n}", phone=f"+86 138 0013 {n:04d}")
        app.store.compact()
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


BAD_OUTPUTS = [
    (("customer", "export", "-o", "crm-data/customers.json"), "inside the store's folder"),
    (("customer", "export", "-o", "crm-data/new.jsonl"), "inside the store's folder"),
    (("customer", "export", "-o", "crm.toml"), "is the configuration file"),
    (("customer", "export", "-o", "link-to-data/customers.json"), "inside the store's folder"),
    (("customer", "export", "-o", "."), "is a folder"),
    (("customer", "export", "-o", "/proc/x"), "cannot write /proc/x"),
    (("customer", "export", "-o", "/dev/full"), "not a regular file"),
    (("interaction", "export", "-o", "crm-data/interactions.json"), "inside the store's folder"),
    (("report", "--html", "crm-data/report.html"), "inside the store's folder"),
    (("report", "--html", "crm.toml"), "is the configuration file"),
    (("backup", "crm-data/bk"), "inside the store's folder"),
    (("backup", "crm-data"), "the store's folder"),
    (("backup", "crm.toml"), "is the configuration file"),
    (("demo", "--dir", "/proc/self/x", "--customers", "1", "--days", "1"), "cannot create"),
    (("demo", "--dir", "crm-data/demo", "--customers", "1", "--days", "1"), "store's folder"),
    (("init", "--path", "crm-data/customers.json", "--force"), "inside the store's folder"),
    (("encryption", "new-key", "crm-data/site.key"), "inside the store's folder"),
    (("audit", "anchor", "-o", "crm-data/anchor.json"), "inside the store's folder"),
    (("audit", "anchor", "-o", "crm.toml"), "is the configuration file"),
]


def test_bad_output_paths_are_refused_in_one_line_and_nothing_is_written(shop):
    (shop / "link-to-data").symlink_to(shop / "crm-data")
    try:
        before = _snapshot(shop)
        for args, reason in BAD_OUTPUTS:
            done = crm(shop, *args)
            assert done.returncode not in (0, 70), (args, done.stderr)
            assert reason in one_line_error(done.stderr), (args, done.stderr)
            assert _snapshot(shop) == before, args
        done = crm(shop, "check")
        assert done.returncode == 0, done.stderr
        assert "customers" in done.stdout and str(CUSTOMERS) in done.stdout
    finally:
        (shop / "link-to-data").unlink()


def test_a_good_export_backup_and_report_are_private_whatever_the_umask(shop, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0)
    try:
        for args in (
            ("customer", "export", "-o", str(out / "c.jsonl")),
            ("report", "--html", str(out / "r.html")),
            ("backup", str(out / "bk")),
        ):
            done = crm(shop, *args)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        os.umask(old)
    assert len((out / "c.jsonl").read_text().splitlines()) == CUSTOMERS
    for path in (out / "c.jsonl", out / "r.html"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((out / "bk").stat().st_mode) == 0o700
    for path in (out / "bk").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files


def test_a_nul_in_a_path_is_one_line_not_an_internal_error(shop, capsys, monkeypatch):
    monkeypatch.chdir(shop)
    for args in (
        ("backup", "bk\0x"),
        ("customer", "export", "-o", "c\0x"),
        ("report", "--html", "r\0x"),
        ("demo", "--dir", "d\0x"),
    ):
        code = run(["--config", str(shop / "crm.toml"), *args])
        err = capsys.readouterr().err
        assert code not in (0, 70), (args, err)
        assert "NUL" in one_line_error(err), err
    assert not (shop / "bk").exists()


# -- the module ----------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "export.jsonl"
    target.write_text("the old export\n")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with (
        pytest.raises(ValidationError, match="No space left on device; nothing was written"),
        atomic_output(target) as handle,
    ):
        handle.write("x" * 10_000)
    assert target.read_text() == "the old export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]


def test_an_exception_while_writing_keeps_the_old_file(tmp_path):
    target = tmp_path / "export.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write("half")
        raise RuntimeError("the export failed half way")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]


def test_protected_paths_are_compared_as_real_paths(tmp_path):
    store = tmp_path / "crm-data"
    store.mkdir()
    config = tmp_path / "crm.toml"
    config.write_text("")
    (tmp_path / "alias").symlink_to(store)
    (tmp_path / "conf-link").symlink_to(config)
    for path in (
        store / "x.json",
        tmp_path / "alias" / "x.json",
        tmp_path / "conf-link",
        tmp_path / "alias" / ".." / "crm.toml",
        store,
    ):
        with pytest.raises(ValidationError):
            write_output(path, "x", protected=[config, store])
    assert config.read_text() == ""
    assert not list(store.iterdir())
    assert (
        check_target(tmp_path / "fine.json", protected=[config, store])
        == Path(os.path.realpath(tmp_path)) / "fine.json"
    )


def test_a_private_folder_is_0700_whatever_the_umask_and_must_be_empty(tmp_path):
    old = os.umask(0)
    try:
        made = private_folder(tmp_path / "a" / "b")
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
        written = write_output(made / "f.txt", "hi")
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    with pytest.raises(ValidationError, match="not empty"):
        private_folder(made)


def test_a_binary_output_is_written_whole_too(tmp_path):
    target = tmp_path / "book.xlsx"
    with atomic_output(target, binary=True) as handle:
        handle.write(b"PK\x03\x04 not really a workbook")
    assert target.read_bytes().startswith(b"PK\x03\x04")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_init_writes_the_configuration_that_config_names_before_it_exists(tmp_path):
    """``crm --config crm.toml init --path crm.toml`` in an empty folder: the file to write is
    not (yet) a store to protect."""
    done = crm(
        tmp_path, "--config", "crm.toml", "init", "--profile", "retail", "--path", "crm.toml"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "crm.toml").is_file()
