"""Deliver the recorded mail: right after its commit, retried with back-off, never twice.

A message's row moves WAITING → SENDING (a worker holds it, with a lease) → HANDED_OVER
(the server holds the whole message) → SENT. A refusal of 4xx, or a server that cannot
be reached, puts it back to WAITING for a later try; 5xx, or the last try, makes it
FAILED with the server's reason. A worker that dies while SENDING leaves the row for the
sweep to put back when the lease ends; one that dies after HANDED_OVER leaves it
UNCONFIRMED: the server probably has it, so it is never sent again by itself.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from huey import crontab
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..mail import AnswerLost, DeliveryError, transport
from ..models import MailMessage, MailState, utcnow
from . import enqueue, job, periodic

log = logging.getLogger(__name__)

#: Seconds to wait before each next try: 8 tries over about 24 hours.
RETRY_DELAYS = (60, 300, 1800, 7200, 14400, 21600, 40800)
MAX_TRIES = len(RETRY_DELAYS) + 1
#: Messages per job: one connection to the mail server carries them all.
BATCH = 50
_NEW = "portal.jobs.new_mail"


def lease() -> timedelta:
    """How long a worker may hold a message: long enough for every answer to time out."""
    return timedelta(seconds=int(current_app.config["SMTP_TIMEOUT"]) * 6 + 30)


@job("deliver_mail")
def deliver_mail(ids: list[int]) -> None:
    """Deliver these messages, those still waiting; the others are someone else's or done."""
    with transport() as send:
        for message_id in ids:
            row = _claim(message_id)
            if row is None:
                continue
            try:
                send(row, _hand_over)
            except AnswerLost as error:
                _settle(row, MailState.UNCONFIRMED, f"no answer after the message: {error}")
            except DeliveryError as error:
                _retry_or_fail(row, error.reason, permanent=error.permanent)
            except Exception as error:  # noqa: BLE001 - a bug or a full disk: try again later
                log.exception("mail %s could not be delivered", row.id)
                _retry_or_fail(row, f"the portal could not send it: {type(error).__name__}")
            else:
                _settle(row, MailState.SENT, "")


def _claim(message_id: int) -> MailMessage | None:
    now = utcnow()
    claimed = db.session.execute(  # type: ignore[attr-defined] # an UPDATE's CursorResult
        update(MailMessage)
        .where(MailMessage.id == message_id, MailMessage.state == MailState.WAITING)
        .values(
            state=MailState.SENDING,
            attempts=MailMessage.attempts + 1,
            lease_until=now + lease(),
        )
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return None
    return db.session.get(MailMessage, message_id, populate_existing=True)


def _hand_over(row: MailMessage) -> None:
    db.session.execute(
        update(MailMessage)
        .where(MailMessage.id == row.id, MailMessage.state == MailState.SENDING)
        .values(state=MailState.HANDED_OVER)
    )
    db.session.commit()


def _settle(row: MailMessage, state: MailState, reason: str) -> None:
    now = utcnow()
    values: dict[str, Any] = {"state": state, "lease_until": None, "last_error": reason[:500]}
    if state is MailState.SENT:
        values["sent_at"] = now
    db.session.execute(update(MailMessage).where(MailMessage.id == row.id).values(**values))
    db.session.commit()


def _retry_or_fail(row: MailMessage, reason: str, *, permanent: bool = False) -> None:
    if permanent or row.attempts >= MAX_TRIES:
        _settle(row, MailState.FAILED, reason)
        return
    delay = RETRY_DELAYS[row.attempts - 1]
    db.session.execute(
        update(MailMessage)
        .where(MailMessage.id == row.id)
        .values(
            state=MailState.WAITING,
            lease_until=None,
            last_error=reason[:500],
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )
    )
    db.session.commit()


def _every_minute(config: dict[str, Any]) -> Any:
    return crontab(minute="*")


@periodic("sweep_mail", _every_minute)
def sweep_mail() -> int:
    """Take back what dead workers held and queue what is due; return how many were queued."""
    now = utcnow()
    db.session.execute(
        update(MailMessage)
        .where(MailMessage.state == MailState.SENDING, MailMessage.lease_until < now)
        .values(
            state=MailState.WAITING,
            lease_until=None,
            next_attempt_at=now,
            last_error="the worker stopped before the server was given it; trying again",
        )
    )
    db.session.execute(
        update(MailMessage)
        .where(MailMessage.state == MailState.HANDED_OVER, MailMessage.lease_until < now)
        .values(
            state=MailState.UNCONFIRMED,
            lease_until=None,
            last_error=(
                "the worker stopped while the server was answering: it was probably "
                "delivered, so it is not sent again by itself"
            ),
        )
    )
    due = list(
        db.session.scalars(
            select(MailMessage.id)
            .where(MailMessage.state == MailState.WAITING, MailMessage.next_attempt_at <= now)
            .order_by(MailMessage.id)
            .limit(BATCH * 20)
        )
    )
    # Not queued again for a lease's time: a queue that is slow to drain is not flooded.
    if due:
        db.session.execute(
            update(MailMessage)
            .where(MailMessage.id.in_(due), MailMessage.state == MailState.WAITING)
            .values(next_attempt_at=now + lease())
        )
    db.session.commit()
    for start in range(0, len(due), BATCH):
        enqueue("deliver_mail", due[start : start + BATCH])
    return len(due)


def resend(message: MailMessage) -> None:
    """Put a failed or unconfirmed message back in the queue, in the caller's transaction."""
    message.state = MailState.WAITING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.lease_until = None
    message.last_error = ""
    _remember(db.session(), message.id)


def _remember(session: Session, message_id: int) -> None:
    session.info.setdefault(_NEW, []).append(message_id)


def register(app: Flask) -> None:
    """Queue each committed message's delivery as the commit ends (once per process)."""
    if event.contains(Session, "after_flush", _collect):
        return
    event.listen(Session, "after_flush", _collect)
    event.listen(Session, "after_commit", _nudge)
    event.listen(Session, "after_rollback", _forget)


def _collect(session: Session, _context: object) -> None:
    for obj in session.new:
        if isinstance(obj, MailMessage):
            _remember(session, obj.id)


def _forget(session: Session) -> None:
    session.info.pop(_NEW, None)


def _nudge(session: Session) -> None:
    ids = session.info.pop(_NEW, None)
    if not ids:
        return
    try:
        for start in range(0, len(ids), BATCH):
            enqueue("deliver_mail", ids[start : start + BATCH])
    except Exception:  # noqa: BLE001 - the rows are kept: the minute's sweep queues them
        log.warning("the job queue could not be reached; mail waits for the sweep", exc_info=True)
