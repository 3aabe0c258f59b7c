"""Full-text search behind one contract; the configured backend is chosen here."""

from __future__ import annotations

from flask import Flask, current_app

from .contract import SearchBackend, SearchDocument, SearchHit, SearchQuery, SearchResults


def get_backend(*, synonyms: bool = True) -> SearchBackend:
    """Return this app's search backend (one per process), with the admins' synonyms.

    Writers pass `synonyms=False`: the synonyms only matter to queries, and their check
    must never touch a transaction that is being written.
    """
    backend = current_app.extensions.get("portal_search")
    if backend is None:
        if current_app.config["SEARCH_BACKEND"] == "postgres":
            from .postgres_backend import PostgresBackend

            backend = PostgresBackend()
        else:
            from .whoosh_backend import WhooshBackend

            backend = WhooshBackend(current_app.config["SEARCH_INDEX_PATH"])
        current_app.extensions["portal_search"] = backend
    if synonyms:
        _refresh_synonyms(backend)
    return backend


def warm(app: Flask) -> None:
    """Open the search index and read what a query needs before this process serves its
    first request (a server worker's start), so that nobody's search waits for it; a
    failure is logged, never raised: searches then open the index as they come."""
    try:
        with app.app_context():
            backend = get_backend()
            backend.query(SearchQuery())  # the facet arrays and the searcher
            backend.query(SearchQuery(text="police"))  # ...and the searched fields' words
            from ..extensions import db

            db.session.remove()
    except Exception:
        app.logger.warning("search index not opened ahead of the first search", exc_info=True)


def _refresh_synonyms(backend: SearchBackend) -> None:
    # One small query per search: another process (an admin's request) may have edited them.
    from sqlalchemy import func, select

    from ..extensions import db
    from ..models import Synonym

    try:
        version = tuple(
            db.session.execute(
                select(func.count(Synonym.id), func.max(Synonym.updated_at), func.max(Synonym.id))
            ).one()
        )
    except Exception:  # before the first migration: no synonyms yet
        db.session.rollback()
        return
    if current_app.extensions.get("portal_synonyms_version") != version:
        rows = db.session.execute(select(Synonym.term, Synonym.expansion)).all()
        backend.set_synonyms(dict(rows))
        current_app.extensions["portal_synonyms_version"] = version


__all__ = [
    "SearchBackend",
    "SearchDocument",
    "SearchHit",
    "SearchQuery",
    "SearchResults",
    "get_backend",
    "warm",
]
