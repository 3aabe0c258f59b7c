"""Keep old rows no longer than they are needed: the daily retention job and its parts.

Each part deletes in batches of 5,000 rows, one statement and one commit each, so a large
backlog (the first run after an upgrade, or after a setting is lowered) never holds a long
lock: requests and other jobs write between the batches. Every part is safe to run twice,
or on two workers at once: a row is deleted once, and a second run finds nothing.

The search insights have their own daily job (portal/insights/jobs.py): that area owns
their rule. Links in emails (confirmation, reset, feeds, search-result tokens) are signed
and carry their own expiry: they are no rows, and nothing needs deleting for them.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, delete, exists, or_, select
from sqlalchemy.orm import aliased

from ..core.updates import changed_rows
from ..extensions import db
from ..models import AuditEvent, MailMessage, MailState, ReportFile, ReportFileState, utcnow
from . import periodic
from .schedules import daily_uk

log = logging.getLogger(__name__)

#: Rows deleted per statement (and commit).
BATCH = 5000
#: Failed and unconfirmed mail is kept at least this long, for the admins to look into.
UNDELIVERED_DAYS = 90
#: A report PDF made for older figures is kept this long after a newer one is done (a page
#: that showed its link a moment ago still finds it).
SUPERSEDED_REPORT_GRACE = timedelta(days=1)
#: A report PDF that could not be made is kept this long (its error shows on the page).
FAILED_REPORT_DAYS = 30


def delete_in_batches(model: Any, *where: ColumnElement[bool], batch: int = BATCH) -> int:
    """Delete the rows of `model` matching `where`, `batch` at a time; return how many."""
    total = 0
    while True:
        # Not correlated with the DELETE: it picks the rows itself, from its own table.
        chosen = select(model.id).where(*where).order_by(model.id).limit(batch).correlate(None)
        deleted = changed_rows(
            db.session.execute(
                delete(model)
                .where(model.id.in_(chosen.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
        )
        db.session.commit()
        total += deleted
        if deleted < batch:
            return total


def purge_audit(batch: int = BATCH) -> int:
    """Delete audit events older than PORTAL_AUDIT_RETENTION_DAYS (0: keep them for ever)."""
    days = int(current_app.config["AUDIT_RETENTION_DAYS"])
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    return delete_in_batches(AuditEvent, AuditEvent.at < cutoff, batch=batch)


def purge_mail(batch: int = BATCH) -> int:
    """Delete mail sent more than PORTAL_MAIL_RETENTION_DAYS ago, and mail that failed or is
    unconfirmed with nothing done to it for 90 days (or that many days, if more).

    Mail still waiting, being sent or handed over is never deleted, however old: the
    delivery job owns it. A message holds reset links and private messages, so a sent one
    is not kept longer than the admins need to answer "did it go?".
    """
    days = int(current_app.config["MAIL_RETENTION_DAYS"])
    now = utcnow()
    sent_before = now - timedelta(days=days)
    undelivered_before = now - timedelta(days=max(days, UNDELIVERED_DAYS))
    sent = and_(
        MailMessage.state == MailState.SENT,
        MailMessage.sent_at < sent_before,
        MailMessage.created_at < sent_before,  # implied (sent after made): uses its index
    )
    undelivered = and_(
        MailMessage.state.in_([MailState.FAILED, MailState.UNCONFIRMED]),
        MailMessage.created_at < undelivered_before,
        MailMessage.next_attempt_at < undelivered_before,  # not resent lately
    )
    return delete_in_batches(MailMessage, or_(sent, undelivered), batch=batch)


def purge_report_files(batch: int = BATCH) -> int:
    """Delete annual-report PDFs of figures since changed, and old failed attempts.

    Each year keeps its newest finished PDF; an older finished one goes a day after a newer
    one is done. A failed attempt goes after 30 days. One queued or being made is never
    touched: a job is working on it.
    """
    newer = aliased(ReportFile)
    now = utcnow()
    superseded = and_(
        ReportFile.state == ReportFileState.DONE,
        exists().where(
            newer.year == ReportFile.year,
            newer.state == ReportFileState.DONE,
            newer.finished_at < now - SUPERSEDED_REPORT_GRACE,
            or_(
                newer.finished_at > ReportFile.finished_at,
                and_(newer.finished_at == ReportFile.finished_at, newer.id > ReportFile.id),
                ReportFile.finished_at.is_(None),
            ),
        ),
    )
    failed = and_(
        ReportFile.state == ReportFileState.FAILED,
        ReportFile.requested_at < now - timedelta(days=FAILED_REPORT_DAYS),
    )
    return delete_in_batches(ReportFile, or_(superseded, failed), batch=batch)


PARTS = (purge_mail, purge_audit, purge_report_files)


@periodic("retention", daily_uk(3, 30))
def retention() -> dict[str, int]:
    """Run every part (one failing does not stop the others); return what each deleted."""
    deleted: dict[str, int] = {}
    for part in PARTS:
        try:
            deleted[part.__name__] = part()
        except Exception:  # noqa: BLE001 - the next day tries again
            db.session.rollback()
            log.exception("retention: %s failed", part.__name__)
    log.info("retention: deleted %s", deleted)
    return deleted
