"""Forces, the dashboard and the annual report in a real browser, with axe on every page.

With PORTAL_SCREENSHOTS=<folder> set, the dashboard and the annual report are also saved
as full-page screenshots there (README's pictures in docs/ are made this way).
"""

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from portal.models import utcnow

from .conftest import assert_accessible

SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_from_the_directory_to_a_force_and_its_contact(contributor, visit):
    page = visit("/forces")
    expect(page.get_by_role("table", name="Wales")).to_be_visible()
    page.get_by_role("link", name="Northamptonshire Police").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Northamptonshire Police")
    assert_accessible(page)
    # The demo contributor is listed as the force's HeForShe contact.
    expect(page.locator(".portal-contacts")).to_contain_text("Force HeForShe lead")
    expect(page.get_by_role("img", name=re.compile("case studies by year"))).to_be_visible()

    # Follow the force from its page: the button turns into Stop following in place.
    loads = []
    page.on("load", lambda: loads.append(page.url))
    page.get_by_role("button", name="Follow Northamptonshire Police").click()
    expect(
        page.get_by_role("button", name="Stop following Northamptonshire Police")
    ).to_be_visible()
    expect(page.locator("#announcer")).to_contain_text("Northamptonshire Police")
    assert loads == []
    assert_accessible(page)
    page.get_by_role("button", name="Stop following Northamptonshire Police").click()
    expect(page.get_by_role("button", name="Follow Northamptonshire Police")).to_be_visible()


def test_dashboard_by_keyboard_then_the_annual_report(contributor, visit):
    page = visit("/reports")
    year = utcnow().year
    expect(page.get_by_role("heading", name=f"Moderation in {year}")).to_be_visible()
    for name in ("by force", "by theme", "by year", "by evidence"):
        expect(page.get_by_role("img", name=re.compile(name))).to_be_visible()
    screenshot(page, "dashboard.png")

    # Choose last year with the keyboard alone.
    page.get_by_label("Year for moderation, coverage and adoptions").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"year={year - 1}"))
    expect(page.get_by_role("heading", name=f"Moderation in {year - 1}")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name=f"Draft annual report for {year - 1}").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(f"HeForShe progress report {year - 1}")
    assert_accessible(page)
    page.goto(page.url.replace(str(year - 1), str(year)))
    expect(page.get_by_role("heading", name="Practice by force")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "annual-report.png")

    # On paper: no navigation or buttons, and every web link is written out.
    page.emulate_media(media="print")
    expect(page.locator(".govuk-service-navigation")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    after = page.evaluate(
        "getComputedStyle(document.querySelector('.portal-report h4 a'), '::after').content"
    )
    assert "http" in after
