"""The author's writing journey: every problem in one round, files kept, drafts deleted,
where a case study stands, the receipt, and the links out of a case study page."""

from __future__ import annotations

import html
import io
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import delete, func, select

from portal.casestudies import services
from portal.casestudies.attachments import human_size
from portal.core import rules
from portal.extensions import db
from portal.models import (
    Attachment,
    AuditEvent,
    CaseStudy,
    ModerationEvent,
    Revision,
    RevisionState,
    User,
)

from ..conftest import csrf_from, served
from ..records import case_study_line, outbox
from ..writing import (
    PDF,
    PNG,
    complete,
    only_case_study,
    post_case_study,
    states,
    submitted,
    theme_ids,
)

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
FOUR_THEMES = ("Women in sport", "Domestic abuse", "Menopause support", "Community safety")


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def summary_items(page: str) -> list[tuple[str, str]]:
    """Return (link target, message) of each entry of the error summary, in order."""
    summary = page.split('govuk-error-summary__list"', 1)[1].split("</ul>", 1)[0]
    return [
        (target, html.unescape(text))
        for target, text in re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', summary)
    ]


def title_of(page: str) -> str:
    return html.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1)).strip()


def files_of(app, case_study_id: int) -> list[str]:
    with app.app_context():
        return sorted(
            db.session.scalars(
                select(Attachment.filename)
                .join(Revision)
                .where(Revision.case_study_id == case_study_id)
            )
        )


def as_user(app, email_address: str) -> User:
    return db.session.scalar(select(User).where(User.email == email_address))


def request_changes(app, case_study_id: int, comment: str) -> None:
    """A moderator asks for changes, through the service (the moderation pages are not ours)."""
    with app.test_request_context():
        revision = db.session.scalars(
            select(Revision).where(Revision.case_study_id == case_study_id)
        ).all()[-1]
        services.request_changes(as_user(app, "mo.derator@npcc.police.uk"), revision, comment)
        db.session.remove()


def reject(app, case_study_id: int, reason: str) -> None:
    with app.test_request_context():
        revision = db.session.scalars(
            select(Revision).where(Revision.case_study_id == case_study_id)
        ).all()[-1]
        services.reject(as_user(app, "mo.derator@npcc.police.uk"), revision, reason)
        db.session.remove()


# 1. Every problem in one round


def test_a_submission_lists_every_problem_at_once_in_the_order_of_the_page(app, author):
    data = complete(
        app,
        summary="",
        body="",
        outcomes="",
        evidence=None,
        no_personal_data=None,
        themes=theme_ids(app, *FOUR_THEMES),
        event_day="31",
        event_month="2",
        event_year="2025",
        contact_email="not an email",
    )
    response = post_case_study(author, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert title_of(page).startswith("Error: Write a case study")
    assert summary_items(page) == [
        ("summary", "Enter a summary"),
        ("body", "Describe what you did"),
        ("themes-1", rules.TOO_MANY_THEMES),
        ("event_day", f"Enter a real date between {rules.EARLIEST_YEAR} and {rules.LATEST_YEAR}"),
        ("outcomes", "Describe the outcomes"),
        ("evidence-1", "Say what evidence of impact there is"),
        ("contact_email", rules.EMAIL_PROBLEM),
        ("no_personal_data", services.CHECKLIST_PROBLEM),
    ]
    for field in ("summary", "body", "themes", "event_day", "outcomes", "evidence"):
        assert f'id="{field}-error"' in page  # each next to its field too
    assert 'id="contact_email-error"' in page and 'id="no_personal_data-error"' in page
    assert 'value="not an email"' in page  # nothing typed is lost
    assert count(app, CaseStudy) == 0  # a form that breaks a rule writes nothing


def test_saving_a_draft_lists_only_what_is_wrong_not_what_is_missing(app, author):
    response = post_case_study(
        author, {"title": "Half an idea", "contact_email": "nope"}, action="save"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert summary_items(page) == [("contact_email", rules.EMAIL_PROBLEM)]


def test_a_form_with_unsaved_changes_offers_no_link_away_from_them(app, author):
    post_case_study(author, {"title": "Half an idea"}, action="save")
    case_id = only_case_study(app).id
    clean = author.get(f"/case-studies/{case_id}/edit").get_data(as_text=True)
    assert "View the case study page" in clean
    refused = post_case_study(
        author,
        {"title": "Half an idea, better", "contact_email": "nope"},
        action="save",
        case_study_id=case_id,
    )
    assert refused.status_code == 400
    assert "View the case study page" not in refused.get_data(as_text=True)


def test_a_missing_date_is_not_listed_twice_beside_a_wrong_one(app, author):
    response = post_case_study(author, complete(app, event_day="", event_month="3"))
    items = summary_items(response.get_data(as_text=True))
    assert [target for target, _ in items] == ["event_day"]
    assert items[0][1] == "Enter the day, month and year, for example 8 3 2025"


def test_a_complete_form_with_only_missing_fields_saves_the_draft_and_lists_all(app, author):
    response = post_case_study(author, complete(app, summary="", body="", permission=None))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Your draft has been saved" in page
    assert [target for target, _ in summary_items(page)] == ["summary", "body", "no_personal_data"]
    assert states(app, only_case_study(app).id) == [RevisionState.DRAFT]


# 2. Files: each refusal named, good files kept, sizes people can read


def test_each_refused_file_is_named_and_the_good_one_is_kept_with_the_draft(app, author):
    response = post_case_study(
        author,
        complete(app),
        files=[("diagram.svg", SVG), ("blank.pdf", b""), ("chart.png", PNG)],
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    messages = [message for target, message in summary_items(page) if target == "attachments"]
    assert messages == [
        "The file 'diagram.svg' must be a PDF, PNG, JPEG, Word (DOCX), PowerPoint (PPTX) or "
        "Excel (XLSX) file",
        "The file 'blank.pdf' is empty",
    ]
    assert page.count('id="attachments-error"') == 1  # one message holding both, one id
    case_study = only_case_study(app)
    assert files_of(app, case_study.id) == ["chart.png"]
    # Content that keeps every rule is saved; the submission waits for the author's choice.
    assert states(app, case_study.id) == [RevisionState.DRAFT]
    assert "Your draft has been saved, without the files named below" in page
    assert f"Remove chart.png ({len(PNG)} bytes)" in page
    assert f'action="/case-studies/{case_study.id}/edit"' in page


def test_good_files_survive_a_form_with_mistakes_and_need_not_be_chosen_again(app, author):
    response = post_case_study(
        author,
        complete(app, contact_email="not an email", summary=""),
        files=[("diagram.svg", SVG), ("chart.png", PNG), ("report.pdf", PDF)],
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    targets = [target for target, _ in summary_items(page)]
    assert targets == ["summary", "contact_email", "attachments"]
    case_study = only_case_study(app)
    # Only the accepted files were written (onto an untitled draft); nothing typed was.
    assert files_of(app, case_study.id) == ["chart.png", "report.pdf"]
    with app.app_context():
        revision = db.session.scalars(select(Revision)).one()
        assert (revision.title, revision.summary, revision.contact_email) == ("", "", "")
    assert "We kept the files you chose (chart.png, report.pdf)" in page
    assert 'value="not an email"' in page and 'value="Walk and talk for Movember"' in page
    # The next round goes to that draft, with no file chosen again, and submits it whole.
    fixed = post_case_study(author, complete(app), case_study_id=case_study.id)
    assert fixed.status_code == 303
    assert states(app, case_study.id) == [RevisionState.SUBMITTED]
    assert files_of(app, case_study.id) == ["chart.png", "report.pdf"]
    assert count(app, CaseStudy) == 1


def test_a_failed_form_neither_removes_ticked_files_nor_forgets_the_ticks(app, author):
    post_case_study(author, {"title": "Draft"}, action="save", files=[("a.pdf", PDF)])
    case_study = only_case_study(app)
    with app.app_context():
        attachment_id = db.session.scalar(select(Attachment.id))
    response = post_case_study(
        author,
        {"title": "Draft", "contact_email": "nope", "remove_attachment": str(attachment_id)},
        action="save",
        case_study_id=case_study.id,
    )
    assert response.status_code == 400
    assert f'value="{attachment_id}" checked' in response.get_data(as_text=True)
    assert files_of(app, case_study.id) == ["a.pdf"]


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (1, "1 byte"),
        (72, "72 bytes"),
        (1023, "1023 bytes"),
        (12 * 1024, "12 KB"),
        (12 * 1024 + 300, "12 KB"),
        (int(1.2 * 1024 * 1024), "1.2 MB"),
        (20 * 1024 * 1024, "20 MB"),
    ],
)
def test_file_sizes_read_as_people_read_them(size, shown):
    assert human_size(size) == shown


def test_a_published_png_shows_its_real_size(app, author, moderator):
    post_case_study(author, complete(app), files=[("chart.png", PNG + b"\0" * 12 * 1024)])
    case_study = only_case_study(app)
    page = author.get(f"/case-studies/{case_study.id}", follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "(12 KB)" in text and "(0 KB)" not in text


# 3. Deleting a draft


def draft_with_history(app, author) -> int:
    """A draft that was submitted, sent back with a comment, and holds a file."""
    post_case_study(author, complete(app), files=[("report.pdf", PDF)])
    case_study_id = only_case_study(app).id
    request_changes(app, case_study_id, "Please add figures.")
    return case_study_id


def test_the_author_deletes_a_draft_after_confirming(app, author, moderator):
    case_study_id = draft_with_history(app, author)
    show = author.get(f"/case-studies/{case_study_id}", follow_redirects=True)
    assert f'href="/case-studies/{case_study_id}/delete"' in show.get_data(as_text=True)
    confirm = author.get(f"/case-studies/{case_study_id}/delete")
    page = html.unescape(confirm.get_data(as_text=True))
    assert confirm.status_code == 200
    assert "Are you sure you want to delete ‘Walk and talk for Movember’?" in page
    assert "govuk-button--warning" in page and "You cannot undo this." in page
    deleted = author.post(
        f"/case-studies/{case_study_id}/delete", data={"csrf_token": csrf_from(page)}
    )
    assert deleted.status_code == 303 and deleted.location.endswith("/case-studies/mine")
    mine = author.get("/case-studies/mine").get_data(as_text=True)
    assert "Draft deleted: Walk and talk for Movember" in mine
    assert author.get(f"/case-studies/{case_study_id}").status_code == 404
    with app.app_context():
        for model in (CaseStudy, Revision, Attachment, ModerationEvent):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0, model
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "case_study.deleted")
        ).one()
        assert event.target_type == "case_study" and event.target_id == case_study_id
        assert event.actor.email == "ali.khan@kent.police.uk"
        assert "Walk and talk for Movember" in event.detail


def test_no_one_else_can_see_or_use_the_delete_page(app, author, colleague, moderator):
    post_case_study(author, {"title": "Mine alone"}, action="save")
    case_study_id = only_case_study(app).id
    for other in (colleague, moderator):
        token = csrf_from(other.get("/case-studies/mine").get_data(as_text=True))
        assert other.get(f"/case-studies/{case_study_id}/delete").status_code == 404
        response = other.post(f"/case-studies/{case_study_id}/delete", data={"csrf_token": token})
        assert response.status_code == 404
    assert author.get("/case-studies/999999/delete").status_code == 404
    assert count(app, CaseStudy) == 1


def test_deleting_needs_the_csrf_token(app, author):
    post_case_study(author, {"title": "Keep me"}, action="save")
    case_study_id = only_case_study(app).id
    assert author.post(f"/case-studies/{case_study_id}/delete").status_code == 400
    response = author.post(f"/case-studies/{case_study_id}/delete", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert count(app, CaseStudy) == 1


def test_only_a_never_published_draft_can_be_deleted(app, author, moderator):
    case_study_id, revision_id = submitted(app, author)  # waiting for moderation
    token = csrf_from(author.get("/case-studies/mine").get_data(as_text=True))
    refused = author.post(f"/case-studies/{case_study_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 303 and "/delete" not in refused.location
    assert "Withdraw it from moderation first" in author.get(
        refused.location, follow_redirects=True
    ).get_data(as_text=True)
    with app.test_request_context():
        services.approve(
            as_user(app, "mo.derator@npcc.police.uk"), db.session.get(Revision, revision_id)
        )
        db.session.remove()
    # A new draft of a published case study is not "a draft that was never published".
    post_case_study(
        author, complete(app, title="Edited"), action="save", case_study_id=case_study_id
    )
    page = author.get(f"/case-studies/{case_study_id}", follow_redirects=True).get_data(
        as_text=True
    )
    assert "/delete" not in page
    author.post(f"/case-studies/{case_study_id}/delete", data={"csrf_token": token})
    assert states(app, case_study_id) == [RevisionState.PUBLISHED, RevisionState.DRAFT]


def test_thirty_deletes_at_once_delete_once_and_never_fail(app, author, make_user):
    post_case_study(author, complete(app), action="save", files=[("a.pdf", PDF)])
    case_study_id = only_case_study(app).id
    with served(app) as base:
        http = requests.Session()
        token = csrf_from(http.get(base + "/auth/login", timeout=30).text)
        signed = http.post(
            base + "/auth/login",
            data={
                "email": "ali.khan@kent.police.uk",
                "password": author.user.password,
                "csrf_token": token,
            },
            allow_redirects=False,
            timeout=30,
        )
        assert signed.status_code == 303
        token = csrf_from(http.get(f"{base}/case-studies/{case_study_id}/delete", timeout=30).text)

        def delete(_):
            return http.post(
                f"{base}/case-studies/{case_study_id}/delete",
                data={"csrf_token": token},
                allow_redirects=False,
                timeout=60,
            )

        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(delete, range(30)))
    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {303, 404}, statuses
    assert all(a.status_code != 500 for a in answers)
    assert count(app, CaseStudy) == 0 and count(app, Attachment) == 0
    with app.app_context():
        deleted = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "case_study.deleted")
        )
    assert deleted == 1


# 4. Where a case study stands, in the author's words, and the moderator's word


def test_changes_requested_shows_as_a_tag_and_the_comment_in_a_banner(app, author, moderator):
    case_study_id, _ = submitted(app, author)
    mine = author.get("/case-studies/mine").get_data(as_text=True)
    assert ">Waiting for moderation</strong>" in mine
    request_changes(app, case_study_id, "Please add how many walkers took part.\nAnd a photo.")
    mine = author.get("/case-studies/mine").get_data(as_text=True)
    assert ">Changes requested</strong>" in mine and ">Draft</strong>" not in mine
    for path in (f"/case-studies/{case_study_id}", f"/case-studies/{case_study_id}/edit"):
        page = author.get(path, follow_redirects=True).get_data(as_text=True)
        assert ">Changes requested</strong>" in page, path
        banner = page.split('class="govuk-notification-banner portal-feedback"', 1)[1]
        banner = banner.split("</blockquote>", 1)[0]
        assert "A moderator asked for changes" in banner
        assert "Please add how many walkers took part.\nAnd a photo." in banner
        assert page.index("portal-feedback") < page.index("<h1")  # at the top of the page
    # Editing keeps the label until it is submitted again; then it waits once more.
    post_case_study(
        author, complete(app, title="Walk, talk, count"), action="save", case_study_id=case_study_id
    )
    assert ">Changes requested</strong>" in author.get("/case-studies/mine").get_data(as_text=True)
    post_case_study(author, complete(app, title="Walk, talk, count"), case_study_id=case_study_id)
    mine = author.get("/case-studies/mine").get_data(as_text=True)
    assert ">Waiting for moderation</strong>" in mine and "portal-feedback" not in mine


def test_a_withdrawn_case_study_is_a_plain_draft(app, author):
    case_study_id, _ = submitted(app, author)
    token = csrf_from(author.get("/case-studies/mine").get_data(as_text=True))
    author.post(f"/case-studies/{case_study_id}/withdraw", data={"csrf_token": token})
    assert ">Draft</strong>" in author.get("/case-studies/mine").get_data(as_text=True)


def test_a_rejection_shows_as_rejected_with_the_reason(app, author, moderator):
    case_study_id, _ = submitted(app, author)
    reject(app, case_study_id, "It names a victim.")
    assert ">Rejected</strong>" in author.get("/case-studies/mine").get_data(as_text=True)
    page = author.get(f"/case-studies/{case_study_id}", follow_redirects=True).get_data(
        as_text=True
    )
    assert "A moderator decided not to publish this case study" in page
    assert "It names a victim." in page


def test_published_and_archived_tags(app, author, moderator):
    case_study_id, revision_id = submitted(app, author)
    with app.test_request_context():
        mod = as_user(app, "mo.derator@npcc.police.uk")
        services.approve(mod, db.session.get(Revision, revision_id))
        db.session.remove()
    assert ">Published</strong>" in author.get("/case-studies/mine").get_data(as_text=True)
    page = author.get(f"/case-studies/{case_study_id}", follow_redirects=True).get_data(
        as_text=True
    )
    assert ">Published</strong>" in page and "In the library since" in page
    with app.test_request_context():
        services.archive(
            as_user(app, "mo.derator@npcc.police.uk"), db.session.get(CaseStudy, case_study_id)
        )
        db.session.remove()
    assert ">Archived</strong>" in author.get("/case-studies/mine").get_data(as_text=True)


def test_the_feedback_banner_is_for_the_author_alone(app, author, moderator, colleague):
    case_study_id, revision_id = submitted(app, author)
    request_changes(app, case_study_id, "Fix the date.")
    page = moderator.get(f"/case-studies/{case_study_id}", follow_redirects=True)
    assert "portal-feedback" not in page.get_data(as_text=True)
    assert colleague.get(f"/case-studies/{case_study_id}").status_code == 404


def test_the_author_gets_a_receipt_greeting_them_by_name(app, author, moderator):
    submitted(app, author)
    receipts = [m for m in outbox(app) if m["To"] == "ali.khan@kent.police.uk"]
    assert [m["Subject"] for m in receipts] == ["Received: Walk and talk for Movember"]
    body = receipts[0].get_payload(decode=True).decode()
    assert body.startswith("Hello Ali Khan,")
    assert 'We received your case study "Walk and talk for Movember"' in body
    assert "A moderator will review it" in body and "We will email you when they decide" in body
    to_moderator = [m for m in outbox(app) if m["To"] == "mo.derator@npcc.police.uk"]
    assert to_moderator[0].get_payload(decode=True).decode().startswith("Hello Mo Derator,")


def test_saving_a_draft_sends_no_receipt(app, author):
    post_case_study(author, complete(app), action="save")
    assert outbox(app) == []


# 5. Links out of a case study page, and partner suggestions


def test_the_force_and_each_theme_link_to_their_pages(app, member, published):
    (case_study_id,) = published(
        case_study_line(themes=["Women in sport", "Community safety"], force="Kent Police")
    )
    page = member.get(f"/case-studies/{case_study_id}", follow_redirects=True).get_data(
        as_text=True
    )
    assert 'href="/forces/kent-police"' in page
    assert 'href="/library?theme=women-in-sport"' in page
    assert 'href="/library?theme=community-safety"' in page
    assert member.get("/library?theme=women-in-sport").status_code == 200


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        (
            "http://localhost/library?q=rugby&theme=women-in-sport&page=2",
            "/library?q=rugby&amp;theme=women-in-sport&amp;page=2",
        ),
        ("http://localhost/library?q=a%26b&evil=1&next=//evil.example", "/library?q=a%26b"),
        ("http://evil.example/library?q=rugby", "/library"),
        ("http://localhost/forces/kent-police?q=rugby", "/library"),
        ("javascript:alert(1)//localhost/library?q=x", "/library"),
        ("http://localhost/library", "/library"),
        ("http://localhost/library?" + "&".join(["q=x"] * 300), "/library"),
        ("", "/library"),
    ],
)
def test_the_library_breadcrumb_returns_to_the_search_only_from_this_library(
    app, member, published, referrer, expected
):
    (case_study_id,) = published()
    headers = {"Referer": referrer} if referrer else {}
    page = member.get(
        f"/case-studies/{case_study_id}", headers=headers, follow_redirects=True
    ).get_data(as_text=True)
    crumbs = page.split('class="govuk-breadcrumbs"', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'href="([^"]+)"', crumbs)
    assert links == ["/", expected]


def test_a_case_study_not_in_the_library_leads_back_to_where_its_readers_work(
    app, author, moderator
):
    def crumbs(client, case_id):
        page = client.get(f"/case-studies/{case_id}", follow_redirects=True)
        nav = page.get_data(as_text=True).split('class="govuk-breadcrumbs"', 1)[1]
        return re.findall(r'href="([^"]+)"', nav.split("</nav>", 1)[0])

    post_case_study(author, complete(app))
    case_id = only_case_study(app).id
    assert crumbs(author, case_id) == ["/", "/case-studies/mine"]
    assert crumbs(moderator, case_id) == ["/", "/moderation"]


def test_partner_suggestions_give_each_name_once_in_its_usual_spelling(app, author, published):
    published(
        case_study_line(title="One", partners=["Women’s Aid", "movember"]),
        case_study_line(title="Two", partners=["Women’s Aid", "Movember"]),
        case_study_line(title="Three", partners=["Women's aid", "Movember"]),
        case_study_line(title="Four", partners=["Rugby Club", "MOVEMBER"]),
    )
    page = author.get("/case-studies/new").get_data(as_text=True)
    datalist = page.split('<datalist id="partner-names">', 1)[1].split("</datalist>", 1)[0]
    names = [html.unescape(n) for n in re.findall(r'<option value="([^"]*)">', datalist)]
    assert names == ["Movember", "Rugby Club", "Women’s Aid"]


# 6. Races and resends: one submission, one draft, no 500 for a deleted draft


def signed_in_over_http(base: str, author) -> requests.Session:
    http = requests.Session()
    token = csrf_from(http.get(base + "/auth/login", timeout=60).text)
    signed = http.post(
        base + "/auth/login",
        data={"email": author.user.email, "password": author.user.password, "csrf_token": token},
        allow_redirects=False,
        timeout=60,
    )
    assert signed.status_code == 303
    return http


def test_thirty_submits_at_once_submit_once_and_email_once(
    app, author, moderator, second_moderator
):
    assert post_case_study(author, complete(app), action="save").status_code == 303
    case_study_id = only_case_study(app).id
    with served(app) as base:
        http = signed_in_over_http(base, author)
        page = http.get(f"{base}/case-studies/{case_study_id}/edit", timeout=60).text
        form = {**complete(app), "csrf_token": csrf_from(page), "action": "submit"}
        cookies = http.cookies.get_dict()
        barrier = threading.Barrier(30)

        def submit(_: int) -> requests.Response:
            barrier.wait()
            return requests.post(
                f"{base}/case-studies/{case_study_id}/edit",
                data=form,
                cookies=cookies,
                allow_redirects=False,
                timeout=120,
            )

        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(submit, range(30)))
        # Those that came second are told so, on the page they are sent to (the message
        # travels in the session cookie of their own answer).
        second = next(
            a for a in answers if a.headers.get("Location") not in (None, "/case-studies/mine")
        )
        told = requests.get(
            base + second.headers["Location"],
            cookies={**cookies, **second.cookies.get_dict()},
            timeout=60,
        )
    # One goes through; the others are told it was already sent. One person's 30 at once
    # also meet the submission limit (10 an hour): a request that found every slot briefly
    # held by the others is answered 429 (its draft saved, unchanged) if it came before the
    # winner committed. Either way: submitted once, emailed once, nothing lost.
    assert {a.status_code for a in answers} <= {303, 429}
    locations = sorted(a.headers["Location"] for a in answers if a.status_code == 303)
    assert locations.count("/case-studies/mine") == 1
    assert locations.count(f"/case-studies/{case_study_id}") == len(locations) - 1
    assert len(locations) >= 10
    assert "already been sent to the moderators" in html.unescape(told.text)
    assert states(app, case_study_id) == [RevisionState.SUBMITTED]
    with app.app_context():
        events = db.session.scalars(select(ModerationEvent.action)).all()
        audited = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "case_study.submitted")
        )
    assert [e.value for e in events] == ["submitted"]
    assert audited == 1
    sent = sorted((m["To"], m["Subject"]) for m in outbox(app))
    assert sent == [
        ("ali.khan@kent.police.uk", "Received: Walk and talk for Movember"),
        ("mo.derator@npcc.police.uk", "To moderate: Walk and talk for Movember"),
        ("sec.ond@npcc.police.uk", "To moderate: Walk and talk for Movember"),
    ]


def test_a_second_submission_after_the_first_is_told_and_sends_nothing(app, author, moderator):
    case_study_id, _ = submitted(app, author)
    before = len(outbox(app))
    page = author.get("/case-studies/mine").get_data(as_text=True)
    response = author.post(
        f"/case-studies/{case_study_id}/edit",
        data={**complete(app), "action": "submit", "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 303
    assert response.location.endswith(f"/case-studies/{case_study_id}")
    shown = author.get(response.location, follow_redirects=True).get_data(as_text=True)
    assert "already been sent to the moderators" in html.unescape(shown)
    assert len(outbox(app)) == before


def draft_token_of(page: str) -> str:
    return re.search(r'name="draft_token" value="([^"]+)"', page).group(1)


def test_sending_the_same_new_form_twice_keeps_the_files_in_one_draft(app, author):
    page = author.get("/case-studies/new").get_data(as_text=True)
    token, csrf = draft_token_of(page), csrf_from(page)
    data = {**complete(app, contact_email="not an email"), "action": "save"}

    def send():
        return author.post(
            "/case-studies/new",
            data={
                **data,
                "csrf_token": csrf,
                "draft_token": token,
                "attachments": [(io.BytesIO(PNG), "chart.png")],
            },
            content_type="multipart/form-data",
        )

    first = html.unescape(send().get_data(as_text=True))
    case_study_id = only_case_study(app).id
    assert "We saved a draft to keep your file" in first
    assert f'action="/case-studies/{case_study_id}/edit"' in first
    assert 'name="draft_token"' not in first  # the form now writes to that draft
    again = send()  # a refresh that sends the same form again
    page = html.unescape(again.get_data(as_text=True))
    assert again.status_code == 400 and 'value="not an email"' in page
    assert f'action="/case-studies/{case_study_id}/edit"' in page
    assert count(app, CaseStudy) == 1
    assert files_of(app, case_study_id) == ["chart.png"]  # the same file is not added twice
    # A new form (a new token) is a new case study.
    fresh = draft_token_of(author.get("/case-studies/new").get_data(as_text=True))
    assert fresh != token


def test_sending_the_same_new_form_again_after_a_refused_submission_makes_no_new_draft(app, author):
    page = author.get("/case-studies/new").get_data(as_text=True)
    data = {
        **complete(app, summary=""),
        "action": "submit",
        "csrf_token": csrf_from(page),
        "draft_token": draft_token_of(page),
    }
    for _ in range(3):
        response = author.post("/case-studies/new", data=data)
        assert response.status_code == 400
        assert "Your draft has been saved" in response.get_data(as_text=True)
    assert count(app, CaseStudy) == 1


def test_saving_a_draft_deleted_in_another_window_keeps_what_was_typed(app, author):
    post_case_study(author, complete(app), action="save")
    case_study_id = only_case_study(app).id
    stale = author.get(f"/case-studies/{case_study_id}/edit").get_data(as_text=True)
    token = csrf_from(author.get(f"/case-studies/{case_study_id}/delete").get_data(as_text=True))
    author.post(f"/case-studies/{case_study_id}/delete", data={"csrf_token": token})
    response = author.post(
        f"/case-studies/{case_study_id}/edit",
        data={
            **complete(app, title="Typed after"),
            "action": "save",
            "csrf_token": csrf_from(stale),
        },
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 404
    assert "This draft was deleted" in page
    assert 'value="Typed after"' in page and 'action="/case-studies/new"' in page
    assert count(app, CaseStudy) == 0
    # A number this person never had is a plain 404.
    other = author.post(
        "/case-studies/999999/edit", data={**complete(app), "csrf_token": csrf_from(stale)}
    )
    assert other.status_code == 404
    assert "This draft was deleted" not in other.get_data(as_text=True)


@pytest.mark.parametrize("action", ["save", "submit"])
def test_a_draft_deleted_while_its_save_is_under_way_answers_404_not_500(
    app, author, monkeypatch, action
):
    post_case_study(author, complete(app), action="save")
    case_study_id = only_case_study(app).id
    apply = services._apply

    def deleted_meanwhile(revision, content):
        # Another request's delete commits between this save's reads and its writes.
        with db.engine.begin() as other:
            other.execute(delete(CaseStudy).where(CaseStudy.id == case_study_id))
        apply(revision, content)

    monkeypatch.setattr(services, "_apply", deleted_meanwhile)
    response = post_case_study(
        author, complete(app), action=action, case_study_id=case_study_id, files=[("a.pdf", PDF)]
    )
    assert response.status_code == 404
    assert "This draft was deleted" in html.unescape(response.get_data(as_text=True))
    assert count(app, CaseStudy) == 0 and count(app, Attachment) == 0
    assert outbox(app) == []


def test_the_case_study_page_varies_on_the_referer_its_breadcrumb_reads(instance_path, published):
    from ..conftest import make_app

    (case_study_id,) = published()
    public = make_app(instance_path, PUBLIC_LIBRARY=True)
    try:
        response = public.test_client().get(
            f"/case-studies/{case_study_id}",
            headers={"Referer": "http://localhost/library?q=rugby"},
            follow_redirects=True,
        )
        assert response.status_code == 200
        assert "Referer" in response.headers.get("Vary", "")
        assert "/library?q=rugby" in response.get_data(as_text=True)
    finally:
        with public.app_context():
            db.engine.dispose()


# 7. The limit on submissions: submit/withdraw cycles must not flood the moderators


def to_moderators(app) -> int:
    return sum(m["Subject"].startswith("To moderate:") for m in outbox(app))


def submitted_count(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(Revision)
            .where(Revision.state == RevisionState.SUBMITTED)
        )


@pytest.fixture
def limit_of_two(monkeypatch):
    from portal.casestudies import views
    from portal.web.attempts import AttemptLimit

    monkeypatch.setattr(views, "SUBMISSIONS_PER_HOUR", AttemptLimit("submissions-hour", 2, 3600))


def test_a_submission_over_the_limit_saves_the_draft_and_says_when_to_submit(
    app, author, moderator, limit_of_two
):
    for n in range(2):
        assert post_case_study(author, complete(app, title=f"Scheme {n}")).status_code == 303
    sent = to_moderators(app)
    response = post_case_study(author, complete(app, title="Typed over the limit"))
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    page = html.unescape(response.get_data(as_text=True))
    assert "There is a problem" in page
    assert re.search(
        r"You have submitted 2 case studies in the last hour, so this one was not sent to the "
        r"moderators\. Your draft has been saved: you can submit it from "
        r"(\d{1,2}(:\d\d)?[ap]m|midday|midnight) \(UK time\)\.",
        page,
    )
    assert 'value="Typed over the limit"' in page  # what was typed is on the page...
    case_study = only_case_study(app)  # ...and saved, as a draft the form now writes to
    assert f'action="/case-studies/{case_study.id}/edit"' in page
    assert states(app, case_study.id) == [RevisionState.DRAFT]
    with app.app_context():
        assert db.session.get(CaseStudy, case_study.id).revisions[0].title == (
            "Typed over the limit"
        )
    assert to_moderators(app) == sent and submitted_count(app) == 2
    # Saving a draft is never limited.
    again = post_case_study(
        author, complete(app, title="Saved again"), action="save", case_study_id=case_study.id
    )
    assert again.status_code == 303


def test_only_submissions_that_went_through_count(app, author, moderator, limit_of_two):
    for _ in range(3):  # refused as incomplete: saved, not submitted, not counted
        assert post_case_study(author, complete(app, summary="")).status_code == 400
    first = post_case_study(author, complete(app), case_study_id=only_case_study(app).id)
    assert first.status_code == 303
    # Submitted, withdrawn and submitted again: each submission that went through counts.
    case_study_id = only_case_study(app).id
    token = csrf_from(author.get("/case-studies/mine").get_data(as_text=True))
    author.post(f"/case-studies/{case_study_id}/withdraw", data={"csrf_token": token})
    assert post_case_study(author, complete(app), case_study_id=case_study_id).status_code == 303
    token = csrf_from(author.get("/case-studies/mine").get_data(as_text=True))
    author.post(f"/case-studies/{case_study_id}/withdraw", data={"csrf_token": token})
    third = post_case_study(author, complete(app), case_study_id=case_study_id)
    assert third.status_code == 429
    assert states(app, case_study_id)[-1] == RevisionState.DRAFT


def test_the_limit_is_per_person(app, author, make_user, limit_of_two):
    from ..conftest import signed_in

    for _ in range(2):
        assert post_case_study(author, complete(app)).status_code == 303
    assert post_case_study(author, complete(app)).status_code == 429
    other = signed_in(app, make_user(email="sam.other@kent.police.uk", name="Sam Other"))
    assert post_case_study(other, complete(app)).status_code == 303


@pytest.mark.parametrize("limited", [False, True], ids=["weakened:limits-off", "as-shipped"])
def test_thirty_different_drafts_submitted_at_once_submit_at_most_the_limit(
    app, author, moderator, limited
):
    from portal.casestudies.views import SUBMISSIONS_PER_HOUR

    app.config["RATELIMIT_ENABLED"] = limited
    ids = []
    for n in range(30):
        data = complete(app, title=f"Draft number {n}")
        assert post_case_study(author, data, action="save").status_code == 303
        ids.append(only_case_study(app).id)
    with served(app) as base:
        http = signed_in_over_http(base, author)
        token = csrf_from(http.get(f"{base}/case-studies/{ids[0]}/edit", timeout=60).text)
        cookies = http.cookies.get_dict()
        barrier = threading.Barrier(30)

        def submit(n: int) -> requests.Response:
            barrier.wait()
            return requests.post(
                f"{base}/case-studies/{ids[n]}/edit",
                data={
                    **complete(app, title=f"Submitted number {n}"),
                    "csrf_token": token,
                    "action": "submit",
                },
                cookies=cookies,
                allow_redirects=False,
                timeout=120,
            )

        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(submit, range(30)))
    statuses = [a.status_code for a in answers]
    went = submitted_count(app)
    assert to_moderators(app) == went  # one email to the one moderator per submission
    if not limited:  # the attack lands without the limit: every draft floods the moderators
        assert statuses == [303] * 30 and went == 30
        return
    assert set(statuses) <= {303, 429} and statuses.count(303) == went
    assert 0 < went <= SUBMISSIONS_PER_HOUR.amount
    assert all("Retry-After" in a.headers for a in answers if a.status_code == 429)
    with app.app_context():  # nothing typed was lost: every draft holds its new title
        titles = {
            r.case_study_id: r.title
            for r in db.session.scalars(select(Revision).where(Revision.case_study_id.in_(ids)))
        }
    assert titles == {ids[n]: f"Submitted number {n}" for n in range(30)}
