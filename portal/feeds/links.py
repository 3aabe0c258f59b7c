"""Private feed links: feed readers cannot sign in, so a signed token in the URL stands in.

A token names one user and works only for the Atom feeds, only while the user is active,
and only until their password changes (a change or a reset ends every old link) or the
account is disabled (the links stay dead if it is enabled again). It does not sign anyone
in. Every sign-out in this portal ends all of the user's sessions, so tying
the links to the session version would break a reader's subscription at each sign-out; the
password is the key the user can turn to revoke them instead.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from ..extensions import db
from ..models import User

SALT = "portal.feed-link"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _fingerprint(user: User) -> str:
    state = f"{user.id}:{user.feed_links_version}:{user.password_hash or ''}"
    return hashlib.sha256(state.encode()).hexdigest()[:20]


def make_feed_token(user: User) -> str:
    """Return the token for `user`'s private feed links."""
    return _serializer().dumps({"u": user.id, "f": _fingerprint(user)})


def user_for_feed_token(token: str) -> User | None:
    """Return the active user a current token was made for, or None."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = db.session.get(User, data["u"])
    if user is None or not user.is_active or data.get("f") != _fingerprint(user):
        return None
    return user
