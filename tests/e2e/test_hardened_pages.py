"""Pages the hardening changed, in a real browser with axe: the comparison of two versions
(words marked, stretches folded, a field too large to compare) and finishing an account
that somebody else may have started."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pyotp
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts import create_user
from portal.auth import services as auth_services
from portal.auth import tokens
from portal.casestudies import services
from portal.core import rules
from portal.extensions import db
from portal.models import CaseStudy, Evidence, Revision, RevisionState, Role, Theme, User

from .conftest import assert_accessible, sign_in
from .test_case_study_journey import make_moderator

SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")


def screenshots(page, name: str) -> None:
    """Look at the page at a phone's width and a desktop's (saved with PORTAL_SCREENSHOTS)."""
    for width in (320, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        assert_accessible(page)
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{width}.png"), full_page=True)


def edited_case_study(live_app) -> int:
    """A published case study and its edit: a word changed in a long body, lessons rewritten."""
    body = "\n\n".join(f"Paragraph {n}: the rugby club's allies met on day {n}." for n in range(40))
    with live_app.test_request_context():
        author = create_user(
            "casey.jones@kent.police.uk",
            "Casey Jones",
            "Kent",
            Role.CONTRIBUTOR,
            "a long and quiet river",
        )
        theme = db.session.scalar(select(Theme))
        content = rules.Content(
            title="Rugby allies for the women's team",
            summary="Men's rugby players stood up as allies of the force's women's team.",
            body=body,
            theme_ids=[theme.id],
            partners=["Kent Rugby Club"],
            outcomes="40 players signed the pledge.",
            lessons="Start small.",
            contact_name="Casey Jones",
            contact_email="casey.jones@kent.police.uk",
        )
        content.event_date, content.evidence = date(2025, 9, 6), Evidence.PROMISING
        case_study = services.save(author, None, content, submit=True, checklist=True)
        moderator = db.session.scalar(select(User).where(User.role == Role.MODERATOR))
        services.approve(moderator, services.working(case_study))
        content.body = body.replace("met on day 20.", "met on day 20 and trained together.")
        content.lessons = "\n".join(f"L{n}" for n in range(1600))  # past what anyone reads
        services.save(author, case_study, content, submit=True, checklist=True)
        revision_id = db.session.scalar(
            select(Revision.id).where(
                Revision.case_study_id == case_study.id, Revision.state == RevisionState.SUBMITTED
            )
        )
        db.session.remove()
    return revision_id


def test_a_moderator_reads_what_changed_word_by_word(page, visit, live_app, base_url):
    revision_id = edited_case_study(live_app)
    password, secret = make_moderator(live_app, "avery.stone@npcc.police.uk")
    sign_in(page, base_url, "avery.stone@npcc.police.uk", password)
    page.get_by_label("Enter your security code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
    visit(f"/moderation/{revision_id}")
    changed = page.locator("ins .portal-diff__word").first
    expect(changed).to_have_text("and trained together")
    expect(page.get_by_text(re.compile(r"… \d+ unchanged lines …")).first).to_be_visible()
    expect(page.get_by_text("Too large to compare line by line").first).to_be_visible()
    screenshots(page, "review-comparison")
    after = page.locator("summary", has_text="Lessons learned: after").first
    after.focus()
    page.keyboard.press("Enter")  # opens by keyboard, like any details element
    expect(page.get_by_text("L1599").first).to_be_visible()
    assert_accessible(page)


def test_the_owner_finishes_an_account_somebody_else_started(page, visit, live_app, base_url):
    with live_app.test_request_context():
        auth_services.register(
            "Mallory Mallet", "robin.owner@kent.police.uk", "Cumbria", "the intruder's words"
        )
        user = db.session.scalar(select(User).where(User.email == "robin.owner@kent.police.uk"))
        link = f"/auth/reset/{tokens.make_token(user, tokens.RESET)}"
        db.session.remove()
    visit(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Finish creating your account")
    expect(page.get_by_label("Full name")).to_have_value("")
    screenshots(page, "finish-account")
    # By keyboard alone: the first field, then each in turn, then the button.
    page.get_by_label("Full name").focus()
    page.keyboard.type("Robin Owner", delay=20)
    page.keyboard.press("Tab")
    page.keyboard.type("Kent Police", delay=20)
    page.keyboard.press("Tab")
    page.keyboard.type("my own long passphrase", delay=20)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your password has been changed")).to_be_visible()
    assert_accessible(page)
    with live_app.app_context():
        user = db.session.scalar(select(User).where(User.email == "robin.owner@kent.police.uk"))
        assert (user.name, user.force.name) == ("Robin Owner", "Kent Police")
        assert db.session.scalar(select(CaseStudy).where(CaseStudy.author_id == user.id)) is None
        db.session.remove()
