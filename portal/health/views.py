"""Report whether the database and the search index can be reached, as JSON."""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from ..extensions import csrf, db
from ..search import get_backend

bp = Blueprint("health", __name__)
csrf.exempt(bp)


def _check(probe) -> dict:
    try:
        probe()
    except Exception as error:  # any failure is the answer, not a crash
        current_app.logger.warning("health check failed: %s", error)
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


@bp.get("/healthz")
def healthz():
    """Return 200 with each component's state when all are reachable, else 503."""
    checks = {
        "database": _check(lambda: db.session.execute(text("SELECT 1")).scalar_one()),
        "search": _check(lambda: get_backend().ping()),
    }
    healthy = all(check["ok"] for check in checks.values())
    response = jsonify(status="ok" if healthy else "unavailable", checks=checks)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
