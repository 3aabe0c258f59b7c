"""What admins may do to accounts; every change is one transaction with an audit event."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app, render_template
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import audit
from ..auth.services import resolve_force
from ..core.errors import FieldErrors
from ..core.links import external_url
from ..core.text import is_clean_text
from ..extensions import db
from ..mail import queue_mail
from ..models import Revision, RevisionState, Role, Synonym, User, UserStatus, utcnow
from ..pagination import Page, like_pattern, paginate


def overview() -> dict[str, int]:
    """Return what waits for admins: accounts to confirm, case studies to moderate."""
    pending = select(func.count()).select_from(User).where(User.status == UserStatus.PENDING)
    waiting = (
        select(func.count()).select_from(Revision).where(Revision.state == RevisionState.SUBMITTED)
    )
    return {
        "pending_accounts": db.session.scalar(pending) or 0,
        "waiting_case_studies": db.session.scalar(waiting) or 0,
    }


def search_users(text: str = "", page: int = 1, per_page: int = 25) -> Page:
    """Return users whose name or email contains `text`, newest first."""
    query = (
        select(User)
        .options(selectinload(User.force))
        .order_by(User.created_at.desc(), User.id.desc())
    )
    if text:
        pattern = like_pattern(text.lower())  # % and _ are taken literally
        query = query.where(
            or_(
                func.lower(User.name).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
            )
        )
    return paginate(query, page, per_page)


def confirm_user(admin: User, user: User) -> None:
    """Confirm an account whose owner cannot reach the emailed link."""
    if user.status != UserStatus.PENDING:
        raise FieldErrors({"status": "This account is already confirmed"})
    user.status = UserStatus.ACTIVE
    user.confirmed_at = utcnow()
    audit.record("admin.user_confirmed", actor=admin, target=user)
    db.session.commit()


def set_status(admin: User, user: User, status: UserStatus) -> None:
    """Disable or re-enable an account; disabling ends its sessions at once."""
    if user.id == admin.id:
        raise FieldErrors({"status": "You cannot disable your own account"})
    if status not in (UserStatus.ACTIVE, UserStatus.DISABLED) or status == user.status:
        return
    if user.closed_at is not None:
        raise FieldErrors({"status": "This account was closed: it cannot be used again"})
    before = user.status
    user.status = status
    user.session_version += 1
    if status == UserStatus.DISABLED:
        user.feed_links_version += 1
    if status == UserStatus.ACTIVE and user.confirmed_at is None:
        user.confirmed_at = utcnow()
    audit.record(
        "admin.user_status_changed",
        actor=admin,
        target=user,
        detail={"from": before.value, "to": status.value},
    )
    db.session.commit()


@dataclass(frozen=True)
class RoleChange:
    """What saving a role did: whether it changed, and whether its owner was emailed."""

    changed: bool
    emailed: bool = False


ROLE_SUBJECTS = {
    Role.CONTRIBUTOR: "Your role on the {site} is now contributor",
    Role.MODERATOR: "You are now a moderator on the {site}",
    Role.ADMIN: "You are now an admin on the {site}",
}


def set_role(admin: User, user: User, role: Role) -> RoleChange:
    """Change an account's role and email its owner; an admin cannot demote themselves.

    The change and its audit event are one transaction, made by one conditional UPDATE:
    two admins saving the same change at once change it, and email, once; saving the
    role the account already has changes nothing and sends nothing. The email is recorded
    in that transaction, and only for an active account (a pending account's name is what
    its registrant typed, and a disabled account cannot sign in to use the role).
    """
    if user.id == admin.id and role != Role.ADMIN:
        raise FieldErrors({"role": "You cannot remove your own admin role"})
    before = user.role
    if role == before:
        return RoleChange(changed=False)
    changed = db.session.execute(
        update(User)
        .where(User.id == user.id, User.role == before)
        .values(role=role)
        .returning(User.id)
        .execution_options(synchronize_session=False)
    ).first()
    if changed is None:  # another admin changed it a moment ago
        db.session.rollback()
        db.session.refresh(user)
        if user.role == role:
            return RoleChange(changed=False)
        raise FieldErrors(
            {"role": "Someone else changed this role a moment ago. Check it and try again"}
        )
    audit.record(
        "admin.user_role_changed",
        actor=admin,
        target=user,
        detail={"from": before.value, "to": role.value},
    )
    db.session.refresh(user)  # the role as the UPDATE left it, in this transaction
    emailed = user.status == UserStatus.ACTIVE and _tell_role_changed(admin, user, before)
    db.session.commit()
    return RoleChange(changed=True, emailed=emailed)


def _tell_role_changed(admin: User, user: User, before: Role) -> bool:
    """Record an email telling the person what they can now do, with a link."""
    links = {
        Role.CONTRIBUTOR: external_url("library.home"),
        Role.MODERATOR: external_url("moderation.queue"),
        Role.ADMIN: external_url("admin.index"),
    }
    setup_needed = user.needs_mfa and not user.mfa_enabled
    body = render_template(
        "mail/role_changed.txt",
        user=user,
        admin=admin,
        role=user.role.value,
        before=before.value,
        link=links[user.role],
        mfa_link=external_url("account.mfa_setup") if setup_needed else None,
    )
    subject = ROLE_SUBJECTS[user.role].format(site=current_app.config["SITE_NAME"])
    queue_mail(user.email, subject, body, reply_to=admin.email)
    return True


def set_force(admin: User, user: User, force_name: str) -> None:
    """Move an account to another force."""
    force = resolve_force(force_name)
    if force.id == user.force_id:
        return
    before = user.force.slug
    user.force = force
    # A contact of one force is not a contact of the next until they say so.
    user.listed_as_contact = False
    audit.record(
        "admin.user_force_changed",
        actor=admin,
        target=user,
        detail={"from": before, "to": force.slug},
    )
    db.session.commit()


def synonyms() -> list[Synonym]:
    """Return the search synonyms, alphabetically."""
    return list(db.session.scalars(select(Synonym).order_by(Synonym.term)))


def add_synonym(admin: User, term: str, expansion: str, source: str = "") -> Synonym:
    """Add a short form and what it stands for (meanings apart with "|"); searches use it
    at once (no reindex). `source` says where it came from (empty: an admin)."""
    term, expansion = term.strip().lower(), " ".join(expansion.split())
    errors = {}
    if not re.fullmatch(r"[a-z0-9]{2,20}", term):
        errors["term"] = "Enter one word of 2 to 20 letters or digits, like vawg"
    elif db.session.scalar(select(Synonym.id).where(Synonym.term == term)):
        errors["term"] = f"{term} is already in the list"
    if not 2 <= len(expansion) <= 200 or not is_clean_text(expansion, multiline=False):
        errors["expansion"] = "Enter the words it stands for, up to 200 characters"
    if errors:
        raise FieldErrors(errors)
    synonym = Synonym(term=term, expansion=expansion, source=source)
    db.session.add(synonym)
    try:
        db.session.flush()
    except IntegrityError:  # added by another request a moment ago
        db.session.rollback()
        raise FieldErrors({"term": f"{term} is already in the list"}) from None
    audit.record(
        "admin.synonym_added",
        actor=admin,
        target=synonym,
        detail={"term": term, "expansion": expansion},
    )
    db.session.commit()
    return synonym


def delete_synonym(admin: User, synonym: Synonym) -> None:
    audit.record(
        "admin.synonym_deleted", actor=admin, target=synonym, detail={"term": synonym.term}
    )
    db.session.delete(synonym)
    db.session.commit()
