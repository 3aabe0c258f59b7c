"""Search insights in a real browser: an admin reads them, changes the period by keyboard and
adds a synonym beside a search that found nothing, with axe-core on every state."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import SearchLog, Synonym, utcnow

from .conftest import assert_accessible

SEARCHES = [  # (query, results, opened, days ago, how many times)
    ("qzhf", 0, False, 2, 3),
    ("qzhf strategy", 0, False, 20, 2),
    ("night-time economy", 6, True, 1, 4),
    ("mentoring scheme", 5, False, 3, 2),
]


def add_searches(live_app) -> None:
    with live_app.app_context():
        for query, results, opened, days, times in SEARCHES:
            for _ in range(times):
                db.session.add(
                    SearchLog(
                        query_text=query,
                        results=results,
                        opened=opened,
                        created_at=utcnow() - timedelta(days=days),
                    )
                )
        db.session.commit()
        db.session.remove()


def test_an_admin_reads_the_insights_and_adds_a_synonym(admin_page, visit, live_app):
    page = admin_page
    add_searches(live_app)
    visit("/admin")  # the admin pages' own page since issue 15
    page.get_by_role("link", name="Search insights").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Search insights")
    assert_accessible(page)
    no_results = page.get_by_role("region", name="Searches with no results")
    expect(no_results.get_by_role("rowheader", name="qzhf strategy")).to_be_visible()

    # The period, by keyboard: from the last 30 days to the last 7, then Show.
    page.get_by_label("Last 30 days").focus()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_label("Last 7 days")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Show")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/search-insights?days=7")
    expect(page.get_by_label("Last 7 days")).to_be_checked()
    expect(no_results.get_by_role("rowheader", name="qzhf strategy")).to_have_count(0)
    expect(no_results.get_by_role("rowheader", name="qzhf", exact=True)).to_be_visible()
    unopened = page.get_by_role("region", name="Searches after which nobody opened a result")
    expect(unopened.get_by_role("rowheader", name="mentoring scheme")).to_be_visible()
    assert_accessible(page)

    # At 320 CSS px the tables scroll inside their regions, never the page.
    page.set_viewport_size({"width": 320, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.set_viewport_size({"width": 1280, "height": 800})

    # A refusal first: the message is next to the field, what was typed is kept.
    row = no_results.get_by_role("row", name="qzhf", exact=False).filter(
        has=page.get_by_role("rowheader", name="qzhf", exact=True)
    )
    row.get_by_text("Add a synonym").click()
    term = row.get_by_label("Short form")
    expect(term).to_have_value("qzhf")
    term.fill("qz hf")
    row.get_by_label("What it stands for").fill("quiz hall of fame")
    row.get_by_role("button", name="Add synonym").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter one word")
    refused = page.locator(".govuk-form-group--error").locator("xpath=ancestor::form[1]")
    term = refused.get_by_label("Short form")  # (other tests' searches may be listed too)
    expect(term).to_have_value("qz hf")
    expect(refused.get_by_label("What it stands for")).to_have_value("quiz hall of fame")
    assert_accessible(page)
    page.locator(".govuk-error-summary a").first.click()
    expect(term).to_be_focused()

    # Then the synonym, in one step.
    term.fill("qzhf")
    term.press("Enter")
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "Added qzhf. Searches use it now."
    )
    assert "days=7" in page.url
    expect(page.get_by_text("Already a synonym of “quiz hall of fame”")).to_be_visible()
    assert_accessible(page)
    with live_app.app_context():
        assert db.session.scalar(select(Synonym.expansion).where(Synonym.term == "qzhf")) == (
            "quiz hall of fame"
        )
        db.session.remove()
