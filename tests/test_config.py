"""crm.toml: validation with full key paths, environment overrides, plugin sections."""

import attrs
import pytest

from crmcore import hookimpl
from crmcore.config import Config
from crmcore.errors import ConfigError, ValidationError
from crmcore.registry import SettingsSpec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"core": {"timezone": "Mars/Olympus"}}, "core.timezone: unknown time zone"),
        ({"core": {"tz": "UTC"}}, "core: unknown key(s): tz"),
        ({"core": {"default_country_code": "+86"}}, "core.default_country_code: expected 1 to 3"),
        ({"core": {"unique_phone": "yes"}}, "core.unique_phone: expected bool, got str"),
        ({"storage": {"backend": 3}}, "storage.backend: expected str, got int"),
        ({"storage": {"options": "fast"}}, "storage.options: expected a table"),
        ({"plugins": {"enabled": "grading"}}, "plugins.enabled: expected a list"),
        ({"plugins": {"enabled": ["grading", 2]}}, "plugins.enabled[1]: expected str, got int"),
        ({"grading": 3}, "grading: expected a table"),
        ({"storage": "tinydb"}, "storage: expected a table"),
    ],
)
def test_bad_values_name_the_full_key(data, message):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data, environ={})
    assert message in str(info.value)


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match="no such configuration file"):
        Config.load(missing)
    broken = tmp_path / "crm.toml"
    broken.write_text("[core\ntimezone = 1\n")
    with pytest.raises(ConfigError, match=r"crm.toml: not valid TOML"):
        Config.load(broken)
    broken.write_text('[core]\ntimezone = "Nowhere/Land"\n')
    with pytest.raises(ConfigError, match=r"crm.toml: core.timezone: unknown time zone"):
        Config.load(broken)


def test_relative_storage_location_is_relative_to_the_file(tmp_path):
    (tmp_path / "crm.toml").write_text('[storage]\nbackend = "memory"\nlocation = "data"\n')
    cfg = Config.load(tmp_path / "crm.toml", environ={})
    assert cfg.storage.location == str(tmp_path / "data")


def test_key_files_are_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "crm.toml").write_text(
        '[core]\nencrypt_personal = true\nencryption_key_file = "keys/now.key"\n'
        'encryption_previous_key_files = ["keys/old.key", "/abs/older.key"]\n'
        '[storage]\nbackend = "memory"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = Config.load(tmp_path / "crm.toml", environ={})
    assert cfg.core.encryption_key_file == str(tmp_path / "keys" / "now.key")
    assert cfg.core.encryption_previous_key_files == [
        str(tmp_path / "keys" / "old.key"),
        "/abs/older.key",
    ]
    assert (
        Config.from_dict(
            {"core": {"encryption_key_file": "k.key"}}, environ={}
        ).core.encryption_key_file
        == "k.key"
    )  # no file: left as given


def test_environment_overrides_backend_and_location(tmp_path):
    (tmp_path / "crm.toml").write_text('[storage]\nbackend = "tinydb"\nlocation = "data"\n')
    cfg = Config.load(
        tmp_path / "crm.toml",
        environ={
            "CRM_STORAGE_BACKEND": "mongodb",
            "CRM_STORAGE_LOCATION": "mongodb://db.local/crm",
        },
    )
    assert (cfg.storage.backend, cfg.storage.location) == ("mongodb", "mongodb://db.local/crm")


def _positive(_inst, attribute, value):
    if value <= 0:
        raise ValidationError(f"must be positive, got {value}", field=attribute.name)


@attrs.frozen
class Cadence:
    a: int = attrs.field(default=1, validator=_positive)
    b: int = 7


@attrs.frozen
class ToySettings:
    cadence: Cadence = attrs.field(factory=Cadence)
    holidays: list[str] = attrs.field(factory=list)


class Toy:
    @hookimpl
    def crm_settings(self):
        return SettingsSpec("toy", ToySettings)


def test_plugin_sections_are_structured_with_defaults(make_crm):
    crm = make_crm([("toy", Toy())], settings={"toy": {"cadence": {"b": 14}}})
    assert crm.settings("toy") == ToySettings(Cadence(1, 14), [])
    assert make_crm([("toy", Toy())]).settings("toy") == ToySettings()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"cadence": {"a": 0}}, "toy.cadence.a: must be positive, got 0"),
        ({"cadence": {"a": "daily"}}, "toy.cadence.a: expected int, got str"),
        ({"cadence": {"c": 1}}, "toy.cadence: unknown key(s): c"),
        ({"holidays": ["2026-01-01", 5]}, "toy.holidays[1]: expected str, got int"),
    ],
)
def test_plugin_section_errors_name_the_key(make_crm, section, message):
    with pytest.raises(ConfigError) as info:
        make_crm([("toy", Toy())], settings={"toy": section})
    assert message in str(info.value)


def test_a_section_no_plugin_declares_is_refused(make_crm):
    with pytest.raises(ConfigError, match=r"\[gradng\]: no loaded plugin has a section"):
        make_crm([("toy", Toy())], settings={"gradng": {}})


def test_two_plugins_declaring_one_section_name_both(make_crm):
    from crmcore.errors import PluginError

    with pytest.raises(
        PluginError,
        match=r"section \[toy\] is provided by both plugin 'toy' "
        r"and plugin 'toy2'",
    ):
        make_crm([("toy", Toy()), ("toy2", Toy())])


def test_a_validator_naming_a_nested_path_is_folded_into_the_key():
    from crmcore.config import _tidy

    assert _tidy("sla[0].categories: unknown category 'x' @ $") == (
        "$.sla[0].categories: unknown category 'x'"
    )
    assert _tidy("must be positive @ complaints.sla[1]") == "complaints.sla[1]: must be positive"


class LazyToy:
    """Names its settings class as ``module:Class``: imported when the section is read."""

    @hookimpl
    def crm_settings(self):
        return SettingsSpec("toy", f"{__name__}:ToySettings")


def test_a_settings_class_named_by_module_path_is_structured_like_the_class(make_crm):
    crm = make_crm([("toy", LazyToy())], settings={"toy": {"cadence": {"b": 14}}})
    assert crm.settings("toy") == ToySettings(Cadence(1, 14), [])
    assert crm.settings("toy") is crm.settings("toy")  # structured once
    assert make_crm([("toy", LazyToy())]).settings("toy") == ToySettings()
    assert "toy" in crm.settings_sections()


def test_a_configured_section_is_checked_when_the_crm_opens(make_crm):
    with pytest.raises(ConfigError, match=r"toy\.cadence\.a: must be positive, got 0"):
        make_crm([("toy", LazyToy())], settings={"toy": {"cadence": {"a": 0}}})


def test_an_unconfigured_section_is_structured_on_first_use(make_crm, monkeypatch):
    from crmcore import app

    seen = []
    real = app.structure_section
    monkeypatch.setattr(app, "structure_section", lambda d, c, p: seen.append(p) or real(d, c, p))
    crm = make_crm([("toy", LazyToy())])
    assert "toy" not in seen  # nothing to check: defaults only, built when asked
    assert crm.settings("toy") == ToySettings()
    assert seen.count("toy") == 1


def test_a_settings_class_that_does_not_import_is_a_plugin_error(make_crm):
    from crmcore.errors import PluginError

    class Broken:
        @hookimpl
        def crm_settings(self):
            return SettingsSpec("toy", "crmcore_no_such_module:Settings")

    crm = make_crm([("broken", Broken())])
    with pytest.raises(PluginError, match=r"plugin 'broken': settings \[toy\]: .*could not be"):
        crm.settings("toy")
    with pytest.raises(PluginError, match="could not be loaded"):
        make_crm([("broken", Broken())], settings={"toy": {}})


def test_a_settings_type_string_must_name_module_and_class():
    with pytest.raises(ValueError, match="module:Class"):
        SettingsSpec("toy", "just_a_module")
