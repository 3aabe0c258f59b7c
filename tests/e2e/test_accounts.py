"""Account journeys in a real browser: register, confirm, sign in, set up 2FA, sign out."""

import email
import re
from pathlib import Path

import pyotp
from playwright.sync_api import expect

from portal.jobs import run_queued

from .conftest import assert_accessible


def latest_link(outbox: Path, to: str) -> str:
    """Return the first link in the newest email sent to `to`."""
    for path in sorted(outbox.glob("*.eml"), reverse=True):  # after the worker ran
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == to:
            return re.search(r"https?://\S+", message.get_payload(decode=True).decode()).group(0)
    raise AssertionError(f"no email to {to}")


def test_register_confirm_sign_in_set_up_two_factor_and_sign_out(page, visit, live_app, base_url):
    address = "riley.ward@kent.police.uk"
    password = "seven hills and a quiet river"

    visit("/auth/register")
    page.get_by_label("Full name").fill("Riley Ward")
    page.get_by_label("Work email address").fill(address)
    page.get_by_label("Force or organisation").fill("Kent Police")
    page.get_by_label("Create a password").fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert_accessible(page)

    run_queued(live_app)  # what the worker beside the server does
    link = latest_link(Path(live_app.config["OUTBOX_PATH"]), address)
    visit(link.replace(live_app.config["BASE_URL"], ""))
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Confirm my email address").click()
    # Since issue 15, confirming signs in: the password is not typed a third time.
    expect(page.get_by_text("Your email address is confirmed and you are signed")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("gender equality")
    assert_accessible(page)

    visit("/account")
    page.get_by_role("link", name="Set up two-factor authentication").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor authentication")
    assert page.locator("svg.portal-qr").count() == 1
    assert_accessible(page)
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_label("Your password").fill(password)
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    assert page.locator("#recovery-codes li").count() == 10
    assert_accessible(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    assert_accessible(page)

    # Signing in again now asks for the code.
    page.get_by_label("Email address").fill(address)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    assert_accessible(page)
    page.get_by_label("Enter your security code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter a correct code")
    assert_accessible(page)


def test_registration_errors_show_next_to_the_fields_and_keep_what_was_typed(page, visit):
    visit("/auth/register")
    page.get_by_label("Full name").fill("Riley Ward")
    page.get_by_label("Work email address").fill("riley@gmail.com")
    page.get_by_label("Force or organisation").fill("Gotham")
    page.get_by_label("Create a password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page.locator("#email-error")).to_contain_text("must end in police.uk")
    expect(page.locator("#force-error")).to_contain_text("Choose your force")
    expect(page.locator("#password-error")).to_contain_text("at least 12 characters")
    expect(page.get_by_label("Full name")).to_have_value("Riley Ward")
    expect(page.get_by_label("Work email address")).to_have_value("riley@gmail.com")
    assert_accessible(page)
    page.locator(".govuk-error-summary__list a").first.click()
    expect(page.get_by_label("Work email address")).to_be_focused()


def test_closing_an_account_by_keyboard(browser, live_app, base_url):
    from portal.accounts import create_user
    from portal.extensions import db
    from portal.models import Role

    from .conftest import settle, track

    password = "leaving the library today 7"
    with live_app.app_context():
        create_user("leaving.soon@kent.police.uk", "Leaving Soon", "Kent Police",
                    Role.CONTRIBUTOR, password)  # fmt: skip
        db.session.remove()
    context = browser.new_context()
    page = context.new_page()
    track(page)
    try:
        page.goto(base_url + "/auth/login")
        page.get_by_label("Email address").fill("leaving.soon@kent.police.uk")
        page.get_by_label("Password", exact=True).fill(password)
        page.keyboard.press("Enter")
        settle(page)
        page.goto(base_url + "/account")
        page.get_by_role("link", name="Close your account").focus()
        page.keyboard.press("Enter")
        settle(page)
        expect(page.get_by_role("heading", level=1)).to_have_text("Close your account")
        assert_accessible(page)
        page.get_by_role("button", name="Close my account").click()
        settle(page)
        expect(
            page.get_by_text("Type the account's email address to confirm").first
        ).to_be_visible()
        assert_accessible(page)
        expect(page.get_by_text("Enter your password").first).to_be_visible()
        page.get_by_label("To confirm, type the account's email address").fill(
            "leaving.soon@kent.police.uk"
        )
        page.get_by_label("Your password").fill(password)
        page.keyboard.press("Enter")
        settle(page)
        expect(page.get_by_text("Your account is closed")).to_be_visible()
        assert_accessible(page)
    finally:
        context.close()
