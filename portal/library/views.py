"""The home page and the library: full-text search with facets, as a page or a fragment."""

from __future__ import annotations

from dataclasses import dataclass, replace

from flask import Blueprint, make_response, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import load_only, selectinload

from ..casestudies.queries import latest_published
from ..extensions import db
from ..models import CaseStudy, Force, Revision, RevisionState, Theme
from ..search import SearchQuery, get_backend
from ..web.htmx import is_partial, vary_on_htmx
from .query_string import PER_PAGE, query_args, search_query_from_request

bp = Blueprint("library", __name__)


@bp.get("/")
def home():
    """Show what the library is, a search box and the latest case studies."""
    return render_template("library/home.html", latest=latest_published(limit=6))


@dataclass(frozen=True)
class Facet:
    name: str  # the query parameter
    label: str
    options: list[tuple[str, str, int, bool]]  # value, label, count, chosen


def _facets(query: SearchQuery, counts: dict[str, dict[str, int]]) -> list[Facet]:
    forces = dict(db.session.execute(select(Force.slug, Force.name)).all())
    themes = db.session.scalars(select(Theme).order_by(Theme.position)).all()

    def options(values: dict[str, int], labels: dict[str, str], chosen, order=None):
        keys = set(values) | set(chosen)
        ordered = (
            order(keys)
            if order
            else sorted(keys, key=lambda k: (-values.get(k, 0), labels.get(k, k)))
        )
        return [(k, labels.get(k, k), values.get(k, 0), k in chosen) for k in ordered]

    return [
        Facet(
            "theme",
            "Theme",
            options(
                counts.get("theme", {}),
                {t.slug: t.name for t in themes},
                set(query.theme),
                lambda keys: [t.slug for t in themes if t.slug in keys],
            ),
        ),
        Facet("force", "Force", options(counts.get("force", {}), forces, set(query.force))),
        Facet(
            "year",
            "Year",
            options(
                counts.get("year", {}),
                {},
                {str(y) for y in query.year},
                lambda keys: sorted(keys, reverse=True),
            ),
        ),
        Facet(
            "partner", "Partner", options(counts.get("partner", {}), {}, set(query.partner))[:15]
        ),
    ]


@bp.get("/library")
def index():
    """Search and browse published case studies; htmx gets the results region alone."""
    query = search_query_from_request()
    results = get_backend().query(query)
    last_page = max(1, -(-results.total // PER_PAGE))
    if query.page > last_page:  # past the end shows the last page
        query = replace(query, page=last_page)
        results = get_backend().query(query)
    ids = [hit.case_study_id for hit in results.hits]
    revisions = {
        r.case_study_id: r
        for r in db.session.scalars(
            select(Revision)
            .where(Revision.case_study_id.in_(ids), Revision.state == RevisionState.PUBLISHED)
            .options(
                load_only(
                    Revision.id,
                    Revision.case_study_id,
                    Revision.title,
                    Revision.summary,
                    Revision.event_date,
                ),
                selectinload(Revision.themes),
                selectinload(Revision.case_study).selectinload(CaseStudy.force),
            )
        )
    }
    items = [
        (revisions[h.case_study_id], h.snippet)
        for h in results.hits
        if h.case_study_id in revisions
    ]
    pages = max(1, -(-results.total // PER_PAGE))
    context = {
        "query": query,
        "results": results,
        "items": items,
        "pages": pages,
        "facets": _facets(query, results.facets),
        "args": lambda **change: query_args(query, **change),
        "suggestion_url": url_for(".index", **query_args(query, q=results.suggestion))
        if results.suggestion
        else None,
    }
    template = "library/_results.html" if is_partial() else "library/index.html"
    return vary_on_htmx(make_response(render_template(template, **context)))
