"""Follow and unfollow forces and themes; the signed-in user's following page."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from ..auth.sessions import safe_next
from ..feeds.links import make_feed_token
from ..web.forms import render_form
from ..web.htmx import is_partial, vary_on_htmx
from ..web.people import signed_in_user
from . import services
from .forms import DigestForm
from .services import Kind

bp = Blueprint("follows", __name__, url_prefix="/account/following")

KINDS = "any(force, theme)"


@bp.app_template_global()
def is_following(kind: str, target_id: int) -> bool:
    """Return whether the signed-in user follows this force or theme (one query a request)."""
    if not current_user.is_authenticated:
        return False
    return (kind, target_id) in services.followed_by_request_user(signed_in_user())


def _render_page(form: DigestForm):
    user = signed_in_user()
    forces, themes = services.following(user)
    return render_form(
        "follows/following.html",
        form,
        user=user,
        forces=forces,
        followed_themes=themes,
        themes=services.all_themes(),
        # Readers of a private library's feeds cannot sign in: they get a private link.
        feed_token=None if current_app.config["PUBLIC_LIBRARY"] else make_feed_token(user),
    )


@bp.get("")
def following():
    """Show what the signed-in user follows, every theme, the digest setting and the feeds."""
    form = DigestForm(data={"digest": "yes" if signed_in_user().wants_digest else "no"})
    return _render_page(form)


@bp.post("/digest")
def digest():
    """Switch the weekly digest on or off."""
    form = DigestForm()
    if not form.validate_on_submit():
        return _render_page(form)
    wanted = form.digest.data == "yes"
    services.set_wants_digest(signed_in_user(), wanted)
    flash(
        "You will get a weekly digest." if wanted else "You will not get a weekly digest.",
        "success",
    )
    return redirect(url_for(".following"), code=303)


@bp.post(f"/<{KINDS}:kind>/<id:target_id>")
def follow(kind: str, target_id: int):
    """Follow a force or a theme."""
    return _change(Kind(kind), target_id, following=True)


@bp.post(f"/<{KINDS}:kind>/<id:target_id>/unfollow")
def unfollow(kind: str, target_id: int):
    """Stop following a force or a theme."""
    return _change(Kind(kind), target_id, following=False)


def _change(kind: Kind, target_id: int, *, following: bool):
    target = services.find_target(kind, target_id)
    if target is None:
        abort(404)
    step = services.follow if following else services.unfollow
    step(signed_in_user(), target)
    message = (
        f"You are now following {target.name}."
        if following
        else f"You are no longer following {target.name}."
    )
    back = safe_next(request.form.get("next"))
    if is_partial():
        # The button swaps itself, and the live region says what changed.
        response = make_response(
            render_template(
                "follows/_changed.html",
                follow_kind=kind.value,
                follow_target=target,
                follow_next=back,
                message=message,
            )
        )
        return vary_on_htmx(response)
    flash(message, "success")
    return redirect(back or url_for(".following"), code=303)
