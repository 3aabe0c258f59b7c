"""Time-based one-time passwords (TOTP), their QR code, and recovery codes."""

from __future__ import annotations

import hmac
import io
import re
import secrets
import time

import pyotp
import segno
from markupsafe import Markup

from .passwords import hash_password, verify_password

RECOVERY_CODE_COUNT = 10
ISSUER = "HeForShe Practice Library"
SIX_DIGITS = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """Return a new base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, email: str) -> str:
    """Return the otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """Return the QR code for `uri` as inline SVG, drawn on the server."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer,
        kind="svg",
        scale=5,
        border=2,
        xmldecl=False,
        svgns=True,
        title="QR code for your authenticator app",
        svgclass="portal-qr",
        lineclass=None,
    )
    return Markup(buffer.getvalue().decode())  # noqa: S704 - generated here, no user markup


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """Return the time step `code` is valid for (this one or one either side), if any."""
    code = "".join(code.split())
    # ASCII digits only: "١٢٣٤٥٦" and "１２３４５６" pass str.isdigit() but are no code (and
    # hmac.compare_digest refuses non-ASCII text).
    if not SIX_DIGITS.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    current = int(now // totp.interval)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Return fresh recovery codes, formatted for reading aloud: xxxxx-xxxxx."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str | None:
    """Return the code's ten characters without spaces or dashes, or None if it is not one."""
    normalised = "".join(ch for ch in code.casefold() if ch.isalnum())
    return normalised if len(normalised) == 10 and normalised.isascii() else None


def hash_recovery_code(code: str) -> str:
    """Return the stored form of a recovery code: an argon2id hash, salted per code."""
    return hash_password(normalise_recovery_code(code) or code)


def recovery_code_matches(stored_hash: str, code: str) -> bool:
    normalised = normalise_recovery_code(code)
    return normalised is not None and verify_password(stored_hash, normalised)
