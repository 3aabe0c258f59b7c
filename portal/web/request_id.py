"""A reference for every request: in each log line of it, its X-Request-ID header and its
error page, so what a person quotes to support finds the lines that explain it.

A request id sent by the client is taken only behind trusted proxies (PORTAL_TRUSTED_PROXIES
above 0: the proxy sets the header, overwriting the client's), and only when it looks like
one (8 to 64 letters, digits, `-`, `_` or `.`): anything else, a line break or 500
characters, is ignored and a new id is made. Without a proxy, the id is always the portal's.
"""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, Response, g, request, request_finished, request_started

HEADER = "X-Request-ID"
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{8,64}")


def choose(sent: str | None, trusted_proxies: int) -> str:
    """Return the proxy's id when it may be trusted and is well formed, else a new one."""
    if trusted_proxies > 0 and sent and WELL_FORMED.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def current() -> str | None:
    """This request's id (None outside a request, or before it began)."""
    found: str | None = g.get("request_id")
    return found


def elapsed() -> float | None:
    """Seconds since this request began (None when it never began: no request_started)."""
    started = g.get("request_started")
    return None if started is None else time.perf_counter() - started


def _started(app: Flask, **_extra) -> None:
    # Sent before any before_request function (CSRF, rate limits, access checks), so even a
    # request they refuse has its id and its start time.
    g.request_started = time.perf_counter()
    g.request_id = choose(request.headers.get(HEADER), app.config["TRUSTED_PROXIES"])


def _finished(_app: Flask, response: Response, **_extra) -> None:
    request_id = current()
    if request_id:
        response.headers[HEADER] = request_id


def register(app: Flask) -> None:
    """Give every request of `app` an id, and every response its header."""
    request_started.connect(_started, app)
    request_finished.connect(_finished, app)
