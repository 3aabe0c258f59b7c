"""The annual report of a year: what it holds, and its page as HTML (for people and the PDF).

The page (/reports/annual/<year>) and the job that makes its PDF (services.py) read the
report through these functions, so the PDF is always the page as it would be printed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import render_template
from sqlalchemy import extract
from sqlalchemy.orm import selectinload

from ..core.live import live_revisions
from ..extensions import db
from ..forces.queries import contacts_of
from ..models import AdoptionKind, CaseStudy, Evidence, Force, Revision, utcnow
from . import figures

HIGHLIGHTS_PER_THEME = 3
# Highlights put what worked first, then what is promising.
EVIDENCE_ORDER = {
    Evidence.WORKED: 0,
    Evidence.PROMISING: 1,
    Evidence.UNTESTED: 2,
    Evidence.DID_NOT_WORK: 3,
    None: 4,
}


def years() -> list[int]:
    """Return the years a report can cover: from the first publication to this year."""
    this_year = utcnow().year
    first = min(figures.published_years() or [this_year])
    return list(range(this_year, min(first, this_year) - 1, -1))


def published_in(year: int) -> list[Revision]:
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


def contents(year: int) -> dict[str, Any]:
    """Return everything the report of `year` shows (the template's context, but the date)."""
    revisions = published_in(year)
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
    return {
        "year": year,
        "revisions": revisions,
        "forces": [(force, by_force[force.id], contacts_of(force)) for force in forces],
        "themes": themes,
        "uncovered": [t for t, n in theme_counts if not n],
        "moderation": figures.moderation(year),
        "adoptions": adoptions,
        "adopted": adopted,
        "kinds": AdoptionKind,
    }


def page(report: dict[str, Any], **extra: Any) -> str:
    """Return the report's page as HTML, made now (needs a request context for its links)."""
    return render_template("reports/annual.html", generated=utcnow(), **report, **extra)
