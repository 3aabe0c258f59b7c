"""Admin, moderation and account pages in a real browser, each checked with axe-core."""

import pyotp
from playwright.sync_api import expect

from portal.demo import DEMO_ACCOUNTS

from .conftest import assert_accessible, sign_in


def sign_in_with_code(page, base_url, account):
    sign_in(page, base_url, account.email, account.password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    page.get_by_label("Enter your security code").fill(pyotp.TOTP(account.totp_secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("gender equality")


def test_admin_pages_by_keyboard_and_with_axe(page, visit, base_url):
    admin = next(a for a in DEMO_ACCOUNTS if a.role.value == "admin")
    sign_in_with_code(page, base_url, admin)
    visit("/admin/users")
    page.get_by_label("Search by name or email").fill("patel")
    page.keyboard.press("Enter")
    expect(page.locator(".portal-result-count")).to_contain_text("1 user matching")
    assert_accessible(page)
    page.get_by_role("link", name="Sam Patel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sam Patel")
    assert_accessible(page)
    page.get_by_label("Force or organisation").fill("Gotham")
    page.get_by_role("button", name="Change force").click()
    expect(page.locator("#force-error")).to_contain_text("Choose your force from the list")
    assert_accessible(page)
    visit("/admin/audit")
    # Events are named in plain English since issue 15 (the code was auth.login).
    expect(page.get_by_role("cell", name="Signed in").first).to_be_visible()


def test_moderator_queue_and_account_pages(page, visit, base_url):
    moderator = next(a for a in DEMO_ACCOUNTS if a.role.value == "moderator")
    sign_in_with_code(page, base_url, moderator)
    page.get_by_role("link", name="Moderation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Moderation queue")
    assert_accessible(page)
    for path in ("/account", "/account/profile", "/account/password"):
        visit(path)


def test_signed_out_account_pages(visit):
    for path in ("/auth/reset", "/auth/confirm/resend", "/auth/check-email"):
        visit(path)
    visit("/auth/reset/not-a-token", expect_status=400)
