"""``crm.toml``: the storage backend, the enabled plugins and each plugin's settings.

Core sections are ``[core]``, ``[storage]`` (with ``[storage.options]`` for the backend) and
``[plugins]``. Every other top-level table configures the loaded plugin of the same name. Unknown
keys and bad values are refused with the key's full path. ``CRM_STORAGE_BACKEND`` and
``CRM_STORAGE_LOCATION`` override the storage settings; ``CRM_CONFIG`` names the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import cattrs
import cattrs.cols

from crmcore.errors import ConfigError, CrmError, ValidationError
from crmcore.security import SecuritySettings

T = TypeVar("T")

ENV_CONFIG = "CRM_CONFIG"
ENV_BACKEND = "CRM_STORAGE_BACKEND"
ENV_LOCATION = "CRM_STORAGE_LOCATION"
DEFAULT_FILE = "crm.toml"
CORE_SECTIONS = ("core", "storage", "plugins", "security")


def time_zone(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    """Attrs validator for IANA time-zone names (usable in plugin settings too)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai')",
            field=attribute.name,
        ) from None


def _country(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not (value.isdigit() and 1 <= len(value) <= 3):
        raise ValidationError(
            f"expected 1 to 3 digits such as '86', got {value!r}", field=attribute.name
        )


def _locale(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and value not in ("en", "zh_CN"):
        raise ValidationError(f"expected 'en' or 'zh_CN', got {value!r}", field=attribute.name)


@attrs.frozen
class CoreSettings:
    """``[core]``: business-wide defaults."""

    timezone: str = attrs.field(default="UTC", validator=time_zone)
    # the language of pages and HTML reports when the reader chose none ("en", "zh_CN");
    # unset: Chinese for a store in China's time zone, else English (crmcore.i18n)
    locale: str | None = attrs.field(default=None, validator=_locale)
    default_country_code: str | None = attrs.field(default=None, validator=_country)
    unique_phone: bool = False
    unique_email: bool = False
    default_actor: str = "system"
    audit: bool = True  # record every write in the hash-chained audit trail
    encrypt_personal: bool = False  # seal personal fields at rest (needs a key)
    encryption_key_file: str | None = None  # else $CRM_ENCRYPTION_KEY
    # keys data may still be sealed with, during a key rotation; $CRM_ENCRYPTION_PREVIOUS_KEYS
    # (base64 keys separated by commas or whitespace) is used instead when set
    encryption_previous_key_files: list[str] = attrs.field(factory=list)
    # the key of the audit trail's MACs (else $CRM_AUDIT_KEY; none: the chain is unkeyed), and
    # the keys of entries written before the last change of it ($CRM_AUDIT_PREVIOUS_KEYS)
    audit_key_file: str | None = None
    audit_previous_key_files: list[str] = attrs.field(factory=list)


@attrs.frozen
class StorageSettings:
    """``[storage]``: which backend, where, and the backend's own options."""

    backend: str = "tinydb"
    location: str | None = "crm-data"
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class PluginSettings:
    """``[plugins]``: ``enabled`` lists the plugins to load (all installed ones if absent)."""

    enabled: list[str] | None = None


@attrs.frozen
class Config:
    """A parsed configuration. Plugin sections stay raw until the plugins are loaded."""

    core: CoreSettings = attrs.field(factory=CoreSettings)
    storage: StorageSettings = attrs.field(factory=StorageSettings)
    plugins: PluginSettings = attrs.field(factory=PluginSettings)
    security: SecuritySettings = attrs.field(factory=SecuritySettings)
    sections: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    path: Path | None = None

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        path: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Validate a configuration mapping (as parsed from TOML)."""
        env = os.environ if environ is None else environ
        data = dict(data)
        core = structure_section(data.pop("core", {}), CoreSettings, "core")
        if path is not None:  # key files, like the store's folder, are relative to the file
            core = attrs.evolve(
                core,
                encryption_key_file=_beside(path, core.encryption_key_file),
                encryption_previous_key_files=[
                    _beside(path, f) for f in core.encryption_previous_key_files
                ],
                audit_key_file=_beside(path, core.audit_key_file),
                audit_previous_key_files=[_beside(path, f) for f in core.audit_previous_key_files],
            )
        storage_raw = data.pop("storage", {}) or {}
        if not isinstance(storage_raw, Mapping):
            raise ConfigError(f"storage: expected a table, got {type(storage_raw).__name__}")
        storage_raw = dict(storage_raw)
        if env.get(ENV_BACKEND):
            storage_raw["backend"] = env[ENV_BACKEND]
        if env.get(ENV_LOCATION):
            storage_raw["location"] = env[ENV_LOCATION]
        storage = structure_section(storage_raw, StorageSettings, "storage")
        if storage.location and path is not None and not _looks_like_uri(storage.location):
            location = Path(storage.location).expanduser()
            if not location.is_absolute():
                location = path.parent / location
            storage = attrs.evolve(storage, location=str(location))
        plugins = structure_section(data.pop("plugins", {}), PluginSettings, "plugins")
        security = structure_section(data.pop("security", {}), SecuritySettings, "security")
        for name, section in data.items():
            if not isinstance(section, Mapping):
                raise ConfigError(
                    f"{name}: expected a table ([{name}]), got {type(section).__name__}"
                )
        return cls(core, storage, plugins, security, {k: dict(v) for k, v in data.items()}, path)

    @classmethod
    def load(cls, path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
        """Read and validate a TOML file."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"{file}: not UTF-8 text ({_guess_encoding(file)}); save it as UTF-8"
            ) from None
        except FileNotFoundError:
            raise ConfigError(
                f"{file}: no such configuration file (create one with 'crm init')"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(
                f"{file}: not valid TOML: arrays or tables nested too deeply"
            ) from None
        try:
            return cls.from_dict(data, path=file.resolve(), environ=environ)
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None


def _guess_encoding(file: Path) -> str:
    try:
        with file.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return "unreadable"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 2 and 0 in head[:2]):
        return "it looks like UTF-16"
    return "it may be Latin-1 or binary"


def find_config(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to use: ``explicit``, else ``$CRM_CONFIG``, else ``./crm.toml`` if any."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    default = Path(DEFAULT_FILE)
    return default if default.exists() else None


def resolve_config(config: Config | Mapping[str, Any] | str | Path | None = None) -> Config:
    """The configuration ``open_crm`` takes: a ``Config`` as it is, a mapping shaped like
    crm.toml, or a path (None: ``$CRM_CONFIG`` or ``./crm.toml`` if present, else defaults)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return Config.from_dict(config)
    path = find_config(config)
    return Config.load(path) if path is not None else Config.from_dict({})


def _beside(config_file: Path, name: str | None) -> Any:
    """``name`` (a path from the file at ``config_file``) made absolute; None stays None."""
    if not name:
        return name
    target = Path(name).expanduser()
    return str(target if target.is_absolute() else config_file.parent / target)


def _looks_like_uri(location: str) -> bool:
    return "://" in location


def _origin_is(kind: type) -> Callable[[Any], bool]:
    """A predicate: the type's origin is ``kind`` (``list[int]`` → ``list``)."""

    def test(type_: Any) -> bool:
        origin: Any = get_origin(type_)
        return origin is kind

    return test


def _make_strict() -> cattrs.Converter:
    """A converter that never coerces: a string is not a number, a string is not a list."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def exact(*kinds: type) -> Any:
        def hook(value: Any, type_: Any) -> Any:
            if isinstance(value, bool) and bool not in kinds:
                raise TypeError(f"expected {type_.__name__}, got a boolean")
            if not isinstance(value, kinds):
                raise TypeError(f"expected {type_.__name__}, got {type(value).__name__}")
            return type_(value)

        return hook

    conv.register_structure_hook(str, exact(str))
    conv.register_structure_hook(int, exact(int))
    conv.register_structure_hook(float, exact(int, float))
    conv.register_structure_hook(bool, exact(bool))

    def checked(factory: Any, kind: type) -> Any:
        def make(type_: Any, converter: cattrs.Converter) -> Any:
            inner = factory(type_, converter)

            def hook(value: Any, t: Any) -> Any:
                if not isinstance(value, kind):
                    raise TypeError(f"expected a {'list' if kind is list else 'table'}")
                return inner(value, t)

            return hook

        return make

    conv.register_structure_hook_factory(
        _origin_is(list), checked(cattrs.cols.list_structure_factory, list)
    )
    conv.register_structure_hook_factory(
        _origin_is(dict), checked(cattrs.cols.mapping_structure_factory, Mapping)
    )
    return conv


_strict = _make_strict()


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, CrmError):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s): {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return "required key is missing"
    name = getattr(type_, "__name__", None) or str(type_).replace("typing.", "")
    if isinstance(exc, TypeError) and str(exc).startswith("expected"):
        return str(exc)
    if isinstance(exc, TypeError | ValueError):
        return f"expected {name}"
    return str(exc)


def structure_section(data: Any, cls: type[T], path: str) -> T:
    """Structure a table into attrs class ``cls``; errors name the full key path."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a table, got {type(data).__name__}")
    try:
        return _strict.structure(dict(data), cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path=path, format_exception=_format)
        raise ConfigError(
            _tidy(messages[0]) if len(messages) == 1 else "; ".join(_tidy(m) for m in messages)
        ) from None
    except CrmError as exc:  # a validator outside cattrs' wrapping
        raise ConfigError(f"{path}: {exc}") from None


def _tidy(message: str) -> str:
    # cattrs says "<message> @ <path>"; we say "<path>: <message>" with dotted keys.
    text, _, where = message.rpartition(" @ ")
    if not text:
        return message
    where = where.replace("['", ".").replace("']", "")
    # A validator's ValidationError reads "field: message"; fold the field into the path.
    field, sep, rest = text.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_]\w*(\[\d+\]|\.[A-Za-z_]\w*)*", field):
        return f"{where}.{field}: {rest}"
    return f"{where}: {text}"


def profile_names() -> list[str]:
    """The industry stacks ``crm init --profile`` knows (``crmcore/profiles/*.toml``)."""
    files = resources.files("crmcore") / "profiles"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def profile_text(name: str) -> str:
    """The crm.toml of profile ``name``, as ``crm init`` writes it."""
    if name not in profile_names():
        raise ValidationError(f"unknown profile {name!r} (available: {', '.join(profile_names())})")
    return (resources.files("crmcore") / "profiles" / f"{name}.toml").read_text("utf-8")
