"""Full-text search behind one contract; the configured backend is chosen here."""

from __future__ import annotations

from flask import current_app

from .contract import SearchBackend, SearchDocument, SearchHit, SearchQuery, SearchResults


def get_backend() -> SearchBackend:
    """Return this app's search backend, created once per app (and so once per process)."""
    backend = current_app.extensions.get("portal_search")
    if backend is None:
        from .whoosh_backend import WhooshBackend

        backend = WhooshBackend(current_app.config["SEARCH_INDEX_PATH"])
        current_app.extensions["portal_search"] = backend
    return backend


__all__ = [
    "SearchBackend",
    "SearchDocument",
    "SearchHit",
    "SearchQuery",
    "SearchResults",
    "get_backend",
]
