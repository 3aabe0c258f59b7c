"""The moderator's journey in Chromium, with axe on every state: the queue only lists; the
review page shows what was asked last time, the words that changed and the photos; a
decision is taken there (an error stays on that page), and approving goes through a check
page. Another contributor cannot open a photo waiting for review."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import Path

import pyotp
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts import create_user
from portal.casestudies import services
from portal.core import rules
from portal.demo import DEMO_ACCOUNTS
from portal.extensions import db
from portal.models import Attachment, Evidence, Revision, RevisionState, Role, Theme, User

from ..functional.test_moderation_journey import png
from .conftest import assert_accessible, sign_in
from .test_case_study_journey import make_moderator

SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")
BODY = (
    "## What we did\n\nMen from the force's rugby club trained with the women's team "
    "every Tuesday, and talked about being allies on and off the pitch.\n\n"
    "## Who came\n\nPlayers, coaches and two sergeants."
)


def resubmitted_with_a_photo(live_app, title: str, email: str) -> tuple[int, int, int]:
    """A case study sent back once, then changed and submitted again, with a photo."""
    photo = png(480, 300)
    with live_app.test_request_context():
        author = create_user(email, "Priya Shah", "Kent", Role.CONTRIBUTOR, "a kettle of fish 42")
        content = rules.Content(
            title=title,
            summary="Men's rugby players trained with the women's team as allies.",
            body=BODY,
            theme_ids=[db.session.scalar(select(Theme.id).order_by(Theme.position))],
            partners=["Kent Rugby Club"],
            outcomes="28 players took part.",
            lessons="Ask the women's team what they want first.",
            contact_name="Priya Shah",
            contact_email=email,
        )
        content.event_date, content.evidence = date(2025, 9, 6), Evidence.PROMISING
        image = Attachment(
            filename="training-night.png",
            content_type="image/png",
            size=len(photo),
            sha256=hashlib.sha256(photo).hexdigest(),
            data=photo,
        )
        case_study = services.save(
            author, None, content, attachments=[image], submit=True, checklist=True
        )
        first = db.session.scalar(select(User).where(User.email == DEMO_ACCOUNTS[1].email))
        services.request_changes(
            first,
            services.working(case_study),
            "Please say who paid for the kit, and how many women's team players came.",
        )
        content.body = BODY.replace(
            "every Tuesday, and", "every Tuesday (the club paid for the kit), and"
        ).replace("Players, coaches and two", "Players, 19 of the women's team, coaches and three")
        services.save(author, case_study, content, submit=True, checklist=True)
        revision = db.session.scalar(
            select(Revision).where(
                Revision.case_study_id == case_study.id, Revision.state == RevisionState.SUBMITTED
            )
        )
        ids = revision.id, case_study.id, revision.attachments[0].id
        db.session.remove()
    return ids


def signed_in_moderator(page, live_app, base_url, email: str) -> None:
    password, secret = make_moderator(live_app, email)
    sign_in(page, base_url, email, password)
    page.get_by_label("Enter your security code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("gender equality")


def look(page, name: str, widths=(375, 1280)) -> None:
    """Check the page at a phone's width and a desktop's (saved with PORTAL_SCREENSHOTS)."""
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert_accessible(page)
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{width}.png"), full_page=True)


def test_a_moderator_reads_then_decides_on_the_review_page_and_checks_before_publishing(
    page, visit, live_app, base_url
):
    title = "Rugby allies train with the women's team"
    revision_id, case_id, _ = resubmitted_with_a_photo(live_app, title, "priya.shah@kent.police.uk")
    signed_in_moderator(page, live_app, base_url, "dana.webb@npcc.police.uk")

    # The queue lists and links; nothing can be decided from it.
    visit("/moderation")
    item = page.locator(".portal-card", has_text=title)
    expect(item).to_contain_text("submitted today (")
    main = page.locator("main")
    expect(main.locator("form[method=post], textarea")).to_have_count(0)
    expect(main.get_by_role("button", name=re.compile("Approve|Reject|Request"))).to_have_count(0)
    item.get_by_role("link", name=title).click()

    # The review page: the last request, the words that changed, the photo, then the decision.
    review_url = f"{base_url}/moderation/{revision_id}"
    expect(page).to_have_url(review_url)
    asked = page.locator(".govuk-inset-text", has_text="asked on")
    expect(asked).to_contain_text("Jo Richards asked on")
    expect(asked).to_contain_text("Please say who paid for the kit")
    added = page.locator(".govuk-summary-list ins.portal-diff__ins")
    expect(added.filter(has_text="(the club paid for the kit)")).to_have_count(1)
    expect(added.filter(has_text="19 of the women's team,")).to_have_count(1)
    expect(added.first).to_contain_text("[added]")  # said to screen readers, not colour alone
    removed = page.locator(".govuk-summary-list del.portal-diff__del")
    expect(removed).to_have_count(1)
    expect(removed).to_have_text("[removed] two [end removed]")
    photo = page.get_by_role("img", name=re.compile("training-night.png"))
    expect(photo).to_be_visible()
    assert photo.evaluate("image => image.complete && image.naturalWidth") == 480
    look(page, "review")

    # Request changes without saying what: an error summary on the same page.
    page.get_by_label("Request changes").check()
    page.get_by_role("button", name="Continue").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Say what needs to change")
    expect(summary).to_be_focused()
    assert page.title().startswith("Error: Review: ")
    assert page.url == review_url
    look(page, "review-error", widths=(1280,))
    summary.get_by_role("link", name="Say what needs to change").click()
    expect(page.get_by_label("Comment for the author")).to_be_focused()

    # Approve, by keyboard: a check page says what will be published and by whom.
    page.get_by_label("Approve and publish").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Comment for the author")).to_be_focused()
    page.keyboard.type("Thank you: the photo shows how it ran.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Continue")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check before you publish")
    expect(page.locator(".govuk-summary-list")).to_contain_text("Priya Shah, Kent Police")
    expect(page.locator(".govuk-summary-list")).to_contain_text("You (Morgan Reed)")
    expect(page.get_by_label("Note for the author (optional)")).to_have_value(
        "Thank you: the photo shows how it ran."
    )
    expect(page.get_by_role("link", name="Go back to the review")).to_be_visible()
    look(page, "approve-check")
    with live_app.app_context():
        assert db.session.get(Revision, revision_id).state == RevisionState.SUBMITTED
        db.session.remove()
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Moderation queue")
    expect(page.get_by_text(f"Approved and published: {title}")).to_be_visible()
    expect(page.locator(".portal-card", has_text=title)).to_have_count(0)
    assert_accessible(page)
    with live_app.app_context():
        assert db.session.get(Revision, revision_id).state == RevisionState.PUBLISHED
        db.session.remove()


def test_another_contributor_gets_404_for_a_photo_waiting_for_review(
    page, visit, live_app, base_url
):
    _, case_id, attachment_id = resubmitted_with_a_photo(
        live_app, "Allies on the touchline", "omar.farah@kent.police.uk"
    )
    contributor = DEMO_ACCOUNTS[0]  # someone else, in another force
    sign_in(page, base_url, contributor.email, contributor.password)
    visit(f"/case-studies/{case_id}/attachments/{attachment_id}", expect_status=404)
    expect(page.get_by_role("heading", level=1)).to_contain_text("not found", ignore_case=True)
