"""Browser tests: the portal served on a free local port, driven in Debian's Chromium.

Every page a test visits through `visit` (or checks with `assert_accessible`) is run
through axe-core for WCAG 2.2 A/AA and best practice, and any violation fails the test.
Console errors (a Content-Security-Policy violation, a failed script) fail it too.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import update

from portal.cli import init_db
from portal.demo import DEMO_ACCOUNTS, seed_demo
from portal.extensions import db
from portal.models import User
from portal.search.sync import apply_all

from ..backends import REDIS
from ..conftest import make_app, served

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's Chromium, never a browser downloaded by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does).")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """An app with demo data in its own instance folder (on the PostgreSQL pass, its Redis
    emptied of an earlier run's rate-limit counts and shared results first: the demo's
    people have the same ids in every run)."""
    if REDIS:
        import redis

        client = redis.Redis.from_url(REDIS)
        for pattern in ("LIMITS*", "portal:search*"):
            for key in client.scan_iter(pattern):
                client.delete(key)
        client.close()
    app = make_app(tmp_path_factory.mktemp("e2e-instance"))
    with app.app_context():
        init_db()
        seed_demo()
        apply_all()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app):
    """Serve the app on 127.0.0.1 on a free port in a background thread."""
    with served(live_app) as address:
        yield address


@pytest.fixture(scope="session")
def base_url(live_server):
    return live_server


class AccessibilityError(AssertionError):
    pass


def assert_accessible(page) -> None:
    """Run axe-core on the page as it is now; fail on any violation."""
    results = Axe().run(page, options=AXE_OPTIONS)
    if results.violations_count:
        raise AccessibilityError(f"{page.url}\n{results.generate_report()}")


QUIET_MS = 100  # a page has settled when no request has been in flight this long
_IN_FLIGHT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # page -> its requests


def track(page) -> None:
    """Keep count of the page's requests in flight (htmx's included), for `settle`."""
    if page in _IN_FLIGHT:
        return
    requests: set = set()
    _IN_FLIGHT[page] = requests
    page.on("request", lambda request: requests.add(request))
    page.on("requestfinished", lambda request: requests.discard(request))
    page.on("requestfailed", lambda request: requests.discard(request))


def settle(page, timeout: float = 30.0) -> None:
    """Wait until the page has loaded and no request has been in flight for QUIET_MS.

    Playwright's "networkidle" waits for 500 ms of quiet, half a second on every page a
    test opens. A page not tracked from its first request waits for "networkidle" once."""
    if page not in _IN_FLIGHT:
        track(page)
        page.wait_for_load_state("networkidle")
        return
    requests = _IN_FLIGHT[page]
    page.wait_for_load_state("load")
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < QUIET_MS:
        page.wait_for_timeout(25)  # Playwright delivers the page's events meanwhile
        quiet = 0 if requests else quiet + 25
        if time.monotonic() > deadline:
            raise TimeoutError(f"requests still in flight on {page.url}: {list(requests)}")


@pytest.fixture
def page(page):
    """pytest-playwright's page, its requests counted from the first (see `settle`)."""
    track(page)
    return page


def sign_in(page, base_url: str, email: str, password: str) -> None:
    """Sign in through the real form, checking the sign-in page with axe-core."""
    page.goto(base_url + "/auth/login")
    assert_accessible(page)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    settle(page)


@pytest.fixture
def contributor(page, base_url):
    """The page, signed in as the demo contributor."""
    from portal.demo import DEMO_ACCOUNTS

    account = DEMO_ACCOUNTS[0]
    sign_in(page, base_url, account.email, account.password)
    return page


def watch(page) -> list[str]:
    """Collect what goes wrong in the page: script errors, console errors, failed assets.

    A page's own 4xx status is not an error (forms answer 400 with validation errors),
    nor is an htmx fetch that gets a deliberate error fragment.
    """
    problems: list[str] = []

    def on_console(message):
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response):
        if response.status >= 400 and response.request.resource_type not in ("document", "fetch"):
            problems.append(f"{response.status} for {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", on_response)
    return problems


@pytest.fixture
def visit(page, base_url):
    """Open a path, wait for the page to settle, and check it with axe-core."""
    problems = watch(page)

    def open_path(path: str, expect_status: int = 200, on=None):
        target = on or page
        response = target.goto(base_url + path)
        assert response is not None and response.status == expect_status, path
        settle(target)
        assert_accessible(target)
        return target

    yield open_path
    assert not problems, f"browser errors: {problems}"


@pytest.fixture
def other_page(browser):
    """A second person's browser (its own cookies), watched like the first."""
    context = browser.new_context()
    second = context.new_page()
    track(second)
    problems = watch(second)
    yield second
    context.close()
    assert not problems, f"browser errors in the second browser: {problems}"


ADMIN = next(a for a in DEMO_ACCOUNTS if a.role.value == "admin")


def free_the_code(live_app) -> None:
    """Let a sign-in use the current TOTP code even if another test just did."""
    with live_app.app_context():
        db.session.execute(
            update(User).where(User.email == ADMIN.email).values(totp_last_step=None)
        )
        db.session.commit()
        db.session.remove()


@pytest.fixture
def admin_page(page, live_app, base_url):
    """The page, signed in as the demo admin; the code is freed again for the next test."""
    free_the_code(live_app)
    sign_in(page, base_url, ADMIN.email, ADMIN.password)
    page.get_by_label("Enter your security code").fill(pyotp.TOTP(ADMIN.totp_secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(1)
    yield page
    free_the_code(live_app)
