"""The home page and the library: full-text search with facets, as a page or a fragment."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, make_response, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload, load_only, selectinload

from ..casestudies.queries import latest_published
from ..core.text import clean_query
from ..extensions import db
from ..insights import services as insights
from ..models import CaseStudy, Force, Revision, RevisionState, Theme
from ..search import SearchQuery, SearchResults, get_backend
from ..search.analysis import sure
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
    count: int  # of these results; or, with `adds`, how many more ticking it would show
    chosen: bool
    id: str  # the checkbox's id: the same for the same value on every render (focus stays)
    adds: bool = False  # a second force or year widens the results: its count is the gain


SHOWN_OPTIONS = 10  # a facet's first options; the rest wait behind "more" (ticked ones never)


@dataclass(frozen=True)
class Facet:
    name: str  # the query parameter
    label: str
    options: list[Option]  # those with results among these, and those ticked

    @property
    def chosen(self) -> list[Option]:
        return [o for o in self.options if o.chosen]

    @property
    def shown(self) -> list[Option]:
        return [o for n, o in enumerate(self.options) if n < SHOWN_OPTIONS or o.chosen]

    @property
    def more(self) -> list[Option]:
        return [o for n, o in enumerate(self.options) if n >= SHOWN_OPTIONS and not o.chosen]


def _option_id(facet: str, value: str) -> str:
    safe = value if value.replace("-", "").isalnum() and value.isascii() else ""
    return f"{facet}-{safe or hashlib.sha256(value.encode()).hexdigest()[:12]}"


def _facets(
    query: SearchQuery, counts: dict[str, dict[str, int]], widen: dict[str, dict[str, int]]
) -> list[Facet]:
    """The filter options with their counts among these results, from one search.

    Themes and partners ticked together narrow the results (each must be held), so an
    option's count is what ticking it shows. A case study has one force and one year, so a
    second force or year ticked widens them: `widen` holds those counts without that
    filter, and an unticked option shows what it would add.
    """
    forces = dict(db.session.execute(select(Force.slug, Force.name)).all())
    themes = db.session.scalars(select(Theme).order_by(Theme.position)).all()

    def options(name: str, names: dict, chosen: set[str], order=None):
        values = counts.get(name, {})
        labels = {k: str(v or k) for k, v in names.items()}
        if name in widen:  # this facet has a tick: the others would add their own results
            values = {k: (values.get(k, 0) if k in chosen else n) for k, n in widen[name].items()}
        # An option no result has is left out, unless it is ticked (then it can be unticked).
        keys = {k for k, n in values.items() if n} | chosen
        ordered = (
            order(keys)
            if order
            else sorted(keys, key=lambda k: (-values.get(k, 0), str(labels.get(k, k)).casefold()))
        )
        return [
            Option(
                k,
                labels.get(k, k),
                values.get(k, 0),
                k in chosen,
                _option_id(name, k),
                adds=name in widen and k not in chosen,
            )
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
        Facet("partner", "Partner", options("partner", {}, set(query.partner))),
    ]


def _widened(query: SearchQuery, backend) -> dict[str, dict[str, int]]:
    """For a ticked force or year: the counts without that filter (what another would add)."""
    found = {}
    for name in ("force", "year"):
        if getattr(query, name):  # one of each per case study: another adds all of its own
            without = replace(query, page=1, per_page=0)
            without = replace(without, force=()) if name == "force" else replace(without, year=())
            found[name] = backend.query(without).facets.get(name, {})
    return found


WORDY = re.compile(r"[^\W_]{2}")  # a search worth counting has a word of two letters
TYPING = "Portal-Typing"  # sent by the library's script while the person is still typing
NEW_SEARCH = "Portal-New-Search"  # sent by it for new words finished by Enter or a filter
PAUSED = "Portal-Paused"  # sent by it for new words finished by a pause
AS_TYPED = "as_typed"  # ?q=words&as_typed=words: search for exactly those words
SPELLING_FINDS_LITTLE = 3  # a search finding fewer (all its words) may be spelled otherwise
SPELLING_FINDS_MORE = 3  # when the other spelling finds at least this many times as many


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
    # "Search instead for" the words as typed: kept while those are the words searched.
    as_typed = bool(query.text) and clean_query(request.args.get(AS_TYPED, "")) == query.text
    typed = None  # the words as typed, when the page shows a close spelling's results
    spelled = None if as_typed or completed else _spelled(query, results, backend)
    # The words typed are counted, with what the page shows for them.
    token = _record(
        query,
        spelled[1].total if spelled else results.total,
        backend,
        replace(query, text=spelled[0]) if spelled else query,
    )
    if spelled is not None:
        typed, query, results = query.text, replace(query, text=spelled[0]), spelled[1]
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
                joinedload(Revision.case_study).joinedload(CaseStudy.force),
            )
        )
    }
    items = [
        (revisions[h.case_study_id], h.snippet)
        for h in results.hits
        if h.case_study_id in revisions
    ]
    shown = replace(query, partial=query.partial or completed)
    facets = _facets(query, results.facets, _widened(shown, backend))
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
        "args": lambda **change: (
            query_args(query, **({AS_TYPED: query.text} | change))
            if as_typed
            else query_args(query, **change)
        ),
        "as_typed": as_typed,
        "suggestion_url": url_for(".index", **query_args(query, q=results.suggestion))
        if results.suggestion and not typed
        else None,
        "typed": typed,
        "typed_url": url_for(".index", **query_args(query, q=typed, as_typed=typed, page=None))
        if typed
        else None,
    }
    template = "library/_panel.html" if is_partial() else "library/index.html"
    response = make_response(render_template(template, **context))
    response.vary.add(TYPING)
    if query.partial:  # library.js keeps one history entry while a search is typed
        response.headers[TYPING] = "1"
    return vary_on_htmx(response)


def _spelled(
    query: SearchQuery, results: SearchResults, backend
) -> tuple[str, SearchResults] | None:
    """A close spelling of a finished search that finds little or nothing, and its results,
    when it finds much more (at least three times as many, holding every word): the words
    come from the published case studies' vocabulary and the glossary (the backend's "Did
    you mean")."""
    if not query.text or query.partial or not results.suggestion:
        return None
    found = 0 if results.relaxed else results.total  # most of the words: not a find
    if found >= SPELLING_FINDS_LITTLE:
        return None
    # Much more: three times as many. Against case studies holding most of the words typed,
    # at least three holding every word of the other spelling (else the page keeps those,
    # and offers the spelling as "Did you mean").
    needed = SPELLING_FINDS_LITTLE if results.relaxed else max(1, SPELLING_FINDS_MORE * found)
    if not sure(query.text, results.suggestion, one_edit=results.relaxed):
        return None  # offered ("Did you mean"), not applied
    spelled = backend.query(replace(query, text=results.suggestion))
    if spelled.relaxed or spelled.total < needed:
        return None
    return results.suggestion, spelled


def _record(query: SearchQuery, total: int, backend, searched: SearchQuery) -> str | None:
    """Count a finished search with new words for the admins' search insights (its words and
    how many case studies they find, nothing about the person); return the token its result
    links carry."""
    if not query.text or query.partial or query.page != 1 or not WORDY.search(query.text):
        return None
    filtered = bool(query.force or query.theme or query.year or query.partner)
    if is_partial():
        new = request.headers.get(NEW_SEARCH) == "1"
        if not new and request.headers.get(PAUSED) == "1":  # kept only if a result is opened
            return insights.pending(query.text, _words_find(searched, total, backend))
    elif request.headers.get("HX-History-Restore-Request") == "true" or filtered:
        new = False  # Back, or a filter applied without the script (a shared filtered link)
    else:  # a full page: new unless it came from a page of the same search (Back, reload)
        before = urlsplit(request.referrer or "")
        same_page = before.path == request.path and before.netloc == request.host
        previous = parse_qs(before.query).get("q", [""])[0] if same_page else None
        new = previous is None or previous.strip().casefold() != query.text.casefold()
    if not new:
        return None
    return insights.record(query.text, _words_find(searched, total, backend))


def _words_find(query: SearchQuery, total: int, backend) -> int:
    """What the words find, not what the filters leave of them."""
    if not (query.force or query.theme or query.year or query.partner):
        return total
    return backend.query(replace(query, force=(), theme=(), year=(), partner=(), per_page=0)).total
