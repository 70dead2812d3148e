"""crmcore.i18n: locales chosen, catalogs merged from the core and plugins, lazy labels, and
the catalogs complete for the code that ships."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crmcore import hookimpl, i18n
from crmcore.i18n_catalogs import problems, update
from crmcore.plugins import make_plugin_manager
from crmcore.registry import TranslationCatalog

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, de;q=0.9, zh;q=0.5", "zh_CN"),
        ("fr, en;q=0.1, zh-CN;q=0.2", "zh_CN"),  # by quality, not by position
        ("zh-TW", None),  # traditional Chinese is not shipped: not the simplified catalog
        ("zh-Hans-CN", "zh_CN"),
        ("en;q=0, zh", "zh_CN"),  # q=0 means "not this"
        ("", None),
        (None, None),
        ("*", None),
        ("garbage;;q=x", None),
    ],
)
def test_negotiate(header, expected):
    assert i18n.negotiate(header) == expected


def test_default_locale_follows_the_store(make_crm):
    assert i18n.default_locale(make_crm().config) == "en"
    shanghai = make_crm(settings={"core": {"timezone": "Asia/Shanghai"}})
    assert i18n.default_locale(shanghai.config) == "zh_CN"
    chosen = make_crm(settings={"core": {"timezone": "Asia/Shanghai", "locale": "en"}})
    assert i18n.default_locale(chosen.config) == "en"


def test_core_locale_setting_is_checked(make_crm):
    from crmcore.errors import ConfigError, ValidationError

    with pytest.raises((ConfigError, ValidationError), match="locale"):
        make_crm(settings={"core": {"locale": "fr"}})


def _catalog(folder: Path, domain: str, entries: dict[str, str]) -> TranslationCatalog:
    target = folder / "zh_CN" / "LC_MESSAGES" / f"{domain}.po"
    target.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f'\nmsgid "{k}"\nmsgstr "{v}"\n' for k, v in entries.items())
    target.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n' + body, "utf-8"
    )
    return TranslationCatalog(folder, domain)


def test_plugins_catalogs_merge_with_the_cores(tmp_path):
    one = _catalog(tmp_path / "a", "alpha", {"Open tasks": "未完成任务", "Shared": "甲"})
    two = _catalog(tmp_path / "b", "beta", {"Tickets": "工单", "Shared": "乙"})

    class Alpha:
        @hookimpl
        def crm_translations(self):
            return [one]

    class Beta:
        @hookimpl
        def crm_translations(self):
            return [two]

    pm = make_plugin_manager(load_entry_points=False, extra=[("alpha", Alpha()), ("beta", Beta())])
    _ = i18n.gettext("zh_CN", pm)
    assert _("Open tasks") == "未完成任务" and _("Tickets") == "工单"
    assert _("Shared") == "乙"  # plugins merge by name: the later one wins
    assert _("Not translated") == "Not translated"
    assert i18n.gettext("en", pm)("Tickets") == "Tickets"
    assert i18n.gettext("fr", pm)("Tickets") == "Tickets"  # unknown: as written


def test_lazy_text_is_translated_where_it_is_shown(tmp_path):
    catalog = _catalog(tmp_path, "lazy", {"Grade": "等级"})

    class Plugin:
        @hookimpl
        def crm_translations(self):
            return [catalog]

    pm = make_plugin_manager(load_entry_points=False, extra=[("p", Plugin())])
    label = i18n.lazy("Grade")
    assert str(label) == "Grade"
    with i18n.activate(i18n.translations("zh_CN", pm)):
        assert str(label) == "等级" and f"{label}" == "等级"
    assert str(label) == "Grade" and label == i18n.lazy("Grade")


def test_babel_is_not_imported_when_the_cli_starts():
    code = "import sys, crmcore.cli.main, crmcore.i18n; print('babel' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_catalog_tool_adds_new_strings_and_drops_gone_ones(tmp_path):
    source = tmp_path / "pkg"
    source.mkdir()
    (source / "mod.py").write_text(
        "from crmcore.i18n import lazy\nA = lazy('Kept')\nB = lazy('New one')\n", "utf-8"
    )
    (source / "page.html").write_text(
        "<h1>{{ _('From a template') }}</h1>{% trans %}Block text{% endtrans %}", "utf-8"
    )
    po = (
        _catalog(tmp_path / "loc", "d", {"Kept": "保留", "Gone": "没了"}).folder
        / "zh_CN"
        / "LC_MESSAGES"
        / "d.po"
    )
    found = problems(source, po)
    assert any("'New one'" in p and p.startswith("missing") for p in found)
    assert any("'Gone'" in p and p.startswith("no longer used") for p in found)
    assert update(source, po) == (3, 1)
    text = po.read_text("utf-8")
    assert 'msgstr "保留"' in text and "Gone" not in text and "Block text" in text
    assert problems(source, po) == [
        f"not translated in {po}: {m!r}" for m in ("Block text", "From a template", "New one")
    ]


def test_the_cores_catalog_is_complete():
    assert (
        problems(
            ROOT / "src" / "crmcore",
            ROOT / "src" / "crmcore" / "locale" / "zh_CN" / "LC_MESSAGES" / "crmcore.po",
        )
        == []
    )


def test_catalogs_ship_as_po_only():
    assert not list((ROOT / "src").rglob("*.mo"))
    assert not list((ROOT / "plugins").rglob("*.mo"))
