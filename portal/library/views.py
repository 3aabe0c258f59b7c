"""The home page and the library: full-text search with facets, as a page or a fragment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, make_response, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import load_only, selectinload

from ..casestudies.queries import latest_published
from ..extensions import db
from ..insights import services as insights
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
class Option:
    value: str
    label: str
    count: int  # of these results
    chosen: bool
    id: str  # the checkbox's id: the same for the same value on every render (focus stays)


@dataclass(frozen=True)
class Facet:
    name: str  # the query parameter
    label: str
    options: list[Option]  # those with results among these, and those ticked

    @property
    def chosen(self) -> list[Option]:
        return [o for o in self.options if o.chosen]


def _option_id(facet: str, value: str) -> str:
    safe = value if value.replace("-", "").isalnum() and value.isascii() else ""
    return f"{facet}-{safe or hashlib.sha256(value.encode()).hexdigest()[:12]}"


def _facets(query: SearchQuery, counts: dict[str, dict[str, int]]) -> list[Facet]:
    """The filter options with their counts among these results, from one search."""
    forces = dict(db.session.execute(select(Force.slug, Force.name)).all())
    themes = db.session.scalars(select(Theme).order_by(Theme.position)).all()

    def options(name: str, names: dict, chosen: set[str], order=None, limit=None):
        values = counts.get(name, {})
        labels = {k: str(v or k) for k, v in names.items()}
        # An option no result has is left out, unless it is ticked (then it can be unticked).
        keys = {k for k, n in values.items() if n} | chosen
        ordered = (
            order(keys)
            if order
            else sorted(keys, key=lambda k: (-values.get(k, 0), str(labels.get(k, k)).casefold()))
        )
        if limit is not None:
            ordered = ordered[:limit] + [k for k in ordered[limit:] if k in chosen]
        return [
            Option(k, labels.get(k, k), values.get(k, 0), k in chosen, _option_id(name, k))
            for k in ordered
        ]

    return [
        Facet(
            "theme",
            "Theme",
            options(
                "theme",
                {t.slug: t.name for t in themes},
                set(query.theme),
                lambda keys: (
                    [t.slug for t in themes if t.slug in keys]
                    + sorted(keys - {t.slug for t in themes})
                ),
            ),
        ),
        Facet("force", "Force", options("force", forces, set(query.force))),
        Facet(
            "year",
            "Year",
            options(
                "year", {}, {str(y) for y in query.year}, lambda keys: sorted(keys, reverse=True)
            ),
        ),
        Facet("partner", "Partner", options("partner", {}, set(query.partner), limit=15)),
    ]


TYPING = "Portal-Typing"  # sent by the library's script while the person is still typing
NEW_SEARCH = "Portal-New-Search"  # sent by it when a finished search has new words


@bp.get("/library")
def index():
    """Search and browse published case studies; htmx gets the library's panel alone."""
    query = search_query_from_request()
    if is_partial() and request.headers.get(TYPING) == "1":
        query = replace(query, partial=True)
    backend = get_backend()
    results = backend.query(query)
    completed = False
    if query.text and not query.partial and not results.total:
        # Nothing holds the words as typed: the last one may be a beginning (misog).
        begun = backend.query(replace(query, partial=True))
        if begun.total:
            results, completed = begun, True
    token = _record(query, results.total)
    pages = max(1, -(-results.total // PER_PAGE))
    if query.page > pages:  # past the end shows the last page
        query = replace(query, page=pages)
        results = backend.query(replace(query, partial=query.partial or completed))
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
    facets = _facets(query, results.facets)
    context = {
        "query": query,
        "results": results,
        "completed": completed,
        "items": items,
        "pages": pages,
        "facets": facets,
        "applied": sum(len(f.chosen) for f in facets),
        "search_token": token,
        "is_fragment": is_partial(),
        "args": lambda **change: query_args(query, **change),
        "suggestion_url": url_for(".index", **query_args(query, q=results.suggestion))
        if results.suggestion
        else None,
    }
    template = "library/_panel.html" if is_partial() else "library/index.html"
    response = make_response(render_template(template, **context))
    response.vary.add(TYPING)
    if query.partial:  # library.js keeps one history entry while a search is typed
        response.headers[TYPING] = "1"
    return vary_on_htmx(response)


def _record(query: SearchQuery, total: int) -> str | None:
    """Count a finished search with new words for the admins' search insights (its words and
    how many it found, nothing about the person); return the token its result links carry."""
    if not query.text or query.partial or query.page != 1:
        return None
    if is_partial():
        new = request.headers.get(NEW_SEARCH) == "1"
    elif request.headers.get("HX-History-Restore-Request") == "true":
        new = False
    else:  # a full page: new unless it came from a page of the same search (a filter, Back)
        before = urlsplit(request.referrer or "")
        same_page = before.path == request.path and before.netloc == request.host
        previous = parse_qs(before.query).get("q", [""])[0] if same_page else None
        new = previous is None or previous.strip().casefold() != query.text.casefold()
    return insights.record(query.text, total) if new else None
