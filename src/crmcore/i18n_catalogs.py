"""Keeping ``.po`` catalogs in step with the code: extract the messages of a package (Python
and Jinja2 templates), add new ones to a catalog, drop those gone, and say what is missing.

    python -m crmcore.i18n_catalogs update SRC_DIR PO_FILE   # after changing strings
    python -m crmcore.i18n_catalogs check SRC_DIR PO_FILE    # exit 1 if out of date

Messages are found in calls of ``_``, ``gettext``, ``ngettext``, ``lazy``, ``N_`` and ``msg``
(Python, and ``_()``/``{% trans %}`` in ``*.html`` templates). Tests call :func:`problems` so
that a string added without its translation fails the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy": None,
    "N_": None,
    "msg": (1,),
}
METHODS = [("**.py", "python"), ("**.html", "jinja2.ext:babel_extract")]


def extract(source: Path) -> dict[str, list[str]]:
    """msgid -> where it is used (``file:line``), for every message under ``source``."""
    from babel.messages.extract import extract_from_dir

    found: dict[str, list[str]] = {}
    options = {
        "**.html": {
            "extensions": "jinja2.ext.i18n",
            "newstyle_gettext": "true",
            "trim_blocks": "true",
            "lstrip_blocks": "true",
        }
    }
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(source), method_map=METHODS, options_map=options, keywords=KEYWORDS, comment_tags=()
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def problems(source: Path, po_path: Path) -> list[str]:
    """What is wrong with ``po_path`` for the code under ``source``: messages missing from
    it, messages it has that the code no longer uses, and empty translations."""
    from crmcore.i18n import po_messages

    used = extract(source)
    catalog = po_messages(po_path) if po_path.is_file() else {}
    out = [
        f"missing from {po_path.name}: {m!r} (used at {used[m][0]})"
        for m in sorted(set(used) - set(catalog))
    ]
    out += [
        f"no longer used, remove from {po_path.name}: {m!r}"
        for m in sorted(set(catalog) - set(used))
    ]
    out += [
        f"not translated in {po_path}: {m!r}"
        for m in sorted(set(used) & set(catalog))
        if not catalog[m].strip()
    ]
    return out


def update(source: Path, po_path: Path, locale: str = "zh_CN") -> tuple[int, int]:
    """Add the messages of ``source`` missing from ``po_path`` (with empty translations) and
    drop those no longer used; returns (added, removed)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    used = extract(source)
    header = None
    if po_path.is_file():
        header = _header(po_path.read_text("utf-8"))
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
    else:
        catalog = Catalog(locale=locale)
    old = {str(m.id) for m in catalog if m.id}
    for msgid in sorted(set(used) - old):
        catalog.add(msgid, "")
    for msgid in sorted(old - set(used)):
        catalog.delete(msgid)
    po_path.parent.mkdir(parents=True, exist_ok=True)
    with po_path.open("wb") as handle:
        write_po(
            handle,
            catalog,
            omit_header=False,
            sort_output=True,
            width=100,
            include_lineno=False,
            no_location=True,
        )
    if header is not None:  # keep the file's own header: no churn of dates and placeholders
        text = po_path.read_text("utf-8")
        po_path.write_text(header + text[len(_header(text)) :], "utf-8")
    return len(set(used) - old), len(old - set(used))


def _header(text: str) -> str:
    """The comments and the metadata entry at the top of a ``.po`` file."""
    start = text.find('msgid ""\n')
    end = text.find("\n\n", start)
    return text if start < 0 or end < 0 else text[: end + 2]


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("update", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    source, po_path = Path(argv[1]), Path(argv[2])
    if argv[0] == "update":
        added, removed = update(source, po_path)
        print(f"{po_path}: {added} added, {removed} removed", file=sys.stderr)
        found = [p for p in problems(source, po_path) if p.startswith("not translated")]
    else:
        found = problems(source, po_path)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
