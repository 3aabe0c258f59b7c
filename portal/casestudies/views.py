"""Show case studies."""

from flask import Blueprint, abort, redirect, render_template, url_for

from .queries import published_revision

bp = Blueprint("casestudies", __name__, url_prefix="/case-studies")


@bp.get("/<id:case_study_id>")
@bp.get("/<id:case_study_id>/<slug>")
def show(case_study_id: int, slug: str | None = None):
    """Show the published revision of a case study at its canonical address."""
    revision = published_revision(case_study_id)
    if revision is None:
        abort(404)
    case_study = revision.case_study
    if slug != case_study.slug:
        return redirect(
            url_for(".show", case_study_id=case_study.id, slug=case_study.slug), code=301
        )
    return render_template("casestudies/show.html", revision=revision, case_study=case_study)
