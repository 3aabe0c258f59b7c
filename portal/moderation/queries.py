"""What the moderation queue lists: the revisions waiting for a decision, oldest first."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import CaseStudy, Force, Revision, RevisionState, Theme, revision_theme
from ..pagination import Page, paginate

#: Revisions listed on one page of the queue.
PER_PAGE = 50


def waiting(force: str = "", theme: str = "", page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of the revisions waiting for a decision, oldest submission first, filtered."""
    query = (
        select(Revision)
        .join(Revision.case_study)
        .where(Revision.state == RevisionState.SUBMITTED)
        .options(
            selectinload(Revision.case_study).selectinload(CaseStudy.force),
            selectinload(Revision.case_study).selectinload(CaseStudy.author),
            selectinload(Revision.themes),
        )
        .order_by(Revision.submitted_at, Revision.id)
    )
    if force:
        query = query.join(Force, CaseStudy.force_id == Force.id).where(Force.slug == force)
    if theme:
        query = query.where(
            Revision.id.in_(
                select(revision_theme.c.revision_id)
                .join(Theme, Theme.id == revision_theme.c.theme_id)
                .where(Theme.slug == theme)
            )
        )
    return paginate(query, page, per_page)


def waiting_count() -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Revision)
            .where(Revision.state == RevisionState.SUBMITTED)
        )
        or 0
    )


def forces_waiting() -> Sequence[Row]:
    """(slug, name, count) of each force with something waiting, by name."""
    return db.session.execute(
        select(Force.slug, Force.name, func.count(Revision.id))
        .join(CaseStudy, CaseStudy.force_id == Force.id)
        .join(Revision, Revision.case_study_id == CaseStudy.id)
        .where(Revision.state == RevisionState.SUBMITTED)
        .group_by(Force.slug, Force.name)
        .order_by(Force.name)
    ).all()


def themes() -> Sequence[Theme]:
    return db.session.scalars(select(Theme).order_by(Theme.position)).all()
