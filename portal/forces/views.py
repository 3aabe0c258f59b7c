"""The force directory (/forces) and a page per force (/forces/<slug>)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user

from ..models import Force
from ..reports import figures
from ..reports.charts import BarChart
from . import queries

bp = Blueprint("forces", __name__, url_prefix="/forces")

GROUPS = ("England", "Wales", "Scotland", "Northern Ireland", "National")
NEWEST_SHOWN = 20


def _group(force: Force) -> str:
    return force.nation if force.nation in GROUPS else "National"


@bp.get("")
def index():
    """List every force by nation, with how much each has published and when it last did."""
    rows = queries.forces_with_counts()
    groups: dict[str, list] = {name: [] for name in GROUPS}
    for row in rows:
        groups[_group(row[0])].append(row)
    return render_template(
        "forces/index.html",
        groups=[(name, found) for name, found in groups.items() if found],
        publishing=sum(1 for _, n, _ in rows if n),
        total=len(rows),
    )


@bp.get("/<slug>")
def show(slug: str):
    """Show one force: its practice, themes, counts by year, contacts and adoptions."""
    force = queries.force_with_slug(slug)
    if force is None:
        abort(404)
    years = figures.by_year(force_id=force.id)
    return render_template(
        "forces/show.html",
        force=force,
        newest=queries.newest_of(force, NEWEST_SHOWN),
        total=sum(n for _, n in years),
        years_chart=BarChart.of(
            f"{force.name}: case studies by year first published",
            [(str(year), n) for year, n in years],
        ),
        themes=[(theme, n) for theme, n in figures.by_theme(force_id=force.id) if n],
        # Names and addresses of people are for signed-in colleagues, never anonymous readers.
        contacts=queries.contacts_of(force) if current_user.is_authenticated else None,
        adopted_here=queries.adopted_by(force),
        adopted_elsewhere=queries.adoptions_of_its_practice(force),
    )
