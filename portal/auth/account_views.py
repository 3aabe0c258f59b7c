"""The signed-in user's own account: profile, password, two-factor authentication."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from ..web import attempts
from ..web.attempts import AttemptLimit
from ..web.forms import add_errors, render_form
from . import mfa, services, sessions
from .forms import ChangePasswordForm, MfaSetupForm, PasswordCheckForm, ProfileForm

bp = Blueprint("account", __name__, url_prefix="/account")

PASSWORD_CHECKS = AttemptLimit("password-check", 10, 5 * 60)


def _user_key() -> str:
    return f"user:{current_user.id}"


def _failed(_response) -> bool:
    return bool(g.get("password_check_failed"))


def _limited(view):
    """Limit wrong passwords per user: a stolen session must not become a guessing oracle."""
    return attempts.counted((PASSWORD_CHECKS, _user_key), counts=_failed)(view)


def _user():
    return current_user._get_current_object()


@bp.get("")
def index():
    """Show the account's details and what can be changed."""
    return render_template(
        "account/index.html",
        user=_user(),
        disable_form=PasswordCheckForm(),
        codes_form=PasswordCheckForm(prefix="codes"),
    )


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """Change name and whether they are listed as their force's HeForShe contact."""
    user = _user()
    form = ProfileForm(
        data={
            "name": user.name,
            "listed_as_contact": user.listed_as_contact,
            "contact_role": user.contact_role,
        }
    )
    if form.validate_on_submit():
        try:
            services.update_profile(
                user,
                form.name.data,
                listed_as_contact=form.listed_as_contact.data,
                contact_role=form.contact_role.data,
            )
        except services.FieldErrors as failure:
            add_errors(form, failure.errors)
        else:
            flash("Your details have been updated.", "success")
            return redirect(url_for(".index"), code=303)
    return render_form("account/profile.html", form, user=user)


@bp.route("/password", methods=["GET", "POST"])
@_limited
def change_password():
    """Change the password; every other session ends, this one carries on."""
    user = _user()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(user, form.current_password.data, form.new_password.data)
        except services.FieldErrors as failure:
            add_errors(form, failure.errors)
            g.password_check_failed = True
        else:
            sessions.start_session(user)
            flash("Your password has been changed. Other devices have been signed out.", "success")
            return redirect(url_for(".index"), code=303)
    return render_form("account/password.html", form)


@bp.route("/two-factor", methods=["GET", "POST"])
@_limited
def mfa_setup():
    """Set up an authenticator app: scan the QR code (or type the key), enter a code."""
    user = _user()
    if user.mfa_enabled:
        return redirect(url_for(".index"))
    secret = services.pending_mfa_secret(user)
    form = MfaSetupForm()
    if form.validate_on_submit():
        try:
            codes = services.enable_mfa(user, form.password.data, form.code.data)
        except services.FieldErrors as failure:
            add_errors(form, failure.errors)
        else:
            return render_template("account/recovery_codes.html", codes=codes, first_time=True)
    if request.method == "POST":
        g.password_check_failed = True
    uri = mfa.provisioning_uri(secret, user.email)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_form("account/mfa_setup.html", form, qr=mfa.qr_svg(uri), secret=grouped)


@bp.post("/two-factor/recovery-codes")
@_limited
def regenerate_codes():
    """Replace the recovery codes after checking the password."""
    user = _user()
    form = PasswordCheckForm(prefix="codes")
    if not user.mfa_enabled:
        return redirect(url_for(".mfa_setup"), code=303)
    if form.validate_on_submit():
        try:
            codes = services.regenerate_recovery_codes(user, form.password.data)
        except services.FieldErrors as failure:
            add_errors(form, failure.errors)
            g.password_check_failed = True
        else:
            return render_template("account/recovery_codes.html", codes=codes, first_time=False)
    return render_form(
        "account/index.html", form, user=user, disable_form=PasswordCheckForm(), codes_form=form
    )


@bp.post("/two-factor/disable")
@_limited
def disable_mfa():
    """Turn two-factor authentication off (contributors only)."""
    user = _user()
    form = PasswordCheckForm()
    if form.validate_on_submit():
        try:
            services.disable_mfa(user, form.password.data)
        except services.FieldErrors as failure:
            add_errors(form, failure.errors)
            g.password_check_failed = True
        else:
            flash("Two-factor authentication is off.", "success")
            return redirect(url_for(".index"), code=303)
    return render_form(
        "account/index.html",
        form,
        user=user,
        disable_form=form,
        codes_form=PasswordCheckForm(prefix="codes"),
    )
