"""The mail queue as admins see it: how many messages are in each state, one page of them,
and resending what failed.

Bodies are never read here: they hold password-reset and confirmation links (whoever reads
another person's reset link can take their account) and people's private messages. The
listing loads only the columns the page shows, and any code that touches a body of a listed
message raises instead of loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import load_only

from .. import audit
from ..core.errors import FieldErrors
from ..extensions import db
from ..jobs.mail import resend
from ..models import MailMessage, MailState, User
from ..pagination import Page, paginate

PER_PAGE = 50
#: The most failed messages one press of "Resend all" puts back in the queue (oldest first).
RESEND_AT_ONCE = 1000
#: Messages an admin may put back in the queue: nothing else is ever resent.
RESENDABLE = (MailState.FAILED, MailState.UNCONFIRMED)
#: Being sent now: a worker holds it, or the server is answering.
IN_FLIGHT = (MailState.SENDING, MailState.HANDED_OVER)


@dataclass(frozen=True)
class Filter:
    """One choice of the page's state filter: its value in the URL, its name, its states."""

    value: str
    label: str
    states: tuple[MailState, ...]


FILTERS: tuple[Filter, ...] = (
    Filter("waiting", "Waiting", (MailState.WAITING, *IN_FLIGHT)),
    Filter("sent", "Sent", (MailState.SENT,)),
    Filter("attention", "Needs attention", RESENDABLE),
    Filter("failed", "Failed", (MailState.FAILED,)),
    Filter("unconfirmed", "Unconfirmed", (MailState.UNCONFIRMED,)),
)
_BY_VALUE = {choice.value: choice for choice in FILTERS}


def read_filter(value: str | None) -> Filter | None:
    """Return the filter a URL's `state` names; None (every message) for anything else."""
    return _BY_VALUE.get((value or "").strip()[:20])


@dataclass(frozen=True)
class Counts:
    """How many messages are in each state, read in one query."""

    by_state: dict[MailState, int]

    def of(self, *states: MailState) -> int:
        return sum(self.by_state.get(state, 0) for state in states)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def failed(self) -> int:
        return self.of(MailState.FAILED)

    @property
    def attention(self) -> int:
        return self.of(*RESENDABLE)

    def of_filter(self, choice: Filter | None) -> int:
        return self.total if choice is None else self.of(*choice.states)


def counts() -> Counts:
    """Return the number of messages in each state (one GROUP BY on the state's index)."""
    rows = db.session.execute(
        select(MailMessage.state, func.count()).group_by(MailMessage.state)
    ).all()
    return Counts({MailState(state): int(number) for state, number in rows})


def needing_attention() -> int:
    """Return how many messages failed or are unconfirmed: what an admin should look at."""
    found = db.session.scalar(
        select(func.count()).select_from(MailMessage).where(MailMessage.state.in_(RESENDABLE))
    )
    return int(found or 0)


#: What the page shows of a message; never its body.
SHOWN = (
    MailMessage.id,
    MailMessage.created_at,
    MailMessage.to,
    MailMessage.subject,
    MailMessage.state,
    MailMessage.attempts,
    MailMessage.next_attempt_at,
    MailMessage.sent_at,
    MailMessage.last_error,
)


def find(choice: Filter | None, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Return one page of messages, newest first, in the states `choice` names (or all)."""
    query = select(MailMessage).options(load_only(*SHOWN, raiseload=True))
    if choice is not None:
        query = query.where(MailMessage.state.in_(choice.states))
    return paginate(query.order_by(MailMessage.id.desc()), page, per_page)


NOT_RESENDABLE = (
    "This email was not resent: it is no longer failed or unconfirmed. "
    "Someone may have resent it a moment ago"
)


def resend_message(admin: User, message: MailMessage) -> None:
    """Put one failed or unconfirmed message back in the queue, audited, in one commit.

    The state the admin saw is claimed by one conditional UPDATE: of two admins pressing
    Resend at once, one resends it and the other is told it was not resent, so it is
    queued, and delivered, once. A message in any other state is refused, unchanged.
    """
    seen = message.state
    if seen not in RESENDABLE:
        raise FieldErrors({"message": NOT_RESENDABLE})
    claimed = db.session.execute(
        update(MailMessage)
        .where(MailMessage.id == message.id, MailMessage.state == seen)
        .values(state=MailState.WAITING)
        .returning(MailMessage.id)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:  # resent, or delivered after a resend, a moment ago
        db.session.rollback()
        raise FieldErrors({"message": NOT_RESENDABLE})
    answer = message.last_error
    resend(message)  # the rest of the row, and its delivery queued after the commit
    audit.record(
        "admin.mail_resent",
        actor=admin,
        target=message,
        detail={
            "to": message.to,
            "subject": message.subject,
            "status": seen.value,
            "server_answer": answer,
        },
    )
    db.session.commit()


def resend_failed(admin: User, limit: int = RESEND_AT_ONCE) -> int:
    """Put up to `limit` failed messages, oldest first, back in the queue; return how many.

    One transaction and one audit event. Unconfirmed messages are left alone: the server
    probably has them, so each is resent only when an admin chooses it. Two admins pressing
    at once never queue a message twice: each message is claimed by the UPDATE that finds it
    still failed.
    """
    oldest = (
        select(MailMessage.id)
        .where(MailMessage.state == MailState.FAILED)
        .order_by(MailMessage.id)
        .limit(limit)
    )
    claimed = list(
        db.session.scalars(
            update(MailMessage)
            .where(MailMessage.id.in_(oldest.scalar_subquery()))
            .where(MailMessage.state == MailState.FAILED)
            .values(state=MailState.WAITING)
            .returning(MailMessage.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:
        db.session.rollback()
        raise FieldErrors({"message": "There are no failed emails to resend"})
    rows = db.session.scalars(
        select(MailMessage)
        .where(MailMessage.id.in_(claimed))
        .options(load_only(MailMessage.id, MailMessage.state, raiseload=True))
        .execution_options(populate_existing=True)
    )
    for message in rows:
        resend(message)
    audit.record("admin.failed_mail_resent", actor=admin, detail={"count": len(claimed)})
    db.session.commit()
    return len(claimed)


def message_or_none(message_id: int) -> MailMessage | None:
    """Return a message with what the page shows of it (never its body), or None."""
    return db.session.get(MailMessage, message_id, options=[load_only(*SHOWN, raiseload=True)])
