"""The library as a person uses it, typing at human speed (150 ms a key), on a phone and a
desktop, by keyboard and without JavaScript; axe-core in every state."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import assert_accessible, settle, sign_in, track

KEY_DELAY = 150  # ms between key presses, as a person types
SITE = "HeForShe Practice Library"


def type_slowly(page, text: str) -> None:
    box = page.locator("#q")
    box.press("End")  # go on from the end of what is there
    box.press_sequentially(text, delay=KEY_DELAY)


def count_text(page) -> str:
    return page.locator(".portal-result-count").inner_text()


def cards(page):
    return page.locator("#results .portal-card")


def test_a_half_typed_word_shows_results_never_no_results(contributor, visit):
    page = visit("/library")
    page.locator("#q").click()
    type_slowly(page, "misog")
    expect(page.locator(".portal-result-count")).to_contain_text("matching misog")
    assert cards(page).count() > 0
    expect(page.get_by_text("No case studies match")).to_have_count(0)
    expect(page.locator("#results mark").first).to_be_visible()  # misogyny marked
    assert_accessible(page)
    page.wait_for_timeout(1300)  # a pause: the search is finished, as typed, then begun
    assert cards(page).count() > 0
    expect(page.locator(".portal-search-note")).to_contain_text("begin with it")
    expect(page.get_by_text("No case studies match")).to_have_count(0)
    assert_accessible(page)


def test_a_word_that_matches_nothing_says_so_only_when_finished(contributor, visit):
    page = visit("/library")
    page.locator("#q").click()
    type_slowly(page, "zzqx")
    expect(page.locator(".portal-keep-typing")).to_be_visible()
    expect(page.get_by_text("No case studies match")).to_have_count(0)
    page.locator("#q").press("Enter")
    expect(page.get_by_text("No case studies match")).to_be_visible()
    expect(page.locator(".portal-result-count")).to_contain_text("0 case studies matching zzqx")
    assert_accessible(page)


def test_one_history_entry_per_search_and_the_title_follows(contributor, visit):
    page = visit("/library")
    start = page.evaluate("history.length")
    page.locator("#q").click()
    type_slowly(page, "misogyny")
    expect(page).to_have_url(re.compile(r"/library\?q=misogyny$"))
    page.wait_for_timeout(1300)  # finished by the pause
    total = re.match(r"[\d,]+", count_text(page)).group()
    expect(page).to_have_title(f"misogyny – {total} case studies – Library – {SITE}")
    assert page.evaluate("history.length") == start + 1  # not one per letter

    page.locator("#q").fill("")
    type_slowly(page, "rugby")
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(r"/library\?q=rugby$"))
    expect(page).to_have_title(re.compile(r"^rugby – [\d,]+ case stud(y|ies) – Library"))
    page.wait_for_timeout(1300)
    assert page.evaluate("history.length") == start + 2
    page.locator("#q").press("Enter")  # the same search again adds nothing to go back through
    page.wait_for_timeout(800)
    assert page.evaluate("history.length") == start + 2

    page.go_back()
    expect(page).to_have_url(re.compile(r"/library\?q=misogyny$"))
    expect(page.locator(".portal-result-count")).to_contain_text("matching misogyny")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/library$"))
    assert_accessible(page)


def test_counts_ticks_and_tags_stay_in_step(contributor, visit):
    page = visit("/library")
    page.locator("#q").click()
    type_slowly(page, "women")
    page.wait_for_timeout(1300)
    _assert_theme_counts_are_these_results(page)

    theme = page.locator("#library-filters input[name=theme]").first
    theme_id = theme.get_attribute("id")
    theme.check()
    expect(page.locator(".portal-applied")).to_be_visible()
    expect(page.locator(f"#{theme_id}")).to_be_checked()
    _assert_theme_counts_are_these_results(page)
    assert_accessible(page)

    page.locator(".portal-remove-tag").first.focus()  # removed by its tag, by keyboard...
    page.keyboard.press("Enter")
    expect(page.locator(".portal-applied")).to_have_count(0)
    expect(page.locator(".portal-result-count")).to_be_focused()  # focus goes on from the count
    expect(page.locator(f"#{theme_id}")).not_to_be_checked()  # ...the box is unticked
    type_slowly(page, "s")  # and the next key press does not bring it back
    page.wait_for_timeout(600)
    expect(page).not_to_have_url(re.compile(r"theme="))
    expect(page.locator(".portal-applied")).to_have_count(0)
    _assert_theme_counts_are_these_results(page)
    assert_accessible(page)


def _assert_theme_counts_are_these_results(page) -> None:
    """Each theme's count is how many of the results shown carry it (all on one page)."""
    total = int(re.match(r"[\d,]+", count_text(page)).group().replace(",", ""))
    assert cards(page).count() == total  # the demo library fits on one page
    tags = page.locator("#results .portal-card .govuk-tag--grey").all_inner_texts()
    labels = page.locator("#library-filters input[name=theme] + label").all_text_contents()
    for label in labels:  # (text content: some may wait behind "more")
        name, count = re.match(r"(.*) \((\d+)\)$", " ".join(label.split())).groups()
        assert tags.count(name) == int(count), (name, count, tags)


def test_a_keyboard_user_can_skip_the_filters(contributor, visit):
    page = visit("/library?q=women")
    page.locator("#q").focus()
    page.keyboard.press("Tab")  # the search button
    page.keyboard.press("Tab")
    skip = page.locator(".portal-skip-results")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown when focused
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#results') !== null")


def test_no_fragment_wrapper_is_ever_visible(contributor, visit):
    page = visit("/library?q=rugby")
    assert page.locator("hx-partial").count() == 0
    assert "found" not in page.locator("main").inner_text().replace("#announcer", "")
    page.locator("#q").click()
    type_slowly(page, " allies")
    page.wait_for_timeout(1300)
    visible = page.locator("#library-panel").inner_text()
    assert "case study found" not in visible and "case studies found" not in visible
    assert page.locator("#library-panel title, #library-panel hx-partial").count() == 0


@pytest.fixture
def phone(browser, base_url):
    from portal.demo import DEMO_ACCOUNTS

    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    track(page)
    account = DEMO_ACCOUNTS[0]
    sign_in(page, base_url, account.email, account.password)
    yield page
    context.close()


def test_on_a_phone_results_come_first_and_filters_wait_behind_a_button(phone, base_url):
    page = phone
    page.goto(base_url + "/library?q=women")
    settle(page)
    toggle = page.locator(".portal-filter-toggle")
    expect(toggle).to_be_visible()
    expect(page.locator("#library-filters")).to_be_hidden()
    assert cards(page).first.bounding_box()["y"] < 812  # the first result on the first screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_accessible(page)

    toggle.focus()  # by keyboard
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#library-filters")).to_be_visible()
    page.locator("#library-filters input[name=theme]").first.focus()
    page.keyboard.press("Space")
    expect(page.locator(".portal-filter-toggle")).to_contain_text("(1 applied)")
    expect(page.locator("#library-filters")).to_be_visible()  # still open after the update
    assert page.evaluate("document.activeElement.name") == "theme"  # focus kept
    assert_accessible(page)
    page.locator(".portal-filter-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#library-filters")).to_be_hidden()
    expect(page.locator(".portal-filter-toggle")).to_have_attribute("aria-expanded", "false")

    page.locator(".portal-filter-toggle").click()  # open again, then back to the results
    show = page.locator(".portal-show-results")
    expect(show).to_contain_text("case stud")
    show.click()
    expect(page.locator("#library-filters")).to_be_hidden()
    expect(page.locator(".portal-result-count")).to_be_focused()
    assert page.locator(".portal-result-count").bounding_box()["y"] < 812


def test_without_javascript_the_library_is_a_form_with_results_first_on_a_phone(browser, base_url):
    from portal.demo import DEMO_ACCOUNTS

    context = browser.new_context(viewport={"width": 320, "height": 700}, java_script_enabled=False)
    page = context.new_page()
    account = DEMO_ACCOUNTS[0]
    page.goto(base_url + "/auth/login")
    page.get_by_label("Email address").fill(account.email)
    page.get_by_label("Password", exact=True).fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.goto(base_url + "/library")
    page.get_by_label("Search case studies").fill("misogyny")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"q=misogyny"))
    expect(page.locator(".portal-result-count")).to_contain_text("matching misogyny")
    assert page.locator("hx-partial").count() == 0
    expect(page.locator(".portal-filter-toggle")).to_be_hidden()
    # The click only waits for the new page to start: measure once its styles have loaded.
    page.wait_for_load_state("load")
    filters = page.locator("#library-filters").bounding_box()
    assert cards(page).first.bounding_box()["y"] < filters["y"]  # results before filters
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.locator("#library-filters input[name=theme]").first.check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".portal-applied")).to_be_visible()
    context.close()  # (axe needs JavaScript: the same markup is checked above with it on)


def test_a_misspelling_shows_the_close_spelling_and_the_words_typed_stay_one_link_away(
    contributor, visit
):
    page = visit("/library")
    page.locator("#q").click()
    type_slowly(page, "menopuase")
    expect(page.locator(".portal-keep-typing")).to_be_visible()  # never corrected while typing
    page.locator("#q").press("Enter")
    note = page.locator(".portal-spelled")
    expect(note).to_contain_text("Showing results for menopause.")
    expect(page.locator(".portal-result-count")).to_contain_text("matching menopause")
    assert cards(page).count() > 0
    assert_accessible(page)
    # By keyboard: the link searches exactly what was typed, and offers the spelling.
    page.locator(".portal-as-typed").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".portal-result-count")).to_contain_text(
        "0 case studies matching menopuase"
    )
    expect(page.get_by_text("Did you mean")).to_be_visible()
    expect(page.locator(".portal-spelled")).to_have_count(0)
    assert re.search(r"as_typed=menopuase", page.url)
    assert_accessible(page)
