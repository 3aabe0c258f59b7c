"""Asking the admins to change your force: they are emailed, their addresses never shown.

A force decides whose adoptions a person records and whose HeForShe contact they are, so
only admins change it (admin.services.set_force). People ask here; every active admin gets
an email that names the person, their force now and the one they ask for, and links to the
person's admin page. Replies go to the person.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template
from sqlalchemy import select

from .. import audit
from ..core.errors import FieldErrors
from ..core.links import external_url
from ..core.text import is_clean_text
from ..extensions import db
from ..mail import queue_mail
from ..models import Force, Role, User, UserStatus
from ..reference import find_force

#: The longest note a person may add to their request.
NOTE_MAX = 500


@dataclass(frozen=True)
class ForceRequest:
    """A request that was recorded: the force asked for, and how many admins were emailed."""

    force: Force
    emailed: int


def admins_to_ask(user: User) -> list[User]:
    """Return the active admins who can change `user`'s force (never `user` themselves)."""
    return list(
        db.session.scalars(
            select(User)
            .where(User.role == Role.ADMIN, User.status == UserStatus.ACTIVE, User.id != user.id)
            .order_by(User.name, User.id)
        )
    )


def request_force_change(user: User, force_name: str, note: str = "") -> ForceRequest:
    """Record the request and email every active admin; a failed email is logged, not raised.

    Refused (FieldErrors) for a force that is not in the list, the person's own force, a
    note too long or holding control characters, or when there is no admin to ask.
    """
    errors: dict[str, str] = {}
    force = find_force(force_name) if force_name and force_name.strip() else None
    if force is None:
        errors["force"] = "Choose your new force from the list"
    elif force.id == user.force_id:
        errors["force"] = f"You are already in {force.name}: choose the force you have moved to"
    note = (note or "").replace("\r\n", "\n").strip()  # a browser's line breaks count once
    if len(note) > NOTE_MAX:
        errors["note"] = f"Your note must be {NOTE_MAX} characters or fewer"
    elif not is_clean_text(note, multiline=True):
        errors["note"] = "Remove the special characters from your note"
    if errors:
        raise FieldErrors(errors)
    assert force is not None  # checked with the other fields just above
    admins = admins_to_ask(user)
    if not admins:
        raise FieldErrors(
            {
                "request": "There is no admin to ask just now. Ask your force's HeForShe lead to "
                "contact the portal's owners."
            }
        )
    audit.record(
        "account.force_change_requested",
        actor=user,
        target=user,
        detail={"from": user.force.slug, "to": force.slug, "admins": len(admins)},
    )
    link = external_url("admin.user", user_id=user.id)
    subject = f"Please change the force of {user.name}"
    for admin in admins:
        body = render_template(
            "mail/force_change_request.txt",
            admin=admin,
            user=user,
            force=force,
            note=note,
            link=link,
        )
        queue_mail(admin.email, subject, body, reply_to=user.email)
    db.session.commit()
    return ForceRequest(force=force, emailed=len(admins))
