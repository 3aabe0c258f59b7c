"""Who is asking: the signed-in user as the portal's own User, for services to take."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from ..models import User


def signed_in_user() -> User:
    """Return the signed-in User, on pages only signed-in people reach (else a 401)."""
    if not current_user.is_authenticated:
        abort(401)  # the access check sends anonymous visitors to sign in before this
    user: User = current_user._get_current_object()
    return user


def visitor() -> User | None:
    """Return the signed-in User, or None for an anonymous reader (a public library)."""
    return signed_in_user() if current_user.is_authenticated else None
