"""The workspace's Jinja2 environment: autoescaped, translated per request, times shown in the
store's time zone in a human format.

Templates are found in the web plugin's ``templates`` folder first (``base.html``,
``macros.html``), then in every plugin's ``crm_web_templates`` folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from crmcore import i18n

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment(folders: Iterable[Path | str] = ()) -> jinja2.Environment:
    """The environment over the web plugin's templates and ``folders`` (in that order)."""
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(TEMPLATES))]
    loaders.extend(jinja2.FileSystemLoader(str(f)) for f in folders)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    env.finalize = shown
    return env


def shown(value: Any) -> Any:
    """What ``{{ value }}`` prints: a :class:`crmcore.i18n.Message` (a task's
    ``title_message``, a reason a plugin stored with its message id) in the page's language,
    anything else as it is."""
    if isinstance(value, i18n.Message):
        return i18n.translate(value, i18n.current_gettext)
    return value


def gettext_callables(trans: Any) -> dict[str, Any]:
    """``_``, ``gettext`` and ``ngettext`` for one render, formatting as Jinja's newstyle
    gettext does (``_("Due %(when)s", when=x)``; variables escaped)."""

    @jinja2.pass_context
    def gettext(__context: jinja2.runtime.Context, __string: str, **variables: Any) -> str:
        rv = trans.gettext(__string)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    @jinja2.pass_context
    def ngettext(
        __context: jinja2.runtime.Context,
        __singular: str,
        __plural: str,
        __num: int,
        **variables: Any,
    ) -> str:
        variables.setdefault("num", __num)
        rv = trans.ngettext(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    def tr(value: Any) -> Any:
        """A message (a task's ``title_message``, a stored reason) in the page's language,
        where ``{{ }}`` alone would not translate it: inside ``_()``, joined, in a filter."""
        return i18n.translate(value, trans.gettext) if isinstance(value, str) else value

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext, "tr": tr}


PATTERNS = {"en": ("d MMM y, HH:mm", "d MMM y"), "zh_CN": ("y年M月d日 HH:mm", "y年M月d日")}


class Clock:
    """Times as people read them, in the store's time zone and the page's language."""

    def __init__(
        self, zone: str, locale: str, now: datetime, gettext: Callable[[str], str]
    ) -> None:
        self.zone = ZoneInfo(zone)
        self.locale = "zh_Hans_CN" if locale == "zh_CN" else "en"
        # date and time, date: a 24-hour clock, no seconds, no zone marker
        self.patterns = PATTERNS.get(locale, PATTERNS["en"])
        self.now = now.astimezone(self.zone)
        self._ = gettext
        self._babel: Any = None  # the locale, parsed on first use
        self._shown: dict[tuple[str, datetime], str] = {}  # per page: rows repeat times

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.zone)

    def _babel_locale(self) -> Any:
        if self._babel is None:
            from babel import Locale

            self._babel = Locale.parse(self.locale)
        return self._babel

    def when(self, when: datetime | None) -> str:
        """``Dec 7, 2026, 14:30`` / ``2026年12月7日 14:30`` (no seconds, no UTC marker)."""
        if when is None:
            return ""
        key = ("when", when)
        text = self._shown.get(key)
        if text is None:
            from babel.dates import format_datetime

            text = format_datetime(self.local(when), self.patterns[0], locale=self._babel_locale())
            self._shown[key] = text
        return text

    def time(self, when: datetime) -> str:
        return self.local(when).strftime("%H:%M")

    def day(self, when: date | datetime | None) -> str:
        if when is None:
            return ""
        from babel.dates import format_date

        if isinstance(when, datetime):
            when = self.local(when).date()
        return format_date(when, self.patterns[1], locale=self._babel_locale())

    def relative(self, when: datetime | None) -> str:
        """``today 14:30``, ``yesterday 09:00``, ``tomorrow 10:00``, else the date and time."""
        if when is None:
            return ""
        key = ("relative", when)
        text = self._shown.get(key)
        if text is None:
            local = self.local(when)
            days = (local.date() - self.now.date()).days
            words = {0: self._("today"), -1: self._("yesterday"), 1: self._("tomorrow")}
            text = f"{words[days]} {local:%H:%M}" if days in words else self.when(when)
            self._shown[key] = text
        return text

    def ago(self, when: datetime | None) -> str:
        """``3 hours ago``, ``in 2 days`` (``3小时前``, ``2天后``)."""
        if when is None:
            return ""
        from babel.dates import format_timedelta

        delta: timedelta = when - self.now
        return format_timedelta(
            delta, add_direction=True, locale=self._babel_locale(), threshold=1.5
        )


def render(env: jinja2.Environment, name: str, context: Mapping[str, Any], *, trans: Any) -> str:
    """``name`` rendered with ``context``, lazy strings and ``_`` in ``trans``'s language."""
    template = env.get_template(name)
    with i18n.activate(trans):
        return template.render({**gettext_callables(trans), **context})
