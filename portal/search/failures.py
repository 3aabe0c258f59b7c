"""Say when a search fails, so a bug never looks like "no results".

A failing query still answers (empty results: a search must never become an error page),
but the failure is logged with the query's shape: how many words, which kinds of filter,
the sort and the page. Never the words themselves: people type names into search boxes.
"""

from __future__ import annotations

from flask import current_app

from .contract import SearchQuery


def shape(query: SearchQuery) -> dict[str, object]:
    """Return what a query looks like, without what it says."""
    return {
        "words": len(query.text.split()),
        "characters": len(query.text),
        "filters": {
            name: len(getattr(query, name))
            for name in ("force", "theme", "year", "partner")
            if getattr(query, name)
        },
        "sort": query.sort,
        "page": query.page,
    }


def report(what: str, query: SearchQuery | None = None, **detail: object) -> None:
    """Log the exception being handled, as a failure of `what` (query, related, ...)."""
    described = {**(shape(query) if query is not None else {}), **detail}
    current_app.logger.exception("search %s failed %s", what, described)
