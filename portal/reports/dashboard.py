"""What the dashboard shows for a year, kept per version of the library's data.

The figures take a dozen GROUP BY scans of every live case study; the version of the data
(`data_version`) takes a few lookups answered from indexes and small tables. Each process
keeps the figures of the version it last saw, so a load finds them while nothing has
changed, and computes them again on the first load after any change. The version is read
from the database itself, not bumped by the code that writes: every process and both setups
agree on it, and no way of writing (a moderator's decision, an adoption, an archive, an
admin renaming a force, an import, a restored backup) can leave the figures stale.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flask import current_app, render_template, url_for
from markupsafe import Markup
from sqlalchemy import Row, case, func, select

from ..extensions import db
from ..models import (
    Adoption,
    CaseStudy,
    Force,
    ModerationAction,
    ModerationEvent,
    Revision,
    Theme,
    revision_theme,
    utcnow,
)
from . import annual, figures
from .charts import BarChart

#: Years kept at once per process (each about 150 KB of HTML at 10,000 case studies).
YEARS_KEPT = 16
#: The coverage table names up to this many forces in a cell; more open from their number.
COVERAGE_NAMES_SHOWN = 3


@dataclass(frozen=True)
class Named:
    """A force or theme as the dashboard shows it, free of any database session."""

    id: int
    name: str
    slug: str


def data_version() -> Any:
    """Return what changes whenever any figure of the dashboard could change.

    Each part is one lookup that an index or a small table answers without reading the
    case studies' text (about 5 ms at 10,000 case studies on SQLite): which revisions are in
    each state (a publication, a supersession, an archive), the case studies' forces and
    dates, every moderation event, every adoption (recorded, changed or removed), the
    themes of every revision, the names of forces and themes, and this year.
    """
    parts: list[Any] = [utcnow().year]
    parts.append(
        db.session.execute(
            select(
                Revision.state, func.count(), func.sum(Revision.id), func.max(Revision.published_at)
            )
            .group_by(Revision.state)
            .order_by(Revision.state)
        ).all()
    )
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.max(CaseStudy.id),
                func.sum(CaseStudy.force_id),
                func.count(CaseStudy.archived_at),
                func.sum(case((CaseStudy.archived_at.is_(None), 0), else_=CaseStudy.id)),
                func.max(CaseStudy.first_published_at),
                func.min(CaseStudy.first_published_at),
            )
        ).one()
    )
    # Moderation events are only ever added (or deleted with their case study).
    parts.append(db.session.scalar(select(func.max(ModerationEvent.id))))
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.max(Adoption.id),
                func.max(Adoption.updated_at),
                func.sum(Adoption.force_id),
                func.sum(Adoption.case_study_id),
            )
        ).one()
    )
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.sum(revision_theme.c.theme_id),
                func.sum(revision_theme.c.revision_id),
            )
        ).one()
    )
    parts.append(
        db.session.execute(select(Force.id, Force.name, Force.slug).order_by(Force.id)).all()
    )
    parts.append(
        db.session.execute(
            select(Theme.id, Theme.name, Theme.slug, Theme.position).order_by(Theme.id)
        ).all()
    )
    return _plain(parts)


def _plain(value: Any) -> Any:
    """Rows and lists as tuples of text: equal versions compare equal whatever the driver."""
    if isinstance(value, list | tuple | Row):
        return tuple(_plain(item) for item in value)
    return str(value)


class _Kept:
    """The figures of one version of the data, by year, for one app in one process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: Any = None
        self.years: dict[int, Markup] = {}


def _kept() -> _Kept:
    return current_app.extensions.setdefault("reports_dashboard", _Kept())


def figures_html(year: int | None = None) -> Markup:
    """Return the dashboard's figures as HTML for the year asked for (or this year).

    A year outside the report's years means this year, as the year form says. The HTML is
    made on the first load after the data changed and kept until it changes again.
    """
    version = data_version()
    kept = _kept()
    key = year or 0
    with kept.lock:
        if kept.version != version:
            kept.version, kept.years = version, {}
        found = kept.years.get(key)
    if found is not None:
        return found
    # Rendered by Jinja with autoescaping: safe HTML already.
    made = Markup(render_template("reports/_dashboard_figures.html", **compute(year)))  # noqa: S704
    with kept.lock:
        if kept.version == version:
            if len(kept.years) >= YEARS_KEPT:
                kept.years.clear()
            kept.years[key] = made
    return made


def compute(year: int | None = None) -> dict[str, Any]:
    """Work out every figure of the dashboard from the database (what `context` keeps)."""
    years = annual.years()
    if year not in years:
        year = utcnow().year
    by_force = [(_named(f), n) for f, n in figures.by_force()]
    by_theme = [(_named(t), n) for t, n in figures.by_theme()]
    by_year = figures.by_year()
    coverage = figures.coverage(year)
    return {
        "year": year,
        "years": years,
        "coverage_names_shown": COVERAGE_NAMES_SHOWN,
        "total": sum(n for _, n in by_year),
        "published_in_year": figures.total_live(year),
        "forces_in_year": len(figures.by_force(year)),
        "force_chart": BarChart.of(
            "Published case studies by force", [(f.name, n) for f, n in by_force]
        ),
        "force_links": {f.name: url_for("forces.show", slug=f.slug) for f, _ in by_force},
        "theme_chart": BarChart.of(
            "Published case studies by theme", [(t.name, n) for t, n in by_theme]
        ),
        "theme_links": {t.name: url_for("library.index", theme=t.slug) for t, _ in by_theme},
        "year_chart": BarChart.of(
            "Published case studies by year first published", [(str(y), n) for y, n in by_year]
        ),
        "evidence_chart": BarChart.of(
            "Published case studies by evidence of impact", figures.by_evidence()
        ),
        "moderation": figures.moderation(year),
        "actions": ModerationAction,
        "coverage": figures.Coverage(
            themes=[_named(t) for t in coverage.themes],
            forces=[_named(f) for f in coverage.forces],
            published=coverage.published,
        ),
        "adoptions": figures.adoptions(),
        "adoptions_in_year": figures.adoptions(year).total,
    }


def _named(row: Force | Theme) -> Named:
    return Named(row.id, row.name, row.slug)
