"""The moderation queue, the review page (where decisions are taken) and the approval check.

The queue only lists and links. A moderator decides on the review page, below the content:
requesting changes or rejecting takes effect there (its comment required; an error stays on
the review page's address); approving leads to a check page that says what will be
published, and by whom, before anything changes.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from ..auth.permissions import require_role
from ..casestudies import services as lifecycle
from ..casestudies.forms import CaseStudyForm
from ..core.errors import FieldErrors
from ..extensions import db
from ..models import Revision, RevisionState, Role
from ..web.forms import add_errors
from ..web.people import signed_in_user
from . import queries
from . import services as decisions
from .forms import ApproveForm, ReviewForm

bp = Blueprint("moderation", __name__, url_prefix="/moderation")
bp.before_request(require_role(Role.MODERATOR, Role.ADMIN))

REFUSALS = (lifecycle.AlreadyDecided, lifecycle.NotAllowed)


@bp.get("")
def queue():
    """List the revisions waiting for a decision, oldest first, with filters, a page at a time."""
    force = request.args.get("force", "", type=str)[:120]
    theme = request.args.get("theme", "", type=str)[:80]
    # Text, 0, negatives and pages past the last all show a real page (paginate clamps).
    page = request.args.get("page", 1, type=int)
    return render_template(
        "moderation/queue.html",
        waiting=queries.waiting(force, theme, page=page),
        total=queries.waiting_count(),
        forces=queries.forces_waiting(),
        themes=queries.themes(),
        force=force,
        theme=theme,
    )


def _revision_or_404(revision_id: int) -> Revision:
    revision = db.session.get(Revision, revision_id)
    if revision is None:
        abort(404)
    return revision


def _seen() -> str:
    """The submission the moderator read: the form's field on a POST, the query's on a GET."""
    source = request.form if request.method == "POST" else request.args
    return source.get("seen", "", type=str)[:40]


@bp.route("/<id:revision_id>", methods=["GET", "POST"])
def review(revision_id: int):
    """Show a submitted revision (what changed, the content, its images) and take a decision."""
    revision = _revision_or_404(revision_id)
    form = ReviewForm()
    if request.method != "POST":
        form.seen.data = decisions.seen_token(revision)
        return _review_page(revision, form)
    if not form.validate_on_submit():
        return _review_page(revision, form), 400
    choice = form.decision.data
    try:
        if choice == "approve":
            # Nothing changes until the check page is confirmed; a comment typed goes with it.
            decisions.check(signed_in_user(), revision, _seen())
            return _approve_page(revision, ApproveForm(formdata=None, comment=form.comment.data))
        decisions.decide(signed_in_user(), revision, choice, form.comment.data or "", _seen())
    except FieldErrors as failure:
        add_errors(form, failure.errors)
        return _review_page(revision, form), 400
    except REFUSALS as failure:
        return _refused(revision, form, failure)
    flash(f"{decisions.DONE[choice]}: {revision.title}", "success")
    return redirect(url_for(".queue"), code=303)


@bp.route("/<id:revision_id>/approve", methods=["GET", "POST"])
def approve(revision_id: int):
    """Check what will be published, and by whom; publish only when confirmed (POST)."""
    revision = _revision_or_404(revision_id)
    form = ApproveForm()
    moderator = signed_in_user()
    if request.method != "POST":
        try:
            decisions.check(moderator, revision, _seen())
        except REFUSALS as failure:  # the review page says where it stands
            if _seen() and isinstance(failure, decisions.Changed):
                flash(str(failure))
            return redirect(url_for(".review", revision_id=revision.id), code=303)
        return _approve_page(revision, form)
    if not form.validate_on_submit():
        return _approve_page(revision, form), 400
    try:
        decisions.decide(moderator, revision, "approve", form.comment.data or "", _seen())
    except FieldErrors as failure:
        add_errors(form, failure.errors)
        return _approve_page(revision, form), 400
    except REFUSALS as failure:
        return _refused(revision, ReviewForm(formdata=None), failure)
    flash(f"{decisions.DONE['approve']}: {revision.title}", "success")
    return redirect(url_for(".queue"), code=303)


def _refused(revision: Revision, form: ReviewForm, failure: Exception):
    """The review page as it is now, the reason at the top; what was typed is kept."""
    form.form_errors.append(str(failure))
    if isinstance(failure, decisions.Changed) or not form.seen.data:
        # The page now shows the version as it is: a decision from it is on what was seen.
        form.seen.data = decisions.seen_token(revision)
    return _review_page(revision, form), 400


def _review_page(revision: Revision, form: ReviewForm) -> str:
    case_study = revision.case_study
    waiting = revision.state == RevisionState.SUBMITTED
    labels = CaseStudyForm(formdata=None, meta={"csrf": False})
    return render_template(
        "moderation/review.html",
        revision=revision,
        case_study=case_study,
        form=form,
        waiting=waiting,
        diffs=lifecycle.changes_for_review(case_study) if waiting else {},
        own=lifecycle.wrote(signed_in_user(), revision),
        last_request=decisions.last_request(case_study) if waiting else None,
        decided=None if waiting else decisions.last_decision(revision),
        images=decisions.images(revision),
        checklist=[
            labels.no_personal_data.label.text,
            labels.not_sensitive.label.text,
            labels.permission.label.text,
        ],
    )


def _approve_page(revision: Revision, form: ApproveForm) -> str:
    case_study = revision.case_study
    form.seen.data = _seen()
    return render_template(
        "moderation/approve.html",
        revision=revision,
        case_study=case_study,
        form=form,
        replaces=lifecycle.published(case_study),
        public=current_app.config["PUBLIC_LIBRARY"],
    )
