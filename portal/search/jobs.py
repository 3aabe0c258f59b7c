"""Repair the search index every minute: apply what the outbox still holds.

A change is applied right after the request that made it. When that fails (the index was
busy, or the web worker was killed between the commit and the apply), the outbox keeps the
change and this job applies it within a minute, with no request needed. On PostgreSQL the
index is written in the change's own transaction: the outbox stays empty and this is one
cheap query.
"""

from __future__ import annotations

import logging
import threading

from ..extensions import db
from ..jobs import periodic
from ..jobs.schedules import every_minute
from .sync import apply_all

log = logging.getLogger(__name__)

#: One repair at a time in a process: a large backlog is a rebuild, which may outlast the
#: minute, and the next minute's run must not start a second one beside it.
_RUNNING = threading.Lock()


@periodic("repair_search_index", every_minute)
def repair_search_index() -> int:
    """Apply every queued index change; return how many case studies were brought up to date."""
    if not _RUNNING.acquire(blocking=False):
        return 0  # the run still going will apply what is queued
    try:
        done = apply_all()
    except Exception:  # noqa: BLE001 - the outbox keeps the changes: the next minute retries
        db.session.rollback()
        log.warning("search index repair postponed", exc_info=True)
        return 0
    finally:
        _RUNNING.release()
    if done:
        log.info("search index repair: %s case studies brought up to date", done)
    return done
