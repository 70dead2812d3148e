"""Messages: words with numbers or names in them, English as a ``str``, translated where
they are shown (``crmcore.i18n`` re-exports all of this). Imports nothing: charts, report
sections and plugins' records use it without reaching the catalogs.

Data-born text (a task's title, a grade's reason) is a :class:`Message` when a plugin makes it,
is stored as a document (:func:`message_doc`, :func:`stored`: the message id, its parameters
and, for reasons, the English text where they do not give it back), is a :class:`Message`
again when read (:func:`from_message_doc`, :func:`restored`) and is translated where it is shown
(:func:`translate`). Text stored by older versions or by plugins that give text only stays a
plain ``str``: shown as written (or translated if it happens to be a message id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
        if not params:  # (shown otherwise than its id: stored text that no longer fits it)
            return gettext(value.msgid) if str(value) == value.msgid else str(value)
        try:
            return gettext(value.msgid) % params
        except (KeyError, ValueError, TypeError):
            # a translation whose placeholders do not match the stored parameters (a record
            # written before the message changed): English, as stored, rather than nothing
            return str(value)
    return gettext(value) if value else ""  # gettext("") is the catalog's header


# -- stored messages -------------------------------------------------------------------------


def message_doc(value: object) -> dict[str, Any] | None:
    """A :class:`Message` as a JSON document: ``{"key": msgid, "args": {...}}`` (a parameter
    that is a message is a document of its own, other parameters are stored as given; no
    ``args`` for a message without parameters), or
    ``{"parts": [...], "sep": "; "}`` for :func:`joined` parts. None for plain text."""
    if not isinstance(value, Message):
        return None
    if value.parts or not value.msgid:
        return {"parts": [message_doc(p) or str(p) for p in value.parts], "sep": value.sep}
    if not value.params:  # a plain message id (a term): no empty "args" stored with it
        return {"key": value.msgid}
    return {"key": value.msgid, "args": {k: message_doc(v) or v for k, v in value.params.items()}}


def from_message_doc(doc: Mapping[str, Any], text: str | None = None) -> Message:
    """The :class:`Message` a :func:`message_doc` describes, shown as ``text`` (the English
    stored with it) when given. A malformed document is a :class:`ValueError`."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"a stored message is a mapping, got {type(doc).__name__}")
    if "parts" in doc:
        parts = tuple(
            _value(p) if isinstance(p, Mapping) else str(p) for p in doc.get("parts") or ()
        )
        sep = str(doc.get("sep") or "")
        built = Message("", {}, parts, sep)
    else:
        key = doc.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("a stored message has no key")
        args = doc.get("args") or {}
        if not isinstance(args, Mapping):
            raise ValueError("a stored message's args are not a mapping")
        params = {str(k): _value(v) if isinstance(v, Mapping) else v for k, v in args.items()}
        try:
            built = Message(key, params)
        except (KeyError, ValueError, TypeError):  # args that do not fit the key
            if text is None:
                raise ValueError(f"a stored message's args do not fit {key!r}") from None
            built = _shown(text, key, params, (), "")
    if text is not None and text != str(built):
        built = _shown(text, built.msgid, built.params, built.parts, built.sep)
    return built


def _value(doc: Mapping[str, Any]) -> Message:
    return from_message_doc(doc)


def _shown(
    text: str, msgid: str, params: dict[str, Any], parts: tuple[str, ...], sep: str
) -> Message:
    """A message shown as ``text`` (the English as stored) whatever its parameters say."""
    self = str.__new__(Message, text)
    self.msgid, self.params, self.parts, self.sep = msgid, params, parts, sep
    return self


def stored(value: str) -> str | dict[str, Any]:
    """How a reason (or any data-born text kept inside a record) is stored: a
    :class:`Message` as ``{"key", "args"}``, with ``"text"`` (the English) only where the
    id and parameters do not give it back (a parameter JSON would change, English shown
    otherwise than its id says); a message without parameters as its id alone (a string:
    its id is its English, and :func:`restored` reads any string as a message id); plain
    text as it is."""
    doc = message_doc(value)
    if doc is None:
        return str(value)
    if not derivable(value):
        return {**doc, "text": str(value)}
    return doc["key"] if len(doc) == 1 and "key" in doc else doc


#: Parameter types a stored document gives back exactly (a float is checked on its own).
_EXACT = (str, int, bool, type(None))


def derivable(value: str) -> bool:
    """Whether ``value`` (a :class:`Message`) reads back from its :func:`message_doc` as the
    same English: built from its id and parameters (or parts), every parameter a message
    that is too or a JSON value that reads back the same (text, a whole number, a finite
    float, true/false, null)."""
    if not isinstance(value, Message):
        return False
    if value.parts or not value.msgid:
        shown = value.sep.join(value.parts)
        return shown == str(value) and all(
            derivable(p) if isinstance(p, Message) else type(p) is str for p in value.parts
        )
    for param in value.params.values():
        if isinstance(param, Message):
            if not derivable(param):
                return False
        elif not (
            type(param) in _EXACT or (type(param) is float and param - param == 0)
        ):  # (inf - inf and nan - nan are nan: not stored exactly)
            return False
    try:
        shown = value.msgid % value.params if value.params else value.msgid
    except (KeyError, ValueError, TypeError):
        return False
    return shown == str(value)


def restored(value: Any) -> str:
    """The reverse of :func:`stored`: a :class:`Message` (shown as its stored English) for a
    message document; for a string (a message without parameters, plain text of older
    records or of plugins that give text only) a message of that id, shown as written and
    translated only where a catalog has it. Never fails: a document it cannot read is shown
    as its text."""
    if isinstance(value, str):
        return value if isinstance(value, Message) or not value else Message(value, {})
    if isinstance(value, Mapping):
        text = value.get("text")
        try:
            return from_message_doc(value, text if isinstance(text, str) else None)
        except ValueError:
            return text if isinstance(text, str) else ""
    return "" if value is None else str(value)
