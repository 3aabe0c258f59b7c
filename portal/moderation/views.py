"""The moderation queue: submitted case studies, oldest first."""

from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..auth.permissions import require_role
from ..extensions import db
from ..models import CaseStudy, Revision, RevisionState, Role

bp = Blueprint("moderation", __name__, url_prefix="/moderation")
bp.before_request(require_role(Role.MODERATOR, Role.ADMIN))


@bp.get("")
def queue():
    """List the revisions waiting for a decision, oldest first."""
    waiting = db.session.scalars(
        select(Revision)
        .where(Revision.state == RevisionState.SUBMITTED)
        .options(selectinload(Revision.case_study).selectinload(CaseStudy.force))
        .order_by(Revision.submitted_at, Revision.id)
    ).all()
    return render_template("moderation/queue.html", waiting=waiting)
