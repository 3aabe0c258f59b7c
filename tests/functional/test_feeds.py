"""Atom feeds of the library, each force and each theme: valid, escaped, only published."""

from datetime import timedelta
from xml.etree import ElementTree as ET

import feedparser
import pytest
from sqlalchemy import select

from portal.casestudies import services as casestudies
from portal.extensions import db
from portal.models import CaseStudy, Revision, Theme, User, UserStatus

from ..records import case_study_line

ATOM = "{http://www.w3.org/2005/Atom}"


def parse(response):
    """Parse a feed response with feedparser; fail on anything it finds wrong."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.get_data())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def check_required_elements(body: bytes) -> ET.Element:
    """Check the elements RFC 4287 requires of a feed and of each entry."""
    feed = ET.fromstring(body)
    assert feed.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{name}") is not None, name
    rels = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert rels.keys() == {"self", "alternate"}
    for entry in feed.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated", "published", "summary", "author/"):
            assert entry.find(f"{ATOM}{name.rstrip('/')}") is not None, name
        assert entry.find(f"{ATOM}author/{ATOM}name").text
        alternate = entry.find(f"{ATOM}link[@rel='alternate']")
        assert alternate is not None and alternate.get("href").startswith("http")
    return feed


def test_library_feed_is_valid_atom_with_each_published_case_study(member, published, app):
    [first] = published(case_study_line(title="Walk and talk", force="Kent Police"))
    [second] = published(case_study_line())
    response = member.get("/feed.atom")
    parsed = parse(response)
    check_required_elements(response.get_data())

    assert parsed.feed.title == "HeForShe Practice Library: new case studies"
    assert parsed.feed.id.startswith("tag:")
    assert parsed.feed.links[0].href.endswith("/feed.atom")
    assert {e.title for e in parsed.entries} == {"Walk and talk", case_study_line()["title"]}
    entry = next(e for e in parsed.entries if e.title == "Walk and talk")
    assert entry.id.endswith(f":case-study:{first}")
    assert entry.author == "Kent Police"
    assert entry.summary == case_study_line()["summary"]
    assert entry.link == f"{app.config['BASE_URL']}/case-studies/{first}/walk-and-talk"
    assert {t.label for t in entry.tags} == {"Challenging misogyny", "Partnership working"}
    assert entry.published_parsed and entry.updated_parsed
    assert "@" not in response.get_data(as_text=True)  # no contact or author email


def test_entry_ids_stay_the_same_however_often_the_feed_is_read(member, published):
    published(case_study_line())
    first = parse(member.get("/feed.atom")).entries[0].id
    assert parse(member.get("/feed.atom")).entries[0].id == first


def test_user_text_cannot_break_the_feed(member, published, app):
    [case_study_id] = published(case_study_line())
    with app.app_context():
        # Control characters are refused on the way in; written straight to the database
        # here, they show the feed survives whatever an older record or another path holds.
        revision = db.session.get(CaseStudy, case_study_id).revisions[0]
        revision.title = 'Tea & <b>talk</b> "quoted" \x01\x0b\x1f]]></feed>'
        revision.summary = "<script>alert(1)</script> & \x07bell"
        db.session.commit()
    response = member.get("/feed.atom")
    parsed = parse(response)
    check_required_elements(response.get_data())
    assert parsed.entries[0].title == 'Tea & <b>talk</b> "quoted" ]]></feed>'
    assert "<script>" not in response.get_data(as_text=True)


def test_feeds_hold_only_published_case_studies(member, published, app, make_user):
    [live, archived] = published(
        case_study_line(title="Still live"), case_study_line(title="Archived one")
    )
    published(
        case_study_line(title="Just a draft", status="draft"),
        case_study_line(title="Waiting for moderation", status="submitted"),
    )
    moderator = make_user("moderator")
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.email == moderator.email))
        casestudies.archive(actor, db.session.get(CaseStudy, archived))

    titles = {e.title for e in parse(member.get("/feed.atom")).entries}
    assert titles == {"Still live"}


def test_force_and_theme_feeds_list_only_their_own(member, published):
    published(
        case_study_line(
            title="From Kent", force="Kent Police", themes=["Men's health and wellbeing"]
        ),
        case_study_line(title="From Northants", themes=["Challenging misogyny"]),
    )
    kent = parse(member.get("/forces/kent-police/feed.atom"))
    assert [e.title for e in kent.entries] == ["From Kent"]
    assert kent.feed.title == "Kent Police: new case studies"
    assert kent.feed.id.endswith("feed:force:kent-police")

    misogyny = parse(member.get("/themes/challenging-misogyny/feed.atom"))
    assert [e.title for e in misogyny.entries] == ["From Northants"]

    empty = parse(member.get("/forces/police-scotland/feed.atom"))
    assert empty.entries == []


@pytest.mark.parametrize("path", ["/forces/no-such-force/feed.atom", "/themes/nope/feed.atom"])
def test_an_unknown_force_or_theme_has_no_feed(member, path):
    assert member.get(path).status_code == 404


def test_a_reader_with_the_current_copy_gets_304(member, published):
    published(case_study_line())
    first = member.get("/feed.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag and modified

    assert member.get("/feed.atom", headers={"If-None-Match": etag}).status_code == 304
    assert member.get("/feed.atom", headers={"If-Modified-Since": modified}).status_code == 304

    published(case_study_line(title="Something new"))
    again = member.get("/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert again.headers["ETag"] != etag


def test_archiving_a_case_study_makes_the_feed_newer(member, published, app, make_user):
    [one, _] = published(case_study_line(title="One"), case_study_line(title="Two"))
    with app.app_context():
        # Published yesterday, so today's archiving is visibly later.
        for revision in db.session.scalars(select(Revision)):
            revision.published_at -= timedelta(days=1)
        db.session.commit()
    modified = member.get("/feed.atom").headers["Last-Modified"]
    assert member.get("/feed.atom", headers={"If-Modified-Since": modified}).status_code == 304

    moderator = make_user("moderator")
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.email == moderator.email))
        casestudies.archive(actor, db.session.get(CaseStudy, one))
    response = member.get("/feed.atom", headers={"If-Modified-Since": modified})
    assert response.status_code == 200
    assert [e.title for e in parse(response).entries] == ["Two"]


@pytest.mark.parametrize(
    "path",
    ["/feed.atom", "/forces/kent-police/feed.atom", "/themes/challenging-misogyny/feed.atom"],
)
def test_anonymous_readers_are_sent_to_sign_in_when_the_library_is_private(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/auth/login" in response.location


@pytest.mark.parametrize(
    "path",
    ["/feed.atom", "/forces/kent-police/feed.atom", "/themes/challenging-misogyny/feed.atom"],
)
def test_anyone_may_read_the_feeds_of_a_public_library(instance_path, path):
    from ..conftest import make_app

    app = make_app(instance_path, PUBLIC_LIBRARY=True)
    response = app.test_client().get(path)
    parse(response)
    assert response.headers["Cache-Control"] == "no-cache"


def test_the_library_page_links_to_its_feed(member):
    html = member.get("/library").get_data(as_text=True)
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert 'href="/feed.atom"' in html


# Private feed links: for feed readers, which cannot sign in to a private library.


def private_link(member, path_start="/feed.atom") -> str:
    import html
    import re

    page = member.get("/account/following").get_data(as_text=True)
    links = [html.unescape(h) for h in re.findall(r'href="([^"]*token=[^"]*)"', page)]
    return next(link for link in links if link.startswith(path_start))


def test_a_private_link_lets_a_feed_reader_in_without_signing_in(member, published, app):
    published(case_study_line(title="For the reader"))
    link = private_link(member)
    reader = app.test_client()  # no cookies: a feed reader
    response = reader.get(link)
    parsed = parse(response)
    assert [e.title for e in parsed.entries] == ["For the reader"]
    assert parsed.feed.links[0].href == app.config["BASE_URL"] + link  # self keeps the token
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert "Set-Cookie" not in response.headers

    # It signs nobody in, and opens nothing but feeds.
    assert reader.get("/account/following").status_code == 302
    token = link.split("token=", 1)[1]
    assert reader.get(f"/library?token={token}").status_code == 302
    assert reader.get(f"/case-studies/1?token={token}").status_code == 302


def test_private_links_exist_for_each_followed_force_and_theme(member, app):
    from portal.follows import services as follows

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == member.user.email))
        follows.follow(
            user, db.session.scalar(select(Theme).where(Theme.slug == "challenging-misogyny"))
        )
    link = private_link(member, "/themes/challenging-misogyny/feed.atom")
    assert parse(app.test_client().get(link)).feed.title.startswith("Challenging misogyny")


def test_a_forged_private_link_is_refused(member, app):
    link = private_link(member)
    reader = app.test_client()
    assert reader.get(link[:-2] + "xx").status_code == 403
    assert reader.get("/feed.atom?token=").status_code == 403
    # A signed-in user's own token from another purpose (a password reset link) is no feed token.
    with app.app_context():
        from portal.auth.tokens import RESET, make_token

        user = db.session.scalar(select(User).where(User.email == member.user.email))
        reset = make_token(user, RESET)
    assert reader.get(f"/feed.atom?token={reset}").status_code == 403


def test_changing_the_password_ends_the_private_links(member, app):
    from portal.auth import services as auth

    link = private_link(member)
    with app.test_request_context():
        user = db.session.scalar(select(User).where(User.email == member.user.email))
        auth.change_password(user, member.user.password, "a brand new passphrase 2026")
    assert app.test_client().get(link).status_code == 403


def test_a_disabled_account_has_no_private_links(member, app):
    link = private_link(member)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == member.user.email))
        user.status = UserStatus.DISABLED
        db.session.commit()
    assert app.test_client().get(link).status_code == 403


def test_a_public_library_needs_no_private_links(instance_path, make_user):
    from ..conftest import Auth, make_app

    app = make_app(instance_path, PUBLIC_LIBRARY=True)
    client = app.test_client()
    Auth(client).login(make_user("contributor"))
    page = client.get("/account/following").get_data(as_text=True)
    assert "token=" not in page
    assert 'href="/feed.atom"' in page
