"""``crmcore.entrypoints`` reads what ``importlib.metadata`` reads, without importing it."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from crmcore import entrypoints
from crmcore.plugins import name_and_version


def _seen(eps) -> list[tuple[str, str, str, str | None]]:
    return [
        (
            ep.name,
            ep.value,
            ep.group,
            str(ep.dist._path if hasattr(ep.dist, "_path") else ep.dist.path),
        )
        for ep in eps
    ]


def test_the_installed_plugins_are_read_as_importlib_metadata_reads_them() -> None:
    ours = entrypoints.entry_points("crmcore")
    assert ours and all(isinstance(ep, entrypoints.EntryPoint) for ep in ours)  # not handed over
    assert _seen(ours) == _seen(metadata.entry_points(group="crmcore"))
    for ep in ours:
        assert name_and_version(ep.dist) == (ep.dist.name, ep.dist.version)
    for name in ("crmcore", "crmcore-loyalty", "click", "no-such-distribution-here"):
        found = entrypoints.distribution(name)
        try:
            theirs = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            assert found is None
            continue
        assert isinstance(found, entrypoints.Distribution)
        assert found.path == theirs._path  # type: ignore[attr-defined]


def _install(root: Path, folder: str, text: str | None, name: str, version: str = "1.0") -> None:
    meta = root / folder
    meta.mkdir(parents=True)
    head = "METADATA" if folder.endswith(".dist-info") else "PKG-INFO"
    (meta / head).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nabout\n")
    if text is not None:
        (meta / "entry_points.txt").write_text(text)


@pytest.fixture
def layout(tmp_path, monkeypatch) -> Path:
    """Two directories on sys.path holding distributions that clash by name, an egg-info,
    comments, spaces, extras, dotted attributes, other groups and lines outside a group."""
    first, second = tmp_path / "first", tmp_path / "second"
    _install(
        first, "Alpha_Plug-1.0.dist-info", "[crmcore]\nalpha = alpha_mod:plugin\n", "Alpha.Plug"
    )
    _install(
        first,
        "beta-2.0.dist-info",
        "stray = outside:group\n# a comment\n[console_scripts]\nb = beta:main\n\n"
        "[crmcore]\n  beta   =  beta_mod : Outer.inner [extra1, extra2]  \nzeta = zeta_mod\n",
        "beta",
        "2.0",
    )
    _install(first, "gamma.egg-info", "[crmcore]\ngamma=gamma_mod:thing\n", "gamma")
    _install(first, "nothing-1.dist-info", None, "nothing")
    # the same names again, further down sys.path: importlib.metadata keeps the first
    _install(second, "alpha.plug-9.0.dist-info", "[crmcore]\nshadowed = x:y\n", "alpha.plug")
    _install(second, "delta-1.0.dist-info", "[crmcore]\nalpha = delta_mod:plugin\n", "delta")
    (second / "beta_mod.py").write_text("class Outer:\n    class inner:\n        pass\n")
    (second / "zeta_mod.py").write_text("X = 1\n")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])
    metadata.FastPath.__new__.cache_clear()  # type: ignore[attr-defined]
    return tmp_path


def test_a_layout_of_every_kind_is_read_as_importlib_metadata_reads_it(layout) -> None:
    for group in ("crmcore", "console_scripts", "none"):
        ours = entrypoints.entry_points(group)
        assert all(isinstance(ep, entrypoints.EntryPoint) for ep in ours)
        assert _seen(ours) == _seen(metadata.entry_points(group=group))
    names = [ep.name for ep in entrypoints.entry_points("crmcore")]
    assert "shadowed" not in names and names.count("alpha") == 2
    loaded = {
        ep.name: ep.load()
        for ep in entrypoints.entry_points("crmcore")
        if ep.name in ("beta", "zeta")
    }
    assert loaded["beta"].__qualname__ == "Outer.inner" and loaded["zeta"].X == 1
    for name in ("alpha-plug", "Alpha_Plug", "gamma", "delta", "epsilon"):
        found = entrypoints.distribution(name)
        try:
            theirs = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            assert found is None, name
            continue
        assert found is not None and found.path == theirs._path, name  # type: ignore[attr-defined]
    sys.modules.pop("beta_mod", None)
    sys.modules.pop("zeta_mod", None)


def test_an_unusual_layout_is_handed_to_importlib_metadata(layout, monkeypatch) -> None:
    _install(layout / "first", "Odd-1.0.DIST-INFO", "[crmcore]\nodd = odd_mod\n", "odd")
    ours = entrypoints.entry_points("crmcore")
    assert ours and not any(isinstance(ep, entrypoints.EntryPoint) for ep in ours)
    assert _seen(ours) == _seen(metadata.entry_points(group="crmcore"))


def test_a_crm_start_does_not_import_importlib_metadata(tmp_path) -> None:
    """``crm customer list`` reads the plugins' entry points without importlib.metadata (and
    the e-mail package it imports)."""
    from tests.test_cli_lazy import imported_by

    for i, args in enumerate((("--help",), ("customer", "list"))):
        (tmp_path / str(i)).mkdir()
        assert imported_by(tmp_path / str(i), args, ("importlib.metadata", "email")) == []
