"""The library's search as a query string and back: shared links, pages, tags and exports.

Anything odd in a query string is dropped, never an error: a shared link always opens.
"""

from __future__ import annotations

import re

from flask import request

from ..core.text import SLUG, clean_query
from ..search import SearchQuery

PER_PAGE = 20
MAX_FILTER_VALUES = 20
YEAR = re.compile(r"(19|20)[0-9]{2}")


def _values(name: str, pattern: re.Pattern[str] = SLUG) -> tuple[str, ...]:
    wanted = [v for v in request.args.getlist(name) if pattern.fullmatch(v)]
    return tuple(dict.fromkeys(wanted))[:MAX_FILTER_VALUES]


def search_query_from_request() -> SearchQuery:
    """Read the library's query string; anything odd is dropped, never an error."""
    page = request.args.get("page", 1, type=int) or 1
    partners = tuple(
        dict.fromkeys(clean_query(p) for p in request.args.getlist("partner") if p.strip())
    )
    return SearchQuery(
        text=clean_query(request.args.get("q", "", type=str)),
        force=_values("force"),
        theme=_values("theme"),
        year=tuple(int(y) for y in _values("year", YEAR)),
        partner=partners[:MAX_FILTER_VALUES],
        sort="newest" if request.args.get("sort") == "newest" else "relevance",
        page=min(max(1, page), 10_000),
        per_page=PER_PAGE,
    )


def query_args(query: SearchQuery, **change) -> dict:
    """The query string of this search, changed: for filter tags, pagination and sorting."""
    args = {
        "q": query.text or None,
        "force": list(query.force),
        "theme": list(query.theme),
        "year": [str(y) for y in query.year],
        "partner": list(query.partner),
        "sort": "newest" if query.sort == "newest" else None,
    }
    args.update(change)
    return {k: v for k, v in args.items() if v}
