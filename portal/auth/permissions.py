"""Role checks for whole areas: moderators' and admins' pages need their role and 2FA."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ..models import Role
from ..web.htmx import send_to
from .sessions import has_second_factor


def require_role(*roles: Role) -> Callable[[], ResponseReturnValue | None]:
    """Return a before-request check that lets only `roles` with 2FA enabled through."""

    def check() -> ResponseReturnValue | None:
        if not current_user.is_authenticated:
            abort(401)  # the global access check normally redirects first
        if not current_user.has_role(*roles):
            abort(403)
        if current_user.needs_mfa and not has_second_factor(current_user):
            flash("Set up two-factor authentication before you use moderation or admin pages.")
            return send_to(url_for("account.mfa_setup"), htmx_status=403)
        return None

    return check
