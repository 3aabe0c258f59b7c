"""What the dashboard shows for a year: worked out, rendered, and kept (kept.py) until the
library's data changes."""

from __future__ import annotations

from typing import Any

from flask import render_template, url_for
from markupsafe import Markup

from ..models import Force, ModerationAction, Theme, utcnow
from . import annual, figures
from .annual import Named
from .charts import BarChart
from .kept import kept

#: Years kept at once per process (each about 150 KB of HTML at 10,000 case studies).
YEARS_KEPT = 16
#: The coverage table names up to this many forces in a cell; more open from their number.
COVERAGE_NAMES_SHOWN = 3


def figures_html(year: int | None = None) -> Markup:
    """Return the dashboard's figures as HTML for the year asked for (or this year).

    A year outside the report's years means this year, as the year form says. The HTML is
    made on the first load after the data changed and kept until it changes again.
    """
    # Rendered by Jinja with autoescaping: safe HTML already.
    return kept(
        "dashboard",
        year or 0,
        lambda: Markup(render_template("reports/_dashboard_figures.html", **compute(year))),  # noqa: S704
        limit=YEARS_KEPT,
    )


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
