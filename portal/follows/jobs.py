"""The weekly digests, sent by the worker on PORTAL_DIGEST_DAY at PORTAL_DIGEST_HOUR:00 UK
time, and the forgetting of digest records too old to matter.

Safe to run twice, or on several workers at once: a case study never goes to anyone twice
(see digests.py). `portal send-digests` sends them now, by hand.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import g

from ..jobs import periodic
from ..jobs.retention import BATCH, delete_in_batches
from ..jobs.schedules import Test, uk_time
from ..models import DigestItem, utcnow
from .digests import send_digests

log = logging.getLogger(__name__)

#: The scheduled run looks back 8 days, not 7: the day's overlap catches what was published
#: just after last week's run (which may have started a minute later, or an hour earlier in
#: UTC when the clocks went back since). Nothing is sent twice: each pair is claimed once.
WINDOW_DAYS = 8
#: A digest looks back at most 366 days (`send-digests --days`): a record of a case study
#: sent longer ago than this can never be needed to stop a second sending, so it is deleted.
DIGEST_ITEM_DAYS = 400
#: However long no worker ran, a late run looks back at most this far.
MAX_WINDOW_DAYS = 366


def weekly(config: dict[str, Any]) -> Test:
    """The digests' schedule: the configured day and hour, on the hour, UK time."""
    return uk_time(int(config["DIGEST_HOUR"]), 0, day=str(config["DIGEST_DAY"]))


@periodic("send_digests", weekly)
def send_weekly_digests() -> int:
    """Queue this week's digests, then forget digest records too old to matter."""
    # From a day before the slot that last ran: a week late (no worker ran) still misses nothing.
    previous = g.get("previous_slot")
    days = WINDOW_DAYS
    if previous is not None:
        days = min(MAX_WINDOW_DAYS, max(days, (utcnow() - previous).days + 2))
    run = send_digests(days=days)
    log.info("digests: %s queued, %s case studies", run.digests, run.case_studies)
    if run.failed:
        log.warning("digests: %s could not be written; the next run tries again", run.failed)
    forget_old_digest_items()
    return run.digests


def forget_old_digest_items(batch: int = BATCH) -> int:
    """Delete the records of case studies sent in a digest more than 400 days ago."""
    cutoff = utcnow() - timedelta(days=DIGEST_ITEM_DAYS)
    return delete_in_batches(DigestItem, DigestItem.sent_at < cutoff, batch=batch)
