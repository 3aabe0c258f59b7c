"""A reader writes to a case study's author and records that their force adapted it."""

from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import CaseStudy, Revision

from .conftest import assert_accessible

TITLE = "Men's rugby squad as HeForShe allies for our women's team"  # South Wales Police
CONTACT = "Sergeant Rhys Pritchard"


def case_study_path(live_app) -> str:
    with live_app.app_context():
        case_study = db.session.scalar(
            select(CaseStudy).join(Revision).where(Revision.title == TITLE)
        )
        path = f"/case-studies/{case_study.id}/{case_study.slug}"
        db.session.remove()
    return path


def test_write_to_the_author_then_record_and_remove_an_adoption_without_reloading(
    contributor, visit, live_app
):
    page = contributor  # Sam Patel, Northamptonshire Police
    path = case_study_path(live_app)

    # The page names the contact and offers a way to write; the address stays private.
    visit(path)
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    assert "rhys.pritchard@" not in page.content()
    page.get_by_role("link", name=f"Contact {CONTACT}").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Contact {CONTACT}")
    assert_accessible(page)

    # A message too short is refused next to the field, keeping what was typed.
    message = page.get_by_label("Your message")
    message.fill("Hello Rhys")
    page.get_by_role("button", name="Send message").press("Enter")
    expect(page.locator("#message-error")).to_contain_text("at least 20 characters")
    expect(page.get_by_label("Your message")).to_have_value("Hello Rhys")
    assert_accessible(page)
    page.get_by_label("Your message").fill(
        "Hello Rhys, we would like to start a squad like yours. Could we talk next week?"
    )
    page.get_by_role("button", name="Send message").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Message sent")
    assert "rhys.pritchard@" not in page.content()
    assert_accessible(page)

    # Back on the case study, the adoption is recorded in place (no page load).
    page.get_by_role("link", name=f"Back to {TITLE}").click()
    section = page.locator("#adoptions")
    expect(section.get_by_role("heading", name="Adopted elsewhere")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")

    # Forgetting to choose adopted or adapted: the error appears in the section.
    section.get_by_label("A short note (optional)").fill("We run it with Northampton Saints.")
    section.get_by_role("button", name="Record adoption").press("Enter")
    expect(page.locator("#kind-error")).to_contain_text("Choose adopted or adapted")
    expect(page.get_by_label("A short note (optional)")).to_have_value(
        "We run it with Northampton Saints."
    )
    assert_accessible(page)

    page.get_by_label("Adapted", exact=True).focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Adapted", exact=True)).to_be_checked()
    page.get_by_role("button", name="Record adoption").press("Enter")
    adoption = page.locator(".portal-adoption", has_text="Northamptonshire Police")
    expect(adoption).to_contain_text("Adapted")
    expect(adoption).to_contain_text("We run it with Northampton Saints.")
    expect(page.locator("#announcer")).to_have_text(
        "Recorded: Northamptonshire Police has adapted this case study."
    )
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.get_by_role("button", name="Update the record")).to_be_focused()
    assert_accessible(page)

    # The same section on a page of its own, as it works without JavaScript.
    visit(path.rsplit("/", 1)[0] + "/adoption")
    expect(page.get_by_role("button", name="Update the record")).to_be_visible()

    visit(path)
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Remove the record for Northamptonshire Police").press("Enter")
    expect(page.locator("#announcer")).to_have_text("Northamptonshire Police is no longer listed.")
    expect(page.locator(".portal-adoption")).to_have_count(0)
    expect(page.get_by_role("heading", name="Adopted elsewhere")).to_be_focused()
    assert page.evaluate("window.stillTheSamePage") is True
    assert_accessible(page)
