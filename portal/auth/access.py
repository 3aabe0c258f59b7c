"""Decide, before any view runs, whether this visitor may open this page at all."""

from __future__ import annotations

from flask import Flask, current_app, request, url_for
from flask_login import current_user

from ..web.htmx import send_to
from .sessions import expire, session_expired

#: Pages anyone may open: signing in and everything needed to get an account.
PUBLIC_ENDPOINTS = {
    "auth.login",
    "auth.second_factor",
    "auth.register",
    "auth.check_email",
    "auth.confirm",
    "auth.resend_confirmation",
    "auth.reset_request",
    "auth.reset_password",
    "auth.sso_start",
    "auth.sso_callback",
    "auth.sso_link",
    "auth.signed_out",
    "health.healthz",
    "health.readyz",
    "health.metrics",  # its own key: the metrics token (portal/health/views.py)
    "health.status",
    "policies.accessibility",
    "policies.privacy",
    "policies.cookies_page",
    "static",
}
#: Pages PORTAL_PUBLIC_LIBRARY=1 opens to anonymous readers.
LIBRARY_ENDPOINTS = {
    "library.home",
    "library.index",
    "casestudies.show",
    "casestudies.attachment",
    "forces.index",
    "forces.show",
    "feeds.library",
    "feeds.force",
    "feeds.theme",
}

#: Feeds a feed reader may open with a private link (portal.feeds.links).
FEED_ENDPOINTS = {"feeds.library", "feeds.force", "feeds.theme"}


def _sign_in_redirect():
    target = url_for("auth.login", next=request.full_path.rstrip("?"))
    return send_to(target, htmx_status=401)


def check_access():
    """Send anonymous visitors of private pages to sign in; end expired sessions."""
    if current_user.is_authenticated:
        reason = session_expired()
        if reason is None:
            return None
        expire(reason)
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return None  # an unknown address is a 404 for everyone
    if current_app.config["PUBLIC_LIBRARY"] and endpoint in LIBRARY_ENDPOINTS:
        return None
    if endpoint in FEED_ENDPOINTS and "token" in request.args:
        return None  # a private feed link: the feed checks its token
    return _sign_in_redirect()


def register(app: Flask) -> None:
    """Install the check for every request."""
    app.before_request(check_access)
