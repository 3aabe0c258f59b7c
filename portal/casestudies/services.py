"""The case-study lifecycle: write, submit, withdraw, moderate, publish, archive.

Every step is one function and one transaction: it checks who may do it and from which
state, changes the revision, records a moderation event (and an audit event), and only
after the commit sends its emails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from flask import current_app, render_template
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from .. import audit
from ..auth.sessions import has_second_factor
from ..core import rules
from ..core.errors import FieldErrors
from ..core.links import external_url
from ..core.rules import Content, content_problems, submission_problems
from ..core.text import is_clean_text
from ..core.updates import changed_rows
from ..extensions import db
from ..mail import queue_mail
from ..models import (
    WORKING_STATES,
    Attachment,
    AuditEvent,
    CaseStudy,
    ModerationAction,
    ModerationEvent,
    Partner,
    Revision,
    RevisionState,
    Role,
    Theme,
    User,
    UserStatus,
    utcnow,
)
from ..reference import ensure_partners, key, slugify
from ..search.sync import queue_change
from .diff import compare, snapshot_of


class NotFound(Exception):
    """The object does not exist for this user (never say which)."""


class NotAllowed(Exception):
    """The user may see the object but not do this to it; the message says why."""


class DraftDeleted(NotFound):
    """The draft was deleted (in another window) while this request was writing to it."""


class AlreadySubmitted(NotAllowed):
    """The draft was submitted (a double click, another window) while this request wrote."""

    def __init__(self) -> None:
        super().__init__(
            "This case study has already been sent to the moderators: "
            "it was submitted in another window or by a second click."
        )


class AlreadyDecided(Exception):
    """Someone else decided first; says who, what and when."""

    def __init__(self, event: ModerationEvent | None) -> None:
        self.event = event
        who = event.actor.name if event and event.actor else "another moderator"
        what = event.action.value.replace("_", " ") if event else "decided"
        super().__init__(f"This revision was already {what} by {who}.")


class SubmitRefused(FieldErrors):
    """The work was saved as a draft but is not complete enough to submit."""

    def __init__(self, errors: dict[str, str], case_study: CaseStudy) -> None:
        super().__init__(errors)
        self.case_study = case_study


CHECKLIST_PROBLEM = "Confirm each item of the checklist before you submit"


# Who may see and do what


def is_moderator(user: User | None) -> bool:
    """A moderator's powers need the second factor, here as on the moderation pages."""
    return bool(
        user
        and user.is_authenticated
        and user.has_role(Role.MODERATOR, Role.ADMIN)
        and has_second_factor(user)
    )


def is_author(user: User | None, case_study: CaseStudy) -> bool:
    return bool(user and user.is_authenticated and case_study.author_id == user.id)


def may_see_unpublished(user: User | None, case_study: CaseStudy) -> bool:
    """Authors and moderators see every revision; everyone else only the published one."""
    return is_author(user, case_study) or is_moderator(user)


def get_case_study(case_study_id: int) -> CaseStudy:
    case_study = db.session.get(CaseStudy, case_study_id)
    if case_study is None:
        raise NotFound
    return case_study


def revision_in(case_study: CaseStudy, *states: RevisionState) -> Revision | None:
    return next((r for r in reversed(case_study.revisions) if r.state in states), None)


def published(case_study: CaseStudy) -> Revision | None:
    return revision_in(case_study, RevisionState.PUBLISHED)


def working(case_study: CaseStudy) -> Revision | None:
    return revision_in(case_study, *WORKING_STATES)


def latest(case_study: CaseStudy) -> Revision:
    return case_study.revisions[-1]


def editable_by(user: User, case_study: CaseStudy) -> bool:
    """The author may edit a draft, or start a new version of a published case study."""
    if not is_author(user, case_study) or case_study.archived_at is not None:
        return False
    current = working(case_study)
    if current is not None:
        return current.state == RevisionState.DRAFT
    return published(case_study) is not None


# Writing


def _apply(revision: Revision, content: Content) -> None:
    revision.title = content.title.strip()[: rules.TITLE_MAX]
    revision.summary = content.summary.strip()
    revision.body = content.body
    revision.event_date = content.event_date
    revision.outcomes = content.outcomes
    revision.lessons = content.lessons
    revision.evidence = content.evidence
    revision.contact_name = content.contact_name.strip()
    revision.contact_email = content.contact_email.strip()
    revision.themes = list(db.session.scalars(select(Theme).where(Theme.id.in_(content.theme_ids))))
    revision.partners = _partners(content.partners)


def _partners(names: list[str]) -> list[Partner]:
    ids = ensure_partners(names)
    ordered = list(dict.fromkeys(ids[key(n)] for n in names if n.strip() and key(n) in ids))
    partners = {p.id: p for p in db.session.scalars(select(Partner).where(Partner.id.in_(ordered)))}
    return [partners[i] for i in ordered]


def _working_copy(author: User, case_study: CaseStudy) -> tuple[Revision, dict[int, Attachment]]:
    """Return the draft to write into, starting one from the published version if need be.

    The second value maps each published attachment's id to its copy in a new draft, so
    "remove" ticked against a published file removes the copy.
    """
    current = working(case_study)
    if current is not None:
        if current.state != RevisionState.DRAFT:
            raise NotAllowed("Withdraw the submitted version before you change it.")
        return current, {}
    live = published(case_study)
    if live is None:
        raise NotAllowed("This case study can no longer be edited.")
    number = latest(case_study).number + 1
    with db.session.no_autoflush:  # nothing half-built may reach the database
        revision = Revision(
            case_study=case_study,
            number=number,
            state=RevisionState.DRAFT,
            created_by_id=author.id,
            title=live.title,
        )
        db.session.add(revision)
        _apply(revision, Content.of(live))
        copies = {
            original.id: Attachment(
                filename=original.filename,
                content_type=original.content_type,
                size=original.size,
                sha256=original.sha256,
                data=original.data,
            )
            for original in live.attachments
        }
        revision.attachments = list(copies.values())
    return revision, copies


def save(
    author: User,
    case_study: CaseStudy | None,
    content: Content,
    *,
    attachments: Sequence[Attachment] = (),
    remove_attachment_ids: Sequence[int] = (),
    submit: bool = False,
    checklist: bool = False,
) -> CaseStudy:
    """Save the author's work as a draft, and submit it when asked: one transaction.

    Raises AlreadySubmitted when another request submitted the draft first (nothing of
    this one is written, no email is sent) and DraftDeleted when it was deleted meanwhile.
    """
    problems = content_problems(content)
    if problems:
        raise FieldErrors(problems)
    with _unless_deleted(case_study):
        return _save(
            author,
            case_study,
            content,
            attachments=attachments,
            remove_attachment_ids=remove_attachment_ids,
            submit=submit,
            checklist=checklist,
        )


@contextmanager
def _unless_deleted(case_study: CaseStudy | None) -> Iterator[None]:
    """Turn the errors of writing to a draft deleted meanwhile into DraftDeleted.

    A delete that commits between this request's reads and its flush leaves the UPDATE
    matching no row (StaleDataError), a new file or theme pointing at no revision
    (IntegrityError), or the objects gone (ObjectDeletedError).
    """
    case_study_id = case_study.id if case_study is not None else None
    try:
        yield
    except (StaleDataError, IntegrityError, ObjectDeletedError):
        db.session.rollback()
        if case_study_id is not None and _gone(case_study_id):
            raise DraftDeleted from None
        raise


def _gone(case_study_id: int) -> bool:
    return db.session.scalar(select(CaseStudy.id).where(CaseStudy.id == case_study_id)) is None


def deleted_by(user: User, case_study_id: int) -> bool:
    """Whether this user deleted the case study with this number (their audit log says so)."""
    return (
        db.session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "case_study.deleted",
                AuditEvent.actor_id == user.id,
                AuditEvent.target_type == CaseStudy.__tablename__,
                AuditEvent.target_id == case_study_id,
            )
        )
        is not None
    )


def _new_files(revision: Revision, attachments: Sequence[Attachment]) -> list[Attachment]:
    """Leave out a file already attached (same name, same bytes): a resent form adds none."""
    have = {(a.filename, a.sha256) for a in revision.attachments}
    fresh = []
    for attachment in attachments:
        if (attachment.filename, attachment.sha256) not in have:
            have.add((attachment.filename, attachment.sha256))
            fresh.append(attachment)
    return fresh


def _still_a_draft(revision: Revision) -> None:
    """Hold the revision as a draft until commit; refuse if it was submitted or deleted.

    A conditional UPDATE (DRAFT to DRAFT): of a save and a submission racing, the save
    cannot write content into a revision the moderators already have.
    """
    case_study_id = revision.case_study_id
    if not _move(revision, RevisionState.DRAFT, RevisionState.DRAFT):
        db.session.rollback()
        if _gone(case_study_id):
            raise DraftDeleted
        raise AlreadySubmitted


def _save(
    author: User,
    case_study: CaseStudy | None,
    content: Content,
    *,
    attachments: Sequence[Attachment],
    remove_attachment_ids: Sequence[int],
    submit: bool,
    checklist: bool,
) -> CaseStudy:
    copies: dict[int, Attachment] = {}
    case_study, revision, copies = _draft_to_write(author, case_study, content.title)
    _apply(revision, content)
    removing = set(remove_attachment_ids)
    dropped = [copy for original_id, copy in copies.items() if original_id in removing]
    keep = [
        a
        for a in revision.attachments
        if not (a.id is not None and a.id in removing) and not any(a is d for d in dropped)
    ]
    revision.attachments = keep + _new_files(revision, attachments)
    most = current_app.config["ATTACHMENT_MAX_COUNT"]
    if len(revision.attachments) > most:
        db.session.rollback()
        raise FieldErrors({"attachments": f"A case study can have at most {most} attachments"})
    if case_study.first_published_at is None:
        case_study.slug = slugify(revision.title)
    problems = {}
    if submit:
        problems = submission_problems(content)
        if not checklist:
            problems["checklist"] = CHECKLIST_PROBLEM
    if submit and not problems:
        _submit(author, revision)
        _tell_moderators(revision)
        _tell_author_received(revision)
    else:
        db.session.flush()
        _still_a_draft(revision)
        audit.record("case_study.saved", actor=author, target=case_study)
    db.session.commit()
    if problems:
        # The draft (attachments included) is safe; only the submission waits.
        raise SubmitRefused(problems, case_study)
    return case_study


def _draft_to_write(
    author: User, case_study: CaseStudy | None, title: str
) -> tuple[CaseStudy, Revision, dict[int, Attachment]]:
    """Return the case study and the draft revision to write into, starting either if need be."""
    if case_study is None:
        case_study = CaseStudy(slug=slugify(title), force_id=author.force_id, author_id=author.id)
        revision = Revision(
            case_study=case_study,
            number=1,
            state=RevisionState.DRAFT,
            created_by_id=author.id,
            title="",
        )
        db.session.add(case_study)
        return case_study, revision, {}
    if not editable_by(author, case_study):
        raise NotAllowed("You cannot edit this case study now.")
    revision, copies = _working_copy(author, case_study)
    return case_study, revision, copies


def keep_files(
    author: User, case_study: CaseStudy | None, attachments: Sequence[Attachment]
) -> CaseStudy:
    """Attach accepted files to the draft while the rest of the form is being fixed.

    Nothing else the author typed is written (it breaks a rule); the files are, in one
    transaction, so the author need not choose them again. A new case study gets an
    untitled draft to hold them.
    """
    with _unless_deleted(case_study):
        case_study, revision, _ = _draft_to_write(author, case_study, "")
        revision.attachments = [*revision.attachments, *_new_files(revision, attachments)]
        most = current_app.config["ATTACHMENT_MAX_COUNT"]
        if len(revision.attachments) > most:
            db.session.rollback()
            raise FieldErrors({"attachments": f"A case study can have at most {most} attachments"})
        db.session.flush()
        _still_a_draft(revision)
        audit.record(
            "case_study.saved",
            actor=author,
            target=case_study,
            detail={"files_kept": len(attachments)},
        )
        db.session.commit()
    return case_study


# Deleting a draft


def deletable_by(user: User | None, case_study: CaseStudy) -> bool:
    """Only its author may delete a case study, and only a draft that was never published."""
    return (
        is_author(user, case_study)
        and bool(case_study.revisions)
        and case_study.first_published_at is None
        and case_study.archived_at is None
        and all(r.state == RevisionState.DRAFT for r in case_study.revisions)
    )


def delete_draft(author: User, case_study: CaseStudy) -> str:
    """Delete a never-published draft with everything it holds; return its title.

    One conditional DELETE decides: of two requests racing (a double click, two windows),
    or a delete racing a submission, only one changes anything. The database cascades the
    delete to revisions, attachments (their bytes live in the row), themes, partners'
    links and moderation events; the audit log keeps that it happened.
    """
    if not is_author(author, case_study):
        raise NotFound
    if not deletable_by(author, case_study):
        raise NotAllowed("Only a draft that has never been published can be deleted.")
    title = latest(case_study).title
    case_study_id = case_study.id
    not_draft = (
        select(Revision.id)
        .where(Revision.case_study_id == case_study_id, Revision.state != RevisionState.DRAFT)
        .exists()
    )
    deleted = changed_rows(
        db.session.execute(
            delete(CaseStudy)
            .where(
                CaseStudy.id == case_study_id,
                CaseStudy.author_id == author.id,
                CaseStudy.first_published_at.is_(None),
                CaseStudy.archived_at.is_(None),
                ~not_draft,
            )
            .execution_options(synchronize_session=False)
        )
    )
    if deleted != 1:
        db.session.rollback()
        raise NotFound  # deleted (or submitted) by another request a moment ago
    audit.record(
        "case_study.deleted",
        actor=author,
        target=case_study,
        detail={"title": title},
    )
    db.session.commit()
    db.session.expunge(case_study)  # gone from the database: out of the session too
    return title


# The author's view of where a case study stands


@dataclass(frozen=True)
class Standing:
    """Where a case study stands for its author, and the moderator's word when it matters.

    `key` is one of draft, changes_requested, submitted, rejected, published, archived
    (superseded only for old versions); `feedback` is the decision that sent it back or
    turned it down, with its comment.
    """

    key: str
    revision: Revision
    feedback: ModerationEvent | None = None


def standing_of(revision: Revision, last_event: ModerationEvent | None) -> Standing:
    """Return the standing of one revision, given the last moderation event on it."""
    action = last_event.action if last_event is not None else None
    if revision.state == RevisionState.DRAFT and action == ModerationAction.CHANGES_REQUESTED:
        return Standing("changes_requested", revision, last_event)
    if revision.state == RevisionState.REJECTED and action == ModerationAction.REJECTED:
        return Standing("rejected", revision, last_event)
    return Standing(revision.state.value, revision)


def standings(case_studies: Sequence[CaseStudy]) -> dict[int, Standing]:
    """Return each case study's standing (its latest revision's), with one query for all."""
    latest_revisions = [latest(c) for c in case_studies if c.revisions]
    ids = [r.id for r in latest_revisions]
    last: dict[int, ModerationEvent] = {}
    if ids:
        for event in db.session.scalars(
            select(ModerationEvent)
            .where(ModerationEvent.revision_id.in_(ids))
            .options(selectinload(ModerationEvent.actor))
            .order_by(ModerationEvent.id)
        ):
            last[event.revision_id] = event
    return {r.case_study_id: standing_of(r, last.get(r.id)) for r in latest_revisions}


def standing(case_study: CaseStudy) -> Standing:
    """Return where a case study stands for its author (its latest revision)."""
    return standings([case_study])[case_study.id]


def content_snapshot(revision: Revision) -> dict:
    """Return a revision's content as plain values, for keeping and comparing."""
    content = asdict(Content.of(revision))
    del content["theme_ids"]
    content["themes"] = [t.name for t in revision.themes]
    content["event_date"] = revision.event_date.isoformat() if revision.event_date else None
    content["evidence"] = revision.evidence.label if revision.evidence else None
    content["attachments"] = [a.filename for a in revision.attachments]
    return content


def changes_for_review(case_study: CaseStudy) -> dict[str, list]:
    """Compare the working revision with the published one and with its last submission."""
    current = working(case_study)
    if current is None:
        return {}
    now = content_snapshot(current)
    diffs = {}
    live = published(case_study)
    if live is not None:
        diffs["published"] = compare(content_snapshot(live), now)
    # The last submission before the one now waiting, whichever version it was made on
    # (a rejected edit counts: its successor should show what changed since).
    submissions = db.session.scalars(
        select(ModerationEvent)
        .where(
            ModerationEvent.case_study_id == case_study.id, ModerationEvent.action == "submitted"
        )
        .order_by(ModerationEvent.id.desc())
    ).all()
    if current.state == RevisionState.SUBMITTED and submissions:
        submissions = submissions[1:]
    if submissions:
        diffs["previous"] = compare(snapshot_of(submissions[0].snapshot), now)
    return diffs


def _submit(author: User, revision: Revision) -> None:
    """Move the draft to SUBMITTED with a conditional UPDATE: of requests racing, one wins.

    The losers roll back everything they wrote and send no email.
    """
    now = utcnow()
    db.session.flush()  # a new case study gets its number
    case_study_id = revision.case_study_id
    if not _move(
        revision,
        RevisionState.DRAFT,
        RevisionState.SUBMITTED,
        submitted_at=now,
        checklist_confirmed_at=now,
    ):
        db.session.rollback()
        if _gone(case_study_id):
            raise DraftDeleted
        raise AlreadySubmitted
    _event(
        revision,
        author,
        ModerationAction.SUBMITTED,
        snapshot=json.dumps(content_snapshot(revision), ensure_ascii=False),
    )
    audit.record("case_study.submitted", actor=author, target=revision.case_study)


def _event(
    revision: Revision, actor: User, action: ModerationAction, comment: str = "", snapshot: str = ""
) -> ModerationEvent:
    event = ModerationEvent(
        case_study_id=revision.case_study_id,
        revision_id=revision.id,
        actor_id=actor.id,
        action=action,
        comment=comment,
        snapshot=snapshot,
    )
    db.session.add(event)
    return event


def withdraw(author: User, case_study: CaseStudy) -> None:
    """Take a submitted revision back to draft."""
    if not is_author(author, case_study):
        raise NotAllowed("Only the author can withdraw a case study.")
    revision = revision_in(case_study, RevisionState.SUBMITTED)
    if revision is None or not _move(revision, RevisionState.SUBMITTED, RevisionState.DRAFT):
        raise NotAllowed("This case study is not waiting for moderation.")
    _event(revision, author, ModerationAction.WITHDRAWN)
    audit.record("case_study.withdrawn", actor=author, target=case_study)
    db.session.commit()


def _move(revision: Revision, from_state: RevisionState, to_state: RevisionState, **values) -> bool:
    # A conditional UPDATE: of two requests racing on the same revision, one wins.
    moved = changed_rows(
        db.session.execute(
            update(Revision)
            .where(Revision.id == revision.id, Revision.state == from_state)
            .values(state=to_state, **values)
            .execution_options(synchronize_session=False)
        )
    )
    if moved:
        db.session.refresh(revision)
    return moved == 1


# Moderating


def wrote(user: User, revision: Revision) -> bool:
    """Whether `user` wrote this case study or this version (then another must decide)."""
    return user.id in (revision.case_study.author_id, revision.created_by_id)


def ensure_decidable(moderator: User, revision: Revision) -> None:
    """Raise NotAllowed unless `moderator` may decide on `revision`."""
    if not is_moderator(moderator):
        raise NotAllowed("Only moderators can decide on case studies.")
    if wrote(moderator, revision):
        raise NotAllowed("You wrote this case study: another moderator must decide on it.")


def _already_decided(revision: Revision) -> Exception:
    db.session.rollback()
    db.session.refresh(revision)
    if revision.state == RevisionState.DRAFT and not _decided_since_submission(revision):
        return NotAllowed("This case study is not waiting for a decision.")
    event = db.session.scalars(
        select(ModerationEvent)
        .where(ModerationEvent.revision_id == revision.id)
        .where(ModerationEvent.action != ModerationAction.SUBMITTED)
        .order_by(ModerationEvent.id.desc())
    ).first()
    if event is None or event.action in (ModerationAction.WITHDRAWN,):
        return NotAllowed("This case study is not waiting for a decision.")
    return AlreadyDecided(event)


def _decided_since_submission(revision: Revision) -> bool:
    last = db.session.scalars(
        select(ModerationEvent.action)
        .where(ModerationEvent.revision_id == revision.id)
        .order_by(ModerationEvent.id.desc())
    ).first()
    return last is not None and last not in (ModerationAction.SUBMITTED, ModerationAction.WITHDRAWN)


def _check_comment(comment: str) -> None:
    if len(comment.strip()) > rules.COMMENT_MAX:
        raise FieldErrors({"comment": rules.COMMENT_TOO_LONG})
    if not is_clean_text(comment, multiline=True):
        raise FieldErrors({"comment": rules.CONTROL_PROBLEM})


def approve(moderator: User, revision: Revision, comment: str = "") -> None:
    """Publish a submitted revision; the one it replaces stays on record as superseded."""
    ensure_decidable(moderator, revision)
    _check_comment(comment)
    case_study = revision.case_study
    previous = published(case_study)
    now = utcnow()
    if previous is not None and previous.id != revision.id:
        # Superseded first, so the one-published-revision index is never broken.
        previous.state = RevisionState.SUPERSEDED
        db.session.flush()
    if not _move(revision, RevisionState.SUBMITTED, RevisionState.PUBLISHED, published_at=now):
        raise _already_decided(revision)
    if case_study.first_published_at is None:
        case_study.first_published_at = now
    queue_change(case_study.id)
    _event(revision, moderator, ModerationAction.APPROVED, comment.strip())
    audit.record("case_study.approved", actor=moderator, target=case_study)
    _tell_author(revision, ModerationAction.APPROVED, comment)
    db.session.commit()


def request_changes(moderator: User, revision: Revision, comment: str) -> None:
    """Send a submitted revision back to its author with a comment (required)."""
    _turn_down(
        moderator,
        revision,
        comment,
        ModerationAction.CHANGES_REQUESTED,
        RevisionState.DRAFT,
        missing="Say what needs to change",
    )


def reject(moderator: User, revision: Revision, reason: str) -> None:
    """Refuse a submitted revision with a reason (required); a published version stays live."""
    _turn_down(
        moderator,
        revision,
        reason,
        ModerationAction.REJECTED,
        RevisionState.REJECTED,
        missing="Give the reason for rejecting it",
    )


def _turn_down(
    moderator: User,
    revision: Revision,
    comment: str,
    action: ModerationAction,
    to_state: RevisionState,
    *,
    missing: str,
) -> None:
    # A decision that does not publish: it must say why, and the author is told.
    ensure_decidable(moderator, revision)
    _check_comment(comment)
    if not comment.strip():
        raise FieldErrors({"comment": missing})
    if not _move(revision, RevisionState.SUBMITTED, to_state):
        raise _already_decided(revision)
    _event(revision, moderator, action, comment.strip())
    audit.record(f"case_study.{action.value}", actor=moderator, target=revision.case_study)
    _tell_author(revision, action, comment)
    db.session.commit()


def archive(actor: User, case_study: CaseStudy, *, commit: bool = True) -> None:
    """Take a case study out of the library, keeping every record of it (in the caller's
    transaction when not `commit`: closing an account archives within its own)."""
    if not (is_author(actor, case_study) or is_moderator(actor)):
        raise NotAllowed("Only the author or a moderator can archive a case study.")
    live = published(case_study)
    if live is None or case_study.archived_at is not None:
        raise NotAllowed("Only a published case study can be archived.")
    for revision in case_study.revisions:
        if revision.state in (RevisionState.PUBLISHED, *WORKING_STATES):
            revision.state = RevisionState.ARCHIVED
    case_study.archived_at = utcnow()
    queue_change(case_study.id)
    _event(live, actor, ModerationAction.ARCHIVED)
    audit.record("case_study.archived", actor=actor, target=case_study)
    if not is_author(actor, case_study):
        _tell_author(live, ModerationAction.ARCHIVED, "")
    if commit:
        db.session.commit()


# Email


def _tell_moderators(revision: Revision) -> None:
    """One email to each active moderator and admin except the author."""
    moderators = db.session.scalars(
        select(User).where(
            User.role.in_([Role.MODERATOR, Role.ADMIN]),
            User.status == UserStatus.ACTIVE,
            User.id != revision.case_study.author_id,
        )
    ).all()
    link = external_url("moderation.review", revision_id=revision.id)
    for moderator in moderators:
        body = render_template("mail/submitted.txt", revision=revision, link=link, user=moderator)
        queue_mail(moderator.email, f"To moderate: {revision.title}", body)


def _tell_author_received(revision: Revision) -> None:
    """A receipt for the author: it arrived, what happens next, and where to see it."""
    author = revision.case_study.author
    if author is None:
        return
    body = render_template(
        "mail/received.txt",
        revision=revision,
        link=external_url("casestudies.show", case_study_id=revision.case_study_id),
        user=author,
    )
    queue_mail(author.email, f"Received: {revision.title[:80]}", body)


SUBJECTS = {
    ModerationAction.ARCHIVED: "Archived: {title}",
    ModerationAction.APPROVED: "Published: {title}",
    ModerationAction.CHANGES_REQUESTED: "Changes requested: {title}",
    ModerationAction.REJECTED: "Not published: {title}",
}


def _tell_author(revision: Revision, action: ModerationAction, comment: str) -> None:
    author = revision.case_study.author
    if author is None:
        return
    link = external_url("casestudies.show", case_study_id=revision.case_study_id)
    body = render_template(
        "mail/decision.txt",
        revision=revision,
        action=action.value,
        comment=comment.strip(),
        link=link,
        user=author,
    )
    queue_mail(author.email, SUBJECTS[action].format(title=revision.title[:80]), body)
