"""Accounts and admin in a real browser (issue 15): confirming an email signs in, an admin
filters the audit log (and mistypes a date), and the staff navigation fits one line."""

from __future__ import annotations

import email
import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from portal.demo import DEMO_ACCOUNTS
from portal.extensions import db
from portal.jobs import run_queued
from portal.models import User

from .conftest import assert_accessible, sign_in

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 800}


def link_sent_to(outbox: Path, to: str) -> str:
    for path in sorted(outbox.glob("*.eml"), reverse=True):  # after the worker ran
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == to:
            return re.search(r"https?://\S+", message.get_payload(decode=True).decode()).group(0)
    raise AssertionError(f"no email to {to}")


def free_the_codes(live_app) -> None:
    """Let the current TOTP code of the demo staff be used again (by this test or the next)."""
    with live_app.app_context():
        emails = [a.email for a in DEMO_ACCOUNTS if a.totp_secret]
        db.session.execute(update(User).where(User.email.in_(emails)).values(totp_last_step=None))
        db.session.commit()
        db.session.remove()


@pytest.fixture(autouse=True)
def _codes_left_free(live_app):
    """Other browser tests sign the demo staff in with the current code, without freeing it."""
    yield
    free_the_codes(live_app)


def sign_in_with_code(page, live_app, base_url, role: str) -> None:
    account = next(a for a in DEMO_ACCOUNTS if a.role.value == role)
    free_the_codes(live_app)
    sign_in(page, base_url, account.email, account.password)
    page.get_by_label("Enter your security code").fill(pyotp.TOTP(account.totp_secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(1)


def test_confirming_an_email_signs_the_person_in(page, visit, live_app):
    address = "morgan.hale@kent.police.uk"
    password = "a lighthouse keeps its own time"
    visit("/auth/register")
    page.get_by_label("Full name").fill("Morgan Hale")
    page.get_by_label("Work email address").fill(address)
    page.get_by_label("Force or organisation").fill("Kent")  # an alias is enough
    page.get_by_label("Create a password").fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    run_queued(live_app)  # what the worker beside the server does
    link = link_sent_to(Path(live_app.config["OUTBOX_PATH"]), address)
    visit(link.replace(live_app.config["BASE_URL"], ""))
    page.get_by_label("Password", exact=True).fill("not the right one at all")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.locator("#password-error")).to_contain_text("Enter the password you chose")
    assert_accessible(page)

    page.get_by_label("Password", exact=True).fill(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(
        "Your email address is confirmed and you are signed in"
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("gender equality")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(1)
    assert_accessible(page)


def nav_rows(page) -> set[int]:
    """The distinct tops of the navigation's items: one value when they share a row."""
    return set(
        page.eval_on_selector_all(
            ".govuk-service-navigation__item",
            "items => items.map(item => Math.round(item.getBoundingClientRect().top))",
        )
    )


@pytest.mark.parametrize("role", ["moderator", "admin"])
def test_the_staff_navigation_fits_one_line_at_1280_px_and_folds_on_a_phone(
    role, page, visit, live_app, base_url
):
    page.set_viewport_size(DESKTOP)
    sign_in_with_code(page, live_app, base_url, role)
    staff_item = "Admin" if role == "admin" else "Moderation"
    nav = page.get_by_role("navigation", name="Main menu")
    visit("/moderation")
    expect(nav.get_by_role("link", name=staff_item, exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    assert len(nav_rows(page)) == 1, nav_rows(page)
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()

    page.set_viewport_size(PHONE)
    menu = page.get_by_role("button", name="Menu")
    expect(nav.get_by_role("link", name=staff_item, exact=True)).to_be_hidden()
    menu.click()
    expect(nav.get_by_role("link", name=staff_item, exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)


def test_an_admin_filters_the_audit_log(page, visit, live_app, base_url):
    page.set_viewport_size(DESKTOP)
    sign_in_with_code(page, live_app, base_url, "admin")
    visit("/admin")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(page.get_by_role("cell", name="Signed in").first).to_be_visible()
    assert_accessible(page)

    # A mistyped date: the error sits next to the field, what was typed stays.
    page.get_by_label("Event").select_option(label="Signed in")
    page.get_by_label("Person").fill("jo.richards@npcc.police.uk")
    start = page.get_by_role("group", name="Start date")
    start.get_by_label("Day").fill("31")
    start.get_by_label("Month").fill("2")
    start.get_by_label("Year").fill("2026")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_title(re.compile(r"^Error: Audit log"))
    expect(page.locator("#start_day-error")).to_contain_text("Start date must be a real date")
    expect(page.get_by_label("Person")).to_have_value("jo.richards@npcc.police.uk")
    assert_accessible(page)
    page.locator(".govuk-error-summary__list a").first.click()
    expect(start.get_by_label("Day")).to_be_focused()

    # Fixed, by keyboard: the log narrows to the moderator's sign-ins, in UK time.
    start.get_by_label("Day").fill("1")
    start.get_by_label("Month").fill("1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="matching")).to_contain_text(
        "matching Signed in, Jo Richards, from 1 January 2026"
    )
    rows = page.locator("table.portal-audit tbody tr")
    expect(rows.first).to_contain_text("Signed in")
    expect(rows.first.get_by_role("link", name="Jo Richards")).to_be_visible()
    expect(rows.first).to_contain_text("Password and security code")
    assert "UTC" not in rows.first.inner_text()
    assert_accessible(page)

    # The same log on a phone: each event is a block, nothing scrolls sideways.
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)
    rows.first.get_by_role("link", name="Jo Richards").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jo Richards")
