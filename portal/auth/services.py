"""Account rules: registration, confirmation, sign-in, second factor, passwords, profile.

Each function is one step: it checks the rules, writes in one transaction with an audit
event, and records any email in that same transaction (a job delivers it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from flask import current_app, render_template
from sqlalchemy import func, select, update

from .. import audit
from ..core.errors import FieldErrors
from ..core.links import external_url
from ..core.text import is_clean_text, looks_like_email
from ..core.updates import changed_rows
from ..extensions import db
from ..mail import queue_mail
from ..models import Force, RecoveryCode, Role, User, UserStatus, utcnow
from ..reference import find_force
from . import mfa, tokens
from .passwords import hash_password, password_problem, verify_password


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    if "\x00" in email:  # no address has one, and PostgreSQL refuses it in a query
        return None
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def email_domain_problem(email: str) -> str | None:
    """Return why the email's domain may not register, or None when it ends in an allowed suffix."""
    domain = normalise_email(email).rpartition("@")[2]
    suffixes = current_app.config["ALLOWED_EMAIL_DOMAINS"]
    if any(domain == suffix or domain.endswith("." + suffix) for suffix in suffixes):
        return None
    return f"Enter your work email address: it must end in {' or '.join(suffixes)}"


def mail_user(user: User, template: str, subject: str, **context) -> None:
    """Queue an email to `user` from templates/mail/<template>.txt, in this transaction."""
    _mail(user, template, subject, **context)


def _mail(user: User | str, template: str, subject: str, **context) -> None:
    to = user.email if isinstance(user, User) else user
    name = greeting_name(user) if isinstance(user, User) else None
    body = render_template(f"mail/{template}.txt", user=user, name=name, **context)
    queue_mail(to, subject, body)


_NAME_SHAPE = re.compile(r"[^\W\d_]+(?:[ .'’-]+[^\W\d_]+)*\.?")


def _letters(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in plain if "a" <= ch <= "z")


def greeting_name(user: User) -> str | None:
    """Return the name to greet the owner of `user`'s address by in an email, or None.

    A confirmed account's name is its owner's. An unconfirmed account's name is whatever
    its registrant typed, and the registrant may not own the address: putting that name in
    a mail would let anyone write to any police mailbox in the portal's voice. So it is used
    only when it spells the address's own name ("Riley Ward" for riley.ward@...): then it
    says nothing the address does not say already.
    """
    if user.status != UserStatus.PENDING:
        return user.name
    typed = " ".join(user.name.split())
    local = user.email.partition("@")[0]
    if not _NAME_SHAPE.fullmatch(typed) or not _letters(typed):
        return None
    return typed if _letters(typed) == _letters(local) else None


def resolve_force(name: str) -> Force:
    force = find_force(name) if name.strip() else None
    if force is None:
        raise FieldErrors({"force": "Choose your force from the list"})
    return force


# Registration and confirmation


def name_problem(name: str) -> str | None:
    """Return why a person's name is refused (it is shown in pages and emails), or None."""
    if not name.strip():
        return "Enter your full name"
    if len(name) > 120:
        return "Enter a name of 120 characters or fewer"
    if not is_clean_text(name, multiline=False) or "\t" in name:
        return "Enter your name without line breaks or special characters"
    if re.search(r"(://|www\.|@|<|>)", name, re.IGNORECASE):
        return "Enter your name only, without web or email addresses"
    return None


def register(name: str, email: str, force_name: str, password: str) -> None:
    """Create a pending account and email a confirmation link.

    The outcome, and the work done, look the same whether or not the email was
    registered before; the existing owner is told by email instead.
    """
    email = normalise_email(email)
    errors: dict[str, str] = {}
    for field, problem in (
        ("name", name_problem(name)),
        ("email", email_domain_problem(email)),
        ("password", password_problem(password, name=name, email=email)),
    ):
        if problem:
            errors[field] = problem
    force = find_force(force_name) if force_name.strip() else None
    if force is None:
        errors["force"] = "Choose your force from the list"
    if errors:
        raise FieldErrors(errors)
    assert force is not None  # checked with the other fields just above

    password_hash = hash_password(password)  # always, so timing does not tell
    existing = find_user_by_email(email)
    if existing is not None and existing.status != UserStatus.PENDING:
        audit.record("auth.register_existing", target=existing)
        _mail(existing, "register_existing", "Someone tried to register with your email")
        db.session.commit()
        return
    if existing is not None:
        # Still unconfirmed: the newest registration wins, and every earlier link dies
        # (links carry the password hash), so nobody can register first and take over.
        user = existing
        user.name, user.force, user.password_hash = name.strip(), force, password_hash
        audit.record("auth.registration_replaced", target=user)
    else:
        user = User(
            email=email,
            name=name.strip(),
            force=force,
            role=Role.CONTRIBUTOR,
            status=UserStatus.PENDING,
            password_hash=password_hash,
        )
        db.session.add(user)
        db.session.flush()
        audit.record("auth.registered", actor=user, target=user, detail={"force": force.slug})
    user.password_changed_at = utcnow()
    db.session.flush()
    _send_confirmation(user)
    db.session.commit()


def _send_confirmation(user: User) -> None:
    link = external_url("auth.confirm", token=tokens.make_token(user, tokens.CONFIRM))
    _mail(user, "confirm", "Confirm your email address", link=link)


def resend_confirmation(email: str) -> None:
    """Send a new confirmation link if a pending account has this email; say nothing else."""
    user = find_user_by_email(email)
    if user is not None and user.status == UserStatus.PENDING:
        _send_confirmation(user)
        db.session.commit()


def confirm_email(token: str, password: str) -> User:
    """Activate the account a link was made for, once the registrant's password is given.

    Asking for the password means whoever clicks the link must also be whoever chose it:
    a link sent for somebody else's registration of your address confirms nothing.
    """
    user = tokens.read_token(token, tokens.CONFIRM)
    if user.status != UserStatus.PENDING:
        raise tokens.TokenInvalid("used")
    checked = user.password_hash
    if not verify_password(checked, password):
        audit.record("auth.confirm_password_failed", target=user)
        db.session.commit()
        raise FieldErrors({"password": "Enter the password you chose when you registered"})
    # Only the registration whose password was just checked: a newer registration of this
    # address, made while the password was being checked, replaced the name, force and
    # password, and must not be confirmed by this link.
    confirmed = db.session.execute(
        update(User)
        .where(User.id == user.id, User.status == UserStatus.PENDING, User.password_hash == checked)
        .values(status=UserStatus.ACTIVE, confirmed_at=utcnow())
        .returning(User.id)
    ).first()
    if confirmed is None:
        db.session.rollback()
        raise tokens.TokenInvalid("used")
    audit.record("auth.email_confirmed", actor=user, target=user)
    db.session.commit()
    db.session.refresh(user)
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
        # A password typed into the email box must not end up in the audit log.
        typed = normalise_email(email)
        shown = typed if user is not None or looks_like_email(typed) else "(not an email address)"
        audit.record("auth.login_failed", target=user, detail={"email": shown[:254]})
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


def record_sign_in(user: User, *, method: str, provider: int | None = None) -> None:
    user.last_login_at = utcnow()
    detail: dict[str, object] = {"method": method}
    if provider is not None:
        detail["provider"] = provider  # the identity provider signed in through
    audit.record("auth.login", actor=user, target=user, detail=detail)
    db.session.commit()


SECOND_FACTOR_MAX_FAILURES = 10
SECOND_FACTOR_LOCK = timedelta(hours=1)


class SecondFactorLocked(Exception):
    """Too many wrong codes in a row: the second step is closed for a while."""


def verify_second_factor(user: User, code: str) -> bool:
    """Accept a fresh TOTP code or an unused recovery code; audit the outcome.

    After 10 wrong codes in a row the second step closes for an hour and the owner is
    told by email: whoever is guessing already knows the password. Every count and claim
    is one conditional UPDATE, so parallel guesses cannot lose a failure or reuse a code.
    """
    now = utcnow()
    if user.second_factor_locked_until and user.second_factor_locked_until > now:
        raise SecondFactorLocked
    step = mfa.matching_step(user.totp_secret or "", code)
    if step is not None and _claim_step(user, step):
        return True
    if step is None and _claim_recovery_code(user, code, now):
        return True
    failures = db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(second_factor_failures=User.second_factor_failures + 1)
        .returning(User.second_factor_failures)
    ).scalar_one()
    audit.record("auth.second_factor_failed", actor=user, target=user)
    locked = failures >= SECOND_FACTOR_MAX_FAILURES and _lock_second_factor(user, now)
    if locked:
        _mail(user, "second_factor_locked", "Someone is trying to sign in to your account")
    db.session.commit()
    db.session.refresh(user)
    return False


def _lock_second_factor(user: User, now) -> bool:
    # Only the request that finds the count at the limit locks (and sends one email).
    locked = db.session.execute(
        update(User)
        .where(User.id == user.id, User.second_factor_failures >= SECOND_FACTOR_MAX_FAILURES)
        .values(second_factor_failures=0, second_factor_locked_until=now + SECOND_FACTOR_LOCK)
        .returning(User.id)
    ).first()
    if locked is not None:
        audit.record("auth.second_factor_locked", actor=user, target=user)
    return locked is not None


def _claim_recovery_code(user: User, code: str, now) -> bool:
    for recovery in user.recovery_codes:
        if recovery.used_at is None and mfa.recovery_code_matches(recovery.code_hash, code):
            claimed = db.session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == recovery.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
                .returning(RecoveryCode.id)
            ).first()
            if claimed is None:  # a parallel request used it first
                db.session.rollback()
                return False
            db.session.execute(
                update(User).where(User.id == user.id).values(second_factor_failures=0)
            )
            audit.record("auth.recovery_code_used", actor=user, target=user)
            db.session.commit()
            db.session.refresh(user)
            return True
    return False


def _claim_step(user: User, step: int) -> bool:
    # One conditional UPDATE, so two requests racing with the same code cannot both win.
    claimed = changed_rows(
        db.session.execute(
            update(User)
            .where(User.id == user.id)
            .where((User.totp_last_step.is_(None)) | (User.totp_last_step < step))
            .values(totp_last_step=step, second_factor_failures=0)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    db.session.refresh(user)
    return claimed == 1


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
    _mail(user, "reset", "Reset your password", link=link)
    db.session.commit()


def reset_password(
    token: str, password: str, *, name: str | None = None, force_name: str | None = None
) -> User:
    """Set a new password from a reset link; every session ends and the link dies.

    An account never confirmed may have been registered by someone else with the owner's
    address: the link proves who owns the address, not who chose the name and force. So
    the owner gives their own name and force (`name`, `force_name`), which replace the
    registration's, and only then is the account confirmed.
    """
    user = tokens.read_token(token, tokens.RESET)
    pending = user.status == UserStatus.PENDING
    errors: dict[str, str] = {}
    problem = password_problem(password, name=name or user.name, email=user.email)
    if problem:
        errors["password"] = problem
    owner_name = (name or "").strip()
    force = find_force(force_name) if pending and force_name and force_name.strip() else None
    if pending:
        problem = name_problem(owner_name)
        if problem:
            errors["name"] = problem
        if force is None:
            errors["force"] = "Choose your force from the list"
    if errors:
        raise FieldErrors(errors)
    _set_password(user, password)
    if pending and force is not None:
        changed = {"name": user.name != owner_name, "force": user.force_id != force.id}
        user.name, user.force = owner_name, force
        user.status = UserStatus.ACTIVE
        user.confirmed_at = utcnow()
        audit.record("auth.registration_finished_by_reset", actor=user, target=user, detail=changed)
    audit.record("auth.password_reset", actor=user, target=user)
    _mail(user, "password_changed", "Your password was changed")
    db.session.commit()
    return user


def check_own_password(user: User, password: str, field: str, action: str) -> None:
    """Raise FieldErrors (and audit the failure) unless `password` is the user's own."""
    if not verify_password(user.password_hash, password):
        audit.record("auth.password_check_failed", actor=user, target=user, detail={"for": action})
        db.session.commit()
        raise FieldErrors({field: "Your password is not correct"})


def change_password(user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; other sessions end."""
    check_own_password(user, current, "current_password", "change_password")
    problem = password_problem(new, name=user.name, email=user.email)
    if problem:
        raise FieldErrors({"new_password": problem})
    _set_password(user, new)
    audit.record("auth.password_changed", actor=user, target=user)
    _mail(user, "password_changed", "Your password was changed")
    db.session.commit()


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.session_version += 1


# Profile and second factor


def update_profile(
    user: User,
    name: str,
    *,
    listed_as_contact: bool | None = None,
    contact_role: str | None = None,
) -> None:
    """Change the user's name and whether they are listed as a HeForShe contact.

    A user's force is not theirs to change: it decides whose adoptions they may record
    and whose contact they are listed as, so admins change it (admin.services.set_force).
    """
    problem = name_problem(name)
    if problem:
        raise FieldErrors({"name": problem})
    role = " ".join((contact_role if contact_role is not None else user.contact_role).split())
    if len(role) > 120:
        raise FieldErrors({"contact_role": "Your role must be 120 characters or fewer"})
    if not is_clean_text(role, multiline=False):
        raise FieldErrors({"contact_role": "Remove the control characters from your role"})
    changes = {}
    if listed_as_contact is not None and user.listed_as_contact != listed_as_contact:
        changes["listed_as_contact"] = listed_as_contact
        user.listed_as_contact = listed_as_contact
    if user.contact_role != role:
        changes["contact_role"] = True
        user.contact_role = role
    if user.name != name.strip():
        changes["name"] = True
        user.name = name.strip()
    if changes:
        audit.record("account.profile_changed", actor=user, target=user, detail=changes)
    db.session.commit()


def pending_mfa_secret(user: User) -> str:
    """Return the key being set up for the user, creating it the first time."""
    if not user.totp_pending_secret:
        user.totp_pending_secret = mfa.new_secret()
        db.session.commit()
    return user.totp_pending_secret


def enable_mfa(user: User, password: str, code: str) -> list[str]:
    """Turn on TOTP once the user gives their password and a code from their app."""
    check_own_password(user, password, "password", "enable_mfa")
    secret = user.totp_pending_secret or ""
    step = mfa.matching_step(secret, code)
    if step is None:
        raise FieldErrors({"code": "Enter the 6-digit code your authenticator app shows now"})
    user.totp_secret = secret
    user.totp_pending_secret = None
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    codes = _replace_recovery_codes(user)
    audit.record("auth.mfa_enabled", actor=user, target=user)
    db.session.commit()
    return codes


def regenerate_recovery_codes(user: User, password: str) -> list[str]:
    """Replace every recovery code with new ones, after checking the password."""
    check_own_password(user, password, "password", "regenerate_recovery_codes")
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
    check_own_password(user, password, "password", "disable_mfa")
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_codes = []
    audit.record("auth.mfa_disabled", actor=user, target=user)
    db.session.commit()
