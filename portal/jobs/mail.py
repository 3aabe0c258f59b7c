"""Deliver the recorded mail: right after its commit, retried with back-off, never twice.

A message's row moves WAITING → SENDING (a worker holds it, with a lease) → HANDED_OVER
(the server has its whole text; the final dot goes next) → SENT. A refusal of 4xx, or a
server that cannot be reached, puts it back to WAITING for a later try; 5xx, or the last
try, makes it FAILED with the server's reason. A worker that dies while SENDING leaves the
row for the sweep to put back when the lease ends; one that dies after HANDED_OVER leaves
it UNCONFIRMED: the server probably has it, so it is never sent again by itself. A worker
changes a row only while the row still carries its lease: one that waited on a slow server
past its lease finds the message given to another worker, and stops before the final dot.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from huey import crontab
from sqlalchemy import and_, event, or_, select, update
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
    seconds = int(current_app.config.get("MAIL_LEASE_SECONDS") or 0)
    return timedelta(seconds=seconds or int(current_app.config["SMTP_TIMEOUT"]) * 6 + 30)


class LeaseLost(Exception):
    """The sweep took the message back from this (slow) worker: another one has it now."""


@dataclass
class _Held:
    """A message this worker holds. Its lease is its proof: each change is made only while
    the row still carries that lease, so a worker that outlived its lease changes nothing."""

    row: MailMessage
    attempts: int
    lease_until: datetime
    handed_over: bool = False
    #: The lease a hand-over tried to record when its commit failed (the database away): it
    #: may have been written. The final line was not sent, so the row is ours either way.
    unsure_lease: datetime | None = None

    def _mine(self) -> list[Any]:
        if self.handed_over:
            return [
                MailMessage.id == self.row.id,
                MailMessage.lease_until == self.lease_until,
                MailMessage.state.in_([MailState.HANDED_OVER, MailState.UNCONFIRMED]),
            ]
        ours = [
            and_(
                MailMessage.state == MailState.SENDING, MailMessage.lease_until == self.lease_until
            )
        ]
        if self.unsure_lease is not None:
            ours.append(
                and_(
                    MailMessage.state == MailState.HANDED_OVER,
                    MailMessage.lease_until == self.unsure_lease,
                )
            )
        return [MailMessage.id == self.row.id, or_(*ours)]

    def _change(self, **values: Any) -> bool:
        changed = db.session.execute(  # type: ignore[attr-defined] # an UPDATE's CursorResult
            update(MailMessage).where(*self._mine()).values(**values)
        ).rowcount
        db.session.commit()
        return bool(changed == 1)

    def hand_over(self, row: MailMessage) -> None:
        """Record that the server is about to hold it all (a new lease for its answer)."""
        until = utcnow() + lease()
        try:
            changed = self._change(state=MailState.HANDED_OVER, lease_until=until)
        except Exception:
            db.session.rollback()
            self.unsure_lease = until  # written or not: the final line is not sent
            raise
        if not changed:
            raise LeaseLost(f"mail {row.id} was taken back before the server had it")
        self.lease_until, self.handed_over = until, True

    def settle(self, state: MailState, reason: str) -> None:
        values: dict[str, Any] = {"state": state, "lease_until": None, "last_error": reason[:500]}
        if state is MailState.SENT:
            values["sent_at"] = utcnow()
            # Delivered: its text (reset and confirmation links, people's messages) is no
            # longer kept, neither here nor in the backups; the row says what went, to whom.
            values["body"] = ""
        if not self._change(**values):
            log.warning("mail %s was taken back while this worker held it", self.row.id)

    def retry_or_fail(self, reason: str, *, permanent: bool = False) -> None:
        if permanent:
            self.settle(MailState.FAILED, reason)
        elif self.attempts >= MAX_TRIES:
            self.settle(MailState.FAILED, f"gave up after {MAX_TRIES} tries; the last: {reason}")
        elif not self._change(
            state=MailState.WAITING,
            lease_until=None,
            last_error=reason[:500],
            next_attempt_at=utcnow() + timedelta(seconds=RETRY_DELAYS[self.attempts - 1]),
        ):
            log.warning("mail %s was taken back while this worker held it", self.row.id)


@job("deliver_mail")
def deliver_mail(ids: list[int]) -> None:
    """Deliver these messages, those still waiting; the others are someone else's or done."""
    with transport() as send:
        for message_id in ids:
            held = _claim(message_id)
            if held is None:
                continue
            try:
                send(held.row, held.hand_over)
            except LeaseLost:
                log.warning(
                    "mail %s: held past its lease, left to the worker that has it now", message_id
                )
            except AnswerLost as error:
                held.settle(
                    MailState.UNCONFIRMED,
                    f"the server was given the whole message and never answered ({error}): "
                    "it was probably delivered, so it is not sent again by itself",
                )
            except DeliveryError as error:
                held.retry_or_fail(error.reason, permanent=error.permanent)
            except Exception as error:  # noqa: BLE001 - a bug, a full disk, the database away
                db.session.rollback()
                log.exception("mail %s could not be delivered", message_id)
                _record(held.retry_or_fail, f"the portal could not send it: {type(error).__name__}")
            else:
                held.settle(MailState.SENT, "")


def _record(step: Any, *args: Any) -> None:
    """Record an outcome, trying again for a few seconds while the database is away: a
    message left HANDED_OVER by an unrecorded failure would never be sent."""
    for wait in (1, 2, 4, 8, 0):
        try:
            step(*args)
            return
        except Exception:  # noqa: BLE001 - the connection is down; the sweep is the last resort
            db.session.rollback()
            if not wait:
                raise
            time.sleep(wait)


def _claim(message_id: int) -> _Held | None:
    until = utcnow() + lease()
    claimed = db.session.execute(  # type: ignore[attr-defined] # an UPDATE's CursorResult
        update(MailMessage)
        .where(MailMessage.id == message_id, MailMessage.state == MailState.WAITING)
        .values(state=MailState.SENDING, attempts=MailMessage.attempts + 1, lease_until=until)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return None
    row = db.session.get(MailMessage, message_id, populate_existing=True)
    if row is None:
        return None
    return _Held(row, row.attempts, until)


def _every_minute(config: dict[str, Any]) -> Any:
    return crontab(minute="*")


@periodic("sweep_mail", _every_minute)
def sweep_mail() -> int:
    """Take back what dead workers held and queue what is due; return how many were queued."""
    now = utcnow()
    lapsed = (MailMessage.state == MailState.SENDING, MailMessage.lease_until < now)
    # A message whose worker died on each of its tries (one that kills it?) is not tried again.
    db.session.execute(
        update(MailMessage)
        .where(*lapsed, MailMessage.attempts >= MAX_TRIES)
        .values(
            state=MailState.FAILED,
            lease_until=None,
            last_error=f"gave up after {MAX_TRIES} tries; the last: the worker stopped before "
            "the server was given it",
        )
    )
    db.session.execute(
        update(MailMessage)
        .where(*lapsed)
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
            # The lease stays: a worker still waiting for the answer may yet record it.
            state=MailState.UNCONFIRMED,
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
    """Put a failed or unconfirmed message back in the queue, in the caller's transaction.

    The caller has claimed it first with a conditional UPDATE from that state (see
    portal/admin/mail_queue.py): called on a message that is sent or on its way, it would
    send it again.
    """
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
