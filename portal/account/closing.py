"""Closing an account: the person leaves, what they shared stays, without them.

Sessions and private feed links end; follows, digests, the contact listing, the password,
the second factor and linked force sign-ins are deleted, with the emails sent to them; the
account keeps only its role ("Former moderator"), so past decisions keep the role, not the
name. Each live case study they wrote stays published under its force, with its contact
handed to a colleague, or is archived: the person chooses, on the closing page (an admin
closing an account on request chooses for them); one whose contact is a colleague or a team
already may keep it. Case studies never published are deleted.
The audit log keeps its events, for its own period, as the privacy notice says.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update

from .. import audit
from ..auth.services import check_own_password
from ..casestudies.services import archive, published
from ..core.errors import FieldErrors
from ..core.text import is_clean_text, looks_like_email
from ..extensions import db
from ..models import (
    WORKING_STATES,
    CaseStudy,
    DigestItem,
    ExternalIdentity,
    Follow,
    MailMessage,
    ModerationEvent,
    RecoveryCode,
    ReportFile,
    ReportFileState,
    Revision,
    RevisionState,
    Role,
    User,
    UserStatus,
    utcnow,
)

ARCHIVE, HAND_OVER, KEEP = "archive", "hand_over", "keep"


@dataclass(frozen=True)
class Choice:
    """What becomes of one live case study: archived, or its contact handed over."""

    action: str
    name: str = ""
    email: str = ""


def live_case_studies(user: User) -> list[CaseStudy]:
    """The person's case studies in the library now (a published version, not archived)."""
    in_library = select(Revision.id).where(
        Revision.case_study_id == CaseStudy.id, Revision.state == RevisionState.PUBLISHED
    )
    return list(
        db.session.scalars(
            select(CaseStudy)
            .where(
                CaseStudy.author_id == user.id,
                CaseStudy.archived_at.is_(None),
                in_library.exists(),
            )
            .order_by(CaseStudy.id)
        )
    )


def own_contact(user: User, case_study: CaseStudy) -> bool:
    """Whether the case study's published contact is the person's own name or address
    (then it cannot stay as it is: it must be handed over, or the case study archived)."""
    contact = published(case_study)
    if contact is None:
        return True
    return contact.contact_email.strip().lower() == user.email.lower() or (
        contact.contact_name.strip() == user.name.strip()
    )


def read_choices(form, case_studies: list[CaseStudy]) -> dict[int, Choice]:
    """The choices as typed (`choice-N`, `name-N`, `email-N` for case study N)."""
    return {
        c.id: Choice(
            action=str(form.get(f"choice-{c.id}", "")),
            name=str(form.get(f"name-{c.id}", ""))[:200],
            email=str(form.get(f"email-{c.id}", ""))[:300],
        )
        for c in case_studies
    }


#: An account without a password proves it is its owner by a sign-in this recent.
RECENT_SIGN_IN_SECONDS = 10 * 60


def prove_owner(user: User, password: str, signed_in_at: object) -> None:
    """Closing is for good: the owner gives their password again, or (an account a force
    sign-in made, with none) has signed in within the last 10 minutes."""
    if user.password_hash:
        if not password:
            raise FieldErrors({"password": "Enter your password"})
        check_own_password(user, password, "password", "close_account")
    elif not isinstance(signed_in_at, int) or time.time() - signed_in_at > RECENT_SIGN_IN_SECONDS:
        raise FieldErrors(
            {"confirm": "Sign out and sign in again with your force account, then close it"}
        )


def _check(user: User, choices: dict[int, Choice], confirm: str) -> None:
    errors: dict[str, str] = {}
    for case_study_id, choice in choices.items():
        case_study = db.session.get(CaseStudy, case_study_id)
        if choice.action not in (ARCHIVE, HAND_OVER, KEEP):
            errors[f"choice-{case_study_id}"] = (
                "Choose whether to hand its contact to a colleague or archive it"
            )
        elif choice.action == KEEP and (case_study is None or own_contact(user, case_study)):
            errors[f"choice-{case_study_id}"] = (
                "Its contact is you: hand it to a colleague, or archive it"
            )
        elif choice.action == HAND_OVER:
            name, email = choice.name.strip(), choice.email.strip().lower()
            if not name or len(name) > 120 or not is_clean_text(name, multiline=False):
                errors[f"name-{case_study_id}"] = "Enter your colleague's name"
            if not looks_like_email(email):
                errors[f"email-{case_study_id}"] = (
                    "Enter your colleague's email address, like name@kent.police.uk"
                )
            elif email == user.email.lower():
                errors[f"email-{case_study_id}"] = "Enter a colleague's address, not your own"
    if confirm.strip().lower() != user.email.lower():
        errors["confirm"] = "Type the account's email address to confirm"
    if user.role == Role.ADMIN and user.status == UserStatus.ACTIVE:
        admins = db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.status == UserStatus.ACTIVE)
        )
        if (admins or 0) <= 1:
            errors["confirm"] = "This is the only admin account: make someone else an admin first"
    if errors:
        raise FieldErrors(errors)


def problems(user: User, choices: dict[int, Choice], confirm: str) -> dict[str, str]:
    """What stops the account from being closed as asked (field name: message), if anything."""
    live = live_case_studies(user)
    try:
        _check(user, {c.id: choices.get(c.id, Choice("")) for c in live}, confirm)
    except FieldErrors as failure:
        return failure.errors
    return {}


def close(actor: User, user: User, choices: dict[int, Choice], confirm: str) -> None:
    """Close `user`'s account (`actor` is them, or an admin on their request), in one
    transaction: every part happens, or none does."""
    if user.closed_at is not None:
        raise FieldErrors({"confirm": "This account is closed already"})
    live = live_case_studies(user)
    choices = {c.id: choices.get(c.id, Choice("")) for c in live}
    _check(user, choices, confirm)
    old_name, old_email = user.name, user.email.lower()
    now = utcnow()
    # Claimed first, by one conditional UPDATE: of two closings at once (a double click, an
    # admin and the person), one closes it and the other is told.
    claimed = db.session.execute(
        update(User)
        .where(User.id == user.id, User.closed_at.is_(None))
        .values(closed_at=now)
        .returning(User.id)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        db.session.rollback()
        raise FieldErrors({"confirm": "This account is closed already"})
    handed = archived = 0
    for case_study in live:
        choice = choices[case_study.id]
        if choice.action == ARCHIVE:
            archive(actor, case_study, commit=False)  # the lifecycle's own, in this transaction
            archived += 1
        elif choice.action == HAND_OVER:
            for revision in case_study.revisions:
                revision.contact_name = choice.name.strip()
                revision.contact_email = choice.email.strip().lower()
            audit.record("case_study.contact_handed_over", actor=actor, target=case_study)
            handed += 1
        # KEEP: its contact is a colleague or a team already
    # Never published: nobody but moderators saw them, and their author is leaving. The
    # database deletes their versions, files and decisions with them.
    unpublished = db.session.scalars(
        select(CaseStudy).where(
            CaseStudy.author_id == user.id, CaseStudy.first_published_at.is_(None)
        )
    ).all()
    for case_study in unpublished:
        audit.record("case_study.deleted", actor=actor, target=case_study)
    if unpublished:
        db.session.execute(
            delete(CaseStudy)
            .where(CaseStudy.id.in_([c.id for c in unpublished]))
            .execution_options(synchronize_session=False)
        )
        for case_study in unpublished:
            db.session.expunge(case_study)
    # Their details in any other version of what they wrote (or edited) go too, and an
    # edit in progress of a published one is dropped: its author is leaving.
    dropped = []
    for revision in db.session.scalars(
        select(Revision)
        .join(CaseStudy, CaseStudy.id == Revision.case_study_id)
        .where(or_(CaseStudy.author_id == user.id, Revision.created_by_id == user.id))
    ):
        if revision.contact_email.lower() == old_email:
            revision.contact_email = ""
        if revision.contact_name == old_name:
            revision.contact_name = ""
        if revision.state in WORKING_STATES:
            dropped.append(revision.id)
    db.session.flush()
    if dropped:
        db.session.execute(
            delete(Revision)
            .where(Revision.id.in_(dropped))
            .execution_options(synchronize_session=False)
        )
    # The content kept with each submission (for the next review's comparison) holds the
    # contact too: the same rule as the versions.
    handed_to = {
        cid: (c.name.strip(), c.email.strip().lower())
        for cid, c in choices.items()
        if c.action == HAND_OVER
    }
    for event in db.session.scalars(
        select(ModerationEvent)
        .join(CaseStudy, CaseStudy.id == ModerationEvent.case_study_id)
        .where(CaseStudy.author_id == user.id, ModerationEvent.snapshot != "")
    ):
        event.snapshot = _scrubbed(
            event.snapshot, old_name, old_email, handed_to.get(event.case_study_id)
        )
    # Annual-report PDFs made before may name them as a contact: made again when asked for.
    db.session.execute(
        delete(ReportFile)
        .where(ReportFile.state.in_([ReportFileState.DONE, ReportFileState.FAILED]))
        .execution_options(synchronize_session=False)
    )
    for model in (Follow, DigestItem, RecoveryCode, ExternalIdentity):
        db.session.execute(
            delete(model)
            .where(model.user_id == user.id)
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        delete(MailMessage)
        .where(
            or_(
                func.lower(MailMessage.to) == old_email,
                func.lower(MailMessage.reply_to).contains(old_email),  # what they sent
            )
        )
        .execution_options(synchronize_session=False)
    )
    user.name = f"Former {user.role.value}"
    user.email = f"closed-{user.id}@closed.invalid"
    user.password_hash = None
    user.totp_secret = user.totp_pending_secret = None
    user.totp_enabled_at = user.totp_last_step = None
    user.listed_as_contact, user.contact_role, user.wants_digest = False, "", False
    user.confirmed_at = user.last_login_at = user.password_changed_at = None
    user.second_factor_failures, user.second_factor_locked_until = 0, None
    user.session_version += 1
    user.feed_links_version += 1
    user.status = UserStatus.DISABLED
    user.closed_at = now
    audit.record(
        "account.closed",
        actor=actor,
        target=user,
        detail={
            "by": "self" if actor.id == user.id else "admin",
            "handed_over": handed,
            "archived": archived,
            "deleted_unpublished": len(unpublished),
        },
    )
    db.session.commit()
    db.session.expire_all()


def _scrubbed(snapshot: str, name: str, email: str, handed_to: tuple[str, str] | None) -> str:
    """A submission's kept content with the closed account's contact replaced (or blanked)."""
    try:
        content = json.loads(snapshot)
    except ValueError:
        return snapshot
    if not isinstance(content, dict):
        return snapshot
    if handed_to is not None:
        content["contact_name"], content["contact_email"] = handed_to
    else:
        if str(content.get("contact_email", "")).strip().lower() == email:
            content["contact_email"] = ""
        if str(content.get("contact_name", "")).strip() == name.strip():
            content["contact_name"] = ""
    return json.dumps(content, ensure_ascii=False)
