"""What admins may do to accounts; every change is one transaction with an audit event."""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import audit
from ..auth.services import resolve_force
from ..core.errors import FieldErrors
from ..core.text import is_clean_text
from ..extensions import db
from ..models import AuditEvent, Role, Synonym, User, UserStatus, utcnow
from ..pagination import Page, like_pattern, paginate


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


def audit_log(page: int = 1, per_page: int = 50) -> Page:
    """Return the audit log, newest first."""
    query = (
        select(AuditEvent).options(selectinload(AuditEvent.actor)).order_by(AuditEvent.id.desc())
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


def set_role(admin: User, user: User, role: Role) -> None:
    """Change an account's role; an admin cannot demote themselves."""
    if user.id == admin.id and role != Role.ADMIN:
        raise FieldErrors({"role": "You cannot remove your own admin role"})
    if role == user.role:
        return
    before = user.role
    user.role = role
    audit.record(
        "admin.user_role_changed",
        actor=admin,
        target=user,
        detail={"from": before.value, "to": role.value},
    )
    db.session.commit()


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


def add_synonym(admin: User, term: str, expansion: str) -> Synonym:
    """Add a short form and what it stands for; searches use it at once (no reindex)."""
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
    synonym = Synonym(term=term, expansion=expansion)
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
