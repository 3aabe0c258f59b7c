"""Reaching out from a case study: contact its author, record that a force adopted it."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user

from ..casestudies import services as casestudies
from ..casestudies.forms import ActionForm
from ..core.errors import FieldErrors
from ..extensions import db, limiter
from ..models import Adoption, AdoptionKind, CaseStudy, Revision
from ..web import attempts
from ..web.attempts import AttemptLimit
from ..web.forms import add_errors, render_form
from ..web.htmx import is_partial, vary_on_htmx
from ..web.people import signed_in_user, visitor
from . import services as outreach
from .forms import AdoptionForm, ContactForm

bp = Blueprint("outreach", __name__, url_prefix="/case-studies")

#: Enough for a real conversation with several authors; too few to spam them from the portal.
#: Each message holds a slot while it is checked and sent; one that is not sent gives it back.
CONTACT_PER_HOUR = AttemptLimit("contact-hour", 5, 3600)
CONTACT_PER_DAY = AttemptLimit("contact-day", 20, 24 * 3600)
# Every attempt counts here, sent or not: refused forms cost little, but not nothing.
CONTACT_ATTEMPT_LIMIT = "10 per hour"


def _user_key() -> str:
    return f"contact:{current_user.id}"


def _attempt_key() -> str:
    return f"contact-attempt:{current_user.id}"


def _sent(response) -> bool:
    # Only messages that went out count: a typo in the form costs nothing.
    return response.status_code == 303


# Contact the author


def _contact_revision_or_404(case_study: CaseStudy) -> Revision:
    try:
        return outreach.contact_revision(case_study)
    except casestudies.NotFound:
        abort(404)


@bp.route("/<id:case_study_id>/contact", methods=["GET", "POST"])
@limiter.limit(CONTACT_ATTEMPT_LIMIT, key_func=_attempt_key, methods=["POST"])
@attempts.counted((CONTACT_PER_HOUR, _user_key), (CONTACT_PER_DAY, _user_key), counts=_sent)
def contact(case_study_id: int):
    """Write to a case study's contact without seeing their address."""
    case_study = db.get_or_404(CaseStudy, case_study_id)
    revision = _contact_revision_or_404(case_study)
    form = ContactForm()
    if form.validate_on_submit():
        try:
            outreach.contact_author(signed_in_user(), case_study, form.message.data)
        except FieldErrors as failure:
            add_errors(form, failure.errors)
        else:
            return redirect(url_for(".contact_sent", case_study_id=case_study.id), code=303)
    return render_form(
        "casestudies/contact.html",
        form,
        case_study=case_study,
        revision=revision,
        message_max=outreach.MESSAGE_MAX,
        message_min=outreach.MESSAGE_MIN,
    )


@bp.get("/<id:case_study_id>/contact/sent")
def contact_sent(case_study_id: int):
    """Confirm that the message went, and where the reply will come."""
    case_study = db.get_or_404(CaseStudy, case_study_id)
    revision = _contact_revision_or_404(case_study)
    return render_template(
        "casestudies/contact_sent.html", case_study=case_study, revision=revision
    )


@bp.errorhandler(429)
def too_many_messages(_error):
    """Explain the limit in words, as a page or an htmx fragment."""
    template = "errors/_error.html" if is_partial() else "errors/error.html"
    body = render_template(
        template,
        code=429,
        title="You have sent a lot of messages",
        message="To protect authors from unwanted mail, you can send 5 messages an hour "
        "and 20 a day. Try again later.",
    )
    return vary_on_htmx(make_response(body, 429))


# Adopted elsewhere


@dataclass
class Outreach:
    """What the case study page offers this reader: a way to write, and the adoptions."""

    case_study: CaseStudy
    contact_url: str | None = None
    sign_in_url: str | None = None
    adoptions: list[Adoption] = field(default_factory=list)
    can_record: bool = False
    own: Adoption | None = None
    removable: set[int] = field(default_factory=set)
    form: AdoptionForm | None = None
    action_form: ActionForm | None = None
    announcement: str = ""
    focus_heading: bool = False


def outreach_of(case_study: CaseStudy, revision: Revision, form: AdoptionForm | None = None):
    """Gather what the case study page shows of contacting and adoptions, for this user."""
    user = visitor()
    found = Outreach(case_study=case_study)
    if revision.state.value != "published" or case_study.archived_at is not None:
        return found
    if revision.contact_email:
        contact_url = url_for("outreach.contact", case_study_id=case_study.id)
        if user is None:
            found.sign_in_url = url_for("auth.login", next=contact_url)
        else:
            found.contact_url = contact_url
    found.adoptions = outreach.adoptions_of(case_study)
    found.removable = {a.id for a in found.adoptions if outreach.may_remove_adoption(user, a)}
    found.can_record = outreach.may_record_adoption(user, case_study)
    found.action_form = ActionForm()
    if found.can_record:
        found.own = outreach.own_adoption(user, case_study)
        if form is None:
            own = found.own
            form = AdoptionForm(
                data={"kind": own.kind.value, "note": own.note} if own else None,
                formdata=None,
            )
        found.form = form
    return found


@bp.app_context_processor
def _page_helpers():
    return {"outreach_of": outreach_of}


def _published_or_404(case_study_id: int) -> tuple[CaseStudy, Revision]:
    case_study = db.get_or_404(CaseStudy, case_study_id)
    revision = casestudies.published(case_study)
    if revision is None or case_study.archived_at is not None:
        abort(404)
    return case_study, revision


def _adoptions_answer(
    case_study, revision, *, form=None, done="", status=200, error="", removed=False
):
    """Answer an adoption change: the section alone for htmx, else the page or a redirect."""
    section = outreach_of(case_study, revision, form)
    if is_partial():
        section.announcement = done or error  # read out: the swap itself is silent
        section.focus_heading = removed
        page = render_template("casestudies/_adoptions.html", outreach=section, error=error)
        return vary_on_htmx(make_response(page, status))
    if status == 200:
        flash(done, "success")
        return redirect(
            url_for("casestudies.show", case_study_id=case_study.id, _anchor="adoptions"), code=303
        )
    page = render_template(
        "casestudies/adoption.html", outreach=section, revision=revision, error=error
    )
    return make_response(page, status)


@bp.get("/<id:case_study_id>/adoption")
def adoption(case_study_id: int):
    """Show the adoptions of a case study with the form, on a page of their own."""
    case_study, revision = _published_or_404(case_study_id)
    return render_template(
        "casestudies/adoption.html", outreach=outreach_of(case_study, revision), revision=revision
    )


@bp.post("/<id:case_study_id>/adoption")
def record_adoption(case_study_id: int):
    """Record, or update, that the signed-in user's force adopted or adapted the case study."""
    case_study, revision = _published_or_404(case_study_id)
    form = AdoptionForm()
    valid = form.validate_on_submit()
    if form.csrf_token.errors:
        abort(400)
    if valid:
        try:
            created = outreach.record_adoption(
                signed_in_user(), case_study, AdoptionKind(form.kind.data), form.note.data or ""
            )
        except casestudies.NotAllowed as refusal:
            return _adoptions_answer(case_study, revision, status=403, error=str(refusal))
        except FieldErrors as failure:
            add_errors(form, failure.errors)
        else:
            verb = "Recorded" if created else "Updated"
            force = signed_in_user().force.name
            done = f"{verb}: {force} has {form.kind.data} this case study."
            return _adoptions_answer(case_study, revision, done=done)
    return _adoptions_answer(
        case_study, revision, form=form, status=400, error="There is a problem with your record."
    )


@bp.post("/<id:case_study_id>/adoptions/<id:adoption_id>/remove")
def remove_adoption(case_study_id: int, adoption_id: int):
    """Take a force's adoption off the case study."""
    case_study, revision = _published_or_404(case_study_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        removed = outreach.remove_adoption(signed_in_user(), case_study, adoption_id)
    except casestudies.NotFound:
        abort(404)
    except casestudies.NotAllowed:
        abort(403)
    done = f"{removed.force.name} is no longer listed."
    return _adoptions_answer(case_study, revision, done=done, removed=True)
