"""CSV and JSON exports of published case studies, with the library's filters, streamed.

The search backend gives every matching id in the library's order (ids only, a few bytes
each); `rows` reads and writes them a batch at a time. Contact email addresses are
private: only moderators and admins get them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, stream_with_context
from flask_login import current_user

from .. import audit
from ..casestudies.services import is_moderator
from ..extensions import db, limiter
from ..library.query_string import query_args, search_query_from_request
from ..search import get_backend
from . import rows

bp = Blueprint("exports", __name__, url_prefix="/reports")

# Each export reads every matching case study: enough for real use, not for a flood.
EXPORT_LIMIT = "10 per minute;60 per hour"


def _user_key() -> str:
    return f"exports:{current_user.id}"


_limited = limiter.shared_limit(EXPORT_LIMIT, scope="exports", key_func=_user_key)


@bp.get("/export.csv", endpoint="csv")
@_limited
def export_csv() -> Response:
    """Download the library's current results as CSV (UTF-8 with a BOM, for Excel)."""
    return _export("csv", "text/csv; charset=utf-8", rows.csv_chunks)


@bp.get("/export.jsonl", endpoint="jsonl")
@_limited
def export_jsonl() -> Response:
    """Download the library's current results as JSON Lines that re-import unchanged."""
    return _export("jsonl", "application/x-ndjson; charset=utf-8", rows.jsonl_chunks)


def _export(kind: str, content_type: str, chunks) -> Response:
    query = search_query_from_request()
    ids = get_backend().ranked_ids(query)
    with_email = is_moderator(current_user)
    audit.record(
        "case_studies.exported",
        actor=current_user,
        detail={
            "format": kind,
            "filters": query_args(query),
            "count": len(ids),
            "contact_email": with_email,
        },
    )
    db.session.commit()
    filename = f"case-studies-{datetime.now(UTC).date().isoformat()}.{kind}"
    # content_type, not mimetype: Werkzeug adds "; charset=utf-8" to a mimetype a second time.
    response = Response(stream_with_context(chunks(ids, with_email)), content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
