"""Browser tests: the portal served on a free local port, driven in Debian's Chromium.

Every page a test visits through `visit` (or checks with `assert_accessible`) is run
through axe-core for WCAG 2.2 A/AA and best practice, and any violation fails the test.
Console errors (a Content-Security-Policy violation, a failed script) fail it too.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from werkzeug.serving import make_server

from portal.cli import init_db
from portal.demo import seed_demo
from portal.extensions import db

from ..conftest import make_app

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
    """An app with demo data in its own instance folder."""
    app = make_app(tmp_path_factory.mktemp("e2e-instance"))
    with app.app_context():
        init_db()
        seed_demo()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app):
    """Serve the app on 127.0.0.1 on a free port in a background thread."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


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


@pytest.fixture
def visit(page, base_url):
    """Open a path, wait for the page to settle, and check it with axe-core."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    def open_path(path: str, expect_status: int = 200):
        response = page.goto(base_url + path)
        assert response is not None and response.status == expect_status, path
        page.wait_for_load_state("networkidle")
        assert_accessible(page)
        return page

    yield open_path
    ignorable = [p for p in problems if "status of 404" not in p]
    assert not ignorable, f"browser console errors: {ignorable}"
