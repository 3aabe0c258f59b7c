"""Signed, expiring, single-use links for confirming an email and resetting a password."""

from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..extensions import db
from ..models import User

CONFIRM = "confirm-email"
RESET = "reset-password"
MAX_AGE = {CONFIRM: 48 * 3600, RESET: 3600}


class TokenInvalid(Exception):
    """The link is expired, tampered with, or already used."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def _fingerprint(user: User, purpose: str) -> str:
    # What the link was made for: once the account is confirmed, or the password has
    # changed (by this very link, or a newer registration), the fingerprint differs and
    # the link is dead.
    state = (
        f"{user.status.value}:{user.password_hash}"
        if purpose == CONFIRM
        else (user.password_hash or "")
    )
    return hashlib.sha256(f"{user.id}:{state}".encode()).hexdigest()[:20]


def make_token(user: User, purpose: str) -> str:
    """Return a signed token for `user` and `purpose`."""
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user, purpose)})


def read_token(token: str, purpose: str) -> User:
    """Return the user a valid token was made for, or raise TokenInvalid."""
    try:
        data = _serializer(purpose).loads(token, max_age=MAX_AGE[purpose])
    except SignatureExpired:
        raise TokenInvalid("expired") from None
    except BadSignature:
        raise TokenInvalid("invalid") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise TokenInvalid("invalid")
    user = db.session.get(User, data["u"])
    if user is None or data.get("f") != _fingerprint(user, purpose):
        raise TokenInvalid("used")
    return user
