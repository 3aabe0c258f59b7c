"""The annual report's PDF as a job, in a real browser (issue 16), axe on each state.

The job runs in a thread of the test (`run_queued`, as `portal worker` would run it) while
the page polls: its layout waits at a gate until the page has shown the progress, so the
running state is seen every time, however fast the machine. With PORTAL_SCREENSHOTS=<folder>
set, each state is saved there at 320 and 1280 px.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete

from portal.extensions import db
from portal.jobs import run_queued
from portal.models import ReportFile, utcnow
from portal.reports import pdf

from .conftest import assert_accessible

pytestmark = pytest.mark.skipif(not pdf.available(), reason="WeasyPrint can't load Pango")

SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")
YEAR = utcnow().year
WAIT = 60_000  # ms: the job lays out the demo year's pages in a few seconds


def no_pdf_yet(live_app, year: int) -> None:
    """Start from a year with no PDF asked for (the browser tests share one portal)."""
    with live_app.app_context():
        db.session.execute(delete(ReportFile).where(ReportFile.year == year))
        db.session.commit()


def both_widths(page, name: str) -> None:
    """Check the page at 320 px (nothing sideways) and 1280 px; save both when asked to."""
    for width in (320, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        assert_accessible(page)
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{width}.png"), full_page=True)


def press(page, name: str) -> None:
    """Press a button with the keyboard alone."""
    button = page.get_by_role("button", name=name)
    button.focus()
    expect(button).to_be_focused()
    page.keyboard.press("Enter")


class Worker:
    """Runs the queued jobs in a thread; the PDF's layout waits until `carry_on`."""

    def __init__(self, live_app, monkeypatch) -> None:
        self.app = live_app
        self.laying_out = threading.Event()
        self.go = threading.Event()
        layout = pdf.layout

        def gated(*args, **kwargs):
            self.laying_out.set()
            assert self.go.wait(WAIT / 1000), "the test never let the layout go on"
            return layout(*args, **kwargs)

        monkeypatch.setattr(pdf, "layout", gated)
        self.thread = threading.Thread(target=run_queued, args=(live_app,), daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.laying_out.wait(WAIT / 1000), "the job did not start"

    def carry_on(self) -> None:
        self.go.set()
        self.thread.join(WAIT / 1000)
        assert not self.thread.is_alive()


def test_making_the_pdf_by_keyboard_follows_its_progress_then_downloads_it(
    contributor, visit, live_app, monkeypatch
):
    no_pdf_yet(live_app, YEAR)
    page = visit(f"/reports/annual/{YEAR}")
    both_widths(page, "report-pdf-offered")
    press(page, "Make the PDF")

    # Queued: the page says so in its live region, and polls.
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"PDF of the HeForShe progress report {YEAR}"
    )
    status = page.locator('#pdf-status[aria-live="polite"]')
    expect(status).to_have_text("Waiting to start making the PDF.")
    expect(page.locator('[hx-trigger="every 2s"]')).to_have_count(1)
    expect(page.get_by_role("link", name="Check again")).to_be_visible()
    both_widths(page, "report-pdf-queued")

    # Running: the job holds at its layout until the page has shown how far it got.
    worker = Worker(live_app, monkeypatch)
    worker.start()
    expect(status).to_have_text("Making the PDF: 25%", timeout=WAIT)
    both_widths(page, "report-pdf-running")
    worker.carry_on()

    # Done: the link comes into the live region (so it is read out), and polling stops.
    download = status.get_by_role("link", name=re.compile(r"^Download the PDF of the \d+ report"))
    expect(download).to_be_visible(timeout=WAIT)
    expect(status).to_contain_text("The PDF is ready.")
    expect(download).to_have_accessible_name(
        # GOV.UK's visually hidden text brings its own spaces around it.
        re.compile(rf"Download the PDF\s+of the {YEAR} report\s+\(\d+ pages, \d+ KB\)")
    )
    expect(page.locator("[hx-trigger]")).to_have_count(0)
    expect(page.get_by_role("link", name="Check again")).to_have_count(0)
    both_widths(page, "report-pdf-done")

    # Download it with the keyboard alone.
    page.set_viewport_size({"width": 1280, "height": 900})
    for _ in range(40):
        page.keyboard.press("Tab")
        if download.evaluate("link => link === document.activeElement"):
            break
    else:
        raise AssertionError("the download link is not reachable by Tab")
    with page.expect_download() as downloading:
        page.keyboard.press("Enter")
    made = downloading.value
    assert made.suggested_filename == f"heforshe-progress-report-{YEAR}-draft.pdf"
    assert Path(made.path()).read_bytes().startswith(b"%PDF-")

    # The report's page now offers the file itself, at once.
    visit(f"/reports/annual/{YEAR}")
    expect(page.get_by_role("link", name=re.compile(r"^Download the PDF"))).to_be_visible()
    expect(page.get_by_role("button", name="Make the PDF")).to_have_count(0)
    both_widths(page, "report-pdf-offered-made")


def test_a_pdf_that_could_not_be_made_says_why_and_is_tried_again(
    contributor, visit, live_app, monkeypatch
):
    import weasyprint

    year = YEAR - 1
    no_pdf_yet(live_app, year)

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    page = visit(f"/reports/annual/{year}")
    press(page, "Make the PDF")
    status = page.locator('#pdf-status[aria-live="polite"]')
    expect(status).to_have_text("Waiting to start making the PDF.")

    with monkeypatch.context() as failing:
        failing.setattr(weasyprint.HTML, "render", out_of_memory)
        run_queued(live_app)
        expect(status).to_contain_text("The PDF could not be made.", timeout=WAIT)
    expect(status).to_contain_text("The server ran out of memory while laying out the pages.")
    expect(page.locator("[hx-trigger]")).to_have_count(0)
    both_widths(page, "report-pdf-failed")

    page.set_viewport_size({"width": 1280, "height": 900})
    press(page, "Try again")
    expect(status).to_have_text("Waiting to start making the PDF.")
    assert_accessible(page)
    run_queued(live_app)
    expect(status.get_by_role("link", name=re.compile(r"^Download the PDF"))).to_be_visible(
        timeout=WAIT
    )
    assert_accessible(page)
