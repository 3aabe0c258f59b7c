"""The dashboard (/reports) and the annual report (/reports/annual/<year>)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

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
from sqlalchemy import extract
from sqlalchemy.orm import selectinload

from ..core.live import live_revisions
from ..extensions import db, limiter
from ..forces.queries import contacts_of
from ..models import (
    AdoptionKind,
    CaseStudy,
    Evidence,
    Force,
    ModerationAction,
    Revision,
    utcnow,
)
from . import figures, pdf
from .charts import BarChart

bp = Blueprint("reports", __name__, url_prefix="/reports")

# A PDF takes seconds of CPU: a few a minute per person keeps workers free for others.
PDF_LIMIT = "3 per minute"
HIGHLIGHTS_PER_THEME = 3
# The coverage table names up to this many forces in a cell; more open from their number.
COVERAGE_NAMES_SHOWN = 3
# Highlights put what worked first, then what is promising.
EVIDENCE_ORDER = {
    Evidence.WORKED: 0,
    Evidence.PROMISING: 1,
    Evidence.UNTESTED: 2,
    Evidence.DID_NOT_WORK: 3,
    None: 4,
}


def _years() -> list[int]:
    """Return the years a report can cover: from the first publication to this year."""
    this_year = utcnow().year
    first = min(figures.published_years() or [this_year])
    return list(range(this_year, min(first, this_year) - 1, -1))


def _chosen_year(years: list[int]) -> int:
    """Return the year asked for in ?year=, or this year when it is missing or odd."""
    year = request.args.get("year", type=int)
    return year if year in years else utcnow().year


@bp.get("")
def dashboard():
    """Show the library's figures: practice by force, theme, year and evidence; moderation;
    coverage of themes by forces; adoptions."""
    years = _years()
    year = _chosen_year(years)
    by_force = figures.by_force()
    by_theme = figures.by_theme()
    by_year = figures.by_year()
    return render_template(
        "reports/dashboard.html",
        year=year,
        years=years,
        total=sum(n for _, n in by_year),
        published_in_year=figures.total_live(year),
        forces_in_year=len(figures.by_force(year)),
        force_chart=BarChart.of(
            "Published case studies by force", [(f.name, n) for f, n in by_force]
        ),
        force_links={f.name: url_for("forces.show", slug=f.slug) for f, _ in by_force},
        theme_chart=BarChart.of(
            "Published case studies by theme", [(t.name, n) for t, n in by_theme]
        ),
        theme_links={t.name: url_for("library.index", theme=t.slug) for t, _ in by_theme},
        year_chart=BarChart.of(
            "Published case studies by year first published", [(str(y), n) for y, n in by_year]
        ),
        evidence_chart=BarChart.of(
            "Published case studies by evidence of impact", figures.by_evidence()
        ),
        moderation=figures.moderation(year),
        actions=ModerationAction,
        coverage=figures.coverage(year),
        coverage_names_shown=COVERAGE_NAMES_SHOWN,
        adoptions=figures.adoptions(),
        adoptions_in_year=figures.adoptions(year).total,
    )


def _published_in(year: int) -> list[Revision]:
    """Return the live revisions of case studies first published in the year, by force."""
    return list(
        db.session.scalars(
            live_revisions()
            .join(CaseStudy.force)
            .where(extract("year", CaseStudy.first_published_at) == year)
            .options(selectinload(Revision.partners))
            .order_by(Force.name, CaseStudy.first_published_at, CaseStudy.id)
        )
    )


@bp.get("/annual/<int:year>")
def annual(year: int):
    """Show a print-ready draft of the year's HeForShe progress report."""
    return make_response(_annual_report(year))


@bp.get("/annual/<int:year>.pdf")
@limiter.limit(PDF_LIMIT, key_func=lambda: f"pdf:{current_user.id}")
def annual_pdf(year: int):
    """Download the year's draft report as a PDF, laid out by its print stylesheet."""
    if not pdf.available() or year not in _years():
        abort(404)
    if figures.total_live(year) > pdf.MAX_CASE_STUDIES:
        flash(
            f"The {year} report is too long for the server to make a PDF. "
            "Use Print and choose Save as PDF instead.",
            "info",
        )
        return redirect(url_for(".annual", year=year), code=303)
    html = _annual_report(year, for_pdf=True)
    response = make_response(
        pdf.render(html, request.host_url, Path(current_app.static_folder or "static"))
    )
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="heforshe-progress-report-{year}-draft.pdf"'
    )
    return response


def _annual_report(year: int, for_pdf: bool = False) -> str:
    """Render the year's report page (404 for a year the library can't report on)."""
    if year not in _years():
        abort(404)
    revisions = _published_in(year)
    # One count of adoptions for the headline, the sentence and every "taken up by".
    adoptions = figures.adoptions(year)
    adopted = adoptions.per_case_study
    by_force: dict[int, list[Revision]] = defaultdict(list)
    for revision in revisions:
        by_force[revision.case_study.force_id].append(revision)
    forces = [revisions_[0].case_study.force for revisions_ in by_force.values()]
    theme_counts = figures.by_theme(year)
    themes = []
    for theme, count in theme_counts:
        if not count:
            continue
        on_theme = [r for r in revisions if theme in r.themes]
        highlights = sorted(
            on_theme,
            key=lambda r: (
                EVIDENCE_ORDER[r.evidence],
                -adopted.get(r.case_study_id, 0),
                r.title.casefold(),
            ),
        )[:HIGHLIGHTS_PER_THEME]
        theme_forces = sorted({r.case_study.force.name for r in on_theme})
        themes.append((theme, count, theme_forces, highlights))
    moderation = figures.moderation(year)
    return render_template(
        "reports/annual.html",
        for_pdf=for_pdf,
        pdf_available=pdf.available() and len(revisions) <= pdf.MAX_CASE_STUDIES,
        year=year,
        generated=utcnow(),
        revisions=revisions,
        forces=[(force, by_force[force.id], contacts_of(force)) for force in forces],
        themes=themes,
        uncovered=[t for t, n in theme_counts if not n],
        moderation=moderation,
        adoptions=adoptions,
        adopted=adopted,
        kinds=AdoptionKind,
    )
