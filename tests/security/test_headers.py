"""Attacks the browser stops when the portal's headers tell it to: framing, sniffing, caching,
inline script, cookies sent over plain HTTP."""

from __future__ import annotations

import pytest

PAGES = ["/", "/library", "/case-studies/new", "/account", "/no-such-page", "/auth/login"]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("path", PAGES)
def test_every_response_forbids_inline_script_framing_and_sniffing(member, path, htmx):
    response = member.get(path, headers={"HX-Request": "true"} if htmx else {})
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_sign_in_and_error_pages_are_never_cached(client):
    assert client.get("/auth/login").headers["Cache-Control"] == "no-store"


def test_pages_that_differ_for_htmx_say_so_to_caches(member):
    assert "HX-Request" in member.get("/library").headers["Vary"]


def test_static_files_carry_the_headers_too(client):
    response = client.get("/static/css/portal.css")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_in_development_the_cookie_still_is_http_only_and_same_site(client):
    cookie = client.get("/auth/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
