"""Whether the portal works: /healthz for machines (JSON), /status for people."""

from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import text

from ..extensions import csrf, db
from ..models import utcnow
from ..search import get_backend

bp = Blueprint("health", __name__)
csrf.exempt(bp)


def _check(probe) -> dict:
    try:
        probe()
    except Exception as error:  # any failure is the answer, not a crash
        current_app.logger.warning("health check failed: %s", error)
        db.session.rollback()
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _checks() -> dict[str, dict]:
    return {
        "database": _check(lambda: db.session.execute(text("SELECT 1")).scalar_one()),
        "search": _check(lambda: get_backend().ping()),
    }


@bp.get("/healthz")
def healthz():
    """Return 200 with each component's state when all are reachable, else 503."""
    checks = _checks()
    healthy = all(check["ok"] for check in checks.values())
    response = jsonify(status="ok" if healthy else "unavailable", checks=checks)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/status")
def status():
    """Say in words whether the service is working, part by part (the footer links here)."""
    checks = _checks()
    response = current_app.make_response(
        render_template("health/status.html", checks=checks, checked_at=utcnow())
    )
    response.headers["Cache-Control"] = "no-store"
    return response
