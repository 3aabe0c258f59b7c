"""Contacting a case study's author without seeing their address; recording adoptions."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.jobs.mail import sweep_mail
from portal.models import Adoption, AuditEvent, CaseStudy, MailMessage, Revision, utcnow

from ..conftest import Auth, csrf_from
from ..records import case_study_line, outbox

CONTACT = "sarah.khan@northants.police.uk"
MESSAGE = "Hello Sarah, we would like to run your event in Kent. Who did you work with?"


def send(client, case_id, message=MESSAGE, **headers):
    path = f"/case-studies/{case_id}/contact"
    token = csrf_from(client.get(path).get_data(as_text=True))
    return client.post(path, data={"message": message, "csrf_token": token}, headers=headers)


def audit_events(app, action):
    with app.app_context():
        return [
            (e.actor_id, e.target_type, e.target_id, json.loads(e.detail))
            for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        ]


@pytest.fixture
def case_id(published):
    (found,) = published(case_study_line())
    return found


def set_revision(app, case_id, **values):
    """Change the published revision directly, for content no form would accept."""
    with app.app_context():
        revision = db.session.scalar(select(Revision).where(Revision.case_study_id == case_id))
        for name, value in values.items():
            setattr(revision, name, value)
        db.session.commit()


def client_for(app, make_user, role="contributor", **kwargs):
    client = app.test_client()
    user = make_user(role, **kwargs)
    assert Auth(client).login(user).status_code == 303
    client.user = user
    return client


# Contact the author


def test_case_study_page_names_the_contact_but_never_shows_the_address(member, case_id):
    page = member.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert "Inspector Sarah Khan" in page
    assert CONTACT not in page and "mailto:" not in page
    assert f'href="/case-studies/{case_id}/contact"' in page
    assert "Contact Inspector Sarah Khan" in page


def test_contact_form_does_not_show_the_address_either(member, case_id):
    page = member.get(f"/case-studies/{case_id}/contact").get_data(as_text=True)
    assert "<h1" in page and "Contact Inspector Sarah Khan" in page
    assert CONTACT not in page


def test_message_is_emailed_to_the_contact_with_replies_to_the_sender(app, member, case_id):
    response = send(member, case_id)
    assert response.status_code == 303
    assert response.location == f"/case-studies/{case_id}/contact/sent"
    confirmation = member.get(response.location).get_data(as_text=True)
    assert "Message sent" in confirmation and CONTACT not in confirmation

    (to_contact,) = [m for m in outbox(app) if m["To"] == CONTACT]
    assert to_contact["Reply-To"].addresses[0].addr_spec == member.user.email
    assert to_contact["From"] == app.config["MAIL_FROM"]
    body = to_contact.get_content()
    assert MESSAGE in body
    assert "Alex Example of Kent Police" in body
    assert f"{app.config['BASE_URL']}/case-studies/{case_id}/" in body

    # The sender's copy goes to the sender alone and never reveals the address.
    (copy,) = [m for m in outbox(app) if m["To"] == member.user.email]
    assert MESSAGE in copy.get_content()
    assert CONTACT not in copy.as_string()


def test_message_is_audited_without_its_text(app, member, case_id):
    send(member, case_id)
    ((actor_id, target_type, target_id, detail),) = audit_events(app, "case_study.contacted")
    assert (target_type, target_id) == ("case_study", case_id) and actor_id is not None
    assert detail == {"characters": len(MESSAGE), "revision": 1}
    with app.app_context():
        stored = " ".join(db.session.scalars(select(AuditEvent.detail)))
    assert "Kent" not in stored and "Sarah" not in stored


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", "Enter your message"),
        ("Too short", "at least 20 characters"),
        ("x" * 3001, "3000 characters or fewer"),
        ("A message with a bell \x07 in the middle of it", "control characters"),
    ],
)
def test_invalid_message_is_refused_next_to_the_field_keeping_the_text(
    app, member, case_id, message, error
):
    response = send(member, case_id, message)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="message-error"' in page and error in page
    assert "<title>Error: " in page
    if message and "\x07" not in message:
        assert f">{message}</textarea>" in page
    assert outbox(app) == [] and audit_events(app, "case_study.contacted") == []


def test_line_breaks_in_a_message_cannot_add_headers_or_recipients(app, member, case_id):
    sneaky = "Hello there, a real question.\r\nBcc: everyone@evil.example\r\n\r\nSubject: hi\n"
    assert send(member, case_id, sneaky).status_code == 303
    (to_contact,) = [m for m in outbox(app) if m["To"] == CONTACT]
    assert to_contact["Bcc"] is None and "evil.example" not in to_contact["To"]
    assert to_contact["Subject"].strip().startswith("A message about your case study")
    assert "Bcc: everyone@evil.example" in to_contact.get_content()


def test_line_breaks_in_the_sender_name_and_title_stay_out_of_headers(app, make_user, published):
    (case_id,) = published(case_study_line())
    set_revision(app, case_id, title="Two\nlines")  # the form's title field is one line only
    client = client_for(app, make_user, name="Alex\r\nBcc: x@evil.example")
    assert send(client, case_id).status_code == 303
    (to_contact,) = [m for m in outbox(app) if m["To"] == CONTACT]
    assert to_contact["Bcc"] is None
    assert to_contact["Subject"].strip() == "A message about your case study: Two lines"


def test_messages_are_rate_limited_per_user(app, member, case_id, make_user):
    for _ in range(5):
        assert send(member, case_id).status_code == 303
    refused = send(member, case_id)
    assert refused.status_code == 429
    assert "5 messages an hour" in refused.get_data(as_text=True)
    assert len(audit_events(app, "case_study.contacted")) == 5
    # Someone else is not held back by it.
    assert send(client_for(app, make_user), case_id).status_code == 303


def test_typing_mistakes_do_not_count_towards_the_limit(member, case_id):
    for _ in range(6):
        assert send(member, case_id, "short").status_code == 400
    assert send(member, case_id).status_code == 303


def test_rate_limit_answers_htmx_with_a_fragment(member, case_id):
    for _ in range(5):
        assert send(member, case_id).status_code == 303
    refused = send(member, case_id, **{"HX-Request": "true"})
    assert refused.status_code == 429
    assert "<html" not in refused.get_data(as_text=True)


def test_contact_needs_the_csrf_token(app, member, case_id):
    response = member.post(f"/case-studies/{case_id}/contact", data={"message": MESSAGE})
    assert response.status_code == 400
    assert outbox(app) == []


def test_only_published_case_studies_with_a_contact_can_be_contacted(
    app, member, published, moderator_client
):
    draft, archived, no_address = published(
        case_study_line(status="draft", title="A draft"),
        case_study_line(title="Archived one"),
        case_study_line(title="No address"),
    )
    set_revision(app, no_address, contact_email="")
    token = csrf_from(page_of(moderator_client, archived))
    archiving = moderator_client.post(
        f"/case-studies/{archived}/archive", data={"csrf_token": token}
    )
    assert archiving.status_code == 303
    for case_id in (draft, archived, no_address, 999999):
        assert member.get(f"/case-studies/{case_id}/contact").status_code == 404
        assert member.get(f"/case-studies/{case_id}/contact/sent").status_code == 404
    page = member.get(f"/case-studies/{no_address}", follow_redirects=True).get_data(as_text=True)
    assert "/contact" not in page


def test_anonymous_readers_are_sent_to_sign_in_even_in_a_public_library(tmp_path, jsonl):
    from portal.casestudies.importer import import_case_studies
    from portal.cli import init_db

    from ..conftest import make_app

    app = make_app(tmp_path / "public", PUBLIC_LIBRARY=True)
    with app.app_context():
        init_db()
        import_case_studies(jsonl([case_study_line()]))
        case_id = db.session.scalar(select(CaseStudy.id))
    client = app.test_client()
    page = client.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert "Sign in to contact Inspector Sarah Khan" in page and CONTACT not in page
    response = client.get(f"/case-studies/{case_id}/contact")
    assert response.status_code == 302
    assert response.location == f"/auth/login?next=/case-studies/{case_id}/contact"
    # A post without a session has no valid token, so it is refused before anything else.
    assert client.post(
        f"/case-studies/{case_id}/contact", data={"message": MESSAGE}
    ).status_code in (
        302,
        400,
    )
    assert not Path(app.config["OUTBOX_PATH"]).exists() or outbox(app) == []


def test_a_mail_server_that_is_down_never_loses_the_message(instance_path, make_user, published):
    from ..conftest import make_app

    (case_id,) = published(case_study_line())
    user = make_user("contributor")
    # Nothing listens on port 9 of this machine: the connection is refused at once.
    app = make_app(instance_path, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=9)
    client = app.test_client()
    Auth(client).login(user)
    response = send(client, case_id)
    assert response.status_code == 303  # the sender never waits on the mail server
    assert len(audit_events(app, "case_study.contacted")) == 1
    assert outbox(app) == []  # the worker tried: the server was down
    app.config.update(MAIL_BACKEND="file")
    with app.app_context():
        db.session.execute(update(MailMessage).values(next_attempt_at=utcnow()))
        db.session.commit()
        sweep_mail()
    assert sorted(m["To"] for m in outbox(app)) == sorted([CONTACT, user.email])


def test_moderators_still_see_the_address_when_reviewing(app, published, moderator_client):
    (case_id,) = published(case_study_line(status="submitted"))
    with app.app_context():
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_id)
        )
    page = moderator_client.get(f"/moderation/{revision_id}").get_data(as_text=True)
    assert f'href="mailto:{CONTACT}"' in page


def test_the_author_still_sees_the_address_on_an_unpublished_version(app, published, make_user):
    author = make_user("contributor", email="author@northants.police.uk", force="Northants Police")
    (case_id,) = published(case_study_line(status="draft", author_email=author.email))
    client = app.test_client()
    Auth(client).login(author)
    page = client.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    assert f'href="mailto:{CONTACT}"' in page


# Adopted elsewhere


@pytest.fixture
def moderator_client(app, make_user):
    return client_for(app, make_user, "moderator", email="mo@npcc.police.uk", force="NPCC")


def page_of(client, case_id):
    return client.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)


def adopt(client, case_id, kind="adapted", note="We ran it with our fire service.", **headers):
    token = csrf_from(page_of(client, case_id))
    return client.post(
        f"/case-studies/{case_id}/adoption",
        data={"kind": kind, "note": note, "csrf_token": token},
        headers=headers,
    )


def adoptions(app):
    with app.app_context():
        rows = db.session.scalars(select(Adoption)).all()
        return [(a.force.name, a.kind.value, a.note) for a in rows]


def test_a_user_records_that_their_force_adapted_a_case_study(app, member, case_id):
    response = adopt(member, case_id)
    assert response.status_code == 303
    assert response.location == f"/case-studies/{case_id}#adoptions"
    assert adoptions(app) == [("Kent Police", "adapted", "We ran it with our fire service.")]
    page = page_of(member, case_id)
    assert (
        "Adopted elsewhere" in page and "Recorded: Kent Police has adapted this case study." in page
    )
    assert "Kent Police" in page and "We ran it with our fire service." in page
    ((_, target_type, target_id, detail),) = audit_events(app, "adoption.recorded")
    assert (target_type, target_id) == ("case_study", case_id)
    assert detail == {"force": "Kent Police", "kind": "adapted", "note_characters": 32}


def test_the_force_is_always_the_users_own(app, member, case_id):
    token = csrf_from(page_of(member, case_id))
    member.post(
        f"/case-studies/{case_id}/adoption",
        data={
            "kind": "adopted",
            "note": "",
            "force": "Police Scotland",
            "force_id": "1",
            "csrf_token": token,
        },
    )
    assert adoptions(app) == [("Kent Police", "adopted", "")]


def test_recording_again_updates_the_one_record_of_the_force(app, member, case_id, make_user):
    adopt(member, case_id)
    colleague = client_for(app, make_user, email="colleague@kent.police.uk")
    assert adopt(colleague, case_id, kind="adopted", note="Now as it is.").status_code == 303
    assert adoptions(app) == [("Kent Police", "adopted", "Now as it is.")]
    assert len(audit_events(app, "adoption.updated")) == 1


def test_a_force_cannot_adopt_its_own_case_study(app, published, make_user):
    (case_id,) = published(case_study_line())
    northants = client_for(app, make_user, email="n@northants.police.uk", force="Northants Police")
    page = page_of(northants, case_id)
    assert "Has your force taken this up?" not in page
    response = adopt(northants, case_id)
    assert response.status_code == 403
    assert "cannot adopt it" in response.get_data(as_text=True)
    assert adoptions(app) == []


def test_a_note_too_long_is_refused_keeping_the_text(app, member, case_id):
    note = "n" * 501
    response = adopt(member, case_id, note=note)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="note-error"' in page and "500 characters or fewer" in page
    assert f">{note}</textarea>" in page and "<title>Error: " in page
    assert adoptions(app) == []


def test_kind_is_required(app, member, case_id):
    response = adopt(member, case_id, kind="")
    assert response.status_code == 400
    assert "Choose adopted or adapted" in response.get_data(as_text=True)
    assert adopt(member, case_id, kind="stolen").status_code == 400
    assert adoptions(app) == []


def test_with_htmx_the_section_alone_comes_back_with_an_announcement(app, member, case_id):
    response = adopt(member, case_id, **{"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert "<html" not in fragment
    assert 'id="adoptions"' in fragment and "Kent Police" in fragment
    assert '<hx-partial hx-target="#announcer"' in fragment
    assert "Recorded: Kent Police has adapted this case study." in fragment
    assert "Update the record" in fragment

    refused = adopt(member, case_id, note="n" * 501, **{"HX-Request": "true"})
    assert refused.status_code == 400
    assert 'id="note-error"' in refused.get_data(as_text=True)


def test_adoption_needs_the_csrf_token(app, member, case_id):
    response = member.post(f"/case-studies/{case_id}/adoption", data={"kind": "adopted"})
    assert response.status_code == 400
    assert adoptions(app) == []


def remove(client, case_id, adoption_id, **headers):
    token = csrf_from(page_of(client, case_id))
    return client.post(
        f"/case-studies/{case_id}/adoptions/{adoption_id}/remove",
        data={"csrf_token": token},
        headers=headers,
    )


def adoption_id(app):
    with app.app_context():
        return db.session.scalar(select(Adoption.id))


def test_a_user_of_another_force_cannot_remove_an_adoption(app, member, case_id, make_user):
    adopt(member, case_id)
    stranger = client_for(app, make_user, email="s@scotland.police.uk", force="Police Scotland")
    assert "Remove" not in page_of(stranger, case_id).split('id="adoptions"')[1]
    assert remove(stranger, case_id, adoption_id(app)).status_code == 403
    assert remove(stranger, case_id, 999999).status_code == 404
    assert len(adoptions(app)) == 1


def test_a_user_of_the_same_force_removes_the_record(app, member, case_id, make_user):
    adopt(member, case_id)
    colleague = client_for(app, make_user, email="colleague@kent.police.uk")
    response = remove(colleague, case_id, adoption_id(app), **{"HX-Request": "true"})
    assert response.status_code == 200
    assert "Kent Police is no longer listed." in response.get_data(as_text=True)
    assert adoptions(app) == []
    assert len(audit_events(app, "adoption.removed")) == 1


def test_a_moderator_removes_any_record(app, member, case_id, moderator_client):
    adopt(member, case_id)
    response = remove(moderator_client, case_id, adoption_id(app))
    assert response.status_code == 303
    assert adoptions(app) == []


def test_an_adoption_is_only_removed_through_its_own_case_study(app, member, published):
    first, second = published(case_study_line(), case_study_line(title="Another"))
    adopt(member, first)
    assert remove(member, second, adoption_id(app)).status_code == 404
    assert len(adoptions(app)) == 1


def test_the_author_is_told_when_a_force_adopts(app, published, make_user, member):
    author = make_user("contributor", email="author@northants.police.uk", force="Northants Police")
    (case_id,) = published(case_study_line(author_email=author.email))
    adopt(member, case_id)
    adopt(member, case_id, note="Updated")  # an update is not news
    told = [m for m in outbox(app) if m["To"] == author.email]
    assert len(told) == 1
    assert told[0]["Subject"].startswith("Kent Police has adapted:")
    assert "We ran it with our fire service." in told[0].get_content()


def test_adoptions_of_drafts_and_archived_case_studies_are_refused(app, member, published):
    (draft,) = published(case_study_line(status="draft"))
    assert adopt_without_page(member, draft).status_code == 404


def adopt_without_page(client, case_id):
    token = csrf_from(client.get("/case-studies/new").get_data(as_text=True))
    return client.post(
        f"/case-studies/{case_id}/adoption", data={"kind": "adopted", "csrf_token": token}
    )


def test_adoptions_recorded_on_the_page_count_on_the_dashboard(app, published, make_user, member):
    from portal.models import AdoptionKind
    from portal.reports import figures

    first, second = published(case_study_line(), case_study_line(title="Another"))
    scotland = client_for(app, make_user, email="s@scotland.police.uk", force="Police Scotland")
    adopt(member, first)
    adopt(member, second, kind="adopted")
    adopt(scotland, first, kind="adopted")
    with app.app_context():
        counts = figures.adoptions()
        assert counts.total == 3
        assert counts.by_kind == {AdoptionKind.ADOPTED: 2, AdoptionKind.ADAPTED: 1}
        assert counts.forces_adopting == 2
        assert [(row[0], row[3]) for row in counts.most_adopted] == [(first, 2), (second, 1)]
        assert figures.adoptions(utcnow().year + 1).total == 0
    page = member.get("/reports").get_data(as_text=True)
    assert 'id="figure-adoptions">3<' in page


def test_the_page_lists_no_adoptions_yet(member, case_id):
    page = page_of(member, case_id)
    assert "No other force has recorded taking this up yet." in page
    assert "Has your force taken this up?" in page


def test_failed_attempts_are_limited_too(app, member, case_id):
    # Ten refused forms in an hour, then even a good message waits: many requests at once
    # can't slip under the limit on messages sent.
    for _ in range(10):
        assert send(member, case_id, message="too short").status_code == 400
    assert send(member, case_id).status_code == 429
    assert outbox(app) == []
