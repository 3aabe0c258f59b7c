"""Whether the portal works: /healthz and /readyz for machines (JSON), /status for people,
and /metrics for Prometheus.

- /healthz (liveness, for the load balancer): the database and the search index answer.
- /readyz (readiness, for an orchestrator): those and the job queue answer.
- /metrics: Prometheus's text format, only with `Authorization: Bearer <PORTAL_METRICS_TOKEN>`
  (no token set: 404, as for any address the portal does not have).

None of them takes a session, a CSRF token or a rate limit (portal/auth/access.py lets
anyone open them; the token is the only key to /metrics).
"""

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import text

from .. import jobs
from ..extensions import csrf, db, limiter
from ..models import utcnow
from ..search import get_backend
from ..web import metrics as portal_metrics

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


def _answer(checks: dict[str, dict]):
    healthy = all(check["ok"] for check in checks.values())
    response = jsonify(status="ok" if healthy else "unavailable", checks=checks)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    """Return 200 with each component's state when all are reachable, else 503."""
    return _answer(_checks())


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Return 200 when the database, the search index and the job queue answer; else 503,
    naming the part that did not (its error's kind only: never a message or an address)."""
    return _answer({**_checks(), "queue": _check(jobs.pending)})


@bp.get("/metrics")
@limiter.exempt
def metrics():
    """Prometheus's text format, for the holder of PORTAL_METRICS_TOKEN only."""
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)
    if not portal_metrics.authorised(request.headers.get("Authorization"), token):
        response = current_app.response_class(
            "Send the metrics token: Authorization: Bearer <PORTAL_METRICS_TOKEN>\n",
            status=401,
            mimetype="text/plain",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response.headers["Cache-Control"] = "no-store"
        return response
    body, content_type = portal_metrics.exposition(request.headers.get("Accept"))
    response = current_app.response_class(body, content_type=content_type)
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
