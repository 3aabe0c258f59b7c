"""Write, read and manage case studies: the author's pages and the case study page."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.exceptions import ServiceUnavailable

from ..core import rules
from ..core.errors import FieldErrors
from ..core.times import format_time
from ..extensions import db, limiter
from ..insights.services import mark_opened
from ..models import (
    Attachment,
    CaseStudy,
    ModerationEvent,
    Revision,
    RevisionState,
    Theme,
    utcnow,
)
from ..reference import partner_suggestions
from ..web import attempts
from ..web.attempts import AttemptLimit, TooManyAttempts
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
# File sizes as people read them ("12 KB", "1.2 MB"), wherever a file is listed.
bp.add_app_template_filter(files.human_size, "file_size")

#: The live preview follows typing (a request after each pause); a script could ask for a
#: 100,000-character render many times a second.
PREVIEW_LIMIT = "60 per minute"

#: Each submission emails every moderator: submit/withdraw cycles must not flood them.
#: Only a submission that went through keeps its slot (a refused or lost one gives it back);
#: over the limit the draft is still saved, just not submitted.
SUBMISSIONS_PER_HOUR = AttemptLimit("submissions-hour", 10, 3600)


class HeldBack(Exception):
    """The submission may not go now: the draft is saved instead, and the page says why."""

    def __init__(self, message: str, status: int, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _submission_slot(user) -> attempts.Attempt:
    """Take one of this person's submission slots, or raise HeldBack saying when to retry."""
    try:
        return attempts.take((SUBMISSIONS_PER_HOUR, f"submit:{user.id}"))
    except TooManyAttempts as over:
        wait = over.retry_after if isinstance(over.retry_after, int) else 0
        wait = wait or SUBMISSIONS_PER_HOUR.seconds
        when = format_time(utcnow() + timedelta(seconds=wait))
        raise HeldBack(
            f"You have submitted {SUBMISSIONS_PER_HOUR.amount} case studies in the last hour, "
            f"so this one was not sent to the moderators. Your draft has been saved: you can "
            f"submit it from {when} (UK time).",
            429,
            wait,
        ) from None
    except ServiceUnavailable:  # the limit's counters are down: save now, submit later
        raise HeldBack(
            "Your draft has been saved, but it could not be sent to the moderators just now. "
            "Try submitting it again in a few minutes.",
            503,
            300,
        ) from None


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
    return render_template(
        "casestudies/mine.html",
        case_studies=case_studies,
        standings=services.standings(case_studies),
    )


#: The session's memory of the drafts /case-studies/new made: {form token: case study id}.
NEW_DRAFTS = "new_drafts"
#: How many such drafts a session remembers (the latest).
NEW_DRAFTS_KEPT = 5
DRAFT_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,43}")

DELETED_NOTICE = (
    "This draft was deleted, in another window or tab, so your changes could not be saved "
    "to it. What you typed is below: save it to start a new draft (choose any files again)."
)


def _draft_token() -> str:
    """The one-time token of a /new form: the posted one, or a fresh one for a new form."""
    posted = request.form.get("draft_token", "")
    return posted if DRAFT_TOKEN.fullmatch(posted) else secrets.token_urlsafe(18)


def _remember_new(case_study: CaseStudy) -> None:
    """Remember the draft this /new form made, so the same form sent again goes to it."""
    token = request.form.get("draft_token", "")
    if not DRAFT_TOKEN.fullmatch(token):
        return
    made = dict(session.get(NEW_DRAFTS) or {})
    made.pop(token, None)
    made[token] = case_study.id
    session[NEW_DRAFTS] = dict(list(made.items())[-NEW_DRAFTS_KEPT:])


def _made_by_this_form() -> int | None:
    """The draft an earlier send of this very /new form made, if it still exists."""
    made = session.get(NEW_DRAFTS) or {}
    case_study_id = made.get(request.form.get("draft_token", ""))
    if not isinstance(case_study_id, int) or db.session.get(CaseStudy, case_study_id) is None:
        return None
    return case_study_id


def _form_page(form, case_study, revision, *, preview=None, notice=None, removing=(), status=None):
    page, answer = render_form(
        "casestudies/form.html",
        form,
        case_study=case_study,
        revision=revision,
        standing=services.standing(case_study) if case_study is not None else None,
        can_delete=case_study is not None and services.deletable_by(signed_in_user(), case_study),
        partner_names=partner_suggestions(),
        preview=preview,
        notice=notice,
        removing=set(removing),
        draft_token=_draft_token() if case_study is None else None,
    )
    return page, status or answer


def _new_form() -> CaseStudyForm:
    form = CaseStudyForm()
    form.set_theme_choices(db.session.scalars(select(Theme).order_by(Theme.position)))
    return form


def _deleted_page(form):
    """The draft is gone: 404, with what was typed in a form that starts a new draft."""
    return _form_page(form, None, None, notice=DELETED_NOTICE, status=404)


#: Where a service's field name shows on the form, when the form names it differently.
FORM_FIELD = {"event_date": "event_day", "checklist": "no_personal_data"}
#: The form fields each service field covers: one error for the three boxes of a date.
COVERS = {"event_date": ("event_day", "event_month", "event_year")}


def _add_service_errors(form, errors: dict[str, str]) -> None:
    """Show a service's messages next to their fields, none where the field has one already."""
    for name, message in errors.items():
        covered = COVERS.get(name, (FORM_FIELD.get(name, name),))
        if any(form[n].errors for n in covered if n in form):
            continue  # its format error says more than "missing"
        add_errors(form, {FORM_FIELD.get(name, name): message})


def _add_missing(form) -> None:
    """Add what a submission still lacks, so one round lists every problem."""
    problems = rules.submission_problems(form.content())
    if not form.checklist_ticked:
        problems["checklist"] = services.CHECKLIST_PROBLEM
    _add_service_errors(form, problems)


def _add_refused(form, refused: list[str]) -> None:
    form.attachments.errors = [*form.attachments.errors, *refused]


def _kept_note(files_kept, *, new_draft: bool = False) -> str:
    names = ", ".join(a.filename for a in files_kept)
    one = len(files_kept) == 1
    where = (
        f"We saved a draft to keep your {'file' if one else 'files'}: "
        f"{'it is' if one else 'they are'} attached to it, and this form now saves to that draft."
        if new_draft
        else f"{'It is' if one else 'They are'} attached to your draft."
    )
    return (
        f"We kept {'the file' if one else 'the files'} you chose ({names}). {where} "
        "Your other changes are not saved yet: fix the problems below, then save or submit again."
    )


def _write(case_study: CaseStudy | None):
    """Handle the writing form, for a new case study or the working copy of one."""
    user = signed_in_user()
    revision = None
    if case_study is not None:
        revision = services.working(case_study) or services.published(case_study)
    form = _new_form()
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
    submit = action == "submit"
    valid = form.validate_on_submit()
    removing = {
        int(i) for i in request.form.getlist("remove_attachment") if re.fullmatch(r"[0-9]{1,18}", i)
    }
    if form.csrf_token.errors:  # nothing from an expired form is written
        return _form_page(form, case_study, revision, removing=removing)
    # Files ticked for removal go only with a save; a refused form keeps them (and the ticks).
    existing = list(revision.attachments) if revision is not None else []
    keeping = [a for a in existing if not (valid and a.id in removing)]
    accepted, refused = files.read_uploads(form.attachments.data or [], len(keeping))
    if not valid:
        return _refused_form(form, user, case_study, revision, submit, accepted, refused, removing)
    case_study_id = case_study.id if case_study is not None else None
    submitting = submit and not refused  # a refused file waits for the author's choice
    slot, held_back = None, None
    if submitting:
        try:
            slot = _submission_slot(user)
        except HeldBack as refusal:
            submitting, held_back = False, refusal
    went_through = False
    try:
        saved = services.save(
            user,
            case_study,
            form.content(),
            attachments=accepted,
            remove_attachment_ids=sorted(removing),
            submit=submitting,
            checklist=form.checklist_ticked,
        )
        went_through = submitting
    except services.SubmitRefused as refusal:
        if case_study is None:
            _remember_new(refusal.case_study)
        _add_service_errors(form, refusal.errors)
        notice = "Your draft has been saved. Fix the problems below to submit it."
        return _form_page(
            form, refusal.case_study, services.working(refusal.case_study), notice=notice
        )
    except FieldErrors as failure:  # e.g. too many attachments in the end
        _add_service_errors(form, failure.errors)
        return _form_page(form, case_study, revision, removing=removing)
    except services.DraftDeleted:
        return _deleted_page(form)
    except services.AlreadySubmitted as error:  # a second click, another window: sent once
        flash(str(error))
        return redirect(url_for(".show", case_study_id=case_study_id), code=303)
    except services.NotAllowed as error:
        flash(str(error))
        return redirect(_page_of(case_study, ".show"), code=303)
    except IntegrityError:
        # Two saves at once (a double click, two windows): the other one won.
        db.session.rollback()
        flash("This case study was changed in another window at the same time. Check it again.")
        return redirect(
            url_for(".edit", case_study_id=case_study_id) if case_study_id else url_for(".mine"),
            code=303,
        )
    finally:
        if slot is not None and not went_through:
            slot.give_back()  # only a submission that went through counts
    if case_study is None:
        _remember_new(saved)
    if held_back is not None:  # saved with what was typed, not submitted: say when to retry
        form.form_errors.append(str(held_back))
        page, status = _form_page(form, saved, services.working(saved), status=held_back.status)
        return page, status, {"Retry-After": str(held_back.retry_after)}
    if refused:
        _add_refused(form, refused)
        if submit:
            _add_missing(form)
        notice = (
            "Your draft has been saved, without the files named below. "
            + ("Fix the problems below to submit it." if submit else "")
        ).strip()
        return _form_page(form, saved, services.working(saved), notice=notice)
    if submit:
        flash(
            "Sent to the moderators. We are emailing you a receipt, "
            "and will email you their decision.",
            "success",
        )
        return redirect(url_for(".mine"), code=303)
    flash("Your draft has been saved.", "success")
    return redirect(url_for(".edit", case_study_id=saved.id), code=303)


def _refused_form(form, user, case_study, revision, submit, accepted, refused, removing):
    """Answer a form that breaks a rule: every problem at once, and the good files kept."""
    if submit:
        _add_missing(form)
    _add_refused(form, refused)
    notice = None
    if accepted:
        new_draft = case_study is None
        try:
            case_study = services.keep_files(user, case_study, accepted)
        except FieldErrors as failure:
            _add_service_errors(form, failure.errors)
        except services.DraftDeleted:
            return _deleted_page(form)
        except services.NotAllowed as error:
            form.form_errors.append(str(error))
        else:
            if new_draft:
                _remember_new(case_study)
            revision = services.working(case_study)
            notice = _kept_note(accepted, new_draft=new_draft)
    return _form_page(form, case_study, revision, notice=notice, removing=removing)


def _page_of(case_study: CaseStudy | None, endpoint: str) -> str:
    # A new case study that could not be saved has no page yet: the author's list instead.
    if case_study is None:
        return url_for(".mine")
    return url_for(endpoint, case_study_id=case_study.id)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Write a new case study.

    The form carries a one-time token: once a send of it made a draft (to keep files, or
    saved with problems left), sending it again (a refresh, a resend) writes to that draft.
    """
    if request.method == "POST":
        made = _made_by_this_form()
        if made is not None:
            return edit(made)
    return _write(None)


@bp.route("/<id:case_study_id>/edit", methods=["GET", "POST"])
def edit(case_study_id: int):
    """Edit the draft, or start a new version of a published case study."""
    user = signed_in_user()
    try:
        case_study = services.get_case_study(case_study_id)
    except services.NotFound:
        if request.method == "POST" and services.deleted_by(user, case_study_id):
            # A page open since its draft was deleted: keep what was typed, say why.
            return _deleted_page(_new_form())
        abort(404)
    _visible_revision(case_study)  # 404 for those who may not see it at all
    if not services.editable_by(user, case_study):
        if services.is_author(user, case_study) and services.revision_in(
            case_study, RevisionState.SUBMITTED
        ):
            if request.method == "POST" and request.form.get("action") == "submit":
                flash(str(services.AlreadySubmitted()))
                return redirect(url_for(".show", case_study_id=case_study.id), code=303)
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
    behind_the_scenes = services.may_see_unpublished(user, case_study)
    page = render_template(
        "casestudies/show.html",
        case_study=case_study,
        revision=revision,
        standing=services.standing(case_study) if behind_the_scenes else None,
        can_delete=services.deletable_by(user, case_study),
        library_link=library_link(),
        related=related_to(case_study) if revision.state == RevisionState.PUBLISHED else [],
        working=services.working(case_study) if behind_the_scenes else None,
        can_edit=user is not None and services.editable_by(user, case_study),
        is_author=services.is_author(user, case_study),
        can_archive=bool(user)
        and case_study.archived_at is None
        and revision.state == RevisionState.PUBLISHED
        and (services.is_author(user, case_study) or services.is_moderator(user)),
        can_see_history=behind_the_scenes,
        action_form=ActionForm(),
    )
    response = make_response(page)
    # The "Library" breadcrumb is built from the Referer: a shared cache must not hand one
    # reader's search back to another who came from elsewhere.
    response.vary.add("Referer")
    return response


#: What a library address may hold, as library/query_string.py reads it.
LIBRARY_ARGS = ("q", "force", "theme", "year", "partner", "sort", "page")


def library_link() -> str:
    """Return the library as this reader left it, when they came from its search on this site.

    Only the Referer of this host's library page counts, and only the library's own
    parameters are carried (bounded), into a URL built here: never a way to send a reader
    elsewhere.
    """
    library = url_for("library.index")
    came_from = urlsplit((request.referrer or "")[:4000])
    if came_from.netloc != request.host or came_from.path != library:
        return library
    try:
        found = parse_qs(came_from.query, max_num_fields=100)
    except ValueError:  # more fields than any library search has
        return library
    kept: dict[str, Any] = {
        name: [v[:200] for v in found[name][:20]] for name in LIBRARY_ARGS if found.get(name)
    }
    return url_for("library.index", **kept)


def related_to(case_study: CaseStudy, limit: int = 4) -> list[Revision]:
    """Return published case studies most like this one, best first."""
    from ..search import get_backend

    ids = get_backend().related(case_study.id, limit=limit)
    found = {
        r.case_study_id: r
        for r in db.session.scalars(
            select(Revision)
            .where(Revision.case_study_id.in_(ids), Revision.state == RevisionState.PUBLISHED)
            .options(joinedload(Revision.case_study).joinedload(CaseStudy.force))
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


@bp.route("/<id:case_study_id>/delete", methods=["GET", "POST"])
def delete(case_study_id: int):
    """Ask, then delete a draft that was never published (its author only; 404 for others)."""
    case_study = case_study_or_404(case_study_id)
    user = signed_in_user()
    if not services.is_author(user, case_study):
        abort(404)
    if not services.deletable_by(user, case_study):
        flash(
            "Only a draft that has never been published can be deleted. "
            "Withdraw it from moderation first if it is waiting for a decision."
        )
        return redirect(url_for(".show", case_study_id=case_study.id), code=303)
    form = ActionForm()
    if request.method == "GET":
        return render_template(
            "casestudies/delete.html",
            case_study=case_study,
            revision=services.latest(case_study),
            form=form,
        )
    if not form.validate_on_submit():
        abort(400)
    try:
        title = services.delete_draft(user, case_study)
    except services.NotFound:  # another request deleted it a moment ago
        flash("That draft has already been deleted.")
        return redirect(url_for(".mine"), code=303)
    except services.NotAllowed as error:
        flash(str(error))
        return redirect(url_for(".show", case_study_id=case_study_id), code=303)
    flash(f"Draft deleted: {title or 'Untitled draft'}", "success")
    return redirect(url_for(".mine"), code=303)


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
