"""The search insights' daily deletion of searches older than PORTAL_SEARCH_INSIGHTS_DAYS.

Recording deletes them too (at most once an hour per process), but only while people search:
this job keeps the promise on a quiet portal, and after the setting is lowered.
"""

from __future__ import annotations

import logging

from ..jobs import periodic
from ..jobs.schedules import daily_uk
from . import services

log = logging.getLogger(__name__)


@periodic("purge_search_insights", daily_uk(3, 30))
def purge_search_insights() -> int:
    """Delete the searches kept longer than the setting allows; return how many."""
    deleted = services.delete_expired()
    log.info("search insights: deleted %s searches past their retention", deleted)
    return deleted
