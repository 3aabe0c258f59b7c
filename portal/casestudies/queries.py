"""Read published case studies for pages that show the library's content."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import CaseStudy, Revision, RevisionState
from ..pagination import Page, like_pattern, paginate


def _published() -> Select:
    return (
        select(Revision)
        .join(Revision.case_study)
        .where(Revision.state == RevisionState.PUBLISHED)
        .options(
            selectinload(Revision.themes),
            selectinload(Revision.case_study).selectinload(CaseStudy.force),
        )
    )


def latest_published(limit: int = 6) -> list[Revision]:
    """Return the newest published revisions, newest first."""
    query = _published().order_by(Revision.published_at.desc(), Revision.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def published_revision(case_study_id: int) -> Revision | None:
    """Return the live revision of a case study, or None when nothing of it is published."""
    query = (
        _published()
        .where(Revision.case_study_id == case_study_id)
        .options(selectinload(Revision.partners))
    )
    return db.session.scalar(query)


def browse_published(text: str = "", page: int = 1, per_page: int = 20) -> Page:
    """Return one page of published revisions whose title or summary contains `text`."""
    query = _published()
    if text:
        pattern = like_pattern(text)
        query = query.where(
            or_(
                Revision.title.ilike(pattern, escape="\\"),
                Revision.summary.ilike(pattern, escape="\\"),
            )
        )
    return paginate(
        query.order_by(Revision.published_at.desc(), Revision.id.desc()), page, per_page
    )
