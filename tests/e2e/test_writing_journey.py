"""The author's writing journey in Chromium: one round of errors with files kept, deleting a
draft, and changes requested seen in the portal. axe-core checks every state."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts import create_user
from portal.casestudies import services
from portal.core.rules import Content
from portal.demo import DEMO_ACCOUNTS
from portal.extensions import db
from portal.models import Evidence, Revision, Role, Theme, User

from .conftest import assert_accessible, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
PASSWORD = "writing it all down 2026"
_writers = itertools.count(1)


@pytest.fixture
def writer(page, base_url, live_app):
    """The page, signed in as a contributor of this test's own (the demo one's list stays
    as other browser tests expect it)."""
    email = f"writer{next(_writers)}.journey@northants.police.uk"
    with live_app.app_context():
        create_user(email, "Robin Ellis", "Northamptonshire Police", Role.CONTRIBUTOR, PASSWORD)
        db.session.remove()
    sign_in(page, base_url, email, PASSWORD)
    page.writer_email = email
    return page


CHECKLIST = (
    "There is no victim or personal data in it",
    "There is nothing operationally sensitive in it",
    "Everyone named or pictured has given permission",
)


def test_every_problem_shows_in_one_round_and_the_good_file_is_kept(writer, visit):
    page = writer
    title = "Allies' walk to school with the primary heads"
    visit("/case-studies/new")
    page.get_by_label("Title").fill(title)
    for theme in ("Women in sport", "Domestic abuse", "Menopause support", "Community safety"):
        page.get_by_label(theme).check()
    page.get_by_label("Day").fill("31")
    page.get_by_label("Month").fill("2")
    page.get_by_label("Year").fill("2025")
    page.get_by_label("Contact email address").fill("sam at northants")
    page.get_by_label("Attachments").set_input_files(
        [
            {"name": "diagram.svg", "mimeType": "image/svg+xml", "buffer": SVG},
            {"name": "route.png", "mimeType": "image/png", "buffer": PNG},
        ]
    )
    page.get_by_role("button", name="Submit for moderation").click()

    # One summary: format and missing fields together, the refused file named, focus on it.
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    assert page.title().startswith("Error: ")
    for message in (
        "Enter a summary",
        "Describe what you did",
        "Choose at most 3 themes",
        "Enter a real date",
        "Describe the outcomes",
        "Say what evidence of impact there is",
        "Enter an email address in the correct format",
        "The file 'diagram.svg' must be a PDF",
        "Confirm each item of the checklist",
    ):
        expect(summary.get_by_role("link", name=message)).to_be_visible()
    expect(page.locator("#saved-notice")).to_contain_text("We kept the file you chose (route.png)")
    expect(page.get_by_label("Remove route.png (2 KB)")).not_to_be_checked()
    expect(page.get_by_label("Title")).to_have_value(title)
    assert_accessible(page)

    # A link in the summary takes the keyboard to its field.
    summary.get_by_role("link", name="Enter a summary").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Summary")).to_be_focused()

    # Fixed in one go, without choosing the file again.
    page.get_by_label("Summary").fill("Officers walked children to school with their heads.")
    page.get_by_label("What you did").fill("Every Friday in March we walked the route.")
    page.get_by_label("Community safety").uncheck()
    page.get_by_label("Day").fill("28")
    page.get_by_label("Outcomes").fill("Four schools joined; two more asked to.")
    page.get_by_label("Promising").check()
    page.get_by_label("Contact email address").fill("sam.patel@northants.police.uk")
    for box in CHECKLIST:
        page.get_by_label(box).check()
    page.get_by_role("button", name="Submit for moderation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your case studies")
    row = page.locator("tr", has_text=title)
    expect(row.locator(".govuk-tag")).to_have_text("Waiting for moderation")
    assert_accessible(page)
    row.get_by_role("link", name=title).click()
    expect(page.get_by_role("link", name="route.png")).to_be_visible()
    expect(page.locator("li", has_text="route.png")).to_contain_text("(2 KB)")
    assert_accessible(page)


def test_a_draft_is_deleted_after_a_confirmation(writer, visit):
    page = writer
    title = "A half-written idea to throw away"
    visit("/case-studies/new")
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit your case study")
    expect(page.locator(".portal-status-line .govuk-tag")).to_have_text("Draft")
    page.get_by_role("link", name="Delete this draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Are you sure you want to delete ‘{title}’?"
    )
    assert_accessible(page)
    page.get_by_role("button", name="Yes, delete this draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your case studies")
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        f"Draft deleted: {title}"
    )
    expect(page.get_by_role("link", name=title)).to_have_count(0)
    assert_accessible(page)


def submitted_by(live_app, email: str, title: str) -> int:
    """A case study this person has submitted, written through the service."""
    with live_app.test_request_context():
        author = db.session.scalar(select(User).where(User.email == email))
        theme = db.session.scalar(select(Theme).where(Theme.name == "Night-time economy"))
        case_study = services.save(
            author,
            None,
            Content(
                title=title,
                summary="Volunteers walked people home from the town centre on Saturdays.",
                body="## How it ran\n\nThree volunteers and one officer, 10pm to 3am.",
                theme_ids=[theme.id],
                event_date=date(2025, 9, 6),
                outcomes="61 people walked home safely in the first month.",
                evidence=Evidence.PROMISING,
                contact_name=author.name,
                contact_email=email,
            ),
            submit=True,
            checklist=True,
        )
        case_study_id = case_study.id
        db.session.remove()
    return case_study_id


def moderator_requests_changes(live_app, case_study_id: int, comment: str) -> None:
    """The moderator's step, through the service: the moderation pages belong elsewhere."""
    with live_app.test_request_context():
        moderator = db.session.scalar(select(User).where(User.email == DEMO_ACCOUNTS[1].email))
        revision = db.session.scalars(
            select(Revision).where(Revision.case_study_id == case_study_id)
        ).all()[-1]
        services.request_changes(moderator, revision, comment)
        db.session.remove()


def test_the_author_sees_changes_requested_and_sends_it_back(writer, visit, live_app):
    page = writer
    title = "Safe walk home from the night-time economy"
    comment = "Please say how volunteers were vetted.\nA photo of the team would help."
    case_study_id = submitted_by(live_app, page.writer_email, title)
    moderator_requests_changes(live_app, case_study_id, comment)

    visit("/case-studies/mine")
    row = page.locator("tr", has_text=title)
    expect(row.locator(".govuk-tag")).to_have_text("Changes requested")
    row.get_by_role("link", name=title).click()
    banner = page.get_by_role("region", name="Changes requested")
    expect(banner).to_contain_text("A moderator asked for changes")
    expect(banner).to_contain_text("Please say how volunteers were vetted.")
    expect(page.locator(".portal-status .govuk-tag")).to_have_text("Changes requested")
    assert_accessible(page)

    banner.get_by_role("link", name="Make the changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit your case study")
    expect(page.get_by_role("region", name="Changes requested")).to_contain_text(
        "A photo of the team would help."
    )
    expect(page.locator(".portal-status-line .govuk-tag")).to_have_text("Changes requested")
    assert_accessible(page)
    page.get_by_label("Outcomes").fill(
        "61 people walked home safely in the first month. Volunteers were vetted by the force."
    )
    for box in CHECKLIST:
        page.get_by_label(box).check()
    page.get_by_role("button", name="Submit for moderation").click()
    expect(page.locator("tr", has_text=title).locator(".govuk-tag")).to_have_text(
        "Waiting for moderation"
    )
    expect(page.get_by_role("region", name="Changes requested")).to_have_count(0)
    assert_accessible(page)


def test_your_case_studies_fits_a_phone_with_the_date_under_the_title(writer, visit):
    page = writer
    visit("/case-studies/new")
    page.get_by_label("Title").fill("Night safety walks with Street Pastors in Northampton")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit your case study")
    page.set_viewport_size({"width": 320, "height": 700})
    visit("/case-studies/mine")
    region = page.get_by_role("region", name="Your case studies and their states")
    # Nothing hides to the side of the table: every column shows without scrolling.
    assert region.evaluate("el => el.scrollWidth <= el.clientWidth")
    expect(page.get_by_role("columnheader", name="Last changed")).to_be_hidden()
    expect(region.locator(".portal-narrow-only").first).to_contain_text("Last changed")
    assert_accessible(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.get_by_role("columnheader", name="Last changed")).to_be_visible()
    expect(region.locator(".portal-narrow-only").first).to_be_hidden()
