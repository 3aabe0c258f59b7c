"""The signed-in user's own account: profile, password, two-factor authentication."""

from __future__ import annotations

import json
from math import ceil

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from .. import audit
from ..auth import mfa, services, sessions, sso
from ..auth.forms import force_choices
from ..core.errors import FieldErrors
from ..extensions import db, limiter
from ..models import utcnow
from ..web import attempts
from ..web.attempts import AttemptLimit, TooManyAttempts
from ..web.forms import add_errors, carry_out, render_form
from ..web.people import signed_in_user
from . import closing
from . import data as personal_data
from . import services as account
from .forms import (
    ChangePasswordForm,
    ConfirmForm,
    ForceChangeForm,
    MfaSetupForm,
    PasswordCheckForm,
    ProfileForm,
)

bp = Blueprint("account", __name__, url_prefix="/account")

PASSWORD_CHECKS = AttemptLimit("password-check", 10, 5 * 60)
#: Requests to change force that reached the admins: enough to correct a mistake, too few
#: to flood the admins' inboxes. A refused or unsent request gives its slot back.
FORCE_REQUESTS = AttemptLimit("force-request", 3, 24 * 3600)


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
    user = signed_in_user()
    context = {
        "user": user,
        "identities": sso.identities_of(user),
        "unlink_form": ConfirmForm(),
        **forms,
    }
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


def _force_page(form, status: int | None = None, **headers):
    user = signed_in_user()
    forces = force_choices()
    response, code = render_form(
        "account/force.html", form, user=user, forces=forces, note_max=account.NOTE_MAX
    )
    return response, status or code, headers


def _too_many_requests(retry_after: int) -> str:
    hours = max(1, ceil(retry_after / 3600))
    return (
        f"You have asked {FORCE_REQUESTS.amount} times in the last day. You can ask again in "
        f"{hours} hour{'' if hours == 1 else 's'}, or reply to an admin's email about it"
    )


@bp.route("/force", methods=["GET", "POST"])
def force():
    """Ask the admins to change your force: they are emailed, their addresses stay private.

    Only requests that were recorded count towards the limit; what was typed is kept
    whatever goes wrong.
    """
    user = signed_in_user()
    form = ForceChangeForm()
    if not form.validate_on_submit():
        return _force_page(form)
    try:
        attempt = attempts.take((FORCE_REQUESTS, f"force-request:{user.id}"))
    except TooManyAttempts as refused:
        retry_after = int(refused.retry_after or 3600)
        form.form_errors.append(_too_many_requests(retry_after))
        return _force_page(form, 429, **{"Retry-After": str(retry_after)})
    sent = None
    try:
        sent = account.request_force_change(user, form.force.data, form.note.data)
    except FieldErrors as failure:
        add_errors(form, failure.errors)
    finally:
        if sent is None:
            attempt.give_back()
    if sent is None:
        return _force_page(form)
    flash(
        f"We’ve asked the admins to change your force to {sent.force.name}. When one of "
        "them has, this page will show it. They may reply to you by email.",
        "success",
    )
    return redirect(url_for(".index"), code=303)


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


@bp.post("/sign-ins/<id:identity_id>/remove")
def unlink_sign_in(identity_id: int):
    """Remove a linked force sign-in; the password (or a reset link) still signs in."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    identity = sso.unlink(signed_in_user(), identity_id)
    if identity is None:
        abort(404)
    flash("Removed. That force account no longer signs in to this one.", "success")
    return redirect(url_for(".index"), code=303)


@bp.get("/data")
def data():
    """What the library holds about you, and a button to download all of it."""
    return render_template("account/data.html", user=signed_in_user())


@bp.get("/data.json")
@limiter.limit("10 per hour")
def data_download():
    """Everything the library holds about you, as a JSON file (the right of access)."""
    user = signed_in_user()
    document = personal_data.export(user)
    audit.record("account.data_downloaded", actor=user, target=user)
    db.session.commit()
    response = current_app.response_class(
        json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/json"
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="heforshe-library-data-{utcnow():%Y-%m-%d}.json"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _closing_page(user, choices=None, errors=None, confirm="", action=None, by_admin=False):
    return (
        render_template(
            "account/close.html",
            user=user,
            case_studies=closing.live_case_studies(user),
            choices=choices or {},
            errors=errors or {},
            confirm=confirm,
            action=action or url_for(".close"),
            by_admin=by_admin,
            form=ConfirmForm(),
            own_contact=closing.own_contact,
            published=closing.published,
        ),
        400 if errors else 200,
    )


@bp.route("/close", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
@_limited  # wrong passwords count, as on every page that checks one
def close():
    """Close your own account: choose what becomes of each live case study, then confirm."""
    user = signed_in_user()
    if request.method == "GET":
        return _closing_page(user)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    live = closing.live_case_studies(user)
    choices = closing.read_choices(request.form, live)
    confirm = request.form.get("confirm", "")[:300]
    try:
        closing.prove_owner(user, request.form.get("password", "")[:1024], session.get("auth_at"))
    except FieldErrors as failure:  # said with any other problem of the form
        return _closing_page(
            user, choices, {**closing.problems(user, choices, confirm), **failure.errors}, confirm
        )
    try:
        closing.close(user, user, choices, confirm)
    except FieldErrors as failure:
        return _closing_page(user, choices, failure.errors, confirm)
    sessions.end_session()
    flash("Your account is closed. Thank you for sharing what works.", "success")
    return redirect(url_for("auth.login"), code=303)
