"""The mail queue in a real browser: an admin finds what needs attention, filters by
keyboard and resends a failed email with the keyboard alone; axe-core on every state, and
the page at a phone's width and a desktop's (saved with PORTAL_SCREENSHOTS)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, insert, select

from portal.extensions import db
from portal.jobs import run_queued
from portal.models import AuditEvent, MailMessage, MailState, utcnow

from .conftest import ADMIN, assert_accessible, free_the_code

SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")
SECRET = "https://heforshe.invalid/auth/reset/E2E-SECRET-RESET-TOKEN"
REFUSED = "ola.nowak@kent.police.uk"
# (to, subject, state, tries, minutes ago, the server's answer)
MESSAGES = [
    ("sam.patel@northants.police.uk", "Your case study was approved", "sent", 1, 95, ""),
    ("jo.richards@npcc.police.uk", "A case study is waiting for moderation", "sent", 1, 90, ""),
    (
        REFUSED,
        "Reset your password",
        "failed",
        1,
        60,
        "the mail server refused the recipient: 550 5.1.1 <ola.nowak@kent.police.uk>: "
        "Recipient address rejected: User unknown",
    ),
    (
        "riley.ward@kent.police.uk",
        "Someone asked about your case study",
        "unconfirmed",
        1,
        40,
        "the worker stopped while the server was answering: it was probably delivered, "
        "so it is not sent again by itself",
    ),
    (
        "casey.jones@kent.police.uk",
        "Confirm your email address",
        "waiting",
        2,
        5,
        "the mail server refused the recipient: 451 4.7.1 Greylisted, try again later",
    ),
]


@pytest.fixture
def mail(live_app):
    """This test's emails in the shared database (no delivery queued); removed after it."""
    now = utcnow()
    with live_app.app_context():
        ids = {}
        for n, (to, subject, state, tries, minutes, answer) in enumerate(MESSAGES):
            recorded = now - timedelta(minutes=minutes)
            ids[to] = db.session.scalar(
                insert(MailMessage)
                .values(
                    message_id=f"<e2e-admin-mail-{n}@heforshe.portal>",
                    to=to,
                    subject=subject,
                    body=f"Follow this link: {SECRET}\n",
                    state=MailState(state),
                    attempts=tries,
                    created_at=recorded,
                    next_attempt_at=now + timedelta(minutes=25) if state == "waiting" else recorded,
                    sent_at=recorded + timedelta(seconds=2) if state == "sent" else None,
                    last_error=answer,
                )
                .returning(MailMessage.id)
            )
        db.session.commit()
        db.session.remove()
    yield ids
    with live_app.app_context():
        db.session.execute(
            delete(AuditEvent).where(
                AuditEvent.target_type == "mail_message", AuditEvent.target_id.in_(ids.values())
            )
        )
        db.session.execute(delete(MailMessage).where(MailMessage.id.in_(ids.values())))
        db.session.commit()
        db.session.remove()


def screenshots(page, name: str) -> None:
    """Check the page at a phone's width and a desktop's; save both with PORTAL_SCREENSHOTS."""
    for width in (320, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        assert_accessible(page)
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{width}.png"), full_page=True)


def test_an_admin_resends_a_failed_email_by_keyboard(admin_page, visit, live_app, mail):
    page = admin_page
    visit("/admin")
    expect(page.get_by_text("2 need attention")).to_be_visible()
    page.get_by_role("link", name="Mail", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mail")
    assert_accessible(page)
    expect(page.get_by_text("Message bodies are never shown here")).to_be_visible()
    table = page.get_by_role("region", name="Emails, newest first")
    expect(table.get_by_role("row", name=REFUSED)).to_contain_text("550 5.1.1")
    assert "E2E-SECRET" not in page.content()
    screenshots(page, "admin-mail")

    # The filter, by keyboard: choose Needs attention, then Tab to Filter and press Enter.
    page.get_by_label("State").focus()
    page.get_by_label("State").select_option("attention")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Filter")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/mail?state=attention")
    expect(page.locator(".portal-result-count")).to_contain_text("Needs attention")
    assert_accessible(page)

    # Resend the refused email with the keyboard: its button names whom it goes to.
    button = page.get_by_role("button", name=f"Resend the email to {REFUSED}: Reset your password")
    button.focus()
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/mail?state=attention")
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text(f"The email to {REFUSED} is back in the queue")
    expect(button).to_have_count(0)  # waiting now: no longer needs attention
    assert_accessible(page)

    run_queued(live_app)  # what the worker beside the server does
    with live_app.app_context():
        resent = db.session.get(MailMessage, mail[REFUSED])
        assert resent.state == MailState.SENT and resent.attempts == 1
        db.session.remove()
    visit("/admin/mail?state=sent")
    row = page.get_by_role("region", name="Emails, newest first").get_by_role("row", name=REFUSED)
    expect(row).to_contain_text("Sent")


def test_the_mail_page_without_javascript(browser, base_url, live_app, mail):
    """The filter and the Resend buttons are plain forms: they work with scripts off."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        free_the_code(live_app)
        page.goto(base_url + "/auth/login")  # not sign_in: axe-core needs scripts
        page.get_by_label("Email address").fill(ADMIN.email)
        page.get_by_label("Password", exact=True).fill(ADMIN.password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Enter your security code").fill(pyotp.TOTP(ADMIN.totp_secret).now())
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("button", name="Sign out")).to_have_count(1)
        page.goto(base_url + "/admin/mail")
        page.get_by_label("State").select_option("unconfirmed")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**/admin/mail?state=unconfirmed")
        region = page.get_by_role("region", name="Emails, newest first")
        expect(region.get_by_role("row")).to_have_count(2)  # the header and one email
        region.get_by_role("button", name="Resend the email to riley.ward").click()
        page.wait_for_url("**/admin/mail?state=unconfirmed")
        expect(
            page.get_by_text("The email to riley.ward@kent.police.uk is back in the queue")
        ).to_be_visible()
        with live_app.app_context():
            state = db.session.scalar(
                select(MailMessage.state).where(MailMessage.id == mail["riley.ward@kent.police.uk"])
            )
            assert state == MailState.WAITING
            db.session.remove()
    finally:
        context.close()
        free_the_code(live_app)
