"""Read published case studies for pages that list them outside the search index."""

from __future__ import annotations

from ..core.live import live_revisions
from ..extensions import db
from ..models import Revision


def latest_published(limit: int = 6) -> list[Revision]:
    """Return the newest published revisions of live case studies, newest first."""
    query = live_revisions().order_by(Revision.published_at.desc(), Revision.id.desc())
    return list(db.session.scalars(query.limit(limit)))
