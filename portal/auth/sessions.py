"""Sessions: who is signed in, fresh sessions on sign-in, timeouts, safe redirects."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, has_request_context, session
from flask_login import current_user, login_user, logout_user

from ..extensions import db, login_manager
from ..models import IdentityProvider, User, UserStatus

PENDING_SECOND_FACTOR = "mfa_pending"
#: The provider a session was signed in through (single sign-on), for signing out there too.
SIGNED_IN_THROUGH = "sso_provider"
#: Set when the provider's own multi-factor sign-in stands for the portal's second factor.
PROVIDER_MFA = "mfa_by_provider"


def load_user(session_id: str) -> User | None:
    """Return the user of a session id "<user id>:<session version>", if still valid."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or user.status != UserStatus.ACTIVE:
        return None
    return user


def start_session(user: User, *, provider: int | None = None, provider_mfa: bool = False) -> None:
    """Sign `user` in on a brand-new session (nothing survives from before); `provider` is
    the identity provider they came through, whose MFA stands for the second factor when
    `provider_mfa`."""
    session.clear()
    login_user(user, remember=False, fresh=True)
    now = int(time.time())
    session["auth_at"] = now
    session["seen_at"] = now
    if provider is not None:
        session[SIGNED_IN_THROUGH] = provider
    if provider_mfa:
        session[PROVIDER_MFA] = True


def has_second_factor(user: User) -> bool:
    """Whether `user` passed a second factor: the portal's own (every sign-in of an account
    with one asks for it), or, in this session, a trusted provider's multi-factor sign-in."""
    if user.mfa_enabled:
        return True
    if not (
        has_request_context()
        and session.get(PROVIDER_MFA) is True
        and current_user.is_authenticated
        and current_user.get_id() == user.get_id()
    ):
        return False
    # Still only while the provider is on and trusted for it: an admin who turns either off
    # takes the trust back from sessions already made.
    provider_id = session.get(SIGNED_IN_THROUGH)
    provider = (
        db.session.get(IdentityProvider, provider_id) if isinstance(provider_id, int) else None
    )
    return bool(provider and provider.enabled and provider.trust_mfa)


def end_session() -> None:
    """Forget everything this browser's session held."""
    logout_user()
    session.clear()


def begin_second_factor(user: User, next_url: str | None, *, provider: int | None = None) -> None:
    """Remember, on a fresh session, who passed the first step (a password, or a provider's
    sign-in) and where they were going."""
    session.clear()
    session[PENDING_SECOND_FACTOR] = {
        "user": user.get_id(),
        "at": int(time.time()),
        "next": next_url,
        "provider": provider,
    }


def pending_second_factor() -> tuple[User, str | None, int | None] | None:
    """Return the user waiting to give a second factor (for 5 minutes at most), where they
    were going and the provider they came through, if any."""
    pending = session.get(PENDING_SECOND_FACTOR)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > 300:
        return None
    user = load_user(str(pending.get("user", "")))
    if user is None:
        return None
    provider = pending.get("provider")
    return user, pending.get("next"), provider if isinstance(provider, int) else None


def session_expired() -> str | None:
    """Return why the signed-in session has run out, or None; refresh its idle clock."""
    now = time.time()
    auth_at, seen_at = session.get("auth_at"), session.get("seen_at")
    if not isinstance(auth_at, int) or not isinstance(seen_at, int):
        return "Your session has ended. Sign in again"
    if now - auth_at > current_app.config["SESSION_MAX_HOURS"] * 3600:
        return "You have been signed out because your session reached its time limit"
    if now - seen_at > current_app.config["SESSION_IDLE_MINUTES"] * 60:
        return "You have been signed out because you were inactive"
    session["seen_at"] = int(now)
    return None


def expire(reason: str) -> None:
    end_session()
    flash(reason, "info")


def safe_next(target: str | None) -> str | None:
    """Return `target` when it is a path on this site, else None."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    if any(ord(ch) < 32 or ch == "\\" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def register(app: Flask) -> None:
    """Configure Flask-Login for the portal's session ids."""
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = None  # fresh sessions and versions do this job
