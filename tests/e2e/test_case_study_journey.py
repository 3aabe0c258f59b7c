"""The whole journey of a case study, by two people in two browsers, checked with axe-core."""

import pyotp
from playwright.sync_api import expect

from portal.accounts import create_user
from portal.auth.services import enable_mfa
from portal.extensions import db
from portal.models import Role

from .conftest import assert_accessible, sign_in


def make_moderator(live_app, email: str) -> tuple[str, str]:
    """A moderator of this test's own, so no TOTP code is shared with another test."""
    password, secret = "moderating with great care", pyotp.random_base32()
    with live_app.app_context():
        user = create_user(email, "Morgan Reed", "NPCC", Role.MODERATOR, password)
        user.totp_pending_secret = secret
        enable_mfa(user, password, pyotp.TOTP(secret).now())
        user.totp_last_step = None  # free the current code for the sign-in below
        db.session.commit()
        db.session.remove()
    return password, secret


def test_write_preview_submit_request_changes_fix_approve_and_publish(
    page, other_page, visit, live_app, base_url
):
    from portal.demo import DEMO_ACCOUNTS

    contributor = DEMO_ACCOUNTS[0]
    title = "Dads' football and healthy relationships"

    # The contributor writes, with a live preview, and submits.
    sign_in(page, base_url, contributor.email, contributor.password)
    visit("/case-studies/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Summary").fill(
        "A weekly football session for dads, with a talk on healthy relationships."
    )
    page.get_by_label("What you did").fill(
        "## How it ran\n\nEvery **Saturday** at the leisure centre."
    )
    expect(page.locator("#preview h2")).to_have_text("How it ran")
    expect(page.locator("#preview strong")).to_have_text("Saturday")
    assert_accessible(page)
    page.get_by_label("Men's health and wellbeing").check()
    page.get_by_label("Education and young people").check()
    page.get_by_label("Partner 1").fill("Town Football Club")
    page.get_by_label("Day").fill("14")
    page.get_by_label("Month").fill("6")
    page.get_by_label("Year").fill("2025")
    page.get_by_label("Outcomes").fill("32 dads came; 12 joined the ally network.")
    page.get_by_label("Promising").check()
    page.get_by_label("There is no victim or personal data in it").check()
    page.get_by_label("There is nothing operationally sensitive in it").check()
    page.get_by_label("Everyone named or pictured has given permission").check()
    page.get_by_role("button", name="Submit for moderation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your case studies")
    expect(page.get_by_text("Waiting for moderation")).to_be_visible()
    assert_accessible(page)

    # A moderator, signed in with a code, opens it from the queue and asks for changes.
    password, secret = make_moderator(live_app, "morgan.reed@npcc.police.uk")
    moderator = other_page
    sign_in(moderator, base_url, "morgan.reed@npcc.police.uk", password)
    moderator.get_by_label("Enter your security code").fill(pyotp.TOTP(secret).now())
    moderator.get_by_role("button", name="Continue").click()
    visit("/moderation", on=moderator)
    moderator.get_by_role("link", name=title).click()
    moderator.get_by_label("Request changes").check()
    moderator.get_by_label("Comment for the author").fill("Please add how the club helped.")
    moderator.get_by_role("button", name="Continue").click()
    expect(moderator.get_by_text(f"Sent back to the author for changes: {title}")).to_be_visible()
    assert_accessible(moderator)

    # The contributor sees the comment, fixes the case study and submits it again.
    visit("/case-studies/mine")
    page.get_by_role("link", name=title).click()
    page.get_by_role("link", name="History and decisions").click()
    expect(page.get_by_text("Please add how the club helped.")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Back to the case study").click()
    page.get_by_role("link", name="Edit the draft").click()
    page.get_by_label("Outcomes").fill(
        "32 dads came; 12 joined the ally network. The club lent its pitch and coaches."
    )
    for box in (
        "There is no victim or personal data in it",
        "There is nothing operationally sensitive in it",
        "Everyone named or pictured has given permission",
    ):
        page.get_by_label(box).check()
    page.get_by_role("button", name="Submit for moderation").click()
    expect(page.get_by_text("Waiting for moderation")).to_be_visible()

    # The moderator reviews what changed and approves.
    visit("/moderation", on=moderator)
    moderator.get_by_role("link", name=title).click()
    expect(moderator.get_by_text("Compared with the previous submission")).to_be_visible()
    assert_accessible(moderator)
    moderator.get_by_label("Approve and publish").check()
    moderator.get_by_role("button", name="Continue").click()
    expect(moderator.get_by_role("heading", level=1)).to_have_text("Check before you publish")
    moderator.get_by_role("button", name="Approve and publish").click()
    expect(moderator.get_by_text(f"Approved and published: {title}")).to_be_visible()
    assert_accessible(moderator)

    # It is on the home page for everyone.
    visit("/")
    expect(page.get_by_role("link", name=title)).to_be_visible()
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_text("The club lent its pitch and coaches.")).to_be_visible()
    assert_accessible(page)


def test_a_mistake_shows_as_soon_as_the_writer_leaves_the_field(page, visit, base_url):
    from portal.demo import DEMO_ACCOUNTS

    contributor = DEMO_ACCOUNTS[0]
    sign_in(page, base_url, contributor.email, contributor.password)
    visit("/case-studies/new")
    page.get_by_label("Contact email address").fill("sam at northants")
    page.keyboard.press("Tab")
    expect(page.locator("#contact_email-error")).to_contain_text(
        "Enter an email address in the correct format"
    )
    expect(page.get_by_label("Contact email address")).to_have_value("sam at northants")
    assert_accessible(page)
    page.get_by_label("Contact email address").fill("sam.patel@northants.police.uk")
    page.keyboard.press("Tab")
    expect(page.locator("#contact_email-error")).to_have_count(0)
