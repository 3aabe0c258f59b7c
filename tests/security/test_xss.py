"""Attacks through what people write: every place it is shown escapes or sanitises it.

Markdown goes through markdown-it-py and nh3; everything else is text escaped by Jinja2
(pages), ElementTree (feeds) or written as plain text (emails). Each payload is first shown
to be live: rendered without the portal's sanitiser, it would run.
"""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select

from portal.extensions import db
from portal.models import Revision

from ..conftest import csrf_from
from ..records import case_study_line
from ..writing import complete, decide, only_case_study, post_case_study

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'


# Markdown through the whole path


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](&#106;avascript:alert(1))",
        "[d](data:text/html;base64,PHNjcmlwdD4=)",
        '<div hx-get="/admin/users" hx-trigger="load">x</div>',
    ],
)
def test_markdown_attacks_are_inert_on_the_published_page(app, author, moderator, colleague, body):
    post_case_study(author, complete(app, body=body))
    case_study = only_case_study(app)
    with app.app_context():
        revision_id = db.session.scalar(select(Revision.id))
    decide(moderator, revision_id, "approve")
    page = colleague.get(f"/case-studies/{case_study.id}", follow_redirects=True).get_data(
        as_text=True
    )
    main = page.split('id="main-content"')[1]
    assert (
        "<script>" not in main
        and "<img" not in main
        and "onerror=" not in main.replace("&lt;img src=x onerror=", "")
    )
    assert 'href="javascript' not in main.lower() and 'href="data:' not in main
    assert "<div hx-get" not in main


@pytest.mark.parametrize(
    "body",
    [
        SCRIPT,
        '<img src=x onerror="alert(1)">',
        '<div hx-get="/admin/users" hx-trigger="load">x</div>',
    ],
)
def test_each_markdown_payload_would_run_without_the_sanitiser(body):
    """The control: unsanitised Markdown with HTML on keeps the payload as markup."""
    raw = MarkdownIt("commonmark", {"html": True}).render(body)
    assert "<script>" in raw or "<img" in raw or "hx-get" in raw


def test_a_link_cannot_break_out_of_its_attribute(app, author, moderator):
    body = '[x](https://example.org/" onmouseover="alert(1)) [y](https://example.org/?a=<b>)'
    post_case_study(author, complete(app, body=body))
    case_study = only_case_study(app)
    with app.app_context():
        revision_id = db.session.scalar(select(Revision.id))
    decide(moderator, revision_id, "approve")
    page = moderator.get(f"/case-studies/{case_study.id}", follow_redirects=True)
    main = page.get_data(as_text=True).split('id="main-content"')[1]
    assert not re.search(r"<[^>]*onmouseover", main) and "<b>" not in main


def test_the_preview_is_sanitised_like_the_page(author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    response = author.post(
        "/case-studies/preview",
        headers={"HX-Request": "true", "X-CSRFToken": token},
        data={"body": f"## Hi\n\n{SCRIPT} [x](javascript:alert(1)) {ATTRIBUTE}"},
    )
    html = response.get_data(as_text=True)
    assert "<h2>Hi</h2>" in html and "<script>" not in html
    assert 'href="javascript' not in html and "<img" not in html


# Text shown as text


@pytest.fixture
def hostile(published):
    """A published case study whose every text field carries a payload."""
    (case_id,) = published(
        case_study_line(
            title=f"Allies {SCRIPT}",
            summary=f"Summary {ATTRIBUTE}",
            partners=[f"Partner {SCRIPT}"],
            contact_name=f"Sam {ATTRIBUTE}",
            outcomes=f"Outcome {SCRIPT}",
        )
    )
    return case_id


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/library",
        "/library?q=allies",
        "/library?q=script",
        "/case-studies/{id}",
        "/forces/northamptonshire-police",
        "/reports",
        "/case-studies/{id}/contact",
    ],
)
def test_payloads_in_a_case_study_are_shown_as_text_everywhere(member, hostile, path):
    response = member.get(path.format(id=hostile), follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert SCRIPT not in page and "<img src=x" not in page
    if path.endswith("allies") or "{id}" in path:
        assert "&lt;script&gt;" in page  # the text is there, escaped


def test_payloads_reach_the_feed_as_text(app, hostile, make_user):
    import feedparser

    from portal.feeds.links import make_feed_token
    from portal.models import User

    user = make_user()
    with app.app_context():
        row = db.session.scalar(select(User).where(User.email == user.email))
        token = make_feed_token(row)
    body = app.test_client().get(f"/feed.atom?token={token}").get_data(as_text=True)
    assert SCRIPT not in body and "&lt;script&gt;" in body
    feed = feedparser.parse(body)
    assert not feed.bozo and feed.entries[0].title == f"Allies {SCRIPT}"


@pytest.mark.parametrize("query", [SCRIPT, ATTRIBUTE, "</title><script>alert(1)</script>"])
def test_a_search_is_echoed_escaped_in_the_page_and_its_title(member, query):
    for headers in ({}, {"HX-Request": "true"}):
        page = member.get("/library", query_string={"q": query}, headers=headers).get_data(
            as_text=True
        )
        assert "<script>alert(1)</script>" not in page and "<img src=x" not in page


def test_a_search_highlight_never_turns_text_into_markup(member, published):
    published(case_study_line(body="We wrote <b>bold</b> and <em>allies</em> in our notes."))
    page = member.get("/library", query_string={"q": "allies notes"}).get_data(as_text=True)
    assert "<em>allies</em>" not in page.replace("<mark>allies</mark>", "")
    assert "&lt;b&gt;" in page or "&lt;em&gt;" in page


def test_a_contact_role_with_markup_is_shown_as_text(app, member):
    page = member.get("/account/profile").get_data(as_text=True)
    member.post(
        "/account/profile",
        data={
            "name": "Sam Patel",
            "listed_as_contact": "y",
            "contact_role": f"Lead {SCRIPT}",
            "csrf_token": csrf_from(page),
        },
    )
    force_page = member.get("/forces/kent-police").get_data(as_text=True)
    assert "Lead &lt;script&gt;" in force_page and SCRIPT not in force_page


@pytest.mark.parametrize("name", [f"Sam {SCRIPT}", "Sam <b>Patel</b>", "www.evil.example"])
def test_a_name_with_markup_or_an_address_is_refused(member, name):
    page = member.get("/account/profile").get_data(as_text=True)
    response = member.post("/account/profile", data={"name": name, "csrf_token": csrf_from(page)})
    assert response.status_code == 400


def test_a_moderators_comment_is_shown_as_text(app, author, moderator):
    post_case_study(author, complete(app))
    case_study = only_case_study(app)
    with app.app_context():
        revision_id = db.session.scalar(select(Revision.id))
    decide(moderator, revision_id, "changes", comment=f"Please fix {SCRIPT}")
    history = author.get(f"/case-studies/{case_study.id}/history").get_data(as_text=True)
    assert "Please fix &lt;script&gt;" in history and SCRIPT not in history


def test_an_adoption_note_is_shown_as_text(app, member, published):
    (case_id,) = published()
    page = member.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    member.post(
        f"/case-studies/{case_id}/adoption",
        data={"kind": "adopted", "note": f"We did it {SCRIPT}", "csrf_token": csrf_from(page)},
    )
    shown = member.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert "We did it &lt;script&gt;" in shown and SCRIPT not in shown


def test_a_path_is_not_reflected_as_markup_on_the_404_page(member):
    page = member.get(f"/no-such-page/{SCRIPT}").get_data(as_text=True)
    assert SCRIPT not in page
