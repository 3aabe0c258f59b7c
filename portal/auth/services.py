"""Account rules: registration, confirmation, sign-in, second factor, passwords, profile.

Each function is one step: it checks the rules, writes in one transaction with an audit
event, and sends any email only after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from flask import current_app, render_template, url_for
from sqlalchemy import func, select

from .. import audit
from ..extensions import db
from ..mail import send_mail
from ..models import Force, RecoveryCode, Role, User, UserStatus, utcnow
from ..reference import find_force
from . import mfa, tokens
from .passwords import hash_password, password_problem, verify_password


class FieldErrors(Exception):
    """The input breaks a rule; `errors` maps field names to messages for the form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def email_domain_problem(email: str) -> str | None:
    """Return why the email's domain may not register, or None when it ends in an allowed suffix."""
    domain = normalise_email(email).rpartition("@")[2]
    suffixes = current_app.config["ALLOWED_EMAIL_DOMAINS"]
    if any(domain == suffix or domain.endswith("." + suffix) for suffix in suffixes):
        return None
    return f"Enter your work email address: it must end in {' or '.join(suffixes)}"


def external_url(endpoint: str, **values) -> str:
    """Return an absolute link for an email, from BASE_URL, never the Host header."""
    return current_app.config["BASE_URL"] + url_for(endpoint, **values)


def _mail(user: User | str, template: str, subject: str, **context) -> None:
    to = user.email if isinstance(user, User) else user
    body = render_template(f"mail/{template}.txt", user=user, **context)
    send_mail(to, subject, body)


def resolve_force(name: str) -> Force:
    force = find_force(name) if name.strip() else None
    if force is None:
        raise FieldErrors({"force": "Choose your force from the list"})
    return force


# Registration and confirmation


def register(name: str, email: str, force_name: str, password: str) -> None:
    """Create a pending account and email a confirmation link.

    The outcome looks the same whether or not the email was registered before; the
    existing owner is told by email instead.
    """
    email = normalise_email(email)
    errors: dict[str, str] = {}
    domain_problem = email_domain_problem(email)
    if domain_problem:
        errors["email"] = domain_problem
    force = find_force(force_name) if force_name.strip() else None
    if force is None:
        errors["force"] = "Choose your force from the list"
    problem = password_problem(password, name=name, email=email)
    if problem:
        errors["password"] = problem
    if errors:
        raise FieldErrors(errors)

    existing = find_user_by_email(email)
    if existing is not None:
        audit.record("auth.register_existing", target=existing)
        db.session.commit()
        if existing.status == UserStatus.PENDING:
            _send_confirmation(existing)
        else:
            _mail(existing, "register_existing", "Someone tried to register with your email")
        return

    user = User(
        email=email,
        name=name.strip(),
        force=force,
        role=Role.CONTRIBUTOR,
        status=UserStatus.PENDING,
        password_hash=hash_password(password),
        password_changed_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    audit.record("auth.registered", actor=user, target=user, detail={"force": force.slug})
    db.session.commit()
    _send_confirmation(user)


def _send_confirmation(user: User) -> None:
    link = external_url("auth.confirm", token=tokens.make_token(user, tokens.CONFIRM))
    _mail(user, "confirm", "Confirm your email address", link=link)


def resend_confirmation(email: str) -> None:
    """Send a new confirmation link if a pending account has this email; say nothing else."""
    user = find_user_by_email(email)
    if user is not None and user.status == UserStatus.PENDING:
        _send_confirmation(user)


def confirm_email(token: str) -> User:
    """Activate the account a confirmation link was made for; the link then dies."""
    user = tokens.read_token(token, tokens.CONFIRM)
    if user.status != UserStatus.PENDING:
        raise tokens.TokenInvalid("used")
    user.status = UserStatus.ACTIVE
    user.confirmed_at = utcnow()
    audit.record("auth.email_confirmed", actor=user, target=user)
    db.session.commit()
    return user


# Signing in


class SignInStep(Enum):
    DONE = "done"
    SECOND_FACTOR = "second_factor"


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    step: SignInStep | None
    error: str | None = None


BAD_CREDENTIALS = "Enter a correct email address and password"


def authenticate(email: str, password: str) -> SignInResult:
    """Check an email and password; every failure is audited and looks the same."""
    user = find_user_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        audit.record(
            "auth.login_failed", target=user, detail={"email": normalise_email(email)[:254]}
        )
        db.session.commit()
        return SignInResult(None, None, BAD_CREDENTIALS)
    if user.status != UserStatus.ACTIVE:
        audit.record(
            "auth.login_refused", actor=user, target=user, detail={"status": user.status.value}
        )
        db.session.commit()
        if user.status == UserStatus.PENDING:
            return SignInResult(
                None, None, "Confirm your email address first: use the link we sent you"
            )
        return SignInResult(None, None, "This account has been disabled. Contact your portal admin")
    if user.mfa_enabled:
        return SignInResult(user, SignInStep.SECOND_FACTOR)
    return SignInResult(user, SignInStep.DONE)


def record_sign_in(user: User, *, method: str) -> None:
    user.last_login_at = utcnow()
    audit.record("auth.login", actor=user, target=user, detail={"method": method})
    db.session.commit()


def verify_second_factor(user: User, code: str) -> bool:
    """Accept a fresh TOTP code or an unused recovery code; audit the outcome."""
    code = code.strip()
    step = mfa.matching_step(user.totp_secret or "", code)
    if step is not None and (user.totp_last_step is None or step > user.totp_last_step):
        user.totp_last_step = step
        db.session.commit()
        return True
    if step is None:
        wanted = mfa.hash_recovery_code(code)
        for recovery in user.recovery_codes:
            if recovery.used_at is None and recovery.code_hash == wanted:
                recovery.used_at = utcnow()
                audit.record("auth.recovery_code_used", actor=user, target=user)
                db.session.commit()
                return True
    audit.record("auth.second_factor_failed", actor=user, target=user)
    db.session.commit()
    return False


def sign_out(user: User) -> None:
    """End every session of the user (this one included)."""
    user.session_version += 1
    audit.record("auth.logout", actor=user, target=user)
    db.session.commit()


# Passwords


def request_password_reset(email: str) -> None:
    """Email a reset link when an active account has this email; the reply never says."""
    user = find_user_by_email(email)
    if user is None or user.status == UserStatus.DISABLED:
        return
    link = external_url("auth.reset_password", token=tokens.make_token(user, tokens.RESET))
    audit.record("auth.password_reset_requested", target=user)
    db.session.commit()
    _mail(user, "reset", "Reset your password", link=link)


def reset_password(token: str, password: str) -> User:
    """Set a new password from a reset link; every session ends and the link dies."""
    user = tokens.read_token(token, tokens.RESET)
    problem = password_problem(password, name=user.name, email=user.email)
    if problem:
        raise FieldErrors({"password": problem})
    _set_password(user, password)
    if user.status == UserStatus.PENDING:  # the link proves they own the address
        user.status = UserStatus.ACTIVE
        user.confirmed_at = utcnow()
    audit.record("auth.password_reset", actor=user, target=user)
    db.session.commit()
    _mail(user, "password_changed", "Your password was changed")
    return user


def change_password(user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; other sessions end."""
    if not verify_password(user.password_hash, current):
        raise FieldErrors({"current_password": "Your current password is not correct"})
    problem = password_problem(new, name=user.name, email=user.email)
    if problem:
        raise FieldErrors({"new_password": problem})
    _set_password(user, new)
    audit.record("auth.password_changed", actor=user, target=user)
    db.session.commit()
    _mail(user, "password_changed", "Your password was changed")


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.session_version += 1


# Profile and second factor


def update_profile(user: User, name: str, force_name: str) -> None:
    """Change the user's name and force."""
    if not name.strip():
        raise FieldErrors({"name": "Enter your full name"})
    force = resolve_force(force_name)
    changes = {}
    if user.name != name.strip():
        changes["name"] = True
        user.name = name.strip()
    if user.force_id != force.id:
        changes["force"] = {"from": user.force.slug, "to": force.slug}
        user.force = force
    if changes:
        audit.record("account.profile_changed", actor=user, target=user, detail=changes)
    db.session.commit()


def enable_mfa(user: User, secret: str, code: str) -> list[str]:
    """Turn on TOTP once the user proves their app works; return new recovery codes."""
    step = mfa.matching_step(secret, code)
    if step is None:
        raise FieldErrors({"code": "Enter the 6-digit code your authenticator app shows now"})
    user.totp_secret = secret
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    codes = _replace_recovery_codes(user)
    audit.record("auth.mfa_enabled", actor=user, target=user)
    db.session.commit()
    return codes


def regenerate_recovery_codes(user: User, password: str) -> list[str]:
    """Replace every recovery code with new ones, after checking the password."""
    if not verify_password(user.password_hash, password):
        raise FieldErrors({"password": "Your password is not correct"})
    codes = _replace_recovery_codes(user)
    audit.record("auth.recovery_codes_regenerated", actor=user, target=user)
    db.session.commit()
    return codes


def _replace_recovery_codes(user: User) -> list[str]:
    codes = mfa.new_recovery_codes()
    user.recovery_codes = [RecoveryCode(code_hash=mfa.hash_recovery_code(c)) for c in codes]
    return codes


def disable_mfa(user: User, password: str) -> None:
    """Turn TOTP off (contributors only) after checking the password."""
    if user.needs_mfa:
        raise FieldErrors(
            {"password": "Moderators and admins must keep two-factor authentication on"}
        )
    if not verify_password(user.password_hash, password):
        raise FieldErrors({"password": "Your password is not correct"})
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_codes = []
    audit.record("auth.mfa_disabled", actor=user, target=user)
    db.session.commit()
