"""Report messages: words with numbers or names in them, English as a ``str``, translated
where they are shown (``crmcore.i18n`` re-exports all of this). Imports nothing: charts and
report sections use it without reaching the catalogs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Message(str):
    """Words with numbers or names in them, for notes and table cells built at report time:
    shown as English wherever a ``str`` is (terminal, JSON), translated by :func:`translate`
    (``msg`` for one message with parameters, ``joined`` for parts shown together)."""

    msgid: str
    params: dict[str, Any]
    parts: tuple[str, ...]
    sep: str

    def __new__(
        cls, msgid: str, params: dict[str, Any], parts: tuple[str, ...] = (), sep: str = ""
    ) -> Message:
        shown = sep.join(parts) if parts else (msgid % params if params else msgid)
        self = super().__new__(cls, shown)
        self.msgid, self.params, self.parts, self.sep = msgid, params, parts, sep
        return self


def msg(message: str, **params: Any) -> Message:
    """``msg("%(graded)s of %(total)s customers graded", graded=3, total=9)``: marked for the
    catalog, shown in English as a ``str``, translated by :func:`translate`."""
    return Message(message, params)


#: The separators of :func:`joined` parts, translated too (marked for the catalog in
#: ``crmcore.i18n``: full-width in Chinese).
SEPARATORS = {"; ": "; ", ", ": ", "}


def term(message: str) -> Message:
    """A message marked elsewhere (``crmcore.i18n.N_``) passed as a parameter of :func:`msg`
    or a part of :func:`joined`: translated with it (plain ``str`` parameters are data, shown
    as given)."""
    return Message(message, {})


def joined(*parts: str, sep: str = "; ") -> Message:
    """Parts (plain messages marked with ``N_``, :func:`msg` results, or data) shown together,
    each translated on its own; empty parts are left out."""
    kept = tuple(p for p in parts if p)
    return Message("", {}, kept, sep)


def translate(value: str, gettext: Callable[[str], str]) -> str:
    """``value`` in the language of ``gettext``: a :class:`Message` part by part and with its
    parameters, a plain string as a message id (unknown ones stay as they are)."""
    if isinstance(value, Message):
        if value.parts or not value.msgid:
            sep = gettext(SEPARATORS[value.sep]) if value.sep in SEPARATORS else value.sep
            return sep.join(translate(p, gettext) for p in value.parts)
        params = {
            k: translate(v, gettext) if isinstance(v, Message) else v
            for k, v in value.params.items()
        }
        return gettext(value.msgid) % params if params else gettext(value.msgid)
    return gettext(value) if value else ""  # gettext("") is the catalog's header
