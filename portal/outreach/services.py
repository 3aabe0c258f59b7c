"""The rules for reaching out from a case study: messages to its contact, adoptions by forces.

Each step is one function and one transaction with one audit event. A message is sent
before it is recorded, so a mail server's failure is told to the sender, who can try again.
"""

from __future__ import annotations

from email.utils import formataddr

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import audit
from ..casestudies.services import NotAllowed, NotFound, is_moderator, published
from ..core.errors import FieldErrors
from ..core.links import external_url
from ..core.text import is_clean_text, one_line
from ..extensions import db
from ..mail import queue_mail
from ..models import Adoption, AdoptionKind, CaseStudy, Revision, User, UserStatus

MESSAGE_MIN = 20
MESSAGE_MAX = 3000
NOTE_MAX = 500


def _live(case_study: CaseStudy) -> Revision | None:
    """Return the published revision of a case study still in the library, else None."""
    return published(case_study) if case_study.archived_at is None else None


# Contact the author


def contact_revision(case_study: CaseStudy) -> Revision:
    """Return the published revision whose contact can be written to, or raise NotFound."""
    revision = _live(case_study)
    if revision is None or not revision.contact_email:
        raise NotFound
    return revision


def message_problems(message: str) -> dict[str, str]:
    """Return what is wrong with a message to a case study's contact."""
    text = message.strip()
    if not text:
        return {"message": "Enter your message"}
    if len(text) < MESSAGE_MIN:
        return {"message": f"Enter a message of at least {MESSAGE_MIN} characters"}
    if len(text) > MESSAGE_MAX:
        return {"message": f"Enter a message of {MESSAGE_MAX} characters or fewer"}
    if not is_clean_text(text, multiline=True):
        return {"message": "Remove the control characters from your message"}
    return {}


def contact_author(sender: User, case_study: CaseStudy, message: str) -> None:
    """Email the case study's contact, replies going to the sender; record that it was sent."""
    revision = contact_revision(case_study)
    problems = message_problems(message)
    if problems:
        raise FieldErrors(problems)
    text = message.strip()
    title = one_line(revision.title)
    link = external_url("casestudies.show", case_study_id=case_study.id, slug=case_study.slug)
    body = render_template(
        "mail/contact.txt", sender=sender, revision=revision, message=text, link=link
    )
    queue_mail(
        revision.contact_email,
        f"A message about your case study: {title[:80]}",
        body,
        reply_to=formataddr((one_line(sender.name), sender.email)),
    )
    # Never the message itself: it may hold personal data, and the log keeps it for years.
    audit.record(
        "case_study.contacted",
        actor=sender,
        target=case_study,
        detail={"revision": revision.number, "characters": len(text)},
    )
    copy = render_template(
        "mail/contact_copy.txt", sender=sender, revision=revision, message=text, link=link
    )
    queue_mail(sender.email, f"Your message about: {title[:80]}", copy)
    db.session.commit()


# Adopted elsewhere


def adoptions_of(case_study: CaseStudy) -> list[Adoption]:
    """Return the forces' adoptions of a case study, the earliest first."""
    return list(
        db.session.scalars(
            select(Adoption)
            .where(Adoption.case_study_id == case_study.id)
            .options(selectinload(Adoption.force))
            .order_by(Adoption.created_at, Adoption.id)
        )
    )


def may_record_adoption(user: User | None, case_study: CaseStudy) -> bool:
    """A signed-in user of another force may record their force's adoption of a live case study."""
    return bool(
        user
        and user.is_authenticated
        and _live(case_study) is not None
        and user.force_id != case_study.force_id
    )


def may_remove_adoption(user: User | None, adoption: Adoption) -> bool:
    """The adopting force's own users and moderators may take an adoption off the record."""
    return bool(
        user
        and user.is_authenticated
        and (user.force_id == adoption.force_id or is_moderator(user))
    )


def note_problems(note: str) -> dict[str, str]:
    """Return what is wrong with an adoption's note."""
    if len(note.strip()) > NOTE_MAX:
        return {"note": f"Enter a note of {NOTE_MAX} characters or fewer"}
    if not is_clean_text(note, multiline=True):
        return {"note": "Remove the control characters from your note"}
    return {}


def _own_adoption(user: User, case_study: CaseStudy) -> Adoption | None:
    return db.session.scalar(
        select(Adoption).where(
            Adoption.case_study_id == case_study.id, Adoption.force_id == user.force_id
        )
    )


def own_adoption(user: User | None, case_study: CaseStudy) -> Adoption | None:
    """Return the user's force's adoption of the case study, if it has one."""
    if not (user and user.is_authenticated):
        return None
    return _own_adoption(user, case_study)


def record_adoption(user: User, case_study: CaseStudy, kind: AdoptionKind, note: str) -> bool:
    """Record (or update) that the user's force adopted or adapted a case study.

    Returns True when the force's record is new, False when an earlier one was updated.
    """
    if _live(case_study) is None:
        raise NotFound
    if user.force_id == case_study.force_id:
        raise NotAllowed("Your force wrote this case study, so it cannot adopt it.")
    problems = note_problems(note)
    if problems:
        raise FieldErrors(problems)
    adoption = _own_adoption(user, case_study)
    created = adoption is None
    if adoption is None:
        adoption = Adoption(case_study_id=case_study.id, force_id=user.force_id)
        db.session.add(adoption)
    adoption.kind, adoption.note, adoption.recorded_by_id = kind, note.strip(), user.id
    audit.record(
        "adoption.recorded" if created else "adoption.updated",
        actor=user,
        target=case_study,
        detail={"force": user.force.name, "kind": kind.value, "note_characters": len(note.strip())},
    )
    try:
        if created:
            db.session.flush()  # the author's note names the force, read through the relationship
            _tell_author_of_adoption(adoption, case_study)
        db.session.commit()
    except IntegrityError:
        # Someone of the same force recorded it at the same moment: theirs stands, update it.
        db.session.rollback()
        if not created:
            raise
        return record_adoption(user, case_study, kind, note)
    return created


def remove_adoption(user: User, case_study: CaseStudy, adoption_id: int) -> Adoption:
    """Take a force's adoption off the record; return the removed record."""
    adoption = db.session.get(Adoption, adoption_id)
    if adoption is None or adoption.case_study_id != case_study.id:
        raise NotFound
    if not may_remove_adoption(user, adoption):
        raise NotAllowed("Only people from that force or a moderator can remove this.")
    audit.record(
        "adoption.removed",
        actor=user,
        target=case_study,
        detail={"force": adoption.force.name, "kind": adoption.kind.value},
    )
    db.session.delete(adoption)
    db.session.commit()
    return adoption


def _tell_author_of_adoption(adoption: Adoption, case_study: CaseStudy) -> None:
    author = case_study.author
    revision = _live(case_study)
    if author is None or author.status != UserStatus.ACTIVE or revision is None:
        return
    link = external_url("casestudies.show", case_study_id=case_study.id, slug=case_study.slug)
    body = render_template(
        "mail/adopted.txt", user=author, adoption=adoption, revision=revision, link=link
    )
    title = one_line(revision.title, 80)
    queue_mail(author.email, f"{adoption.force.name} has {adoption.kind.value}: {title}", body)
