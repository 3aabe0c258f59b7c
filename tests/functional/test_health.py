"""/healthz (liveness, for the load balancer) and /readyz (readiness, for an orchestrator).

/readyz answers 200 only when the database, the search index and the job queue all answer,
and otherwise 503 naming the part that did not, without its error message or address.
/healthz stays as cheap as it was: it does not ask the queue.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

NO_REDIS = "redis://127.0.0.1:1/0"


def unreachable_database(app) -> str:
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "postgresql":
        return url.set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    return "sqlite:////nonexistent/folder/portal.db"


def test_ready_when_the_database_the_index_and_the_queue_answer(client):
    response = client.get("/readyz")  # anyone: no session, no sign-in
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "search": {"ok": True}, "queue": {"ok": True}},
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_not_ready_when_the_queue_cannot_be_reached(outage_app):
    client = outage_app(QUEUE_URL=NO_REDIS).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["queue"]["ok"] is False and checks["database"]["ok"] is True
    assert checks["queue"]["error"] == "ConnectionError"  # the kind only
    assert "127.0.0.1" not in response.text and "redis://" not in response.text
    # Liveness does not ask the queue: the load balancer keeps sending people here, where
    # everything but the queue's work goes on (mail waits in the database for it).
    assert client.get("/healthz").status_code == 200


def test_not_ready_when_the_database_cannot_be_reached(app, outage_app):
    down = unreachable_database(app)
    client = outage_app(DATABASE_URL=down).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"] == {"ok": False, "error": "OperationalError"}
    assert checks["queue"]["ok"] is True
    text = response.text
    assert "nonexistent" not in text and "port" not in text and "Traceback" not in text
    assert client.get("/healthz").status_code == 503  # as before: it asks the database too


def test_health_checks_do_not_wait_on_the_rate_limit_counters(outage_app):
    # Made last: Flask-Limiter keeps one storage per process, the last app's.
    client = outage_app(RATELIMIT_STORAGE_URL=NO_REDIS, METRICS_TOKEN="t" * 32).test_client()
    for _ in range(30):
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
    metrics = client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 32})
    assert metrics.status_code == 200


def test_readiness_is_only_read(client):
    assert client.post("/readyz").status_code == 405
