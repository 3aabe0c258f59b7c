"""Read forces and what they have published, for the force pages, the feeds and reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..core.live import is_live, live_revisions
from ..core.text import looks_like_slug
from ..extensions import db
from ..models import Adoption, CaseStudy, Force, Revision, User, UserStatus


def force_with_slug(slug: str) -> Force | None:
    """Return the force with this slug (an odd slug never reaches the database)."""
    if not looks_like_slug(slug):
        return None
    return db.session.scalar(select(Force).where(Force.slug == slug))


def forces_with_counts() -> list[tuple[Force, int, datetime | None]]:
    """Return every force, with how many live case studies it has and its newest's date."""
    live = (
        select(
            CaseStudy.force_id,
            func.count().label("n"),
            func.max(CaseStudy.first_published_at).label("latest"),
        )
        .join(Revision, Revision.case_study_id == CaseStudy.id)
        .where(is_live())
        .group_by(CaseStudy.force_id)
    )
    counts = {force_id: (n, latest) for force_id, n, latest in db.session.execute(live)}
    forces = db.session.scalars(select(Force).order_by(Force.name))
    return [(force, *counts.get(force.id, (0, None))) for force in forces]


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


def newest_of(force: Force, limit: int) -> list[Revision]:
    """Return the force's newest live case studies, by first publication."""
    return list(
        db.session.scalars(
            live_revisions()
            .where(CaseStudy.force_id == force.id)
            .order_by(CaseStudy.first_published_at.desc(), CaseStudy.id.desc())
            .limit(limit)
        )
    )


def adopted_by(force: Force) -> list[tuple[Adoption, str]]:
    """Return what the force has taken up from others (live case studies), newest first."""
    return [
        (adoption, title)
        for adoption, title in db.session.execute(
            select(Adoption, Revision.title)
            .join(Adoption.case_study)
            .join(Revision, Revision.case_study_id == CaseStudy.id)
            .where(Adoption.force_id == force.id, is_live())
            .options(selectinload(Adoption.case_study).selectinload(CaseStudy.force))
            .order_by(Adoption.created_at.desc())
        )
    ]


def adoptions_of_its_practice(force: Force) -> int:
    """Return how many times other forces recorded taking up this force's case studies."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Adoption)
            .join(Adoption.case_study)
            .where(CaseStudy.force_id == force.id)
        )
        or 0
    )
