"""Read published case studies for pages that list them outside the search index."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import CaseStudy, Revision, RevisionState


def live_revisions() -> Select:
    """Select the published revisions of case studies not archived, with what a card shows."""
    return (
        select(Revision)
        .join(Revision.case_study)
        .where(Revision.state == RevisionState.PUBLISHED, CaseStudy.archived_at.is_(None))
        .options(
            selectinload(Revision.themes),
            selectinload(Revision.case_study).selectinload(CaseStudy.force),
        )
    )


def latest_published(limit: int = 6) -> list[Revision]:
    """Return the newest published revisions of live case studies, newest first."""
    query = live_revisions().order_by(Revision.published_at.desc(), Revision.id.desc())
    return list(db.session.scalars(query.limit(limit)))
