"""The library in a real browser: live results, facets, filter tags, Back; axe in each state."""

import re

from playwright.sync_api import expect

from .conftest import assert_accessible


def test_type_filter_remove_and_go_back(contributor, visit):
    page = visit("/library")
    loads = []
    page.on("load", lambda: loads.append(page.url))

    page.get_by_label("Search case studies").fill("misogyny")
    expect(page).to_have_url(re.compile(r"/library\?q=misogyny"))
    expect(page.locator(".portal-result-count")).to_contain_text("matching misogyny")
    expect(page.locator("#announcer")).to_contain_text("found")
    expect(page.locator("#results mark").first).to_be_visible()
    assert loads == []  # updated in place, no page load
    assert_accessible(page)
    first_count = page.locator(".portal-result-count").inner_text()

    page.locator(".portal-facet").first.locator("input").first.check()
    expect(page.locator(".portal-applied")).to_be_visible()
    expect(page).to_have_url(re.compile(r"theme="))
    assert_accessible(page)

    page.locator(".portal-remove-tag").first.click()
    expect(page.locator(".portal-applied")).to_have_count(0)
    expect(page).not_to_have_url(re.compile(r"theme="))
    assert_accessible(page)

    page.go_back()
    expect(page).to_have_url(re.compile(r"theme="))
    expect(page.locator(".portal-applied")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"q=misogyny(&sort=relevance)?$"))
    expect(page.locator(".portal-result-count")).to_have_text(first_count)
    assert_accessible(page)
    assert loads == []


def test_a_misspelling_shows_the_right_word_and_offers_it_beside_the_words_typed(
    contributor, visit
):
    page = visit("/library?q=movmber")
    expect(page.locator(".portal-spelled")).to_contain_text("Showing results for movember")
    expect(page.locator(".portal-result-count")).to_contain_text("matching movember")
    assert_accessible(page)
    page.get_by_role("link", name="Search instead for movmber").click()
    expect(page.locator(".portal-result-count")).to_contain_text("matching movmber")
    page.get_by_role("link", name="movember").click()
    expect(page.locator(".portal-result-count")).to_contain_text("matching movember")
    assert_accessible(page)
