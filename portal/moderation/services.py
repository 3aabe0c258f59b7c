"""Deciding on a submitted revision: once, by someone who may, on the version they saw.

The decisions themselves (approve, request changes, reject) are the case-study lifecycle's
(casestudies.services): each checks who decides and moves the revision from "submitted" with
a conditional UPDATE, so of two decisions racing one wins. This module adds what a moderator
needs around them: the decision is bound to the submission the moderator read (`seen`, the
time it was submitted), so a decision made on a page opened before the author changed and
resubmitted the case study never applies to the new version.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from ..casestudies import services
from ..core.updates import changed_rows
from ..extensions import db
from ..models import (
    Attachment,
    CaseStudy,
    ModerationAction,
    ModerationEvent,
    Revision,
    RevisionState,
    User,
)

#: The decisions a moderator can take, each a step of the case-study lifecycle.
STEPS = {
    "approve": services.approve,
    "changes": services.request_changes,
    "reject": services.reject,
}
#: What each decision did, for the message after it.
DONE = {
    "approve": "Approved and published",
    "changes": "Sent back to the author for changes",
    "reject": "Rejected",
}
DECISIONS = (
    ModerationAction.APPROVED,
    ModerationAction.CHANGES_REQUESTED,
    ModerationAction.REJECTED,
)
IMAGE_TYPES = ("image/png", "image/jpeg")


class Changed(services.NotAllowed):
    """The author changed and resubmitted the case study after the moderator opened it."""

    def __init__(self) -> None:
        super().__init__(
            "The author changed this case study after you opened it. "
            "Check what changed, then decide again."
        )


def seen_token(revision: Revision) -> str:
    """Name the submission a moderator is looking at: the moment it was submitted."""
    when = revision.submitted_at
    return when.isoformat(timespec="microseconds") if when is not None else ""


def decide(moderator: User, revision: Revision, choice: str, comment: str, seen: str) -> None:
    """Take decision `choice` on `revision`, as submitted at `seen`; all or nothing.

    Raises FieldErrors (the comment), services.NotAllowed (not theirs to decide, not
    waiting, or Changed since it was seen) or services.AlreadyDecided (someone was first).
    """
    step = STEPS[choice]
    services.ensure_decidable(moderator, revision)
    if not _claimed(revision, seen):
        db.session.rollback()
        db.session.refresh(revision)
        raise _refusal(revision)
    try:
        step(moderator, revision, comment)
    except BaseException:
        db.session.rollback()
        raise


def check(moderator: User, revision: Revision, seen: str) -> None:
    """Raise what `decide` would refuse with now, without deciding (for the check page)."""
    services.ensure_decidable(moderator, revision)
    if revision.state != RevisionState.SUBMITTED or seen != seen_token(revision):
        raise _refusal(revision)


def _claimed(revision: Revision, seen: str) -> bool:
    """Hold the revision for this transaction if it still waits as it was seen.

    A conditional UPDATE that changes nothing: it matches only the submission the moderator
    read, and it takes the row's write lock (PostgreSQL) or the database's (SQLite) until the
    decision commits, so no resubmission or other decision can come between.
    """
    try:
        when = datetime.fromisoformat(seen) if seen else None
    except ValueError:
        return False
    if when is not None and when.tzinfo is not None:
        return False
    same_submission = (
        Revision.submitted_at.is_(None) if when is None else Revision.submitted_at == when
    )
    held = changed_rows(
        db.session.execute(
            update(Revision)
            .where(
                Revision.id == revision.id,
                Revision.state == RevisionState.SUBMITTED,
                same_submission,
            )
            .values(updated_at=Revision.updated_at)
            .execution_options(synchronize_session=False)
        )
    )
    return held == 1


def _refusal(revision: Revision) -> Exception:
    """Say why a revision cannot be decided on: changed since seen, decided, or not waiting."""
    if revision.state == RevisionState.SUBMITTED:
        return Changed()
    event = db.session.scalars(
        select(ModerationEvent)
        .where(ModerationEvent.revision_id == revision.id)
        .order_by(ModerationEvent.id.desc())
        .limit(1)
    ).first()
    if event is None or event.action in (ModerationAction.SUBMITTED, ModerationAction.WITHDRAWN):
        return services.NotAllowed("This case study is not waiting for a decision.")
    return services.AlreadyDecided(event)


def last_request(case_study: CaseStudy) -> ModerationEvent | None:
    """The latest request for changes to this case study, with who asked."""
    return db.session.scalars(
        select(ModerationEvent)
        .where(
            ModerationEvent.case_study_id == case_study.id,
            ModerationEvent.action == ModerationAction.CHANGES_REQUESTED,
        )
        .options(selectinload(ModerationEvent.actor))
        .order_by(ModerationEvent.id.desc())
        .limit(1)
    ).first()


def last_decision(revision: Revision) -> ModerationEvent | None:
    """The latest decision on this revision (approved, changes requested or rejected)."""
    return db.session.scalars(
        select(ModerationEvent)
        .where(ModerationEvent.revision_id == revision.id, ModerationEvent.action.in_(DECISIONS))
        .options(selectinload(ModerationEvent.actor))
        .order_by(ModerationEvent.id.desc())
        .limit(1)
    ).first()


def images(revision: Revision) -> list[Attachment]:
    """The revision's pictures, previewed on the review page so consent can be checked."""
    return [a for a in revision.attachments if a.content_type in IMAGE_TYPES]
