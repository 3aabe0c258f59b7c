"""Write, read and manage case studies: the author's pages and the case study page."""

from __future__ import annotations

import re

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
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..core import rules
from ..core.errors import FieldErrors
from ..extensions import db, limiter
from ..insights.services import mark_opened
from ..models import (
    Attachment,
    CaseStudy,
    ModerationEvent,
    Partner,
    Revision,
    RevisionState,
    Theme,
    revision_partner,
)
from ..web.forms import add_errors, render_form
from ..web.htmx import vary_on_htmx
from ..web.people import signed_in_user, visitor
from . import attachments as files
from . import services
from .forms import ActionForm, CaseStudyForm
from .markdown import render_markdown

bp = Blueprint("casestudies", __name__, url_prefix="/case-studies")
# Every page that shows a case study's Markdown renders it the same way.
bp.add_app_template_filter(render_markdown, "markdown")

#: The live preview follows typing (a request after each pause); a script could ask for a
#: 100,000-character render many times a second.
PREVIEW_LIMIT = "60 per minute"


def case_study_or_404(case_study_id: int) -> CaseStudy:
    try:
        return services.get_case_study(case_study_id)
    except services.NotFound:
        abort(404)


def _visible_revision(case_study: CaseStudy) -> Revision:
    """Return what this user may read of the case study, or 404."""
    live = services.published(case_study)
    if live is not None:
        return live
    if services.may_see_unpublished(visitor(), case_study):
        return services.latest(case_study)
    abort(404)


@bp.get("/mine")
def mine():
    """List the signed-in author's case studies with their states."""
    case_studies = db.session.scalars(
        select(CaseStudy)
        .where(CaseStudy.author_id == current_user.id)
        .options(selectinload(CaseStudy.revisions))
        .order_by(CaseStudy.created_at.desc(), CaseStudy.id.desc())
    ).all()
    return render_template("casestudies/mine.html", case_studies=case_studies)


def _form_page(form, case_study, revision, *, preview=None, notice=None):
    return render_form(
        "casestudies/form.html",
        form,
        case_study=case_study,
        revision=revision,
        partner_names=published_partner_names(),
        preview=preview,
        notice=notice,
    )


def published_partner_names(limit: int = 500) -> list[str]:
    """Suggest partner names from published case studies only: drafts stay private."""
    return list(
        db.session.scalars(
            select(Partner.name)
            .join(revision_partner, revision_partner.c.partner_id == Partner.id)
            .join(Revision, Revision.id == revision_partner.c.revision_id)
            .where(Revision.state == RevisionState.PUBLISHED)
            .group_by(Partner.name)
            .order_by(Partner.name)
            .limit(limit)
        )
    )


def _uploads(form, revision, removing):
    """Read the uploaded files; return (attachments, first refusal or None)."""
    uploads = []
    already = len([a for a in (revision.attachments if revision else []) if a.id not in removing])
    for upload in form.attachments.data or []:
        if not getattr(upload, "filename", ""):
            continue
        try:
            uploads.append(files.read_upload(upload, already + len(uploads)))
        except files.AttachmentRefused as error:
            return [], str(error)
    return uploads, None


def _write(case_study: CaseStudy | None):
    """Handle the writing form, for a new case study or the working copy of one."""
    user = signed_in_user()
    revision = None
    if case_study is not None:
        revision = services.working(case_study) or services.published(case_study)
    form = CaseStudyForm()
    form.set_theme_choices(db.session.scalars(select(Theme).order_by(Theme.position)))
    if request.method == "GET":
        if revision is not None:
            form.fill(services.Content.of(revision))
        else:
            form.contact_name.data, form.contact_email.data = user.name, user.email
        return _form_page(form, case_study, revision)

    action = request.form.get("action", "save")
    if action == "preview":  # without JavaScript: show the preview, keep everything typed
        form.validate()
        # Past its limit the body is not rendered (its error says why): bounded cost.
        shown = None if form.body.errors else render_markdown(form.body.data)
        return _form_page(form, case_study, revision, preview=shown)
    if not form.validate_on_submit():
        return _form_page(form, case_study, revision)
    removing = {
        int(i) for i in request.form.getlist("remove_attachment") if re.fullmatch(r"[0-9]{1,18}", i)
    }
    uploads, refused = _uploads(form, revision, removing)
    if refused:
        add_errors(form, {"attachments": refused})
        return _form_page(form, case_study, revision)
    submit = action == "submit"
    try:
        saved = services.save(
            user,
            case_study,
            form.content(),
            attachments=uploads,
            remove_attachment_ids=sorted(removing),
            submit=submit,
            checklist=form.checklist_ticked,
        )
    except services.SubmitRefused as refusal:
        errors = dict(refusal.errors)
        if "event_date" in errors:
            errors["event_day"] = errors.pop("event_date")
        if "checklist" in errors:
            errors["no_personal_data"] = errors.pop("checklist")
        add_errors(form, errors)
        notice = "Your draft has been saved. Fix the problems below to submit it."
        return _form_page(
            form, refusal.case_study, services.working(refusal.case_study), notice=notice
        )
    except FieldErrors as failure:  # e.g. too many attachments in the end
        add_errors(form, failure.errors)
        return _form_page(form, case_study, revision)
    except services.NotAllowed as error:
        flash(str(error))
        return redirect(_page_of(case_study, ".show"), code=303)
    except IntegrityError:
        # Two saves at once (a double click, two windows): the other one won.
        db.session.rollback()
        flash("This case study was changed in another window at the same time. Check it again.")
        return redirect(_page_of(case_study, ".edit"), code=303)
    if submit:
        flash("Sent to the moderators. We will email you their decision.", "success")
        return redirect(url_for(".mine"), code=303)
    flash("Your draft has been saved.", "success")
    return redirect(url_for(".edit", case_study_id=saved.id), code=303)


def _page_of(case_study: CaseStudy | None, endpoint: str) -> str:
    # A new case study that could not be saved has no page yet: the author's list instead.
    if case_study is None:
        return url_for(".mine")
    return url_for(endpoint, case_study_id=case_study.id)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Write a new case study."""
    return _write(None)


@bp.route("/<id:case_study_id>/edit", methods=["GET", "POST"])
def edit(case_study_id: int):
    """Edit the draft, or start a new version of a published case study."""
    case_study = case_study_or_404(case_study_id)
    user = signed_in_user()
    _visible_revision(case_study)  # 404 for those who may not see it at all
    if not services.editable_by(user, case_study):
        if services.is_author(user, case_study) and services.revision_in(
            case_study, RevisionState.SUBMITTED
        ):
            flash("Withdraw your case study from moderation before you change it.")
            return redirect(url_for(".show", case_study_id=case_study.id), code=303)
        abort(403)
    return _write(case_study)


INLINE_FIELDS = ("title", "contact_name", "contact_email")


@bp.post("/validate")
def validate():
    """Check one field as the writer leaves it; answer with that field's form group (htmx)."""
    name = request.form.get("field", "")
    if name not in INLINE_FIELDS:
        abort(400)
    form = CaseStudyForm(meta={"csrf": False})  # the CSRF token is checked for every POST anyway
    field = form[name]
    inline = getattr(type(form), f"validate_{name}", None)  # called as (form, field)
    field.validate(form, extra_validators=[inline] if inline else ())
    if name == "title" and not (field.data or "").strip():
        field.errors = [*field.errors, "Enter a title"]
    page = render_template("casestudies/_field.html", form=form, field_name=name)
    return vary_on_htmx(make_response(page, 200))


@bp.post("/preview")
@limiter.limit(PREVIEW_LIMIT, key_func=lambda: f"preview:{current_user.id}")
def preview():
    """Render Markdown exactly as the case study page will show it (an htmx fragment)."""
    html = render_markdown(request.form.get("body", "")[: rules.BODY_MAX])
    return vary_on_htmx(make_response(render_template("casestudies/_preview.html", preview=html)))


@bp.get("/<id:case_study_id>")
@bp.get("/<id:case_study_id>/<slug>")
def show(case_study_id: int, slug: str | None = None):
    """Show a case study: its published version, or for its author and moderators the latest."""
    case_study = case_study_or_404(case_study_id)
    revision = _visible_revision(case_study)
    if "search" in request.args:  # opened from a library result: the search insights count it
        mark_opened(request.args.get("search"))
    if slug != case_study.slug:
        return redirect(
            url_for(".show", case_study_id=case_study.id, slug=case_study.slug), code=301
        )
    user = visitor()
    return render_template(
        "casestudies/show.html",
        case_study=case_study,
        revision=revision,
        related=related_to(case_study) if revision.state == RevisionState.PUBLISHED else [],
        working=services.working(case_study)
        if services.may_see_unpublished(user, case_study)
        else None,
        can_edit=user is not None and services.editable_by(user, case_study),
        is_author=services.is_author(user, case_study),
        can_archive=bool(user)
        and case_study.archived_at is None
        and revision.state == RevisionState.PUBLISHED
        and (services.is_author(user, case_study) or services.is_moderator(user)),
        can_see_history=services.may_see_unpublished(user, case_study),
        action_form=ActionForm(),
    )


def related_to(case_study: CaseStudy, limit: int = 4) -> list[Revision]:
    """Return published case studies most like this one, best first."""
    from ..search import get_backend

    ids = get_backend().related(case_study.id, limit=limit)
    found = {
        r.case_study_id: r
        for r in db.session.scalars(
            select(Revision)
            .where(Revision.case_study_id.in_(ids), Revision.state == RevisionState.PUBLISHED)
            .options(selectinload(Revision.case_study).selectinload(CaseStudy.force))
        )
    }
    return [found[i] for i in ids if i in found]


@bp.get("/<id:case_study_id>/history")
def history(case_study_id: int):
    """Show every revision, every decision with its comment, and what changed."""
    case_study = case_study_or_404(case_study_id)
    if not services.may_see_unpublished(visitor(), case_study):
        abort(404)
    events = db.session.scalars(
        select(ModerationEvent)
        .where(ModerationEvent.case_study_id == case_study.id)
        .options(selectinload(ModerationEvent.actor), selectinload(ModerationEvent.revision))
        .order_by(ModerationEvent.id.desc())
    ).all()
    return render_template(
        "casestudies/history.html",
        case_study=case_study,
        events=events,
        diffs=services.changes_for_review(case_study),
    )


def _act(case_study_id: int, step, done: str):
    case_study = case_study_or_404(case_study_id)
    _visible_revision(case_study)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        step(signed_in_user(), case_study)
    except services.NotAllowed as error:
        flash(str(error))
    else:
        flash(done, "success")
    return redirect(url_for(".show", case_study_id=case_study.id), code=303)


@bp.post("/<id:case_study_id>/withdraw")
def withdraw(case_study_id: int):
    """Take a submitted case study back to draft."""
    return _act(case_study_id, services.withdraw, "Withdrawn from moderation: it is a draft again.")


@bp.post("/<id:case_study_id>/archive")
def archive(case_study_id: int):
    """Take a published case study out of the library."""
    return _act(case_study_id, services.archive, "Archived: it is no longer in the library.")


@bp.get("/<id:case_study_id>/attachments/<id:attachment_id>")
def attachment(case_study_id: int, attachment_id: int):
    """Download an attachment of a revision this user may read."""
    case_study = case_study_or_404(case_study_id)
    found = db.session.get(Attachment, attachment_id)
    if found is None or found.revision.case_study_id != case_study.id:
        abort(404)
    readable = found.revision.state == RevisionState.PUBLISHED and case_study.archived_at is None
    if not readable and not services.may_see_unpublished(visitor(), case_study):
        abort(404)
    return files.download(found)
