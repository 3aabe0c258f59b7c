"""The search insights page (admins): the most frequent searches, those that found nothing,
those after which nobody opened a result; and a synonym added beside a search that failed."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..admin import services as admin_services
from ..auth.permissions import require_role
from ..core.text import clean_query
from ..models import Role
from ..web.forms import carry_out
from . import services
from .forms import SearchSynonymForm

bp = Blueprint("insights", __name__, url_prefix="/admin/search-insights")
bp.before_request(require_role(Role.ADMIN))


@dataclass
class ShownField:
    """What the form macros read of a field, with an id of its own for each row."""

    id: str
    name: str
    data: str
    errors: list[str] = field(default_factory=list)


@dataclass
class SynonymChoice:
    """A search that found nothing, with the form that adds a synonym for it."""

    row: services.Row
    key: str  # the prefix of its elements' ids
    term: ShownField
    expansion: ShownField
    words: list[str]  # the words of the search that could be the short form
    stands_for: str | None = None  # the search is one word that is already a synonym
    open: bool = False


def _period() -> int:
    return services.period(request.args.get("days", type=int))


def _choice(row: services.Row, key: str, known: dict[str, str]) -> SynonymChoice:
    words = services.term_choices(row.query)
    fresh = [w for w in words if w not in known]
    return SynonymChoice(
        row=row,
        key=key,
        term=ShownField(f"{key}-term", "term", (fresh or words or [""])[0]),
        expansion=ShownField(f"{key}-expansion", "expansion", ""),
        words=words,
        stands_for=known.get(row.query),
    )


def _refill(choice: SynonymChoice, form: SearchSynonymForm) -> list[tuple[str | None, str]]:
    """Put what was typed and the refusals back in `choice`; return the summary's entries."""
    choice.term.data, choice.term.errors = form.term.data or "", list(form.term.errors)
    choice.expansion.data = form.expansion.data or ""
    choice.expansion.errors = list(form.expansion.errors)
    choice.stands_for, choice.open = None, True
    summary: list[tuple[str | None, str]] = [(None, m) for m in form.form_errors]
    summary += [(f"#{choice.term.id}", m) for m in choice.term.errors]
    summary += [(f"#{choice.expansion.id}", m) for m in choice.expansion.errors]
    if form.csrf_token.errors:
        summary.append((None, "Your form expired. Try again."))
    return summary


def _page(days: int, failed: SearchSynonymForm | None = None):
    if failed is None:  # a refused form changes nothing, expired rows included
        services.delete_expired()
    found = services.insights(days)
    rows = found.without_results_top
    known = services.existing_synonyms(
        {w for row in rows for w in services.term_choices(row.query)}
    )
    choices = [_choice(row, f"synonym-{n}", known) for n, row in enumerate(rows, start=1)]
    summary: list[tuple[str | None, str]] = []
    alone = None  # the failed form of a search no longer listed
    if failed is not None:
        search = clean_query(failed.search.data or "")
        target = next((c for c in choices if c.row.query == search), None)
        if target is None:
            alone = target = _choice(services.Row(search, 0, 0), "synonym-new", {})
        summary = _refill(target, failed)
    page = render_template(
        "insights/index.html",
        insights=found,
        periods=services.PERIODS,
        kept_days=services.retention_days(),
        choices=choices,
        alone=alone,
        summary=summary,
    )
    return page, 400 if failed is not None else 200


@bp.get("")
def index():
    """Show the searches of the chosen period (7, 30 or 90 days)."""
    return _page(_period())


@bp.post("/synonyms")
def add_synonym():
    """Add a synonym from a search that found nothing; back to the page, or its refusals."""
    form = SearchSynonymForm()
    step = carry_out(
        form,
        lambda: admin_services.add_synonym(
            current_user,
            form.term.data or "",
            form.expansion.data or "",
            source="Search insights: a search that found nothing",
        ),
    )
    if step.done:
        flash(f"Added {step.value.term}. Searches use it now.", "success")
        return redirect(url_for(".index", days=_period()), code=303)
    return _page(_period(), failed=form)
