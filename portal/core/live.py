"""What "live" means: the published revision of a case study that is not archived.

Every page, feed, export, figure and the search index reads live case studies through
this one condition, so "published" never means two things.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.orm import selectinload

from ..models import CaseStudy, Revision, RevisionState


def is_live() -> ColumnElement[bool]:
    """Return the condition for a live revision (the query must join Revision and CaseStudy)."""
    return and_(Revision.state == RevisionState.PUBLISHED, CaseStudy.archived_at.is_(None))


def live_revisions() -> Select[Revision]:
    """Select the live revisions, with what a card shows loaded alongside."""
    return (
        select(Revision)
        .join(Revision.case_study)
        .where(is_live())
        .options(
            selectinload(Revision.themes),
            selectinload(Revision.case_study).selectinload(CaseStudy.force),
        )
    )
