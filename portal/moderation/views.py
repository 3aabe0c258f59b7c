"""The moderation queue, the review page and the three decisions."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..auth.permissions import require_role
from ..casestudies import services
from ..casestudies.forms import CaseStudyForm, DecisionForm
from ..core.errors import FieldErrors
from ..extensions import db
from ..models import (
    CaseStudy,
    Force,
    Revision,
    RevisionState,
    Role,
    Theme,
    revision_theme,
    utcnow,
)
from ..web.htmx import is_partial, vary_on_htmx

bp = Blueprint("moderation", __name__, url_prefix="/moderation")
bp.before_request(require_role(Role.MODERATOR, Role.ADMIN))

DECISIONS = {
    "approve": (services.approve, "Approved and published"),
    "changes": (services.request_changes, "Sent back to the author for changes"),
    "reject": (services.reject, "Rejected"),
}


def _waiting(force: str = "", theme: str = ""):
    query = (
        select(Revision)
        .join(Revision.case_study)
        .where(Revision.state == RevisionState.SUBMITTED)
        .options(
            selectinload(Revision.case_study).selectinload(CaseStudy.force),
            selectinload(Revision.case_study).selectinload(CaseStudy.author),
            selectinload(Revision.themes),
        )
        .order_by(Revision.submitted_at, Revision.id)
    )
    if force:
        query = query.join(Force, CaseStudy.force_id == Force.id).where(Force.slug == force)
    if theme:
        query = query.where(
            Revision.id.in_(
                select(revision_theme.c.revision_id)
                .join(Theme, Theme.id == revision_theme.c.theme_id)
                .where(Theme.slug == theme)
            )
        )
    return db.session.scalars(query).all()


@bp.get("")
def queue():
    """List the revisions waiting for a decision, oldest first, with filters."""
    force = request.args.get("force", "", type=str)[:120]
    theme = request.args.get("theme", "", type=str)[:80]
    waiting = _waiting(force, theme)
    total = db.session.scalar(
        select(func.count()).select_from(Revision).where(Revision.state == RevisionState.SUBMITTED)
    )
    forces = db.session.execute(
        select(Force.slug, Force.name, func.count(Revision.id))
        .join(CaseStudy, CaseStudy.force_id == Force.id)
        .join(Revision, Revision.case_study_id == CaseStudy.id)
        .where(Revision.state == RevisionState.SUBMITTED)
        .group_by(Force.slug, Force.name)
        .order_by(Force.name)
    ).all()
    themes = db.session.scalars(select(Theme).order_by(Theme.position)).all()
    return render_template(
        "moderation/queue.html",
        waiting=waiting,
        total=total,
        forces=forces,
        themes=themes,
        force=force,
        theme=theme,
        now=utcnow(),
        form=DecisionForm(),
    )


def _revision_or_404(revision_id: int) -> Revision:
    revision = db.session.get(Revision, revision_id)
    if revision is None:
        abort(404)
    return revision


@bp.get("/<id:revision_id>")
def review(revision_id: int):
    """Show a submitted revision: content, attachments, what changed, the checklist, decisions."""
    return render_review(_revision_or_404(revision_id), DecisionForm())


def render_review(revision: Revision, decision_form: DecisionForm, error: str | None = None):
    case_study = revision.case_study
    labels = CaseStudyForm()
    waiting = revision.state == RevisionState.SUBMITTED
    return render_template(
        "moderation/review.html",
        revision=revision,
        case_study=case_study,
        diffs=services.changes_for_review(case_study) if waiting else {},
        decision_form=decision_form,
        error=error,
        own=current_user.id in (case_study.author_id, revision.created_by_id),
        checklist=[
            labels.no_personal_data.label.text,
            labels.not_sensitive.label.text,
            labels.permission.label.text,
        ],
    )


@bp.post("/<id:revision_id>/decide")
def decide(revision_id: int):
    """Approve, request changes or reject; from the queue (htmx) or the review page."""
    revision = _revision_or_404(revision_id)
    form = DecisionForm()
    choice = request.form.get("decision", "")
    valid = form.validate_on_submit()
    if form.csrf_token.errors or choice not in DECISIONS:
        abort(400)
    step, done = DECISIONS[choice]
    moderator = current_user._get_current_object()
    error = None if valid else form.comment.errors[0]  # the typed comment is kept below
    try:
        if valid:
            step(moderator, revision, form.comment.data or "")
    except FieldErrors as failure:
        error = next(iter(failure.errors.values()))
    except (services.AlreadyDecided, services.NotAllowed) as failure:
        error = str(failure)
    if is_partial():
        # Swap just this item: its outcome, or its form with the error next to the comment.
        response = make_response(
            render_template(
                "moderation/_queue_item.html",
                revision=revision,
                done=None if error else done,
                error=error,
                form=form,
                now=utcnow(),
                swapped=True,
            ),
            200 if not error else 400,
        )
        return vary_on_htmx(response)
    if error:
        return render_review(revision, form, error), 400
    flash(f"{done}: {revision.title}", "success")
    return redirect(url_for(".queue"), code=303)
