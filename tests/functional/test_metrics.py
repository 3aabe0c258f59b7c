"""/metrics: what operators measure, for the holder of the metrics token only.

Figures are read the way Prometheus reads them (prometheus_client's own parser). Request and
search timings are counted by the process, so tests compare a scrape before and after;
the database's figures are read at each scrape. The last test starts real gunicorn with two
workers and shows a scrape counts what every worker answered, and keeps counting what
recycled workers answered.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from portal.extensions import db
from portal.jobs import enqueue
from portal.models import MailMessage, MailState, SearchOutbox, utcnow

from ..backends import SEARCH
from ..conftest import _APPS, make_app
from ..records import case_study_line

TOKEN = "a-long-random-metrics-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NO_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def app(instance_path):
    return make_app(instance_path, METRICS_TOKEN=TOKEN)


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: {(sample name, sorted labels): value}."""
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return parse(response.get_data(as_text=True))


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests_to(samples, endpoint: str, method: str = "GET", status: str = "2xx") -> float:
    return value(
        samples,
        "portal_http_request_duration_seconds_count",
        endpoint=endpoint,
        method=method,
        status=status,
    )


# Who may read them


def test_metrics_are_not_there_until_a_token_is_set(instance_path):
    client = make_app(instance_path).test_client()  # PORTAL_METRICS_TOKEN empty: the default
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-the-token",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        "Bearer",
        "Bearer é" + TOKEN,
    ],
)
def test_a_missing_or_wrong_token_is_refused(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "portal_" not in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_the_token_opens_the_metrics_without_a_session_or_csrf(client):
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200  # not sent to sign in: no session is asked for
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "portal_http_request_duration_seconds",
        "portal_search_duration_seconds",
        "portal_jobs_pending",
        "portal_mail_messages",
        "portal_mail_oldest_waiting_age_seconds",
        "portal_search_outbox_rows",
        "portal_search_index_lag_seconds",
        "portal_metrics_source_up",
    } <= names
    assert client.post("/metrics", headers=BEARER).status_code == 405


def test_prometheus_asking_for_openmetrics_gets_it(client):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = client.get("/metrics", headers={**BEARER, "Accept": accept})
    assert response.mimetype == "application/openmetrics-text"
    assert response.text.rstrip().endswith("# EOF")


# What they count


def test_a_page_request_is_counted_under_its_endpoint(client):
    before = scrape(client)
    assert client.get("/auth/login").status_code == 200
    assert client.get("/auth/login").status_code == 200
    client.post("/auth/login", data={})  # no CSRF token: a 400
    after = scrape(client)
    assert requests_to(after, "auth.login") - requests_to(before, "auth.login") == 2
    assert (
        requests_to(after, "auth.login", "POST", "4xx")
        - requests_to(before, "auth.login", "POST", "4xx")
        == 1
    )
    sum_before = value(
        before,
        "portal_http_request_duration_seconds_sum",
        endpoint="auth.login",
        method="GET",
        status="2xx",
    )
    sum_after = value(
        after,
        "portal_http_request_duration_seconds_sum",
        endpoint="auth.login",
        method="GET",
        status="2xx",
    )
    assert 0 < sum_after - sum_before < 10  # seconds


def test_addresses_that_match_no_page_add_no_series(client):
    before = scrape(client)
    for n in range(5):
        assert client.get(f"/no-such-page-{n}").status_code == 404
    client.open("/auth/login", method="BREW")  # a method nobody uses: a 405
    after = scrape(client)
    assert (
        requests_to(after, "unmatched", status="4xx")
        - requests_to(before, "unmatched", status="4xx")
        == 5
    )
    assert (
        requests_to(after, "unmatched", "other", "4xx")
        - requests_to(before, "unmatched", "other", "4xx")
        == 1
    )
    text = client.get("/metrics", headers=BEARER).text
    assert "no-such-page" not in text and "BREW" not in text


def test_a_library_search_is_timed_by_its_backend(member, published):
    published(case_study_line(title="Rugby allies"))
    client = member
    before = scrape(client)
    assert client.get("/library?q=rugby").status_code == 200
    after = scrape(client)
    name = "portal_search_duration_seconds_count"
    assert value(after, name, backend=SEARCH) - value(before, name, backend=SEARCH) >= 1


def add_mail(app, label: str, state: MailState, age: timedelta) -> None:
    with app.app_context():
        db.session.execute(
            insert(MailMessage).values(
                created_at=utcnow() - age,
                message_id=f"<{label}@test.invalid>",
                to="someone@kent.police.uk",
                subject=label,
                body="Hello.",
                state=state,
                attempts=0,
                next_attempt_at=utcnow(),
                last_error="",
            )
        )
        db.session.commit()


def test_mail_by_state_and_the_oldest_waiting_come_from_the_database(app, client):
    quiet = scrape(client)
    assert value(quiet, "portal_mail_messages", state="waiting") == 0
    assert value(quiet, "portal_mail_oldest_waiting_age_seconds") == 0
    add_mail(app, "old", MailState.WAITING, timedelta(hours=2))
    add_mail(app, "new", MailState.WAITING, timedelta(minutes=1))
    add_mail(app, "done", MailState.SENT, timedelta(days=3))
    add_mail(app, "refused", MailState.FAILED, timedelta(days=1))
    samples = scrape(client)
    assert value(samples, "portal_mail_messages", state="waiting") == 2
    assert value(samples, "portal_mail_messages", state="sent") == 1
    assert value(samples, "portal_mail_messages", state="failed") == 1
    assert value(samples, "portal_mail_messages", state="unconfirmed") == 0
    assert ("portal_mail_messages", (("state", "unconfirmed"),)) in samples  # 0, not missing
    assert 7200 <= value(samples, "portal_mail_oldest_waiting_age_seconds") < 7200 + 60


def test_a_change_waiting_for_the_index_shows_as_index_lag(app, client):
    assert value(scrape(client), "portal_search_outbox_rows") == 0
    with app.app_context():
        db.session.execute(
            insert(SearchOutbox).values(case_study_id=7, queued_at=utcnow() - timedelta(minutes=5))
        )
        db.session.execute(insert(SearchOutbox).values(case_study_id=8, queued_at=utcnow()))
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "portal_search_outbox_rows") == 2
    assert 300 <= value(samples, "portal_search_index_lag_seconds") < 300 + 60


def test_jobs_waiting_in_the_queue_are_counted(app, client):
    assert value(scrape(client), "portal_jobs_pending") == 0
    with app.app_context():
        enqueue("deliver_mail", [])
        enqueue("deliver_mail", [])
    samples = scrape(client)
    assert value(samples, "portal_jobs_pending") == 2
    assert value(samples, "portal_metrics_source_up", source="queue") == 1
    assert value(samples, "portal_metrics_source_up", source="database") == 1


def test_a_queue_that_cannot_be_reached_is_said_not_hidden(instance_path):
    app = make_app(instance_path, METRICS_TOKEN=TOKEN, QUEUE_URL=NO_REDIS)
    _APPS.remove(app)  # conftest would empty its queue through a Redis that is not there
    try:
        samples = scrape(app.test_client())
    finally:
        with app.app_context():
            db.engine.dispose()
    assert value(samples, "portal_metrics_source_up", source="queue") == 0
    assert value(samples, "portal_metrics_source_up", source="database") == 1
    assert ("portal_jobs_pending", ()) not in samples  # no figure rather than a wrong 0
    assert ("portal_mail_messages", (("state", "waiting"),)) in samples


# Under gunicorn, with several workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_environment(app, folder: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "PROMETHEUS_"))}
    env.update(
        PORTAL_INSTANCE_PATH=app.instance_path,
        PORTAL_DATABASE_URL=app.config["DATABASE_URL"],
        PORTAL_SEARCH_BACKEND=app.config["SEARCH_BACKEND"],
        PORTAL_QUEUE_URL=app.config["QUEUE_URL"],
        PORTAL_QUEUE_NAME=app.config["QUEUE_NAME"],
        PORTAL_RATELIMIT_STORAGE_URL=app.config["RATELIMIT_STORAGE_URL"],
        PORTAL_METRICS_TOKEN=TOKEN,
        PORTAL_ENV="development",
        PORTAL_GUNICORN_WORKERS="2",
        PORTAL_GUNICORN_BIND=f"127.0.0.1:{port}",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    return env


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = Request(url, headers={"Connection": "close", **(headers or {})})
    try:
        with urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


def wait_until_serving(base: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn stopped"
        try:
            if get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail("gunicorn did not answer")


def test_under_gunicorn_a_scrape_counts_what_every_worker_answered(app, tmp_path):
    root = Path(__file__).resolve().parents[2]
    folder = tmp_path / "metrics"
    folder.mkdir()
    # Left by an earlier run: the master empties the folder as it starts.
    (folder / "histogram_99999.db").write_bytes(b"\0" * 64)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        # Workers recycled after 8 requests: what a stopped worker counted must stay counted.
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--max-requests",
            "8",
            "--max-requests-jitter",
            "0",
            "wsgi:app",
        ],
        cwd=root,
        env=gunicorn_environment(app, folder, port),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(base, process)
        assert not (folder / "histogram_99999.db").exists()
        statuses = []

        def ask(n: int) -> None:
            statuses.append(get(f"{base}/auth/login?n={n}")[0])

        for start in range(0, 20, 5):  # five at a time: both sync workers answer
            batch = [threading.Thread(target=ask, args=(n,)) for n in range(start, start + 5)]
            for thread in batch:
                thread.start()
            for thread in batch:
                thread.join(30)
        assert statuses == [200] * 20
        counts = []
        for _ in range(4):  # each scrape is answered by whichever worker is free
            status, text = get(f"{base}/metrics", BEARER)
            assert status == 200, text[:300]
            counts.append(requests_to(parse(text), "auth.login"))
        # No worker answers more than 8 requests: 20 counted is the sum of several workers'.
        assert counts == [20.0] * 4
        assert get(f"{base}/metrics")[0] == 401
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    output = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    assert output.count("Booting worker") > 2, output[-3000:]  # workers were recycled
