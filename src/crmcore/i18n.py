"""Translations: one set of gettext messages per locale, merged from the core's catalog and
every plugin's (``crm_translations``), for the workspace's pages and ``crm report --html``.

Catalogs ship as ``.po`` files only: each is compiled in memory the first time a locale is
asked for (Babel's own compiler), so a compiled file can never lag behind its source. Babel
is imported only then: the CLI's start-up does not pay for it.

- ``translations(locale, plugins)``: a ``babel.support.Translations`` (cached per process);
- ``gettext(locale, plugins)``: its ``gettext`` function;
- ``lazy("Open tasks")``: a label defined at import time, translated when shown, into the
  locale made current with ``activate(translations)``;
- ``negotiate(accept_language)``, ``default_locale(config)``: which locale to show;
  ``store_gettext(crm)``: the store's own language (text its people would type).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.markers import N_ as N_  # re-exported: the documented import of the marker
from crmcore.messages import Message as Message  # re-exported: report messages
from crmcore.messages import from_message_doc as from_message_doc
from crmcore.messages import joined as joined
from crmcore.messages import message_doc as message_doc
from crmcore.messages import msg as msg
from crmcore.messages import restored as restored
from crmcore.messages import stored as stored
from crmcore.messages import term as term
from crmcore.messages import translate as translate

if TYPE_CHECKING:
    from babel.support import NullTranslations

    from crmcore.config import Config
    from crmcore.plugins import PluginManager
    from crmcore.registry import TranslationCatalog

DOMAIN = "crmcore"
#: The locales crmcore ships: English (the messages themselves) and Simplified Chinese.
LOCALES = ("en", "zh_CN")
FALLBACK = "en"
LOCALE_FOLDER = Path(__file__).parent / "locale"
#: Time zones whose stores default to Chinese.
CHINESE_ZONES = frozenset(
    {
        "Asia/Shanghai",
        "Asia/Chongqing",
        "Asia/Chungking",
        "Asia/Harbin",
        "Asia/Urumqi",
        "Asia/Kashgar",
        "PRC",
    }
)

_cache: dict[tuple[str, tuple[tuple[str, str], ...]], NullTranslations] = {}
_lock = threading.Lock()
_current: contextvars.ContextVar[NullTranslations | None] = contextvars.ContextVar(
    "crmcore_i18n_current", default=None
)


def core_catalog() -> TranslationCatalog:
    """The core's own catalog (``crmcore/locale/<locale>/LC_MESSAGES/crmcore.po``)."""
    from crmcore.registry import TranslationCatalog

    return TranslationCatalog(LOCALE_FOLDER, DOMAIN)


def catalogs(plugins: PluginManager | None) -> list[TranslationCatalog]:
    """The core's catalog, then each loaded plugin's, by plugin name."""
    found = [core_catalog()]
    if plugins is not None:
        pairs = plugins.crm_translations()
        found.extend(c for _name, c in sorted(pairs, key=lambda p: p[0]))
    return found


def normalize_locale(locale: str | None) -> str | None:
    """``zh-cn``, ``zh_Hans_CN``, ``zh`` -> ``zh_CN``; ``en-GB`` -> ``en``; others None."""
    if not locale:
        return None
    parts = locale.replace("-", "_").split("_")
    language = parts[0].lower()
    if language == "zh":
        rest = {p.upper() for p in parts[1:]}
        if rest & {"TW", "HK", "MO", "HANT"}:
            return None  # traditional Chinese: not shipped; English rather than the wrong script
        return "zh_CN"
    if language == "en":
        return "en"
    return None


def negotiate(accept_language: str | None) -> str | None:
    """The best shipped locale for an ``Accept-Language`` header, or None."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, i, tag.strip()))
    for _q, _i, tag in sorted(ranked):
        locale = normalize_locale(tag)
        if locale is not None:
            return locale
    return None


def default_locale(config: Config) -> str:
    """The store's language: ``[core] locale`` if set, else Chinese for a store in China's
    time zone, else English."""
    chosen = normalize_locale(getattr(config.core, "locale", None))
    if chosen is not None:
        return chosen
    return "zh_CN" if config.core.timezone in CHINESE_ZONES else FALLBACK


def _compile(po_path: Path, locale: str, domain: str) -> NullTranslations:
    import io

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def translations(locale: str, plugins: PluginManager | None = None) -> NullTranslations:
    """The merged translations for ``locale`` (an unknown locale gets none: the messages as
    written, in English). Catalogs merge in order: the core's, then plugins' by name; a later
    catalog's translation of a message wins."""
    from babel.support import NullTranslations, Translations

    locale = normalize_locale(locale) or FALLBACK
    found = catalogs(plugins)
    key = (locale, tuple((str(c.folder), c.domain) for c in found))
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    merged: NullTranslations = NullTranslations()
    if locale != FALLBACK:
        for catalog in found:
            po = Path(catalog.folder) / locale / "LC_MESSAGES" / f"{catalog.domain}.po"
            if not po.is_file():
                continue
            part = _compile(po, locale, catalog.domain)
            if isinstance(merged, Translations):
                merged.merge(part)  # type: ignore[arg-type]
            else:
                merged = part
    with _lock:
        _cache[key] = merged
    return merged


def gettext(locale: str, plugins: PluginManager | None = None) -> Callable[[str], str]:
    """``_ = gettext("zh_CN", crm.plugins)``; ``_("Open tasks")`` -> ``"未完成的任务"``."""
    return translations(locale, plugins).gettext


def store_gettext(crm: Any) -> Callable[[str], str]:
    """``gettext`` for the store's own language (:func:`default_locale`): text that people
    of this store would type, such as ``crm demo``'s notes, in their language. English
    stores get the messages as written (and Babel is not loaded)."""
    locale = default_locale(crm.config)
    if locale == FALLBACK:
        return str
    return gettext(locale, crm.plugins)


@contextlib.contextmanager
def activate(trans: NullTranslations) -> Iterator[None]:
    """Make ``trans`` the current translations (this thread or task) while the block runs:
    lazy strings shown inside it are translated with them."""
    token = _current.set(trans)
    try:
        yield
    finally:
        _current.reset(token)


def active() -> bool:
    """Whether translations are active here (:func:`activate`)."""
    return _current.get() is not None


def current_gettext(message: str) -> str:
    """``message`` translated with the current translations (as written when none)."""
    trans = _current.get()
    return message if trans is None else trans.gettext(message)


class LazyText:
    """A message translated when it is shown (``str()``), for labels defined at import time.
    Compares and hashes as its message id."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return current_gettext(self.message)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    def __repr__(self) -> str:
        return f"lazy({self.message!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyText):
            return self.message == other.message
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.message)

    def translate(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.message)


#: The separators of :func:`joined` parts, for the catalog (full-width in Chinese): see
#: ``crmcore.messages.SEPARATORS``.
_SEPARATORS = (N_("; "), N_(", "))


def lazy(message: str) -> LazyText:
    """A label translated where it is shown: ``TITLE = lazy("Open tasks")``."""
    return LazyText(message)


def text(value: Any) -> str:
    """A label (``str`` or :class:`LazyText`) as shown now."""
    return str(value)


def clear_cache() -> None:
    """Forget compiled translations (tests that write catalogs)."""
    with _lock:
        _cache.clear()


def po_messages(po_path: Path) -> dict[str, str]:
    """msgid -> msgstr of a ``.po`` file (for tests of completeness)."""
    from babel.messages.pofile import read_po

    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    return {str(m.id): str(m.string or "") for m in catalog if m.id}


def iter_locales() -> Iterable[str]:
    return LOCALES
