"""The dashboard's charts and the following page in a real browser (issue 15), axe on each state.

With PORTAL_SCREENSHOTS=<folder> set, the dashboard is saved there at 1280 and 375 px
(docs/dashboard-1280.png and docs/dashboard-375.png are made this way).
"""

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from .conftest import assert_accessible

SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")

LABEL_SIZES = """() => [...document.querySelectorAll('.portal-chart__label, .portal-chart__value')]
    .map(e => parseFloat(getComputedStyle(e).fontSize))"""
BODY_SIZE = "() => parseFloat(getComputedStyle(document.querySelector('p.govuk-body')).fontSize)"


def test_dashboard_charts_are_readable_and_their_tables_open_by_keyboard(contributor, visit):
    page = contributor
    page.set_viewport_size({"width": 1280, "height": 900})
    visit("/reports")
    charts = page.get_by_role("img", name=re.compile("^Published case studies by"))
    expect(charts).to_have_count(4)
    described = page.get_by_role("img", name="Published case studies by force")
    expect(described).to_have_accessible_description(re.compile(r"^Bar chart of \d+ rows"))

    # The labels are text at least the body's size (19px at 1280 px).
    body = page.evaluate(BODY_SIZE)
    assert body >= 19
    assert min(page.evaluate(LABEL_SIZES)) >= body

    # Each table waits behind its own "Show the figures as a table".
    summaries = page.locator("summary", has_text="Show the figures as a table")
    expect(summaries).to_have_count(4)
    table = page.get_by_role("table", name="Figures: Published case studies by force")
    expect(table).to_be_hidden()
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "dashboard-1280.png"), full_page=True)

    # Open the force chart's table with the keyboard alone: Tab to its summary, Enter.
    page.get_by_role("link", name="Draft annual report", exact=False).focus()
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        if "Show the figures as a table: Published case studies by force" in " ".join(
            focused.split()
        ):
            break
    else:
        raise AssertionError("the force chart's summary is not reachable by Tab")
    page.keyboard.press("Enter")
    expect(table).to_be_visible()
    expect(table.get_by_role("link", name="Northamptonshire Police")).to_be_visible()
    assert_accessible(page)
    page.keyboard.press("Enter")
    expect(table).to_be_hidden()

    # On a phone: the same size of text, and nothing scrolls the page sideways.
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    assert min(page.evaluate(LABEL_SIZES)) >= 16
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_accessible(page)
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "dashboard-375.png"), full_page=True)


def test_following_page_has_secondary_buttons_that_say_what_is_followed(contributor, visit):
    page = visit("/account/following")
    buttons = page.locator(".portal-follow button")
    expect(buttons.first).to_be_visible()
    assert buttons.count() == page.locator(".portal-follow button.govuk-button--secondary").count()

    theme = "Women in sport"
    page.get_by_role("button", name=f"Follow {theme}", exact=True).focus()
    page.keyboard.press("Enter")
    stop = page.get_by_role("button", name=f"Stop following {theme}", exact=True)
    expect(stop).to_be_focused()
    row = page.get_by_role("row").filter(has_text=theme)
    expect(row.locator(".govuk-tag")).to_have_text("Following")
    assert_accessible(page)

    page.keyboard.press("Enter")  # and stop again, leaving the demo user as it was
    expect(page.get_by_role("button", name=f"Follow {theme}", exact=True)).to_be_focused()
    expect(row.locator(".govuk-tag")).to_have_count(0)
