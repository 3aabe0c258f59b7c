"""The dashboard (/reports), the annual report (/reports/annual/<year>) and its PDF.

The PDF is made by a job (services.py): the report's page offers to make it, a page (and
its htmx fragment, at the same address) follows the job, and the file is downloaded once
made. Everyone signed in may see the report, so everyone signed in may do all three.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from ..extensions import limiter
from ..models import ReportFileState
from ..web import attempts
from ..web.attempts import AttemptLimit
from ..web.htmx import is_partial, vary_on_htmx
from . import annual, pdf, services
from . import dashboard as dashboard_figures
from .kept import kept

bp = Blueprint("reports", __name__, url_prefix="/reports")

#: Asking for a PDF costs a job only when nobody else's is on its way or made: only a
#: request that queued one keeps its slot (pressing again, or at the same time as others,
#: is free).
PDF_JOBS = AttemptLimit("report-pdf", 10, 3600)
#: A download reads megabytes from the database: plenty for people, a bound for a script.
PDF_DOWNLOADS = "10 per minute"
#: Years whose report each process keeps (a year of 2,000 case studies is a few MB).
REPORTS_KEPT = 3


@bp.get("")
def dashboard():
    """Show the library's figures: practice by force, theme, year and evidence; moderation;
    coverage of themes by forces; adoptions (for ?year=, or this year when missing or odd)."""
    year = request.args.get("year", type=int)
    return render_template("reports/dashboard.html", figures=dashboard_figures.figures_html(year))


def _report_year(year: int) -> int:
    """Return the year if the library has a report for it, else answer 404."""
    if year not in annual.years():
        abort(404)
    return year


@bp.get("/annual/<int:year>", endpoint="annual")
def annual_report(year: int):
    """Show a print-ready draft of the year's HeForShe progress report."""
    # Everything is read before the first byte: an error here is still an error page. What
    # the report holds, and the version of its data that names its PDF, are kept until the
    # library's data changes.
    report, version = kept(
        "annual",
        _report_year(year),
        lambda: (annual.contents(year), services.data_version(year)),
        limit=REPORTS_KEPT,
    )
    offer = services.offer(year, len(report["revisions"]), version) if pdf.available() else None
    return current_app.response_class(
        annual.page_stream(report, pdf_offer=offer), mimetype="text/html"
    )


@bp.post("/annual/<int:year>/pdf")
@attempts.counted(
    (PDF_JOBS, lambda: f"report-pdf:{current_user.id}"),
    counts=lambda _response: bool(g.get("report_pdf_queued")),
)
def ask_for_pdf(year: int):
    """Queue the PDF of the year's report (unless it is made or on its way), then follow it."""
    if not pdf.available():
        abort(404)
    try:
        asked = services.ask_for(_report_year(year))
    except services.TooLong as too_long:
        flash(services.reason(too_long, year), "info")
        return redirect(url_for(".annual", year=year), code=303)
    g.report_pdf_queued = asked.queued
    return redirect(url_for(".pdf_status", year=year, file_id=asked.file.id), code=303)


@bp.get("/annual/<int:year>/pdf/<id:file_id>")
def pdf_status(year: int, file_id: int):
    """Show how the PDF is coming along: the page, or for htmx's polling the fragment.

    The fragment's request says which state it shows (?seen=): when that is still the
    state, the answer is 204 and nothing is swapped (or read out again).
    """
    file = services.find(_report_year(year), file_id)
    if file is None:
        abort(404)
    status = services.status_of(file)
    if is_partial():
        if request.args.get("seen") == status.token:
            return vary_on_htmx(make_response("", 204))
        page = render_template("reports/_pdf_update.html", year=year, status=status)
    else:
        page = render_template("reports/pdf.html", year=year, status=status)
    return vary_on_htmx(make_response(page))


@bp.get("/annual/<int:year>/pdf/<id:file_id>.pdf")
@limiter.limit(PDF_DOWNLOADS, key_func=lambda: f"pdf:{current_user.id}")
def pdf_download(year: int, file_id: int):
    """Download a made PDF of the year's report."""
    file = services.find(_report_year(year), file_id)
    if file is None or file.state != ReportFileState.DONE or not file.pdf:
        abort(404)
    response = current_app.response_class(file.pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="heforshe-progress-report-{year}-draft.pdf"'
    )
    # It names people (the forces' contacts): kept by no cache, not even the browser's.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
