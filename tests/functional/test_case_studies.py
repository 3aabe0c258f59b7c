"""Writing, submitting, moderating and publishing case studies, and who may see what."""

import html
import re

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    CaseStudy,
    ModerationEvent,
    Revision,
    RevisionState,
)

from ..conftest import Auth, csrf_from
from ..records import outbox
from ..writing import (
    PDF,
    PNG,
    complete,
    decide,
    only_case_study,
    post_case_study,
    seen_on,
    states,
    submitted,
    theme_ids,
)

# Writing


def test_a_draft_can_be_saved_with_just_a_title(app, author):
    response = post_case_study(author, {"title": "Half an idea"}, action="save")
    assert response.status_code == 303
    case_study = only_case_study(app)
    assert states(app, case_study.id) == [RevisionState.DRAFT]
    assert case_study.author_id is not None
    assert "Half an idea" in author.get("/case-studies/mine").get_data(as_text=True)


def test_submitting_something_incomplete_saves_the_draft_and_shows_each_problem(app, author):
    response = post_case_study(
        author,
        complete(
            app,
            summary="",
            themes=[],
            no_personal_data=None,
            event_day="",
            event_month="",
            event_year="",
        ),
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Your draft has been saved" in page
    for field_id in ("summary-error", "themes-error", "event_day-error", "no_personal_data-error"):
        assert f'id="{field_id}"' in page
    assert 'value="Walk and talk for Movember"' in page  # nothing typed is lost
    assert states(app, only_case_study(app).id) == [RevisionState.DRAFT]


@pytest.mark.parametrize(
    ("changes", "error_id"),
    [
        ({"summary": "x" * 301}, "summary-error"),
        ({"contact_email": "not an email"}, "contact_email-error"),
        ({"event_day": "31", "event_month": "2", "event_year": "2025"}, "event_day-error"),
        ({"event_day": "1", "event_month": "", "event_year": "2025"}, "event_day-error"),
        ({"themes": None}, None),
    ],
)
def test_invalid_input_is_shown_next_to_the_field_and_nothing_is_written(
    app, author, changes, error_id
):
    data = complete(app, **changes)
    if changes.get("themes", 1) is None:
        data["themes"] = theme_ids(
            app, "Women in sport", "Domestic abuse", "Menopause support", "Community safety"
        )
        error_id = "themes-error"
    response = post_case_study(author, data)
    assert response.status_code == 400
    assert f'id="{error_id}"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseStudy)) == 0


def test_posted_fields_a_user_may_not_set_are_ignored(app, author):
    post_case_study(
        author,
        complete(app, state="published", author_id="999", force_id="1", published_revision_id="1"),
    )
    case_study = only_case_study(app)
    assert states(app, case_study.id) == [RevisionState.SUBMITTED]
    with app.app_context():
        stored = db.session.get(CaseStudy, case_study.id)
        assert stored.author.email == "ali.khan@kent.police.uk"
        assert stored.force.name == "Kent Police"


def test_the_preview_renders_markdown_exactly_and_safely(app, author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    response = author.post(
        "/case-studies/preview",
        headers={"HX-Request": "true", "X-CSRFToken": token},
        data={"body": "## Hi\n\n<script>alert(1)</script> [x](javascript:alert(1))"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h2>Hi</h2>" in html and "<script>" not in html and 'href="javascript' not in html
    assert "HX-Request" in response.headers["Vary"]


def test_the_preview_works_without_javascript_and_keeps_the_form(app, author):
    response = post_case_study(author, complete(app, body="**bold move**"), action="preview")
    page = response.get_data(as_text=True)
    assert "<strong>bold move</strong>" in page and 'value="Walk and talk for Movember"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseStudy)) == 0


def test_the_preview_needs_a_signed_in_user_and_a_csrf_token(client, author):
    assert client.post("/case-studies/preview", data={"body": "x"}).status_code in (302, 400)
    assert author.post("/case-studies/preview", data={"body": "x"}).status_code == 400


# Submitting and moderating


def test_submitting_emails_each_moderator_once_but_not_the_author(
    app, author, moderator, second_moderator
):
    submitted(app, author)
    recipients = sorted(m["To"] for m in outbox(app) if m["Subject"].startswith("To moderate"))
    assert recipients == ["mo.derator@npcc.police.uk", "sec.ond@npcc.police.uk"]


def test_the_queue_lists_waiting_case_studies_oldest_first_with_filters(app, author, moderator):
    post_case_study(author, complete(app, title="First in"))
    post_case_study(
        author, complete(app, title="Second in", themes=theme_ids(app, "Women in sport"))
    )
    page = moderator.get("/moderation").get_data(as_text=True)
    assert page.index("First in") < page.index("Second in")
    assert "2 case studies waiting" in page and "Kent Police (2)" in page
    filtered = moderator.get("/moderation?theme=women-in-sport").get_data(as_text=True)
    assert "Second in" in filtered and "First in" not in filtered
    assert "Ali Khan" in page


def test_approval_publishes_it_and_tells_the_author(app, author, moderator, colleague):
    case_id, revision_id = submitted(app, author)
    assert colleague.get(f"/case-studies/{case_id}").status_code == 404
    response = decide(moderator, revision_id, "approve")
    assert response.status_code == 303
    assert states(app, case_id) == [RevisionState.PUBLISHED]
    assert "Walk and talk for Movember" in colleague.get("/").get_data(as_text=True)
    assert colleague.get(f"/case-studies/{case_id}", follow_redirects=True).status_code == 200
    to_author = [m for m in outbox(app) if m["To"] == "ali.khan@kent.police.uk"]
    assert to_author[-1]["Subject"] == "Published: Walk and talk for Movember"
    assert only_case_study(app).first_published_at is not None


def test_requesting_changes_needs_a_comment_and_the_author_gets_it(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    refused = decide(moderator, revision_id, "changes", comment="  ")
    assert refused.status_code == 400 and states(app, case_id) == [RevisionState.SUBMITTED]
    assert 'id="comment-error"' in refused.get_data(as_text=True)
    decide(moderator, revision_id, "changes", comment="Please add the number of walkers.")
    assert states(app, case_id) == [RevisionState.DRAFT]
    message = [m for m in outbox(app) if m["To"] == "ali.khan@kent.police.uk"][-1]
    assert "Please add the number of walkers." in message.get_payload(decode=True).decode()
    history = author.get(f"/case-studies/{case_id}/history").get_data(as_text=True)
    assert "Please add the number of walkers." in history


def test_the_author_fixes_and_resubmits_and_sees_what_changed(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "changes", comment="Add figures.")
    post_case_study(
        author,
        complete(app, outcomes="230 walkers; 41 asked for support; £12,000 raised."),
        case_study_id=case_id,
    )
    assert states(app, case_id) == [RevisionState.SUBMITTED]
    review = moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    assert "Compared with the previous submission" in review
    # One changed paragraph, the words removed from it and added to it marked inside it.
    (line,) = changed_lines(review)
    assert text_of(line) == (
        "Changed: 230 walkers; 41 [removed] people [end removed] asked for support"
        "[added] ; £12,000 raised [end added]."
    )
    assert '<strong class="portal-diff__word">people</strong>' in line
    assert '<strong class="portal-diff__word">; £12,000 raised</strong>' in line


def diff_lines(page: str) -> tuple[list[str], list[str]]:
    """Return the markup of the removed and the added lines of a comparison."""
    return (
        re.findall(r'<del class="portal-diff">(.*?)</del>', page, re.S),
        re.findall(r'<ins class="portal-diff">(.*?)</ins>', page, re.S),
    )


def changed_lines(page: str) -> list[str]:
    """Return the markup of the changed lines (one each, with their changes inside)."""
    return re.findall(
        r'<span class="portal-diff portal-diff--changed">(.*?)</span>\s*\n', page, re.S
    )


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_rejection_needs_a_reason_and_the_author_sees_it(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "reject", comment="")
    assert states(app, case_id) == [RevisionState.SUBMITTED]
    decide(moderator, revision_id, "reject", comment="This names a victim.")
    assert states(app, case_id) == [RevisionState.REJECTED]
    page = author.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert ">Rejected</strong>" in page and "This names a victim." in page  # tag and banner
    assert "This names a victim." in author.get(f"/case-studies/{case_id}/history").get_data(
        as_text=True
    )


def test_a_moderator_can_never_decide_on_their_own_case_study(app, moderator):
    post_case_study(moderator, complete(app))
    case_study = only_case_study(app)
    with app.app_context():
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_study.id)
        )
    for choice in ("approve", "changes", "reject"):
        decide(moderator, revision_id, choice, comment="self")
    assert states(app, case_study.id) == [RevisionState.SUBMITTED]
    assert "another moderator must decide" in moderator.get(f"/moderation/{revision_id}").get_data(
        as_text=True
    )


def test_the_second_of_two_moderators_is_told_who_decided_first(
    app, author, moderator, second_moderator
):
    case_id, revision_id = submitted(app, author)
    second_page = second_moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    assert decide(moderator, revision_id, "approve").status_code == 303
    late = second_moderator.post(
        f"/moderation/{revision_id}",
        data={
            "decision": "reject",
            "comment": "No",
            "seen": seen_on(second_page),
            "csrf_token": csrf_from(second_page),
        },
    )
    assert late.status_code == 400
    assert "already approved by Mo Derator" in late.get_data(as_text=True)
    assert states(app, case_id) == [RevisionState.PUBLISHED]
    with app.app_context():
        decisions = db.session.scalar(
            select(func.count())
            .select_from(ModerationEvent)
            .where(ModerationEvent.action != "submitted")
        )
    assert decisions == 1


def test_contributors_cannot_decide(app, author, colleague):
    _, revision_id = submitted(app, author)
    token = csrf_from(colleague.get("/").get_data(as_text=True))
    for path, data in (
        (f"/moderation/{revision_id}", {"decision": "changes", "comment": "No"}),
        (f"/moderation/{revision_id}/approve", {}),
    ):
        response = colleague.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403


def test_the_author_can_withdraw_but_no_one_else(app, author, colleague):
    case_id, _ = submitted(app, author)
    token = csrf_from(colleague.get("/").get_data(as_text=True))
    assert (
        colleague.post(f"/case-studies/{case_id}/withdraw", data={"csrf_token": token}).status_code
        == 404
    )
    assert states(app, case_id) == [RevisionState.SUBMITTED]
    token = csrf_from(
        author.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    )
    author.post(f"/case-studies/{case_id}/withdraw", data={"csrf_token": token})
    assert states(app, case_id) == [RevisionState.DRAFT]


def test_a_submitted_case_study_cannot_be_edited_until_withdrawn(app, author):
    case_id, _ = submitted(app, author)
    response = author.get(f"/case-studies/{case_id}/edit")
    assert response.status_code == 303


# Editing a published case study


def test_an_edit_goes_through_moderation_while_the_published_version_stays_live(
    app, author, moderator, colleague
):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    post_case_study(
        author, complete(app, title="Walk and talk for Movember, year two"), case_study_id=case_id
    )
    assert states(app, case_id) == [RevisionState.PUBLISHED, RevisionState.SUBMITTED]
    live = colleague.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert "year two" not in live
    with app.app_context():
        new_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_id, Revision.number == 2)
        )
    review = moderator.get(f"/moderation/{new_id}").get_data(as_text=True)
    assert "Compared with the published version" in review
    decide(moderator, new_id, "approve")
    assert states(app, case_id) == [RevisionState.SUPERSEDED, RevisionState.PUBLISHED]
    assert "year two" in colleague.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(
        as_text=True
    )


def test_a_rejected_edit_leaves_the_published_version_live(app, author, moderator, colleague):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    post_case_study(author, complete(app, title="A worse title"), case_study_id=case_id)
    with app.app_context():
        new_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_id, Revision.number == 2)
        )
    decide(moderator, new_id, "reject", comment="Keep the old title.")
    assert states(app, case_id) == [RevisionState.PUBLISHED, RevisionState.REJECTED]
    assert "Walk and talk" in colleague.get(
        f"/case-studies/{case_id}", follow_redirects=True
    ).get_data(as_text=True)


def test_archiving_takes_it_out_of_the_library_and_keeps_the_record(
    app, author, moderator, colleague
):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    token = csrf_from(colleague.get("/").get_data(as_text=True))
    assert (
        colleague.post(f"/case-studies/{case_id}/archive", data={"csrf_token": token}).status_code
        == 303
    )
    assert states(app, case_id) == [RevisionState.PUBLISHED]  # a colleague may not archive
    token = csrf_from(
        author.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    )
    author.post(f"/case-studies/{case_id}/archive", data={"csrf_token": token})
    assert states(app, case_id) == [RevisionState.ARCHIVED]
    assert colleague.get(f"/case-studies/{case_id}").status_code == 404
    assert "Walk and talk" not in colleague.get("/library").get_data(as_text=True)
    assert author.get(f"/case-studies/{case_id}/history").status_code == 200


# Who may see what


@pytest.mark.parametrize("htmx", [False, True])
def test_unpublished_case_studies_are_404_to_everyone_but_author_and_moderators(
    app, author, moderator, colleague, htmx
):
    case_id, _ = submitted(app, author)
    headers = {"HX-Request": "true"} if htmx else {}
    for path in (
        f"/case-studies/{case_id}",
        f"/case-studies/{case_id}/history",
        f"/case-studies/{case_id}/edit",
    ):
        assert colleague.get(path, headers=headers).status_code == 404, path
    assert author.get(f"/case-studies/{case_id}", follow_redirects=True).status_code == 200
    assert moderator.get(f"/case-studies/{case_id}/history").status_code == 200


def test_a_moderator_cannot_edit_someone_elses_case_study(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    assert moderator.get(f"/case-studies/{case_id}/edit").status_code == 403


# Attachments


def test_attachments_can_be_removed_from_a_draft(app, author):
    post_case_study(author, complete(app), action="save", files=[("a.pdf", PDF), ("b.png", PNG)])
    case_study = only_case_study(app)
    with app.app_context():
        first = db.session.scalars(select(Revision)).one().attachments[0].id
    post_case_study(
        author,
        {**complete(app), "remove_attachment": str(first)},
        action="save",
        case_study_id=case_study.id,
    )
    with app.app_context():
        assert [a.filename for a in db.session.scalars(select(Revision)).one().attachments] == [
            "b.png"
        ]


# Inline validation


def test_a_field_is_checked_when_the_writer_leaves_it(app, author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    bad = author.post(
        "/case-studies/validate",
        headers=headers,
        data={"field": "contact_email", "contact_email": "ali at kent"},
    )
    fragment = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "<html" not in fragment
    assert 'id="contact_email-error"' in fragment and 'value="ali at kent"' in fragment
    good = author.post(
        "/case-studies/validate",
        headers=headers,
        data={"field": "contact_email", "contact_email": "ali.khan@kent.police.uk"},
    )
    assert "govuk-error-message" not in good.get_data(as_text=True)
    empty_title = author.post(
        "/case-studies/validate", headers=headers, data={"field": "title", "title": " "}
    )
    assert "Enter a title" in empty_title.get_data(as_text=True)


def test_inline_validation_refuses_unknown_fields_and_missing_tokens(author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    assert (
        author.post(
            "/case-studies/validate", headers={"X-CSRFToken": token}, data={"field": "csrf_token"}
        ).status_code
        == 400
    )
    assert (
        author.post("/case-studies/validate", data={"field": "title", "title": "x"}).status_code
        == 400
    )


# Found in review


def test_a_moderator_without_2fa_has_no_moderator_powers_anywhere(app, author, make_user):
    case_id, revision_id = submitted(app, author)
    client = app.test_client()
    Auth(client).login(make_user("moderator", mfa=False))
    assert client.get(f"/case-studies/{case_id}").status_code == 404
    assert client.get(f"/case-studies/{case_id}/history").status_code == 404


def test_removing_a_published_file_while_editing_removes_its_copy_and_the_limit_holds(
    app, author, moderator
):
    post_case_study(author, complete(app), files=[(f"f{n}.pdf", PDF) for n in range(5)])
    case_study = only_case_study(app)
    with app.app_context():
        revision = db.session.scalars(select(Revision)).one()
        revision_id, first = revision.id, revision.attachments[0].id
    decide(moderator, revision_id, "approve")
    swapped = post_case_study(
        author,
        {**complete(app), "remove_attachment": str(first)},
        action="save",
        case_study_id=case_study.id,
        files=[("extra.pdf", PDF)],
    )
    assert swapped.status_code == 303
    names = ["extra.pdf", "f1.pdf", "f2.pdf", "f3.pdf", "f4.pdf"]
    assert draft_files(app) == names
    # A sixth file is refused by name; the draft is saved without it and the limit holds.
    over = post_case_study(
        author,
        {**complete(app), "remove_attachment": "999999"},
        action="save",
        case_study_id=case_study.id,
        files=[("sixth.pdf", PDF)],
    )
    page = over.get_data(as_text=True)
    assert over.status_code == 400 and "at most 5 attachments" in page and "sixth.pdf" in page
    assert states(app, case_study.id) == [RevisionState.PUBLISHED, RevisionState.DRAFT]
    assert draft_files(app) == names


def draft_files(app) -> list[str]:
    with app.app_context():
        draft = db.session.scalars(select(Revision).where(Revision.number == 2)).one()
        return sorted(a.filename for a in draft.attachments)


@pytest.mark.parametrize("value", ["²", "①", "٣"])
def test_digits_from_other_scripts_are_an_error_not_a_crash(app, author, value):
    response = post_case_study(author, complete(app, event_day=value), action="save")
    assert response.status_code == 400
    assert 'id="event_day-error"' in response.get_data(as_text=True)
    assert (
        post_case_study(
            author, {**complete(app), "remove_attachment": value}, action="save"
        ).status_code
        == 303
    )


def test_partner_names_from_drafts_are_never_suggested(app, author, colleague, moderator):
    post_case_study(author, complete(app, **{"partners-0": "Operation Nightjar"}), action="save")
    assert "Operation Nightjar" not in colleague.get("/case-studies/new").get_data(as_text=True)
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    assert "Movember" in colleague.get("/case-studies/new").get_data(as_text=True)


def test_a_too_long_partner_name_is_shown_next_to_its_box(app, author):
    response = post_case_study(author, complete(app, **{"partners-1": "x" * 161}), action="save")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="partners-1-error"' in page and 'href="#partners-1"' in page


def test_a_too_long_comment_is_an_error_that_keeps_the_comment(app, author, moderator):
    _, revision_id = submitted(app, author)
    response = decide(moderator, revision_id, "changes", comment="Please " + "x" * 5000)
    assert response.status_code == 400
    assert "Please xxxx" in response.get_data(as_text=True)


def test_after_a_rejected_edit_the_next_edit_is_compared_with_the_rejected_submission(
    app, author, moderator
):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    post_case_study(
        author, complete(app, outcomes="First try at new outcomes."), case_study_id=case_id
    )
    with app.app_context():
        second = db.session.scalar(select(Revision.id).where(Revision.number == 2))
    decide(moderator, second, "reject", comment="Not like this.")
    post_case_study(
        author, complete(app, outcomes="Second try at new outcomes."), case_study_id=case_id
    )
    with app.app_context():
        third = db.session.scalar(select(Revision.id).where(Revision.number == 3))
    review = moderator.get(f"/moderation/{third}").get_data(as_text=True)
    assert "Compared with the previous submission" in review
    assert (
        "Changed: [removed] First [end removed] [added] Second [end added] try at new outcomes."
        in [text_of(line) for line in changed_lines(review)]
    )


def test_deciding_on_a_draft_says_it_is_not_waiting(app, author, moderator):
    post_case_study(author, complete(app), action="save")
    with app.app_context():
        revision_id = db.session.scalar(select(Revision.id))
    response = decide(moderator, revision_id, "approve")
    assert "not waiting for a decision" in response.get_data(as_text=True)


def test_public_library_readers_can_download_published_attachments(tmp_path, jsonl):
    from portal.cli import init_db

    from ..conftest import make_app

    app = make_app(tmp_path / "public", PUBLIC_LIBRARY=True)
    with app.app_context():
        init_db()
    from portal.models import Attachment

    with app.app_context():
        from portal.casestudies.importer import import_case_studies

        from ..records import case_study_line

        import_case_studies(jsonl([case_study_line()]))
        revision = db.session.scalars(select(Revision)).one()
        revision.attachments.append(
            Attachment(
                filename="a.pdf",
                content_type="application/pdf",
                size=len(PDF),
                sha256="x",
                data=PDF,
            )
        )
        db.session.commit()
        attachment_id = revision.attachments[0].id
    assert app.test_client().get(f"/case-studies/1/attachments/{attachment_id}").status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_the_author_is_told_when_a_moderator_archives_their_case_study(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    token = csrf_from(
        moderator.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    )
    moderator.post(f"/case-studies/{case_id}/archive", data={"csrf_token": token})
    assert outbox(app)[-1]["Subject"] == "Archived: Walk and talk for Movember"


@pytest.mark.parametrize("field", ["title", "contact_name"])
def test_a_line_break_in_a_one_line_field_is_refused_and_kept(app, author, field):
    # Titles and names go into email subjects and feed titles.
    value = "Walk and talk\r\nBcc: everyone@example.com"
    response = post_case_study(author, complete(app, **{field: value}), action="save")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Remove the line breaks and control characters from this text" in html
    assert "Bcc: everyone@example.com" in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseStudy)) == 0


def test_partner_suggestions_are_worked_out_again_only_after_a_publication(
    app, author, colleague, moderator
):
    from sqlalchemy import event

    grouped: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        if "count(DISTINCT" in statement or "count(distinct" in statement:
            grouped.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        colleague.get("/case-studies/new")
        colleague.get("/case-studies/new")
        assert len(grouped) == 1  # the second form reused the list
        _, revision_id = submitted(app, author)
        colleague.get("/case-studies/new")
        assert len(grouped) == 1  # a submission publishes nothing
        decide(moderator, revision_id, "approve")
        assert "Movember" in colleague.get("/case-studies/new").get_data(as_text=True)
        assert len(grouped) == 2
    finally:
        event.remove(engine, "before_cursor_execute", record)
