"""Who is asking: the signed-in user as the portal's own User, for services to take."""

from __future__ import annotations

from flask_login import current_user

from ..models import User


def signed_in_user() -> User | None:
    """Return the signed-in User, or None for an anonymous visitor."""
    return current_user._get_current_object() if current_user.is_authenticated else None
