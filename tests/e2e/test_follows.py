"""Following a theme in a real browser: htmx swaps the button, the live region announces it."""

import re

from playwright.sync_api import expect

from .conftest import assert_accessible


def test_follow_and_unfollow_a_theme_with_the_keyboard(contributor, visit):
    page = visit("/account/following")
    loads = []
    page.on("load", lambda: loads.append(page.url))

    follow = page.get_by_role("button", name="Follow Challenging misogyny", exact=True)
    follow.focus()
    page.keyboard.press("Enter")

    unfollow = page.get_by_role("button", name="Stop following Challenging misogyny", exact=True)
    expect(unfollow).to_be_visible()
    expect(page.locator("#announcer")).to_have_text("You are now following Challenging misogyny.")
    expect(unfollow).to_be_focused()  # the swap keeps keyboard focus on the button
    assert loads == []  # no page load
    assert_accessible(page)

    page.keyboard.press("Space")
    expect(follow).to_be_visible()
    expect(page.locator("#announcer")).to_have_text(
        "You are no longer following Challenging misogyny."
    )
    assert loads == []
    assert_accessible(page)

    # The change was saved, not just shown: a fresh page agrees.
    page.reload()
    expect(page).to_have_url(re.compile(r"/account/following$"))
    expect(follow).to_be_visible()
