"""Sign in, second factor, sign out, register, confirm an email, reset a password."""

from __future__ import annotations

import hashlib

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user
from werkzeug.exceptions import ServiceUnavailable

from ..core.errors import FieldErrors
from ..core.links import external_url
from ..extensions import db, limiter
from ..jobs import enqueue
from ..models import IdentityProvider, User, UserStatus
from ..web import attempts
from ..web.attempts import AttemptLimit
from ..web.forms import add_errors, carry_out, render_form
from . import services, sessions, sso, tokens
from .forms import (
    CodeForm,
    ConfirmEmailForm,
    EmailForm,
    FinishRegistrationForm,
    LinkAccountForm,
    LoginForm,
    NewPasswordForm,
    RegisterForm,
    force_choices,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")

# Failed sign-ins: per account from anywhere, and per address across accounts. Each attempt
# holds a slot while its password is checked; a success gives it back.
SIGN_IN_PER_ACCOUNT = AttemptLimit("sign-in-account", 10, 5 * 60)
SIGN_IN_PER_ADDRESS = AttemptLimit("sign-in-address", 10, 5 * 60)
SECOND_FACTOR_GUESSES = AttemptLimit("second-factor", 10, 5 * 60)
WRONG_CODE = "Enter a correct code from your authenticator app, or a recovery code"


def _account_key() -> str:
    # Hashed, so what was typed never reaches the limiter's storage or its log lines.
    return _email_key(request.form.get("email", ""))


def _email_key(email: str) -> str:
    return "account:" + hashlib.sha256(services.normalise_email(email).encode()).hexdigest()[:32]


def _confirming_key() -> str:
    """The account a confirmation link was made for, under the key signing in uses: the
    password is guessed for the account, and confirming signs in, so both share one limit.
    """
    token = (request.view_args or {}).get("token", "")
    try:
        return _email_key(tokens.read_token(token, tokens.CONFIRM).email)
    except tokens.TokenInvalid:  # answered with the invalid-link page, which never counts
        return "confirm-link:" + hashlib.sha256(str(token).encode()).hexdigest()[:32]


def _wrong_confirming_password(response) -> bool:
    # Only a refused form counts, not a link that is out of date or used already.
    return attempts.refused(response) and not g.get("link_invalid", False)


def _pending_key() -> str:
    # The account, not the session: signing in again must not buy a fresh set of guesses.
    pending = session.get(sessions.PENDING_SECOND_FACTOR)
    user = pending.get("user") if isinstance(pending, dict) else ""
    return f"second-factor:{str(user).partition(':')[0]}"


@bp.route("/login", methods=["GET", "POST"])
@attempts.counted(
    (SIGN_IN_PER_ACCOUNT, _account_key),
    (SIGN_IN_PER_ADDRESS, get_remote_address),
    counts=attempts.refused,  # only failures keep their slot: people signing in often never wait
)
def login():
    """Check the email and password, then ask for the second factor when there is one."""
    next_url = sessions.safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("library.home"))
    form = LoginForm()
    if form.validate_on_submit():
        result = services.authenticate(form.email.data, form.password.data)
        if result.error is None:
            if result.step is services.SignInStep.SECOND_FACTOR:
                sessions.begin_second_factor(result.user, next_url)
                return redirect(url_for(".second_factor"), code=303)
            sessions.start_session(result.user)
            services.record_sign_in(result.user, method="password")
            return redirect(next_url or url_for("library.home"), code=303)
        form.form_errors.append(result.error)
    return _login_page(form, next_url)


def _login_page(form, next_url: str | None, status: int = 200):
    return render_form(
        "auth/login.html",
        form,
        status,
        next_url=next_url,
        providers=sso.usable_providers(),
    )


@bp.route("/two-factor", methods=["GET", "POST"])
@attempts.counted((SECOND_FACTOR_GUESSES, _pending_key), counts=attempts.refused)
def second_factor():
    """Ask for the code from the authenticator app, or a recovery code."""
    pending = sessions.pending_second_factor()
    if pending is None:
        flash("Sign in again to continue.")
        return redirect(url_for(".login"), code=303)
    user, next_url, provider = pending
    form = CodeForm()
    if form.validate_on_submit():
        try:
            accepted = services.verify_second_factor(user, form.code.data)
        except services.SecondFactorLocked:
            accepted = False
            form.form_errors.append(
                "Signing in is paused for an hour after too many wrong codes. "
                "We have emailed the account's owner."
            )
        else:
            if not accepted:
                add_errors(form, {"code": WRONG_CODE})
        if accepted:
            sessions.start_session(user, provider=provider)
            services.record_sign_in(
                user, method="sso+totp" if provider else "password+totp", provider=provider
            )
            return redirect(next_url or url_for("library.home"), code=303)
    return render_form("auth/second_factor.html", form)


@bp.post("/logout")
def logout():
    """End this session and every other session of the user."""
    provider = session.get(sessions.SIGNED_IN_THROUGH)
    if current_user.is_authenticated:
        services.sign_out(current_user._get_current_object())
    sessions.end_session()
    if isinstance(provider, int):
        session[SIGNED_OUT_OF] = provider
        return redirect(url_for(".signed_out"), code=303)
    flash("You have signed out.", "success")
    return redirect(url_for(".login"), code=303)


# Single sign-on (OpenID Connect): portal/auth/sso.py

SIGNED_OUT_OF = "signed_out_of"


@bp.get("/sso/<slug>")
@limiter.limit("30 per minute")
def sso_start(slug: str):
    """Send the browser to the provider's sign-in page (a link on the sign-in page).

    A link, not a form: the pages' CSP (form-action 'self') stops a form's redirect to
    another site. Starting a sign-in changes nothing but this browser's own session, and
    the callback only accepts the `state` this browser was given, so a link is safe."""
    provider = sso.find_provider(slug)
    if provider is None or provider not in sso.usable_providers():
        abort(404)
    next_url = sessions.safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("library.home"), code=303)
    try:
        return sso.begin(provider, external_url(".sso_callback"), next_url)
    except sso.SignInRefused as error:
        sso.refusal(provider, error)
        return _refused(error, next_url)


def _refused(error: sso.SignInRefused, next_url: str | None = None):
    form = LoginForm(formdata=None)
    form.form_errors.append(error.message)
    return _login_page(form, next_url, status=400)


@bp.get("/sso/callback")
@limiter.limit("30 per minute")
def sso_callback():
    """Where the provider sends the browser back: check its answer, then sign in."""
    pending = sso.pending_provider()
    if pending is None:
        error = sso.SignInRefused(
            "no_pending_sign_in",
            "Your sign-in took too long, or began in another browser. Try again",
        )
        sso.refusal(None, error)
        return _refused(error)
    provider, next_url = pending
    try:
        proof = sso.finish(provider, request.args.to_dict())
        outcome = sso.account_for(proof)
    except sso.SignInRefused as error:
        sso.refusal(provider, error)
        return _refused(error, next_url)
    if outcome.link_to is not None:
        sso.remember_link(proof, outcome.link_to, next_url)
        return redirect(url_for(".sso_link"), code=303)
    assert outcome.user is not None
    return _signed_in_through(outcome.user, proof, next_url)


def _signed_in_through(user, proof: sso.Proof, next_url: str | None):
    """The provider vouched for `user`: the portal's second factor unless its MFA counts."""
    provider = proof.provider_id
    if proof.mfa:
        sessions.start_session(user, provider=provider, provider_mfa=True)
        services.record_sign_in(user, method="sso+provider_mfa", provider=provider)
    elif user.mfa_enabled:
        sessions.begin_second_factor(user, next_url, provider=provider)
        return redirect(url_for(".second_factor"), code=303)
    else:
        sessions.start_session(user, provider=provider)
        services.record_sign_in(user, method="sso", provider=provider)
    return redirect(next_url or url_for("library.home"), code=303)


def _linking_key() -> str:
    # The account being linked, under the key signing in uses: one set of guesses.
    raw = session.get(sso.LINKING)
    user = raw.get("user") if isinstance(raw, dict) else None
    found = db.session.get(User, user) if isinstance(user, int) else None
    return _email_key(found.email) if found else "sso-link:none"


@bp.route("/sso/link", methods=["GET", "POST"])
@attempts.counted((SIGN_IN_PER_ACCOUNT, _linking_key), counts=attempts.refused)
def sso_link():
    """Link a provider identity to the account with its email, once its password is given."""
    pending = sso.pending_link()
    if pending is None:  # never started, or more than 10 minutes ago
        flash("Sign in again to continue.")
        return redirect(url_for(".login"), code=303)
    proof, user, next_url = pending
    provider = db.session.get(IdentityProvider, proof.provider_id)
    form = LinkAccountForm()
    if form.validate_on_submit():
        try:
            sso.link(proof, user, form.password.data, form.code.data or "")
        except FieldErrors as failure:
            add_errors(form, failure.errors)
        except sso.SignInRefused as error:
            sso.refusal(provider, error)
            form.form_errors.append(error.message)
        else:
            # Its password and (when it has one) its code were given: signed in, on a fresh
            # session first, which the message below must follow.
            sessions.start_session(user, provider=proof.provider_id, provider_mfa=proof.mfa)
            services.record_sign_in(user, method="sso+link", provider=proof.provider_id)
            response = redirect(next_url or url_for("library.home"), code=303)
            flash(
                f"Your {provider.name if provider else 'force'} sign-in is now linked to this "
                "account.",
                "success",
            )
            return response
    return render_form(
        "auth/sso_link.html", form, email=user.email, provider=provider, needs_code=user.mfa_enabled
    )


@bp.get("/signed-out")
def signed_out():
    """Signed out of the portal; offer to sign out of the provider too, where it can."""
    provider_id = session.get(SIGNED_OUT_OF)
    provider = (
        db.session.get(IdentityProvider, provider_id) if isinstance(provider_id, int) else None
    )
    logout = sso.logout_url(provider, external_url(".login")) if provider else None
    return render_template("auth/signed_out.html", provider=provider, logout_url=logout)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def register():
    """Create an account with a work email address; confirmation follows by email."""
    if current_user.is_authenticated:
        return redirect(url_for("library.home"))
    form = RegisterForm()
    step = carry_out(
        form,
        lambda: services.register(
            form.name.data, form.email.data, form.force.data, form.password.data
        ),
    )
    if step.done:
        session["check_email"] = "registered"
        return redirect(url_for(".check_email"), code=303)
    return render_form("auth/register.html", form, forces=force_choices())


@bp.get("/check-email")
def check_email():
    """Tell the person to look for our email, without saying whether an account exists."""
    reason = session.get("check_email", "registered")
    return render_template("auth/check_email.html", reason=reason)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("10 per 15 minutes", methods=["POST"])
@attempts.counted((SIGN_IN_PER_ACCOUNT, _confirming_key), counts=_wrong_confirming_password)
def confirm(token: str):
    """Confirm the email with the password chosen at registration (a button, not the link),
    and sign in.

    Mail scanners follow links but never fill in forms, and asking for the password means
    a link sent for somebody else's registration of your address confirms nothing.
    """
    try:
        user = tokens.read_token(token, tokens.CONFIRM)
    except tokens.TokenInvalid as error:
        return _link_invalid(str(error), "confirm")
    if user.status != UserStatus.PENDING:
        return _link_invalid("used", "confirm")
    form = ConfirmEmailForm()
    try:
        step = carry_out(form, lambda: services.confirm_email(token, form.password.data))
    except tokens.TokenInvalid as error:
        return _link_invalid(str(error), "confirm")
    if step.done:
        return _signed_in_after_confirming(step.value)
    return render_form("auth/confirm.html", form, email=user.email)


def _signed_in_after_confirming(user):
    """Sign in whoever just confirmed (they gave the link and the password): on a fresh
    session, as signing in does, and through the second factor when the account has one."""
    if user.mfa_enabled:
        sessions.begin_second_factor(user, None)
        flash(
            "Your email address is confirmed. Enter a code from your authenticator app to sign in.",
            "success",
        )
        return redirect(url_for(".second_factor"), code=303)
    sessions.start_session(user)
    services.record_sign_in(user, method="email_confirmation")
    flash("Your email address is confirmed and you are signed in.", "success")
    return redirect(url_for("library.home"), code=303)


def _link_invalid(reason: str, purpose: str):
    g.link_invalid = True
    return render_template("auth/link_invalid.html", reason=reason, purpose=purpose), 400


def _email_step(template: str, step: str, reason: str):
    """Ask for an email address, queue what `step` sends, and never say if an account exists.

    The request only queues a job (auth/jobs.py), the same for a known address (a token,
    an audit row, an email) and an unknown one (nothing), so its timing says nothing; the
    job is tried again while the database is away, so the email is never lost.
    """
    form = EmailForm()
    if form.validate_on_submit():
        try:
            enqueue("email_step", step, form.email.data, request.remote_addr or "")
        except Exception as error:  # the queue's Redis is away: say so, never a 500
            current_app.logger.error("the job queue could not be reached: %s", error)
            raise ServiceUnavailable(retry_after=60) from None
        session["check_email"] = reason
        return redirect(url_for(".check_email"), code=303)
    return render_form(template, form)


@bp.route("/confirm/resend", methods=["GET", "POST"])
@limiter.limit("5 per 15 minutes", methods=["POST"])
def resend_confirmation():
    """Send a new confirmation link."""
    return _email_step("auth/resend.html", "confirm", "resent")


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per 15 minutes", methods=["POST"])
def reset_request():
    """Email a link to choose a new password."""
    return _email_step("auth/reset_request.html", "reset", "reset")


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per 15 minutes", methods=["POST"])
def reset_password(token: str):
    """Choose a new password from a reset link (and, if never confirmed, your own details)."""
    try:
        user = tokens.read_token(token, tokens.RESET)
    except tokens.TokenInvalid as error:
        return _link_invalid(str(error), "reset")
    pending = user.status == UserStatus.PENDING
    form = FinishRegistrationForm() if pending else NewPasswordForm()
    try:
        step = carry_out(
            form,
            lambda: services.reset_password(
                token,
                form.password.data,
                name=form.name.data if pending else None,
                force_name=form.force.data if pending else None,
            ),
        )
    except tokens.TokenInvalid as error:
        return _link_invalid(str(error), "reset")
    if step.done:
        sessions.end_session()
        flash("Your password has been changed. Sign in with your new password.", "success")
        return redirect(url_for(".login"), code=303)
    return render_form(
        "auth/reset_password.html",
        form,
        email=user.email,
        pending=pending,
        forces=force_choices() if pending else (),
    )
