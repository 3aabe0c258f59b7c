"""Hash, verify and judge passwords: argon2id, no composition rules, no common ones."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context

MIN_LENGTH = 12
MAX_LENGTH = 256  # long passphrases welcome; the cap only stops hashing megabytes
PORTAL_WORDS = ("heforshe", "practice", "library", "portal", "police", "password")

_STRONG = PasswordHasher()  # argon2id with the library's recommended parameters (~0.1 s)
# The test suite hashes thousands of passwords: argon2's cheapest parameters, under TESTING
# only. A hash carries its own parameters, so verifying works across both.
_CHEAPEST = PasswordHasher.from_parameters(profiles.CHEAPEST)
_DUMMY_HASHES: dict[int, str] = {}


def _hasher() -> PasswordHasher:
    testing = has_app_context() and current_app.config.get("TESTING")
    return _CHEAPEST if testing else _STRONG


def _dummy_hash(hasher: PasswordHasher) -> str:
    if id(hasher) not in _DUMMY_HASHES:
        _DUMMY_HASHES[id(hasher)] = hasher.hash("a password nobody has, used to spend equal time")
    return _DUMMY_HASHES[id(hasher)]


def hash_password(password: str) -> str:
    """Return an argon2id hash of `password`, exactly as typed."""
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Return True when `password` matches; spend the same time when there is no hash."""
    hasher = _hasher()
    try:
        return hasher.verify(password_hash or _dummy_hash(hasher), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = resources.files("portal").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


def _significant(text: str) -> str:
    """Keep letters and symbols (any script, emoji included); drop digits, spaces, punctuation."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LS")


def password_problem(password: str, *, name: str = "", email: str = "") -> str | None:
    """Return why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Enter a password of at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"Enter a password of {MAX_LENGTH} characters or fewer"
    folded = password.casefold()
    if folded in _common_passwords() or folded.strip() in _common_passwords():
        return "This password is too common. Choose a less predictable one"
    # Built from the person's own name or email, or the portal's name ("SamPatel2026!"):
    # take those words away and see whether much of substance is left.
    words = set(PORTAL_WORDS)
    words.update(w for w in re.split(r"[\W_]+", f"{name} {email}".casefold()) if len(w) >= 3)
    remainder = folded
    for word in sorted(words, key=len, reverse=True):
        remainder = remainder.replace(word, "")
    if remainder != folded and len(_significant(remainder)) < 4:
        return "Your password must not be built from your name, email or the portal's name"
    return None
