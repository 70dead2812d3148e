"""Search (``/search?q=``): by name or part of one, by phone written any way (or its last 4+
digits), or by e-mail; only customers the signed-in person may read. The core's
``crm.customers.search`` does the finding (through the store's index on search keys) and the
ranking; the page shows the first ``LIMIT`` and says when there are more."""

from __future__ import annotations

from crmcore.registry import PageRequest, Render, WebPage
from crmcore.search import SearchResult
from crmcore_web.ui.pages import people

LIMIT = 50


def pages() -> list[WebPage]:
    return [WebPage("/search", search, name="search")]


def find(request: PageRequest, text: str) -> SearchResult:
    """What ``text`` finds for the signed-in person (at most ``LIMIT``, best first)."""
    return request.crm.customers.search(text, actor=request.actor, limit=LIMIT)


def search(request: PageRequest) -> Render:
    text = " ".join(request.query.get("q", "").split())
    found = find(request, text) if text else SearchResult((), False, "")
    marks = people.badges_of(request.crm, found.customers)
    rows = [
        {
            "customer": c,
            "phone": people.mask_phone(c.phone) if c.phone else "",
            "badges": marks.get(c.id, []),
        }
        for c in found.customers
    ]
    return Render(
        "web/search.html",
        {"text": text, "rows": rows, "how": found.how, "limit": LIMIT, "more": found.more},
    )
