"""Journeys through the public pages in a real browser, checked with axe-core."""

import re

from playwright.sync_api import expect

from .conftest import assert_accessible


def test_home_page_is_accessible_and_its_skip_link_works_by_keyboard(contributor, visit):
    page = visit("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("gender equality")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#main-content")).to_be_focused()


def test_search_from_the_home_page_by_keyboard_alone(contributor, visit):
    page = visit("/")
    search = page.get_by_label("Search case studies")
    search.focus()
    page.keyboard.type("misogyny")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/library\?q=misogyny"))
    expect(page.locator(".portal-result-count")).to_contain_text("matching misogyny")
    assert_accessible(page)


def test_a_case_study_opens_from_the_home_page(contributor, visit):
    page = visit("/")
    first = page.locator(".portal-card__title a").first
    title = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_role("heading", name="About this case study")).to_be_visible()
    assert_accessible(page)


def test_library_is_accessible(contributor, visit):
    page = visit("/library")
    expect(page.get_by_role("heading", level=1)).to_have_text("Library")
    assert page.locator(".portal-card").count() >= 12


def test_not_found_page_is_accessible(contributor, visit):
    page = visit("/no-such-page", expect_status=404)
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")


def test_vendored_scripts_run_under_the_content_security_policy(contributor, visit):
    page = visit("/")
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.version").startswith("4.")
    assert "govuk-frontend-supported" in page.evaluate("document.body.className")


def test_the_accessibility_privacy_cookies_and_your_data_pages_pass_axe(contributor, visit):
    for path, heading in (
        ("/accessibility", "Accessibility statement for the HeForShe Practice Library"),
        ("/privacy", "Privacy notice"),
        ("/cookies", "Cookies"),
        ("/account/data", "Your data"),
    ):
        page = visit(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download your data").click()
    assert download.value.suggested_filename.startswith("heforshe-library-data-")
