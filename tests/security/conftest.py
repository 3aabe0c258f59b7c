"""The standing attack suite: every attempt of the security reviews, written as the attack.

Where it can, a test first shows that the attack does work against a deliberately weakened
setting (rate limits off, CSRF off, the sanitiser bypassed, the owner's own session), so
that it cannot pass because the attack never reached its target. Attacks that need many
requests at once run against a live server (Werkzeug, threaded) in front of the test's app:
on the embedded default, and on PostgreSQL + Redis in CI's second pass.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent

from ..conftest import csrf_from, make_app, served

#: The settings the portal ships with, and ones weakened on purpose to show an attack lands.
AS_SHIPPED: dict = {}
LIMITS_OFF = {"RATELIMIT_ENABLED": False}
CSRF_OFF = {"WTF_CSRF_ENABLED": False}


@pytest.fixture
def app(instance_path, request):
    """The test's app; `parametrize("app", [...], indirect=True)` gives it settings."""
    app = make_app(instance_path, **getattr(request, "param", AS_SHIPPED))
    yield app
    with app.app_context():
        db.engine.dispose()


def weakened_or_not(*settings: dict):
    """Run a test once with each weakened setting, then as shipped (ids say which)."""
    return pytest.mark.parametrize(
        "app",
        [*settings, AS_SHIPPED],
        indirect=True,
        ids=[*(f"weakened:{','.join(s)}" for s in settings), "as-shipped"],
    )


def is_weakened(app) -> bool:
    return not app.config["RATELIMIT_ENABLED"] or not app.config.get("WTF_CSRF_ENABLED", True)


@pytest.fixture
def live(app):
    """Serve this test's app on a free local port, each request in a thread of its own."""
    with served(app) as address:
        yield address


class Visitor:
    """A browser's worth of cookies against the live server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=60, **kwargs)

    def csrf(self, path: str) -> str:
        return csrf_from(self.get(path).text)

    def sign_in(self, user, *, second_factor: bool = True) -> requests.Response:
        response = self.http.post(
            self.base + "/auth/login",
            data={
                "email": user.email,
                "password": user.password,
                "csrf_token": self.csrf("/auth/login"),
            },
            allow_redirects=False,
            timeout=60,
        )
        if (
            second_factor
            and user.totp_secret
            and "two-factor" in response.headers.get("Location", "")
        ):
            response = self.http.post(
                self.base + "/auth/two-factor",
                data={"code": user.totp(), "csrf_token": self.csrf("/auth/two-factor")},
                allow_redirects=False,
                timeout=60,
            )
        return response

    def burst(self, count: int, path: str, data) -> list[int]:
        """POST `count` times at once with this visitor's cookies; return the statuses.

        `data(n)` gives the n-th request's form. Every thread waits at a barrier, so the
        requests reach the server together, as a script's would.
        """
        cookies = self.http.cookies.get_dict()
        barrier = threading.Barrier(count)

        def one(n: int) -> int:
            barrier.wait()
            response = requests.post(
                self.base + path, data=data(n), cookies=cookies, allow_redirects=False, timeout=120
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, range(count)))


@pytest.fixture
def visitor(live):
    """Someone at the live server, not signed in."""
    return Visitor(live)


def audited(app, action: str) -> int:
    """Return how many audit events of this kind there are."""
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )


def pytest_terminal_summary(terminalreporter):
    """Say how many fuzzed requests were sent and what came back (500s must be none)."""
    from .test_fuzz import SEEN

    if SEEN:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(SEEN.items()))
        terminalreporter.write_line(
            f"fuzz pass: {sum(SEEN.values())} requests; statuses {statuses}; "
            f"500s: {SEEN.get(500, 0)}"
        )
