"""Show the home page and the library of published case studies."""

from flask import Blueprint, make_response, render_template, request

from ..casestudies.queries import browse_published, latest_published
from ..web.htmx import is_partial, vary_on_htmx
from ..web.text import clean_query

bp = Blueprint("library", __name__)


@bp.get("/")
def home():
    """Show what the library is, a search box and the latest case studies."""
    return render_template("library/home.html", latest=latest_published(limit=6))


@bp.get("/library")
def index():
    """List published case studies, filtered by the words in `q`."""
    text = clean_query(request.args.get("q", "", type=str))
    results = browse_published(text, page=request.args.get("page", 1, type=int))
    template = "library/_results.html" if is_partial() else "library/index.html"
    return vary_on_htmx(make_response(render_template(template, q=text, results=results)))
