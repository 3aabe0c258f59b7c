"""Attacks on who may see and do what: other people's ids, full pages and htmx fragments alike.

One scenario holds an author's draft (with an attachment), a submission waiting for a
decision and a published case study. Each attempt is made twice, as a page and as an htmx
request, and every refused state change is checked to have changed nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    Adoption,
    AdoptionKind,
    Attachment,
    CaseStudy,
    Force,
    Revision,
    RevisionState,
    Role,
    Synonym,
    User,
)

from ..conftest import Auth, csrf_from
from ..records import pdf_attachment
from ..writing import complete, post_case_study, seen_on


@pytest.fixture
def scenario(app, author, make_user, published):
    """Ids of an author's draft, submission and published case study, and of other things."""
    post_case_study(author, complete(app, title="A private draft"), action="save")
    post_case_study(author, complete(app, title="Waiting for a decision"))
    (live_id,) = published()
    with app.app_context():
        draft, waiting = db.session.scalars(
            select(CaseStudy).where(CaseStudy.author_id.is_not(None)).order_by(CaseStudy.id)
        ).all()
        draft.revisions[-1].attachments.append(pdf_attachment(b"%PDF-1.4\nsecret\n%%EOF"))
        live = db.session.get(CaseStudy, live_id)
        author_user = db.session.get(User, draft.author_id)
        other_force = db.session.scalar(select(Force).where(Force.name == "Cumbria Constabulary"))
        adoption = Adoption(
            case_study=live,
            force=other_force,
            kind=AdoptionKind.ADOPTED,
            recorded_by_id=author_user.id,
        )
        db.session.add(adoption)
        db.session.commit()
        ids = {
            "draft": draft.id,
            "attachment": draft.revisions[-1].attachments[0].id,
            "waiting": waiting.id,
            "waiting_revision": waiting.revisions[-1].id,
            "live": live_id,
            "author": author_user.id,
            "adoption": adoption.id,
        }
    return ids


def state(app) -> tuple:
    """Everything a refused request must leave as it was."""
    with app.app_context():
        return (
            tuple(db.session.execute(select(Revision.id, Revision.state, Revision.title)).all()),
            tuple(db.session.execute(select(CaseStudy.id, CaseStudy.archived_at)).all()),
            tuple(db.session.execute(select(User.id, User.role, User.status, User.force_id)).all()),
            tuple(db.session.execute(select(Attachment.id)).all()),
            tuple(db.session.execute(select(Adoption.id, Adoption.kind)).all()),
            tuple(db.session.execute(select(Synonym.id, Synonym.term, Synonym.expansion)).all()),
        )


@pytest.fixture
def people(app, client, colleague, moderator, make_user):
    anonymous = client
    no_mfa = app.test_client()
    Auth(no_mfa).login(make_user("moderator", mfa=False))
    return {
        "anonymous": anonymous,
        "colleague": colleague,
        "moderator-without-mfa": no_mfa,
        "moderator": moderator,
    }


# (who, method, path, statuses a refusal may have). Paths name scenario ids in braces.
READS = [
    # anonymous: sent to sign in (htmx gets 401 and HX-Redirect)
    ("anonymous", "/library", {302, 401}),
    ("anonymous", "/case-studies/{live}", {302, 401}),
    ("anonymous", "/reports/export.csv", {302, 401}),
    ("anonymous", "/account", {302, 401}),
    ("anonymous", "/moderation", {302, 401}),
    ("anonymous", "/admin", {302, 401}),
    ("anonymous", "/admin/search-insights", {302, 401}),
    ("colleague", "/case-studies/{draft}", {404}),
    ("colleague", "/case-studies/{draft}/a-private-draft", {404}),
    ("colleague", "/case-studies/{draft}/edit", {404}),
    ("colleague", "/case-studies/{draft}/history", {404}),
    ("colleague", "/case-studies/{draft}/attachments/{attachment}", {404}),
    ("colleague", "/case-studies/{live}/attachments/{attachment}", {404}),
    ("colleague", "/case-studies/{waiting}", {404}),
    ("colleague", "/case-studies/{draft}/contact", {404}),
    ("colleague", "/case-studies/{draft}/adoption", {404}),
    ("colleague", "/moderation", {403}),
    ("colleague", "/moderation/{waiting_revision}", {403}),
    ("colleague", "/admin", {403}),
    ("colleague", "/admin/users/{author}", {403}),
    ("colleague", "/admin/audit", {403}),
    ("colleague", "/admin/search-insights", {403}),
    ("colleague", "/admin/search-insights?days=90", {403}),
    # sent to set up two-factor authentication (htmx gets 403 and HX-Redirect)
    ("moderator-without-mfa", "/moderation", {302, 403}),
    ("moderator-without-mfa", "/moderation/{waiting_revision}", {302, 403}),
    ("moderator", "/admin", {403}),
    ("moderator", "/admin/users/{author}", {403}),
    ("moderator", "/admin/search-insights", {403}),
    ("moderator-without-mfa", "/admin/search-insights", {403}),
    ("moderator", "/case-studies/{draft}/edit", {403}),  # moderators see drafts, never edit
]

WRITES = [
    ("anonymous", "/case-studies/{live}/archive", {}, {302, 401}),
    ("colleague", "/case-studies/{draft}/edit", {"title": "Taken over", "action": "save"}, {404}),
    ("colleague", "/case-studies/{waiting}/withdraw", {}, {404}),
    ("colleague", "/case-studies/{live}/archive", {}, {303}),  # back, with a message why
    (
        "colleague",
        "/moderation/{waiting_revision}",
        {"decision": "reject", "comment": "x"},
        {403},
    ),
    ("colleague", "/moderation/{waiting_revision}/approve", {}, {403}),
    ("colleague", "/admin/users/{author}/role", {"role": "admin"}, {403}),
    ("colleague", "/admin/users/{author}/status", {"status": "disabled"}, {403}),
    (
        "colleague",
        "/admin/search-insights/synonyms",
        {"term": "hfs", "expansion": "heforshe", "search": "hfs"},
        {403},
    ),
    ("colleague", "/case-studies/{live}/adoptions/{adoption}/remove", {}, {403, 404}),
    (
        "moderator-without-mfa",
        "/moderation/{waiting_revision}",
        {"decision": "reject", "comment": "x"},
        {302, 403},
    ),
    ("moderator-without-mfa", "/moderation/{waiting_revision}/approve", {}, {302, 403}),
    ("moderator", "/admin/users/{author}/role", {"role": "admin"}, {403}),
    (
        "moderator",
        "/admin/search-insights/synonyms",
        {"term": "hfs", "expansion": "heforshe", "search": "hfs"},
        {403},
    ),
    ("moderator", "/case-studies/{draft}/edit", {"title": "Taken over", "action": "save"}, {403}),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize(("who", "path", "refused"), READS)
def test_reading_what_is_not_yours_is_refused(scenario, people, who, path, refused, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    response = people[who].get(path.format(**scenario), headers=headers)
    assert response.status_code in refused
    body = response.get_data(as_text=True)
    assert "A private draft" not in body and "secret" not in body


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize(("who", "path", "data", "refused"), WRITES)
def test_changing_what_is_not_yours_changes_nothing(
    app, scenario, people, who, path, data, refused, htmx
):
    client = people[who]
    token = (
        csrf_from(client.get("/auth/login").get_data(as_text=True)) if who == "anonymous" else None
    )
    if token is None:
        page = client.get("/account").get_data(as_text=True)
        token = csrf_from(page)
    headers = {"HX-Request": "true", "X-CSRFToken": token} if htmx else {}
    before = state(app)
    response = client.post(
        path.format(**scenario), data={**data, "csrf_token": token}, headers=headers
    )
    assert response.status_code in refused
    assert state(app) == before


def test_the_same_request_works_for_the_owner(app, scenario, author):
    """The control: the attempts above are well-formed, and refused only for who sends them."""
    assert author.get(f"/case-studies/{scenario['draft']}/edit").status_code == 200
    assert (
        author.get(
            f"/case-studies/{scenario['draft']}/attachments/{scenario['attachment']}"
        ).status_code
        == 200
    )
    response = post_case_study(
        author,
        complete(app, title="Renamed by its author"),
        action="save",
        case_study_id=scenario["draft"],
    )
    assert response.status_code == 303


def test_a_moderator_cannot_approve_their_own_submission(app, moderator):
    post_case_study(moderator, complete(app, title="My own"))
    with app.app_context():
        revision = db.session.scalar(select(Revision).where(Revision.title == "My own"))
        revision_id = revision.id
    before = state(app)
    page = moderator.get(f"/moderation/{revision_id}").get_data(as_text=True)
    response = moderator.post(
        f"/moderation/{revision_id}/approve",
        data={"seen": seen_on(page), "csrf_token": csrf_from(page)},
    )
    assert response.status_code in (400, 403)
    assert state(app) == before
    with app.app_context():
        assert db.session.get(Revision, revision_id).state == RevisionState.SUBMITTED


def test_ids_past_the_database_range_are_404_not_errors(member):
    for path in (
        "/case-studies/2147483648",
        "/moderation/99999999999",
        "/admin/users/9223372036854775808",
    ):
        assert member.get(path).status_code == 404


def test_an_admin_role_cannot_be_granted_by_a_crafted_profile_form(app, member):
    page = member.get("/account/profile").get_data(as_text=True)
    member.post(
        "/account/profile",
        data={
            "name": "Sam Patel",
            "role": "admin",
            "force": "Cumbria",
            "csrf_token": csrf_from(page),
        },
    )
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == member.user.email))
        assert user.role == Role.CONTRIBUTOR and user.force.name == "Kent Police"
