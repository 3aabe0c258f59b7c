"""Role checks for whole areas: moderators' and admins' pages need their role and 2FA."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, flash, redirect, url_for
from flask_login import current_user

from ..models import Role
from ..web.htmx import is_partial


def require_role(*roles: Role) -> Callable[[], object]:
    """Return a before-request check that lets only `roles` with 2FA enabled through."""

    def check():
        if not current_user.is_authenticated:
            abort(401)  # the global access check normally redirects first
        if not current_user.has_role(*roles):
            abort(403)
        if current_user.needs_mfa and not current_user.mfa_enabled:
            flash("Set up two-factor authentication before you use moderation or admin pages.")
            target = url_for("account.mfa_setup")
            if is_partial():
                response = current_app.response_class(status=403)
                response.headers["HX-Redirect"] = target
                return response
            return redirect(target)
        return None

    return check
