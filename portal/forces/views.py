"""The force directory (/forces) and a page per force (/forces/<slug>)."""

from __future__ import annotations

import re

from flask import Blueprint, abort, render_template
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..casestudies.queries import live_revisions
from ..extensions import db
from ..models import (
    Adoption,
    CaseStudy,
    Force,
    Revision,
    RevisionState,
    User,
    UserStatus,
)
from ..reports import figures
from ..reports.charts import BarChart

bp = Blueprint("forces", __name__, url_prefix="/forces")

GROUPS = ("England", "Wales", "Scotland", "Northern Ireland", "National")
NEWEST_SHOWN = 20
SLUG = re.compile(r"[a-z0-9-]{1,120}")


def _group(force: Force) -> str:
    return force.nation if force.nation in GROUPS else "National"


@bp.get("")
def index():
    """List every force by nation, with how much each has published and when it last did."""
    live = (
        select(
            CaseStudy.force_id,
            func.count().label("n"),
            func.max(CaseStudy.first_published_at).label("latest"),
        )
        .join(Revision, Revision.case_study_id == CaseStudy.id)
        .where(Revision.state == RevisionState.PUBLISHED, CaseStudy.archived_at.is_(None))
        .group_by(CaseStudy.force_id)
    )
    counts = {force_id: (n, latest) for force_id, n, latest in db.session.execute(live)}
    forces = db.session.scalars(select(Force).order_by(Force.name)).all()
    groups: dict[str, list] = {name: [] for name in GROUPS}
    for force in forces:
        groups[_group(force)].append((force, *counts.get(force.id, (0, None))))
    return render_template(
        "forces/index.html",
        groups=[(name, rows) for name, rows in groups.items() if rows],
        publishing=sum(1 for n, _ in counts.values() if n),
        total=len(forces),
    )


def contacts_of(force: Force) -> list[User]:
    """Return the force's active users who chose to be listed as HeForShe contacts."""
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.force_id == force.id,
                User.listed_as_contact.is_(True),
                User.status == UserStatus.ACTIVE,
            )
            .order_by(User.name)
        )
    )


def force_by_slug(slug: str) -> Force:
    """Return the force with this slug, or 404 (an odd slug never reaches the database)."""
    force = None
    if SLUG.fullmatch(slug):
        force = db.session.scalar(select(Force).where(Force.slug == slug))
    if force is None:
        abort(404)
    return force


@bp.get("/<slug>")
def show(slug: str):
    """Show one force: its practice, themes, counts by year, contacts and adoptions."""
    force = force_by_slug(slug)
    newest = db.session.scalars(
        live_revisions()
        .where(CaseStudy.force_id == force.id)
        .order_by(CaseStudy.first_published_at.desc(), CaseStudy.id.desc())
        .limit(NEWEST_SHOWN)
    ).all()
    years = figures.by_year(force_id=force.id)
    themes = [(theme, n) for theme, n in figures.by_theme(force_id=force.id) if n]
    adopted_here = db.session.execute(
        select(Adoption, Revision.title)
        .join(Adoption.case_study)
        .join(
            Revision,
            (Revision.case_study_id == CaseStudy.id) & (Revision.state == RevisionState.PUBLISHED),
        )
        .where(Adoption.force_id == force.id, CaseStudy.archived_at.is_(None))
        .options(selectinload(Adoption.case_study).selectinload(CaseStudy.force))
        .order_by(Adoption.created_at.desc())
    ).all()
    adopted_elsewhere = db.session.scalar(
        select(func.count())
        .select_from(Adoption)
        .join(Adoption.case_study)
        .where(CaseStudy.force_id == force.id)
    )
    return render_template(
        "forces/show.html",
        force=force,
        newest=newest,
        total=sum(n for _, n in years),
        years_chart=BarChart.of(
            f"{force.name}: case studies by year first published",
            [(str(year), n) for year, n in years],
        ),
        themes=themes,
        # Names and addresses of people are for signed-in colleagues, never anonymous readers.
        contacts=contacts_of(force) if current_user.is_authenticated else None,
        adopted_here=adopted_here,
        adopted_elsewhere=adopted_elsewhere or 0,
    )
