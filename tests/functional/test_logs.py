"""Logs operators can use: every request has an id, in each of its log lines, in its
X-Request-ID header and on its error page; PORTAL_LOG_FORMAT=json writes one JSON object per
line; nothing a visitor sends can forge a line or an id."""

from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest
from flask.logging import default_handler

from portal.accounts import create_user
from portal.models import Role
from portal.web.logs import JsonHandler

from ..conftest import PASSWORD, Auth, TestUser, make_app, signed_in

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_app(instance_path):
    app = make_app(instance_path, LOG_FORMAT="json")

    @app.get("/boom")
    def boom():
        app.logger.warning("about to fail for %s", "x@kent.police.uk\nINFO forged line")
        raise RuntimeError("kaboom")

    yield app
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonHandler)]:
        root.removeHandler(handler)


def capture_stderr(monkeypatch) -> io.StringIO:
    """What the JSON handler writes from now on (to standard error, whichever stream it is
    then). Called in the test itself: pytest puts its own stream back between phases."""
    written = io.StringIO()
    monkeypatch.setattr(sys, "stderr", written)
    return written


def json_lines(stderr) -> list[dict]:
    lines = stderr.getvalue().splitlines()
    assert lines and all(line.strip() for line in lines)
    return [json.loads(line) for line in lines]  # every line is one JSON object


def signed_in_as_contributor(app, client) -> None:
    with app.app_context():
        create_user("kim.lee@kent.police.uk", "Kim Lee", "Kent", Role.CONTRIBUTOR, PASSWORD)
    user = TestUser(email="kim.lee@kent.police.uk", password=PASSWORD, totp_secret=None, role="")
    assert Auth(client).login(user).status_code == 303


def test_json_lines_carry_the_request_id_the_response_carries(json_app, monkeypatch):
    client = json_app.test_client()
    stderr = capture_stderr(monkeypatch)
    response = client.get("/auth/login?next=/library%3Fq%3Dsecret+words")
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(request_id)
    lines = json_lines(stderr)
    [access] = [line for line in lines if line["logger"] == "portal.access"]
    assert access["request_id"] == request_id
    assert access["level"] == "INFO"
    assert access["method"] == "GET"
    assert access["path"] == "/auth/login"  # never the query string: it may hold search words
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float) and 0 <= access["duration_ms"] < 10_000
    assert access["time"].endswith("Z") and access["time"][:2] == "20"
    assert "secret" not in json.dumps(lines)


def test_a_failure_is_one_json_line_with_its_exception_and_its_reference(json_app, monkeypatch):
    client = json_app.test_client()
    signed_in_as_contributor(json_app, client)
    stderr = capture_stderr(monkeypatch)
    response = client.get("/boom")
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert f"Reference: {request_id}" in response.text
    assert "kaboom" not in response.text
    lines = json_lines(stderr)
    warning = next(line for line in lines if line["message"].startswith("about to fail"))
    assert warning["request_id"] == request_id and warning["level"] == "WARNING"
    assert warning["logger"] == "portal" and warning["path"] == "/boom"
    assert "\\nINFO forged line" in warning["message"]  # escaped: still one line
    failure = next(line for line in lines if "exception" in line)
    assert failure["level"] == "ERROR" and failure["request_id"] == request_id
    assert "RuntimeError: kaboom" in failure["exception"]
    assert "Traceback" in failure["exception"]
    access = next(line for line in lines if line["logger"] == "portal.access")
    assert access["status"] == 500 and access["request_id"] == request_id


def test_every_response_has_its_own_request_id(client):
    first = client.get("/auth/login").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second) and first != second


@pytest.mark.parametrize(
    "path, code, title",
    [
        ("/no/such/page", 404, "Page not found"),
        ("/auth/login", 400, "Something was wrong with that request"),  # POST without CSRF
    ],
)
def test_an_error_page_shows_the_reference_to_quote(client, path, code, title):
    response = client.post(path, data={}) if code == 400 else client.get(path)
    assert response.status_code == code
    assert title in response.text
    assert f"Reference: {response.headers['X-Request-ID']}" in response.text


def test_an_htmx_error_fragment_shows_the_reference_too(client):
    response = client.get("/no/such/page", headers={"HX-Request": "true"})
    assert response.status_code == 404 and "<html" not in response.text
    assert f"Reference: {response.headers['X-Request-ID']}" in response.text


def test_behind_a_trusted_proxy_its_request_id_is_kept(instance_path):
    client = make_app(instance_path, TRUSTED_PROXIES=1).test_client()
    sent = "proxy-7f3a_9c21.request"
    response = client.get("/no/such/page", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    assert f"Reference: {sent}" in response.text


@pytest.mark.parametrize(
    "forged",
    [
        "abcdefgh\nINFO admin signed in",
        "abcdefgh\r\nSet-Cookie: x=1",
        "a" * 500,
        "short",
        "has spaces in it",
        "<script>alert(1)</script>",
        "",
    ],
)
def test_a_forged_request_id_is_ignored(instance_path, forged):
    client = make_app(instance_path, TRUSTED_PROXIES=1).test_client()
    # Set in the WSGI environ itself: the test client refuses a line break in a header.
    response = client.get("/no/such/page", environ_overrides={"HTTP_X_REQUEST_ID": forged})
    request_id = response.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(request_id)
    assert f"Reference: {request_id}" in response.text
    assert "INFO admin" not in response.text and "<script>alert" not in response.text


def test_without_a_proxy_a_request_id_sent_by_the_client_is_ignored(client):
    response = client.get("/auth/login", headers={"X-Request-ID": "chosen-by-the-visitor"})
    assert response.headers["X-Request-ID"] != "chosen-by-the-visitor"
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


def test_text_lines_name_their_request(app, make_user):
    @app.get("/note")
    def note():
        app.logger.warning("noted")
        return "ok"

    client = signed_in(app, make_user())

    written = io.StringIO()
    handler = logging.StreamHandler(written)  # as Flask's own handler writes them
    handler.setFormatter(default_handler.formatter)
    for line_filter in default_handler.filters:
        handler.addFilter(line_filter)
    app.logger.addHandler(handler)
    try:
        response = client.get("/note")
        with app.app_context():
            app.logger.warning("outside any request")
    finally:
        app.logger.removeHandler(handler)
    inside, outside = written.getvalue().splitlines()
    assert f"WARNING in test_logs [{response.headers['X-Request-ID']}]: noted" in inside
    assert "WARNING in test_logs [-]: outside any request" in outside
