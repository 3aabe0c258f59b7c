"""The moderator's journey: read on the review page, then decide; approve through a check page.

Also the attacks on it: another moderator's stale decision, a decision on a version the author
has since changed, GET on the decision addresses, CSRF, and 30 approvals sent at once.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import (
    AuditEvent,
    ModerationAction,
    ModerationEvent,
    Revision,
    RevisionState,
    utcnow,
)

from ..conftest import csrf_from, served
from ..records import outbox
from ..writing import PDF, complete, decide, post_case_study, seen_on, states, submitted

TITLE = "Walk and talk for Movember"


def png(width: int = 48, height: int = 32) -> bytes:
    """A real PNG a browser can draw: a sky, a pitch, and three figures in HeForShe magenta."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    def pixel(x: int, y: int) -> bytes:
        for n in range(3):  # figures standing on the pitch
            left = width * (n + 1) // 4 - width // 20
            if left <= x < left + width // 10 and height // 3 <= y < height * 5 // 6:
                return b"\xc4\x00\x6a" if y > height * 2 // 5 else b"\xf1\xc2\x9b"
        if y < height // 2:  # the sky, lighter towards the horizon
            shade = 150 + 100 * y // max(1, height // 2)
            return bytes((shade // 2, shade * 3 // 4, min(255, shade + 20)))
        return b"\x2e\x8b\x3a" if (x // max(1, width // 12)) % 2 else b"\x38\x9e\x45"

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def decisions(app) -> list[ModerationAction]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(ModerationEvent.action)
                .where(ModerationEvent.action != ModerationAction.SUBMITTED)
                .order_by(ModerationEvent.id)
            )
        )


def review_of(client, revision_id) -> tuple[str, dict]:
    """The review page, and the fields every decision from it carries."""
    page = client.get(f"/moderation/{revision_id}").get_data(as_text=True)
    return page, {"csrf_token": csrf_from(page), "seen": seen_on(page)}


def title_of(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1)


# The queue


def test_the_queue_links_to_each_review_page_and_offers_no_decision(app, author, moderator):
    _, revision_id = submitted(app, author)
    page = moderator.get("/moderation").get_data(as_text=True)
    assert f'href="/moderation/{revision_id}"' in page
    assert 'method="post"' not in page.split("<main", 1)[1]  # no decision can be sent from here
    for control in ('name="decision"', ">Approve", ">Reject", "Request changes"):
        assert control not in page
    assert "submitted <time" in page and ">today</time>" in page
    assert re.search(r"\(\d{1,2} \w+ \d{4} at \d{1,2}(:\d\d)?[ap]m\)", page)  # the full time


@pytest.mark.parametrize(
    ("days", "words"), [(0, "today"), (1, "yesterday"), (3, "3 days ago"), (40, "40 days ago")]
)
def test_the_queue_says_how_long_each_has_waited_in_words(app, author, moderator, days, words):
    _, revision_id = submitted(app, author)
    with app.app_context():
        db.session.execute(
            update(Revision)
            .where(Revision.id == revision_id)
            .values(submitted_at=utcnow() - timedelta(days=days, minutes=1))
        )
        db.session.commit()
    page = moderator.get("/moderation").get_data(as_text=True)
    assert f">{words}</time>" in page
    assert "waiting 0 days" not in page and " days)" not in page


# Deciding on the review page


@pytest.mark.parametrize(
    ("decision", "box", "message"),
    [
        ("changes", "comment", "Say what needs to change"),
        ("reject", "comment", "Give the reason for rejecting it"),
        ("", "decision-1", "Select whether to approve, request changes or reject"),
    ],
)
def test_a_missing_comment_or_choice_is_an_error_at_the_top_of_the_same_page(
    app, author, moderator, decision, box, message
):
    case_id, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    typed = {"comment": "   "} if decision == "reject" else {"comment": ""}
    response = moderator.post(
        f"/moderation/{revision_id}", data={**fields, "decision": decision, **typed}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400  # answered here: the address stays the review page's
    assert title_of(page).startswith("Error: Review: ")
    summary = page.index('class="govuk-error-summary"')
    assert summary < page.index("<h1") and summary < page.index("As it will appear")
    assert f'<a href="#{box}">{message}</a>' in page
    assert states(app, case_id) == [RevisionState.SUBMITTED] and decisions(app) == []


def test_requesting_changes_from_the_review_page_sends_it_back_with_the_comment(
    app, author, moderator
):
    case_id, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    response = moderator.post(
        f"/moderation/{revision_id}",
        data={**fields, "decision": "changes", "comment": "Add the number of walkers."},
    )
    assert response.status_code == 303 and response.location.endswith("/moderation")
    assert states(app, case_id) == [RevisionState.DRAFT]
    queue = moderator.get("/moderation").get_data(as_text=True)
    assert f"Sent back to the author for changes: {TITLE}" in queue


def test_a_typed_comment_is_kept_when_the_page_comes_back_with_an_error(app, author, moderator):
    _, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    page = moderator.post(
        f"/moderation/{revision_id}",
        data={**fields, "decision": "changes", "comment": "Fix \x07 this"},
    ).get_data(as_text=True)
    assert "Remove the control characters" in page and "Fix \x07 this" in page


def test_approving_shows_what_will_be_published_and_by_whom_before_it_does(
    app, author, moderator, colleague
):
    case_id, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    note = "Thank you: a model for others."
    chosen = moderator.post(
        f"/moderation/{revision_id}", data={**fields, "decision": "approve", "comment": note}
    )
    assert chosen.status_code == 200  # the check page, answered at the review page's address
    assert states(app, case_id) == [RevisionState.SUBMITTED]  # nothing yet
    check = chosen.get_data(as_text=True)
    assert title_of(check).startswith("Check before you publish: ")
    assert "Check before you publish" in check and TITLE in check
    assert "Ali Khan, Kent Police" in check and "You (Mo Derator)" in check
    assert "It is published for the first time." in check
    assert f">{note}</textarea>" in check  # what was typed goes with it
    assert ">Approve and publish</button>" in check
    assert f'href="/moderation/{revision_id}"' in check  # the way back
    assert colleague.get(f"/case-studies/{case_id}").status_code == 404
    confirmed = moderator.post(
        f"/moderation/{revision_id}/approve",
        data={"csrf_token": csrf_from(check), "seen": seen_on(check), "comment": note},
    )
    assert confirmed.status_code == 303 and confirmed.location.endswith("/moderation")
    assert states(app, case_id) == [RevisionState.PUBLISHED]
    assert f"Approved and published: {TITLE}" in moderator.get("/moderation").get_data(as_text=True)
    message = [m for m in outbox(app) if m["To"] == "ali.khan@kent.police.uk"][-1]
    assert message["Subject"] == f"Published: {TITLE}"
    assert note in message.get_content()


def test_the_check_page_of_an_edit_says_which_version_it_replaces(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    post_case_study(author, complete(app, title=f"{TITLE}, year two"), case_study_id=case_id)
    with app.app_context():
        second = db.session.scalar(select(Revision.id).where(Revision.number == 2))
    _, fields = review_of(moderator, second)
    check = moderator.get(
        f"/moderation/{second}/approve", query_string={"seen": fields["seen"]}
    ).get_data(as_text=True)
    assert "Version 2 replaces the version published on" in check


def test_a_too_long_note_on_the_check_page_is_an_error_there_and_kept(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    response = moderator.post(
        f"/moderation/{revision_id}/approve", data={**fields, "comment": "Well done " + "x" * 5000}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and title_of(page).startswith("Error: Check before")
    assert '<a href="#comment">' in page and "Well done xxx" in page
    assert states(app, case_id) == [RevisionState.SUBMITTED]


def test_the_check_page_is_only_for_a_submission_you_have_seen(app, author, moderator):
    _, revision_id = submitted(app, author)
    for query in ({}, {"seen": "yesterday"}, {"seen": "2020-01-01T00:00:00.000000"}):
        response = moderator.get(f"/moderation/{revision_id}/approve", query_string=query)
        assert response.status_code == 303
        assert response.location.endswith(f"/moderation/{revision_id}")


def test_your_own_case_study_has_no_decision_and_no_check_page(app, moderator):
    post_case_study(moderator, complete(app))
    with app.app_context():
        revision = db.session.scalars(select(Revision)).one()
        revision_id, token = revision.id, revision.submitted_at.isoformat(timespec="microseconds")
    page = moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    assert 'name="decision"' not in page and "another moderator must decide" in page
    check = moderator.get(f"/moderation/{revision_id}/approve", query_string={"seen": token})
    assert check.status_code == 303
    refused = moderator.post(
        f"/moderation/{revision_id}/approve",
        data={"csrf_token": csrf_from(page), "seen": token},
    )
    assert refused.status_code == 400 and "another moderator must decide" in refused.get_data(
        as_text=True
    )
    assert decisions(app) == []


# What the review page shows


def test_the_review_page_repeats_what_was_asked_last_time(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "changes", comment="Please add how many people walked.")
    post_case_study(
        author, complete(app, outcomes="230 walkers; 41 asked for support."), case_study_id=case_id
    )
    page = moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    asked = page[page.index("Changes requested last time") :]
    assert re.search(r"Mo Derator asked on <time datetime=\"[^\"]+\">\d{1,2} \w+ \d{4} at ", asked)
    assert "Please add how many people walked." in asked
    assert page.index("Changes requested last time") < page.index("As it will appear")


def test_a_first_submission_has_no_previous_request(app, author, moderator):
    _, revision_id = submitted(app, author)
    assert "Changes requested last time" not in moderator.get(
        f"/moderation/{revision_id}"
    ).get_data(as_text=True)


def test_words_added_to_a_paragraph_are_marked_inside_it(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "changes", comment="Say how it was paid for.")
    body = (
        "## What we did\n\nWe walked, we talked and local clubs paid for the kit, we raised money."
    )
    post_case_study(author, complete(app, body=body), case_study_id=case_id)
    page = moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    (line,) = re.findall(
        r'<span class="portal-diff portal-diff--changed">(.*?)</span>\s*\n', page, re.S
    )
    assert line == (
        '<span class="govuk-visually-hidden">Changed: </span>We walked, we talked '
        '<ins class="portal-diff__ins"><span class="govuk-visually-hidden">[added] </span>'
        '<strong class="portal-diff__word">and local clubs paid for the kit</strong>'
        '<span class="govuk-visually-hidden"> [end added]</span></ins>, we raised money.'
    )
    assert '<del class="portal-diff">' not in page  # the paragraph is not shown twice


def test_images_are_shown_on_the_review_page_under_the_download_rules(
    app, author, moderator, colleague
):
    files = [("team photo.png", png()), ("plan.pdf", PDF)]
    assert post_case_study(author, complete(app), files=files).status_code == 303
    with app.app_context():
        revision = db.session.scalars(select(Revision)).one()
        case_id, revision_id = revision.case_study_id, revision.id
        image, pdf = sorted(revision.attachments, key=lambda a: a.filename != "team photo.png")
        image_url = f"/case-studies/{case_id}/attachments/{image.id}"
        pdf_url = f"/case-studies/{case_id}/attachments/{pdf.id}"
    page = moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    images = re.findall(r"<img [^>]+>", page)
    assert len(images) == 1 and f'src="{image_url}"' in images[0]
    assert 'alt="Image 1 of 1 attached to this case study, named team photo.png"' in images[0]
    assert f'<img class="portal-images__image" src="{pdf_url}"' not in page
    shown = moderator.get(image_url)
    assert shown.status_code == 200 and shown.mimetype == "image/png" and shown.data == png()
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert author.get(image_url).status_code == 200
    assert colleague.get(image_url).status_code == 404  # not published: not theirs to see
    assert colleague.get(f"/moderation/{revision_id}").status_code == 403


# Attacks


def test_a_stale_decision_from_another_moderator_is_refused_and_says_who_was_first(
    app, author, moderator, second_moderator
):
    case_id, revision_id = submitted(app, author)
    _, late_fields = review_of(second_moderator, revision_id)
    assert decide(moderator, revision_id, "approve").status_code == 303
    for path, data in (
        (f"/moderation/{revision_id}", {"decision": "changes", "comment": "Too late"}),
        (f"/moderation/{revision_id}", {"decision": "approve"}),
        (f"/moderation/{revision_id}/approve", {}),
    ):
        late = second_moderator.post(path, data={**late_fields, **data})
        page = late.get_data(as_text=True)
        assert late.status_code == 400 and title_of(page).startswith("Error: ")
        assert "This revision was already approved by Mo Derator." in page
        assert 'name="decision"' not in page  # nothing is waiting any more
    assert states(app, case_id) == [RevisionState.PUBLISHED]
    assert decisions(app) == [ModerationAction.APPROVED]


def test_a_decision_on_a_version_the_author_has_changed_since_never_applies(
    app, author, moderator, second_moderator
):
    case_id, revision_id = submitted(app, author)
    check = second_moderator.get(
        f"/moderation/{revision_id}/approve",
        query_string={"seen": review_of(second_moderator, revision_id)[1]["seen"]},
    ).get_data(as_text=True)
    old = {"csrf_token": csrf_from(check), "seen": seen_on(check)}
    # Meanwhile: sent back, changed, submitted again.
    decide(moderator, revision_id, "changes", comment="Add the money raised.")
    post_case_study(
        author, complete(app, outcomes="230 walkers; £12,000 raised."), case_study_id=case_id
    )
    stale = second_moderator.post(f"/moderation/{revision_id}/approve", data=old)
    page = stale.get_data(as_text=True)
    assert stale.status_code == 400
    assert "The author changed this case study after you opened it." in page
    assert "£12,000 raised" in page  # the page now shows the new version...
    assert states(app, case_id) == [RevisionState.SUBMITTED]
    stale_changes = second_moderator.post(
        f"/moderation/{revision_id}",
        data={**old, "decision": "reject", "comment": "No."},
    )
    assert stale_changes.status_code == 400 and "No." in stale_changes.get_data(as_text=True)
    assert decisions(app) == [ModerationAction.CHANGES_REQUESTED]
    # ...and a decision taken from it is on what was seen.
    assert seen_on(page) != old["seen"]
    again = second_moderator.post(
        f"/moderation/{revision_id}/approve", data={**old, "seen": seen_on(page)}
    )
    assert again.status_code == 303 and states(app, case_id) == [RevisionState.PUBLISHED]


def test_get_on_the_decision_addresses_changes_nothing(app, author, moderator):
    case_id, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    for path, query in (
        (f"/moderation/{revision_id}/approve", {**fields, "comment": "x"}),
        (f"/moderation/{revision_id}", {**fields, "decision": "reject", "comment": "x"}),
        (f"/moderation/{revision_id}", {**fields, "decision": "changes", "comment": "x"}),
    ):
        assert moderator.get(path, query_string=query).status_code == 200
        assert moderator.head(path, query_string=query).status_code == 200
    assert states(app, case_id) == [RevisionState.SUBMITTED] and decisions(app) == []


@pytest.mark.parametrize("token", ["", "forged", "someone else's"])
def test_decisions_without_this_session_s_csrf_token_change_nothing(
    app, author, moderator, colleague, token
):
    case_id, revision_id = submitted(app, author)
    _, fields = review_of(moderator, revision_id)
    if token == "someone else's":
        token = csrf_from(colleague.get("/").get_data(as_text=True))
    for path, data in (
        (f"/moderation/{revision_id}/approve", {}),
        (f"/moderation/{revision_id}", {"decision": "reject", "comment": "x"}),
    ):
        response = moderator.post(path, data={**fields, **data, "csrf_token": token})
        assert response.status_code == 400
    assert states(app, case_id) == [RevisionState.SUBMITTED] and decisions(app) == []


def test_thirty_approvals_sent_at_once_publish_once(app, author, make_user):
    case_id, revision_id = submitted(app, author)
    moderator = make_user("moderator", email="quick.fingers@npcc.police.uk", name="Quick Fingers")
    with served(app) as base:
        http = requests.Session()
        token = csrf_from(http.get(base + "/auth/login", timeout=60).text)
        response = http.post(
            base + "/auth/login",
            data={"email": moderator.email, "password": moderator.password, "csrf_token": token},
            timeout=60,
        )
        token = csrf_from(response.text)
        http.post(
            base + "/auth/two-factor",
            data={"code": moderator.totp(), "csrf_token": token},
            timeout=60,
        )
        review = http.get(f"{base}/moderation/{revision_id}", timeout=60).text
        form = {"csrf_token": csrf_from(review), "seen": seen_on(review)}
        cookies = http.cookies.get_dict()
        barrier = threading.Barrier(30)

        def approve(_: int) -> int:
            barrier.wait()
            return requests.post(
                f"{base}/moderation/{revision_id}/approve",
                data=form,
                cookies=cookies,
                allow_redirects=False,
                timeout=120,
            ).status_code

        with ThreadPoolExecutor(max_workers=30) as pool:
            statuses = list(pool.map(approve, range(30)))
    assert sorted(statuses) == [303] + [400] * 29
    assert states(app, case_id) == [RevisionState.PUBLISHED]
    assert decisions(app) == [ModerationAction.APPROVED]
    with app.app_context():
        approvals = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "case_study.approved")
        )
    assert approvals == 1
    published = [m for m in outbox(app) if m["Subject"] == f"Published: {TITLE}"]
    assert len(published) == 1


# Pages of the queue


def waiting_many(app, author, count: int) -> list[int]:
    """`count` case studies waiting, the first submitted longest ago; their revision ids."""
    from portal.models import CaseStudy

    _, first_id = submitted(app, author)
    with app.app_context():
        first = db.session.get(Revision, first_id)
        start = utcnow() - timedelta(days=count + 1)
        first.submitted_at = start
        ids = [first_id]
        for n in range(1, count):
            case_study = CaseStudy(
                slug=f"waiting-{n}",
                force_id=first.case_study.force_id,
                author_id=first.case_study.author_id,
            )
            revision = Revision(
                case_study=case_study,
                number=1,
                state=RevisionState.SUBMITTED,
                title=f"Waiting number {n}",
                summary="A scheme waiting for a decision.",
                submitted_at=start + timedelta(days=n),
            )
            db.session.add_all([case_study, revision])
            db.session.flush()
            ids.append(revision.id)
        db.session.commit()
    return ids


def listed(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="queue-item-(\d+)"', page)]


def test_the_queue_shows_fifty_a_page_oldest_first_and_counts_them_all(app, author, moderator):
    ids = waiting_many(app, author, 52)
    first = moderator.get("/moderation").get_data(as_text=True)
    assert "52 case studies waiting for a decision: page 1 of 2" in first
    assert listed(first) == ids[:50]
    assert 'class="govuk-pagination"' in first and 'rel="prev"' not in first
    later = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = moderator.get(later).get_data(as_text=True)
    assert listed(second) == ids[50:]
    assert "52 case studies waiting" in second and "page 2 of 2" in second
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_a_short_queue_has_no_pagination(app, author, moderator):
    waiting_many(app, author, 3)
    page = moderator.get("/moderation").get_data(as_text=True)
    assert len(listed(page)) == 3 and "govuk-pagination" not in page and "page 1 of" not in page


def test_pages_of_a_filtered_queue_keep_the_filters(app, author, moderator):
    ids = waiting_many(app, author, 51)
    with app.app_context():
        force = db.session.get(Revision, ids[0]).case_study.force.slug
    first = moderator.get(f"/moderation?force={force}").get_data(as_text=True)
    later = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert f"force={force}" in later and "page=2" in later
    second = moderator.get(later).get_data(as_text=True)
    assert listed(second) == ids[50:] and "51 with these filters" in second


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("page=0", 1),
        ("page=-1", 1),
        ("page=x", 1),
        ("page=", 1),
        ("page=2.5", 1),
        ("page=99999999999999999999999", 2),
        ("page=2&force=nowhere", 1),
    ],
)
def test_odd_page_numbers_show_a_real_page_never_a_500(app, author, moderator, query, shown):
    ids = waiting_many(app, author, 51)
    response = moderator.get("/moderation?" + query)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    if "force=nowhere" in query:
        assert listed(page) == [] and "Nothing is waiting with these filters" in page
    else:
        assert listed(page) == (ids[:50] if shown == 1 else ids[50:])
        assert f"page {shown} of 2" in page
