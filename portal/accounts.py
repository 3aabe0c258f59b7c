"""Create accounts outside the web forms: the first admin, demo users."""

from __future__ import annotations

from sqlalchemy import func, select

from . import audit
from .auth.passwords import hash_password, password_problem
from .core.text import looks_like_email
from .extensions import db
from .models import Role, User, UserStatus, utcnow
from .reference import find_force


class AccountError(ValueError):
    """The account cannot be created as asked; the message says why."""


def create_user(
    email: str, name: str, force: str, role: Role, password: str, *, actor_id: int | None = None
) -> User:
    """Create a confirmed, active user in one transaction, with an audit event."""
    email = email.strip().lower()
    if not looks_like_email(email):
        raise AccountError(f"{email!r} is not an email address")
    if not name.strip():
        raise AccountError("a name is required")
    problem = password_problem(password, name=name, email=email)
    if problem:
        raise AccountError(problem)
    found = find_force(force)
    if found is None:
        raise AccountError(f"unknown force {force!r}")
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise AccountError(f"a user with the email {email!r} already exists")
    user = User(
        email=email,
        name=name.strip(),
        force=found,
        role=role,
        status=UserStatus.ACTIVE,
        password_hash=hash_password(password),
        confirmed_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    actor = db.session.get(User, actor_id) if actor_id is not None else None
    audit.record("user.created", actor=actor, target=user, detail={"role": role.value})
    db.session.commit()
    return user
