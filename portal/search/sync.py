"""Keep the index in step with the database: the outbox, its applying, reindex and check."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import delete, func, insert, select

from ..extensions import db
from ..models import SearchOutbox
from . import get_backend
from .contract import SearchDocument
from .documents import (
    PublishedPart,
    all_documents,
    documents_for,
    published_count,
    published_versions,
    split_points,
)

RETRY_SECONDS = 5.0
# A full build of the embedded index runs in this many processes at most (one per core),
# once there are enough published case studies for the processes' start to pay off.
BUILD_PROCESSES = 2
PARALLEL_BUILD_FROM = 8_000


def queue_change(*case_study_ids: int) -> None:
    """Record, in the caller's transaction, that these case studies must be re-indexed.

    A backend inside the database (PostgreSQL) is written here and now, in that same
    transaction; others get an outbox row, applied after the commit.
    """
    backend = get_backend(synonyms=False)
    if case_study_ids and backend.transactional:
        db.session.flush()
        ids = set(case_study_ids)
        documents = documents_for(ids)
        backend.write(documents.values(), ids - set(documents))
        return
    if case_study_ids:
        db.session.execute(insert(SearchOutbox), [{"case_study_id": i} for i in case_study_ids])
    g.search_outbox_pending = True


def apply_pending(limit: int = 2000) -> int:
    """Apply queued index changes; return how many case studies were brought up to date.

    Rows are deleted only after the index write succeeded, and only those read, so a
    change queued meanwhile by another process is never lost. Any failure leaves the
    rows for the next attempt (the next request, or `portal search-sync`).
    """
    rows = db.session.execute(
        select(SearchOutbox.id, SearchOutbox.case_study_id).order_by(SearchOutbox.id).limit(limit)
    ).all()
    if not rows:
        return 0
    ids = {case_study_id for _, case_study_id in rows}
    documents = documents_for(ids)  # the database decides: published now, or not
    get_backend().apply(documents.values(), ids - set(documents))
    db.session.execute(
        delete(SearchOutbox).where(
            SearchOutbox.id <= rows[-1][0], SearchOutbox.id.in_([r[0] for r in rows])
        )
    )
    db.session.commit()
    return len(ids)


BULK = 1000


def apply_all() -> int:
    """Apply every queued change (for the CLI and the repair job), then merge the small
    segments they leave; a large backlog is faster as a rebuild."""
    total = 0
    if pending_count() > BULK:
        high = db.session.scalar(select(func.max(SearchOutbox.id)))
        total = reindex()
        # Only what was queued before the rebuild began is known to be in it.
        db.session.execute(delete(SearchOutbox).where(SearchOutbox.id <= high))
        db.session.commit()
    while (done := apply_pending()) > 0:
        total += done
    merge_segments()
    return total


def merge_segments() -> None:
    """Merge the small index segments updates leave (Whoosh), away from any request."""
    merge = getattr(get_backend(synonyms=False), "merge_segments", None)
    if merge is not None:
        merge()


def pending_count() -> int:
    return db.session.scalar(select(func.count()).select_from(SearchOutbox)) or 0


@dataclass(frozen=True)
class Drift:
    missing: list[int]  # published, not in the index
    stale: list[int]  # in the index with an older version
    extra: list[int]  # in the index, not published

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def check() -> Drift:
    """Compare the index with the database, the truth."""
    truth = published_versions()
    indexed = get_backend().indexed_versions()
    return Drift(
        missing=sorted(set(truth) - set(indexed)),
        stale=sorted(i for i in set(truth) & set(indexed) if truth[i] != indexed[i]),
        extra=sorted(set(indexed) - set(truth)),
    )


def reindex(progress: Callable[[int], object] | None = None) -> int:
    """Rebuild the index from the database and swap it in; then repair any change made meanwhile."""

    def documents() -> Iterator[SearchDocument]:
        for done, document in enumerate(all_documents(), start=1):
            if progress and done % 1000 == 0:
                progress(done)
            yield document

    backend = get_backend()
    parts = _build_parts(backend)
    count: int = (
        backend.rebuild_parts(parts, progress)  # type: ignore[attr-defined]
        if parts
        else backend.rebuild(documents())
    )
    drift = check()
    repair = drift.missing + drift.stale
    if repair or drift.extra:
        repaired = documents_for(repair)
        get_backend().apply(repaired.values(), drift.extra)
    return count


def _build_parts(backend: object) -> list[PublishedPart]:
    """The parts a backend that builds in several processes (Whoosh) builds at once, one
    per core, when there are enough case studies to be worth it; else none."""
    processes = min(BUILD_PROCESSES, len(os.sched_getaffinity(0)))
    if (
        not hasattr(backend, "rebuild_parts")
        or processes < 2
        or db.engine.url.get_backend_name() == "sqlite"
        and db.engine.url.database in (None, "", ":memory:")
    ):
        return []
    total = published_count()
    if total < PARALLEL_BUILD_FROM:
        return []
    return PublishedPart.runs(split_points(processes, total))


def register(app: Flask) -> None:
    """After each request that queued a change (and now and then otherwise), apply the outbox."""
    last_attempt = {"at": 0.0}

    @app.teardown_request
    def _apply_after_request(error: BaseException | None) -> None:
        due = g.get("search_outbox_pending") or time.monotonic() - last_attempt["at"] > 60
        if error is not None or not due:
            return
        last_attempt["at"] = time.monotonic()
        try:
            apply_pending()
        except Exception:  # the outbox keeps the change; it is retried later
            db.session.rollback()
            current_app.logger.warning("search index update postponed", exc_info=True)
