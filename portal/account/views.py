"""The signed-in user's own account: profile, password, two-factor authentication."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from ..auth import mfa, services, sessions
from ..web import attempts
from ..web.attempts import AttemptLimit
from ..web.forms import carry_out, render_form
from ..web.people import signed_in_user
from .forms import ChangePasswordForm, MfaSetupForm, PasswordCheckForm, ProfileForm

bp = Blueprint("account", __name__, url_prefix="/account")

PASSWORD_CHECKS = AttemptLimit("password-check", 10, 5 * 60)


def _user_key() -> str:
    return f"user:{current_user.id}"


def _limited(view):
    """Limit wrong passwords per user: a stolen session must not become a guessing oracle.

    A refused form (400) keeps its slot; a change that went through gives it back.
    """
    return attempts.counted((PASSWORD_CHECKS, _user_key), counts=attempts.refused)(view)


def _account_page(**forms):
    """The account page, with the two password-checked forms (one of them maybe refused)."""
    forms.setdefault("disable_form", PasswordCheckForm())
    forms.setdefault("codes_form", PasswordCheckForm(prefix="codes"))
    failed = forms.pop("failed", None)
    context = {"user": signed_in_user(), "admins": services.portal_admins(), **forms}
    if failed is not None:
        return render_form("account/index.html", failed, **context)
    return render_template("account/index.html", **context)


@bp.get("")
def index():
    """Show the account's details and what can be changed."""
    return _account_page()


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """Change name and whether they are listed as their force's HeForShe contact."""
    user = signed_in_user()
    form = ProfileForm(
        data={
            "name": user.name,
            "listed_as_contact": user.listed_as_contact,
            "contact_role": user.contact_role,
        }
    )
    step = carry_out(
        form,
        lambda: services.update_profile(
            user,
            form.name.data,
            listed_as_contact=form.listed_as_contact.data,
            contact_role=form.contact_role.data,
        ),
    )
    if step.done:
        flash("Your details have been updated.", "success")
        return redirect(url_for(".index"), code=303)
    return render_form("account/profile.html", form, user=user)


@bp.route("/password", methods=["GET", "POST"])
@_limited
def change_password():
    """Change the password; every other session ends, this one carries on."""
    user = signed_in_user()
    form = ChangePasswordForm()
    step = carry_out(
        form,
        lambda: services.change_password(user, form.current_password.data, form.new_password.data),
    )
    if step.done:
        sessions.start_session(user)
        flash("Your password has been changed. Other devices have been signed out.", "success")
        return redirect(url_for(".index"), code=303)
    return render_form("account/password.html", form)


@bp.route("/two-factor", methods=["GET", "POST"])
@_limited
def mfa_setup():
    """Set up an authenticator app: scan the QR code (or type the key), enter a code."""
    user = signed_in_user()
    if user.mfa_enabled:
        return redirect(url_for(".index"))
    secret = services.pending_mfa_secret(user)
    form = MfaSetupForm()
    step = carry_out(form, lambda: services.enable_mfa(user, form.password.data, form.code.data))
    if step.done:
        return render_template("account/recovery_codes.html", codes=step.value, first_time=True)
    uri = mfa.provisioning_uri(secret, user.email)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_form("account/mfa_setup.html", form, qr=mfa.qr_svg(uri), secret=grouped)


@bp.post("/two-factor/recovery-codes")
@_limited
def regenerate_codes():
    """Replace the recovery codes after checking the password."""
    user = signed_in_user()
    if not user.mfa_enabled:
        return redirect(url_for(".mfa_setup"), code=303)
    form = PasswordCheckForm(prefix="codes")
    step = carry_out(form, lambda: services.regenerate_recovery_codes(user, form.password.data))
    if step.done:
        return render_template("account/recovery_codes.html", codes=step.value, first_time=False)
    return _account_page(codes_form=form, failed=form)


@bp.post("/two-factor/disable")
@_limited
def disable_mfa():
    """Turn two-factor authentication off (contributors only)."""
    user = signed_in_user()
    form = PasswordCheckForm()
    if carry_out(form, lambda: services.disable_mfa(user, form.password.data)).done:
        flash("Two-factor authentication is off.", "success")
        return redirect(url_for(".index"), code=303)
    return _account_page(disable_form=form, failed=form)
