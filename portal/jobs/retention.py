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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from .. import audit
from ..core.updates import changed_rows
from ..extensions import db
from ..models import (
    Adoption,
    AuditEvent,
    CaseStudy,
    MailMessage,
    MailState,
    ModerationEvent,
    ReportFile,
    ReportFileState,
    Revision,
    SignInState,
    User,
    UserStatus,
    utcnow,
)
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
#: The hash of a used single sign-on state is kept this long (a state lives 10 minutes).
SIGN_IN_STATE_DAYS = 1


def delete_in_batches(
    model: Any,
    *where: ColumnElement[bool],
    batch: int = BATCH,
    before: Callable[[Sequence[int]], None] | None = None,
) -> int:
    """Delete the rows of `model` matching `where`, `batch` at a time; return how many.

    `before(ids)` runs in each batch's transaction first (to let go of what refers to them).
    """
    total = 0
    while True:
        # Not correlated with the DELETE: it picks the rows itself, from its own table.
        chosen = select(model.id).where(*where).order_by(model.id).limit(batch).correlate(None)
        if before is not None:
            ids = db.session.scalars(chosen).all()
            if ids:
                before(ids)
            picked: Any = ids
        else:
            picked = chosen.scalar_subquery()
        deleted = changed_rows(
            db.session.execute(
                delete(model)
                # The conditions again: a row that changed since it was picked (an account
                # confirmed a moment ago) no longer matches, and stays.
                .where(model.id.in_(picked), *where)
                .execution_options(synchronize_session=False)
            )
        )
        db.session.commit()
        total += deleted
        if deleted < batch:
            return total


def _audit_due() -> ColumnElement[bool] | None:
    days = int(current_app.config["AUDIT_RETENTION_DAYS"])
    return AuditEvent.at < utcnow() - timedelta(days=days) if days > 0 else None


def purge_audit(batch: int = BATCH) -> int:
    """Delete audit events older than PORTAL_AUDIT_RETENTION_DAYS (0: keep them for ever)."""
    due = _audit_due()
    return 0 if due is None else delete_in_batches(AuditEvent, due, batch=batch)


def _unconfirmed_due() -> ColumnElement[bool]:
    cutoff = utcnow() - timedelta(days=int(current_app.config["UNCONFIRMED_DAYS"]))
    return and_(
        User.status == UserStatus.PENDING,
        # From the newest registration of the address (each one sends a new link).
        func.coalesce(User.password_changed_at, User.created_at) < cutoff,
        # Never one anything else refers to (an unconfirmed account cannot write, but a
        # row an admin made by hand must not be lost with it).
        ~exists().where(CaseStudy.author_id == User.id),
        ~exists().where(Revision.created_by_id == User.id),
        ~exists().where(ModerationEvent.actor_id == User.id),
        ~exists().where(Adoption.recorded_by_id == User.id),
    )


def _let_go_of_users(ids: Sequence[int]) -> None:
    # Their audit events stay (for their own retention period), without the account.
    db.session.execute(
        update(AuditEvent)
        .where(AuditEvent.actor_id.in_(ids))
        .values(actor_id=None)
        .execution_options(synchronize_session=False)
    )


def purge_unconfirmed(batch: int = BATCH) -> int:
    """Delete registrations nobody confirmed within PORTAL_UNCONFIRMED_DAYS (their name,
    email and force): the confirmation link died after 48 hours."""
    return delete_in_batches(User, _unconfirmed_due(), batch=batch, before=_let_go_of_users)


def _states_due() -> ColumnElement[bool]:
    return SignInState.used_at < utcnow() - timedelta(days=SIGN_IN_STATE_DAYS)


def purge_sign_in_states(batch: int = BATCH) -> int:
    """Delete the hashes of single sign-on states used more than a day ago."""
    return delete_in_batches(SignInState, _states_due(), batch=batch)


def _mail_due() -> ColumnElement[bool]:
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
    return or_(sent, undelivered)


def purge_mail(batch: int = BATCH) -> int:
    """Delete mail sent more than PORTAL_MAIL_RETENTION_DAYS ago, and mail that failed or is
    unconfirmed with nothing done to it for 90 days (or that many days, if more).

    Mail still waiting, being sent or handed over is never deleted, however old: the
    delivery job owns it. A message holds reset links and private messages, so a sent one
    is not kept longer than the admins need to answer "did it go?".
    """
    return delete_in_batches(MailMessage, _mail_due(), batch=batch)


def _reports_due() -> ColumnElement[bool]:
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
    return or_(superseded, failed)


def purge_report_files(batch: int = BATCH) -> int:
    """Delete annual-report PDFs of figures since changed, and old failed attempts.

    Each year keeps its newest finished PDF; an older finished one goes a day after a newer
    one is done. A failed attempt goes after 30 days. One queued or being made is never
    touched: a job is working on it.
    """
    return delete_in_batches(ReportFile, _reports_due(), batch=batch)


PARTS = (purge_mail, purge_audit, purge_report_files, purge_unconfirmed, purge_sign_in_states)

#: What each part deletes, for `portal retention --dry-run`: its model and rows due.
DUE: dict[str, tuple[Any, Callable[[], ColumnElement[bool] | None]]] = {
    "purge_mail": (MailMessage, _mail_due),
    "purge_audit": (AuditEvent, _audit_due),
    "purge_report_files": (ReportFile, _reports_due),
    "purge_unconfirmed": (User, _unconfirmed_due),
    "purge_sign_in_states": (SignInState, _states_due),
}


def due_now() -> dict[str, int]:
    """How many rows each part would delete now (the dry run)."""
    counts = {}
    for name, (model, due) in DUE.items():
        where = due()
        counts[name] = (
            0
            if where is None
            else db.session.scalar(select(func.count()).select_from(model).where(where)) or 0
        )
    return counts


@periodic("retention", daily_uk(3, 30))
def retention() -> dict[str, int]:
    """Run every part (one failing does not stop the others); return what each deleted.
    Each run is in the audit log with its counts."""
    deleted: dict[str, int] = {}
    for part in PARTS:
        try:
            deleted[part.__name__] = part()
        except Exception:  # noqa: BLE001 - the next day tries again
            db.session.rollback()
            log.exception("retention: %s failed", part.__name__)
    audit.record("retention.run", detail=deleted)
    db.session.commit()
    log.info("retention: deleted %s", deleted)
    return deleted


# What the privacy notice says is kept, and for how long: read from the same settings


@dataclass(frozen=True)
class Period:
    what: str
    kept: str


def _days(days: int) -> str:
    if days % 365 == 0:
        years = days // 365
        return f"{years} year{'s' if years != 1 else ''}"
    return f"{days} day{'s' if days != 1 else ''}"


def periods() -> list[Period]:
    """How long each kind of personal data is kept, as the retention jobs apply it."""
    config = current_app.config
    audit_days = int(config["AUDIT_RETENTION_DAYS"])
    mail_days = int(config["MAIL_RETENTION_DAYS"])
    insights = int(config["SEARCH_INSIGHTS_DAYS"])
    return [
        Period(
            "Your account (name, work email, force, role, contact listing, what you follow)",
            "While you use the library",
        ),
        Period(
            'A closed account: only its role ("Former moderator"), its force and when it was '
            "made; no name, email, password or secret",
            "While what it wrote or decided is in the library; its audit events as below",
        ),
        Period(
            "A registration nobody confirmed (name, work email, force)",
            f"{_days(int(config['UNCONFIRMED_DAYS']))} after registering",
        ),
        Period(
            "Case studies and their versions, with the contact details their authors gave",
            "While they are in the library; deleted ones at once",
        ),
        Period(
            "The audit log: who did what, when, from which IP address",
            f"{_days(audit_days)}" if audit_days > 0 else "For ever (the deployment chose so)",
        ),
        Period(
            "Emails the library sent (they can hold a reset link or a private message)",
            f"{_days(mail_days)} after sending; {_days(max(mail_days, UNDELIVERED_DAYS))} if "
            "one could not be delivered",
        ),
        Period(
            "Library searches, for the admins' search insights (the words only, never who "
            "searched)",
            f"{_days(insights)}" if insights > 0 else "Not recorded",
        ),
        Period(
            "Confirmation and password-reset links",
            "Never stored: valid 48 hours and 1 hour, and once only",
        ),
        Period(
            "Sign-ins with a force account: a hash of each sign-in's one-use state",
            _days(SIGN_IN_STATE_DAYS),
        ),
    ]
