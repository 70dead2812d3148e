"""What text crmcore accepts, and how stored text is shown safely (``docs/text.md``).

Two rules at the door, applied by the entities' validators (``crmcore.schema``), by
``Records`` for plugin records and by the ``ext`` check of the core entities:

- **every** text value must be encodable as UTF-8: a lone surrogate (``"\\ud800"``, which a
  JSON file or a shell can produce) is refused, naming the field;
- **free text** (a summary, notes, a complaint's content) keeps tabs and line breaks but refuses
  the other C0 control characters (NUL, ESC …), DEL and the C1 controls;
- **names** (a customer's name, tags, owners, ids, kinds, titles …) are one line: they also
  refuse tabs and line breaks, the Unicode line and paragraph separators and the bidirectional
  controls (overrides, embeddings, isolates and marks) that reorder what a reader sees.

Text already stored before these rules (or written by other tools) is never refused on the way
out: ``for_terminal`` shows such characters as visible escapes and ``json_text`` writes them as
JSON ``\\u`` escapes, so one bad record cannot stop a listing or an export of the whole store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

from crmcore.errors import ValidationError

_SURROGATE = "\ud800-\udfff"
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 but TAB, LF, CR; DEL; C1
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LINES = "\t\n\r\u2028\u2029"

_LONE_SURROGATE = re.compile(f"[{_SURROGATE}]")
_BAD_FREE = re.compile(f"[{_SURROGATE}{_CONTROL}]")
_BAD_NAME = re.compile(f"[{_SURROGATE}{_CONTROL}{_BIDI}{_LINES}]")
_SHOWN_ESCAPED = re.compile(f"[{_SURROGATE}{_CONTROL}{_BIDI}\u2028\u2029\ufeff]")
_SHOWN_ESCAPED_ONE_LINE = re.compile(f"[{_SURROGATE}{_CONTROL}{_BIDI}{_LINES}\ufeff]")


def _problem(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # how Python hands over a byte that is not UTF-8
        return f"bytes that are not valid UTF-8 (0x{code - 0xDC00:02X}); use UTF-8 text"
    if 0xD800 <= code <= 0xDFFF:
        return f"text that is not valid Unicode (a lone surrogate, U+{code:04X})"
    if char in "\t\n\r\u2028\u2029":
        return f"a line break or tab (U+{code:04X}); it must be one line"
    if char in "\u061c\u200e\u200f" or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"a bidirectional control character (U+{code:04X})"
    return f"a control character (U+{code:04X})"


def check_free_text(value: str, field: str) -> None:
    """Refuse lone surrogates and control characters other than tab and line breaks."""
    if value.isascii() and value.isprintable():  # the common case, without a regex
        return
    bad = _BAD_FREE.search(value)
    if bad is not None:
        raise ValidationError(f"contains {_problem(bad.group())}", field=field)


def check_name(value: str, field: str) -> None:
    """Refuse what ``check_free_text`` refuses, and line breaks, tabs and bidi controls."""
    if value.isascii() and value.isprintable():
        return
    bad = _BAD_NAME.search(value)
    if bad is not None:
        raise ValidationError(f"contains {_problem(bad.group())}", field=field)


def check_encodable(value: Any, field: str) -> None:
    """Refuse any text (keys included) anywhere in ``value`` that UTF-8 cannot encode, naming
    its path (``ext.grading.note``); other control characters are left to the field's rule."""
    if type(value) is dict or type(value) is list:
        # The usual case in one pass in C: orjson refuses every text UTF-8 cannot encode
        # (lone surrogates, keys included), so if it encodes the value there is nothing to
        # refuse; if it does not (that, or what JSON alone cannot hold), the walk below
        # decides and names the field.
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            pass
        else:
            return
    _check_encodable(value, field)


def _check_encodable(value: Any, field: str) -> None:
    if isinstance(value, str):
        bad = None if value.isascii() else _LONE_SURROGATE.search(value)
        if bad is not None:
            raise ValidationError(f"contains {_problem(bad.group())}", field=field)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{field}.{key}" if isinstance(key, str) else field
            _check_encodable(key, field)
            _check_encodable(item, path)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_encodable(item, field)


def for_terminal(text: str, *, one_line: bool = False) -> str:
    """``text`` with control, bidi and invalid characters shown as escapes (``\\x1b``,
    ``\\u202e``, ``\\ud800``), so what a terminal shows is what is stored. Line breaks are
    kept unless ``one_line``."""
    pattern = _SHOWN_ESCAPED_ONE_LINE if one_line else _SHOWN_ESCAPED
    if text.isascii() and text.isprintable():
        return text
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def encodable_text(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``): what a file
    format without escapes of its own (CSV) can hold of text stored before the rules."""
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub(_escape, text)


_JSON_ESCAPED = re.compile(f"[{_SURROGATE}\x7f-\x9f{_BIDI}\u2028\u2029\ufeff]")


def json_text(data: Any, **options: Any) -> str:
    """``json.dumps(data, ensure_ascii=False, **options)``, with lone surrogates, DEL, C1 and
    bidi controls written as ``\\u`` escapes: the same JSON value, always encodable as UTF-8
    and inert on a terminal."""
    text = json.dumps(data, ensure_ascii=False, **options)
    if text.isascii():
        return text
    # Outside strings JSON text is ASCII, so every match is inside a string: escaping it there
    # keeps the value the same.
    return _JSON_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
