"""Closing an account (the right to erasure): by its owner, or by an admin on request. What
they shared stays under their force, its contact handed to a colleague, or is archived; no
name, email or secret of theirs is left anywhere but the audit log's events (kept for the
audit log's own period, as the privacy notice says). Runs on both databases."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import String, Text, func, or_, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    CaseStudy,
    ExternalIdentity,
    Follow,
    MailMessage,
    ModerationEvent,
    RecoveryCode,
    Revision,
    RevisionState,
    User,
    UserStatus,
)
from portal.reference import find_force
from tests.conftest import PASSWORD, Auth, csrf_from, signed_in
from tests.records import case_study_line

NAME, EMAIL = "Quinn Zephyrine", "quinn.zephyrine@kent.police.uk"


@pytest.fixture
def leaver(app, make_user, published):
    """A moderator with two case studies in the library (their own contact on both), a
    draft, a follow, two-factor, a force sign-in, a contact listing, a decision and mail."""
    person = make_user("moderator", email=EMAIL, name=NAME)
    kept, archived = published(
        case_study_line(
            title="Rugby allies", author_email=EMAIL, contact_name=NAME, contact_email=EMAIL
        ),
        case_study_line(
            title="Night safety walks", author_email=EMAIL, contact_name=NAME, contact_email=EMAIL
        ),
    )
    [draft] = published(
        case_study_line(
            title="Half written", author_email=EMAIL, status="draft", contact_email=EMAIL
        )
    )
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == EMAIL))
        user.listed_as_contact, user.contact_role = True, "HeForShe lead"
        db.session.add(Follow(user_id=user.id, force=find_force("Essex Police")))
        db.session.add(ExternalIdentity(user_id=user.id, issuer="entra:t", subject="o"))
        revision = db.session.scalar(select(Revision).where(Revision.case_study_id == kept))
        db.session.add(
            ModerationEvent(
                case_study_id=kept, revision_id=revision.id, actor_id=user.id, action="approved"
            )
        )
        for case_study_id in (kept, archived):  # what a submission keeps for the next review
            db.session.add(
                ModerationEvent(
                    case_study_id=case_study_id,
                    revision_id=db.session.scalar(
                        select(Revision.id).where(Revision.case_study_id == case_study_id)
                    ),
                    actor_id=user.id,
                    action="submitted",
                    snapshot=json.dumps(
                        {"title": "x", "contact_name": NAME, "contact_email": EMAIL}
                    ),
                )
            )
        db.session.add(
            MailMessage(
                message_id="<m1@test>", to=EMAIL, subject=f"Hello {NAME}", body=f"Dear {NAME}",
                state="sent",
            )
        )  # fmt: skip
        db.session.commit()
    return person, kept, archived, draft


def _close(client, kept, archived, confirm=EMAIL, **extra):
    token = csrf_from(client.get("/account/close").text)
    data = {
        "password": PASSWORD,
        f"choice-{kept}": "hand_over",
        f"name-{kept}": "Sam Colleague",
        f"email-{kept}": "sam.colleague@kent.police.uk",
        f"choice-{archived}": "archive",
        "confirm": confirm,
        "csrf_token": token,
        **extra,
    }
    return client.post("/account/close", data={k: v for k, v in data.items() if v is not None})


def _traces(app, *texts: str) -> list[str]:
    """Every text column of every table but the audit log's that still holds one of `texts`."""
    found = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if table.name == "audit_event":
                continue
            columns = [c for c in table.columns if isinstance(c.type, (String, Text))]
            for column in columns:
                hits = db.session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(or_(*(func.lower(column).contains(t.lower()) for t in texts)))
                )
                if hits:
                    found.append(f"{table.name}.{column.name}")
    return found


def test_closing_your_account_leaves_no_trace_of_you_but_the_audit_log(app, leaver):
    person, kept, archived, draft = leaver
    client = signed_in(app, person)
    assert _traces(app, NAME, EMAIL)  # the check sees them before
    response = _close(client, kept, archived)
    assert response.status_code == 303 and response.location.endswith("/auth/login")
    assert _traces(app, NAME, EMAIL) == []
    with app.app_context():
        user = db.session.scalar(select(User).where(User.closed_at.is_not(None)))
        assert user.name == "Former moderator" and user.status == UserStatus.DISABLED
        assert user.password_hash is None and user.totp_secret is None
        assert not user.listed_as_contact
        for model in (Follow, RecoveryCode, ExternalIdentity):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0
        # What they shared stays under their force: handed over, or archived.
        handed = db.session.get(CaseStudy, kept)
        live = [r for r in handed.revisions if r.state == RevisionState.PUBLISHED][0]
        assert (live.contact_name, live.contact_email) == (
            "Sam Colleague",
            "sam.colleague@kent.police.uk",
        )
        assert handed.archived_at is None and handed.author_id == user.id
        assert db.session.get(CaseStudy, archived).archived_at is not None
        assert db.session.get(CaseStudy, draft) is None
        # Their decision keeps the role, not the name.
        decision = db.session.scalar(
            select(ModerationEvent).where(ModerationEvent.action == "approved")
        )
        assert decision.actor.name == "Former moderator"
        handed_over = db.session.scalar(
            select(ModerationEvent.snapshot).where(
                ModerationEvent.action == "submitted", ModerationEvent.case_study_id == kept
            )
        )
        assert json.loads(handed_over)["contact_email"] == "sam.colleague@kent.police.uk"
        closed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.closed"))
        assert '"by": "self"' in closed.detail
    assert client.get("/account").status_code == 302  # the session ended
    again = app.test_client()
    assert Auth(again).login(person).status_code == 400  # nobody signs in to it again
    assert app.test_client().get(f"/case-studies/{kept}").status_code in (200, 302)


def test_each_live_case_study_needs_a_choice_and_what_was_typed_is_kept(app, leaver):
    person, kept, archived, _ = leaver
    client = signed_in(app, person)
    response = _close(
        client,
        kept,
        archived,
        confirm="wrong@kent.police.uk",
        **{f"choice-{archived}": None, f"email-{kept}": "not an address"},
    )
    assert response.status_code == 400
    text = response.text
    assert "Choose whether to hand its contact to a colleague or archive it" in text
    assert "Enter your colleague&#39;s email address" in text
    assert "Type the account&#39;s email address to confirm" in text
    assert 'value="Sam Colleague"' in text and 'value="not an address"' in text
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == EMAIL)).closed_at is None
    assert _traces(app, EMAIL)  # nothing changed


def test_an_admin_closes_an_account_on_request(app, leaver, make_user):
    person, kept, archived, _ = leaver
    admin = signed_in(app, make_user("admin", email="chief@kent.police.uk"))
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == EMAIL))
    page = admin.get(f"/admin/users/{user_id}/close")
    assert page.status_code == 200 and "Rugby allies" in page.text
    done = admin.post(
        f"/admin/users/{user_id}/close",
        data={
            f"choice-{kept}": "archive",
            f"choice-{archived}": "archive",
            "confirm": EMAIL,
            "csrf_token": csrf_from(page.text),
        },
    )
    assert done.status_code == 303
    assert _traces(app, NAME, EMAIL) == []
    with app.app_context():
        closed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.closed"))
        assert '"by": "admin"' in closed.detail and closed.actor.email == "chief@kent.police.uk"
    # A closed account cannot be enabled again.
    token = csrf_from(admin.get(f"/admin/users/{user_id}").text)
    refused = admin.post(
        f"/admin/users/{user_id}/status", data={"status": "active", "csrf_token": token}
    )
    assert refused.status_code == 400 and "cannot be used again" in refused.text
    member = signed_in(app, make_user(email="someone@kent.police.uk"))
    assert member.get(f"/admin/users/{user_id}/close").status_code == 403


def test_the_only_admin_cannot_close_their_own_account(app, make_user):
    admin = make_user("admin", email="only.admin@kent.police.uk")
    client = signed_in(app, admin)
    token = csrf_from(client.get("/account/close").text)
    response = client.post(
        "/account/close",
        data={"confirm": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 400 and "only admin account" in response.text


def test_two_closings_at_once_close_it_once(app, leaver):
    from concurrent.futures import ThreadPoolExecutor

    person, kept, archived, _ = leaver
    first = signed_in(app, person)
    second = app.test_client()  # the same session in a second tab
    second.set_cookie("session", first.get_cookie("session").value)
    clients = [first, second]
    tokens = [csrf_from(c.get("/account/close").text) for c in clients]

    def close(pair):
        client, token = pair
        return client.post(
            "/account/close",
            data={
                f"choice-{kept}": "archive",
                f"choice-{archived}": "archive",
                "confirm": EMAIL,
                "password": PASSWORD,
                "csrf_token": token,
            },
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = sorted(pool.map(close, zip(clients, tokens, strict=True)))
    # The other is told it is closed already, or finds its session ended (to sign in).
    assert answers.count(303) == 1 and set(answers) <= {302, 303, 400}, answers
    with app.app_context():
        closings = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "account.closed")
        )
        assert closings == 1


def test_a_case_study_whose_contact_is_a_team_can_stay_as_it_is(app, make_user, published):
    person = make_user(email=EMAIL, name=NAME)
    [own, team] = published(
        case_study_line(title="Own", author_email=EMAIL, contact_name=NAME, contact_email=EMAIL),
        case_study_line(
            title="Team",
            author_email=EMAIL,
            contact_name="HeForShe team",
            contact_email="heforshe@kent.police.uk",
        ),
    )
    client = signed_in(app, person)
    page = client.get("/account/close").text
    assert f'id="choice-{team}-keep"' in page and f'id="choice-{own}-keep"' not in page
    token = csrf_from(page)
    refused = client.post(
        "/account/close",
        data={f"choice-{own}": "keep", f"choice-{team}": "keep", "confirm": EMAIL,
              "password": PASSWORD, "csrf_token": token},
    )  # fmt: skip
    assert refused.status_code == 400 and "Its contact is you" in refused.text
    done = client.post(
        "/account/close",
        data={f"choice-{own}": "archive", f"choice-{team}": "keep", "confirm": EMAIL,
              "password": PASSWORD, "csrf_token": token},
    )  # fmt: skip
    assert done.status_code == 303
    with app.app_context():
        kept = db.session.get(CaseStudy, team)
        assert kept.archived_at is None
        assert {r.contact_email for r in kept.revisions} == {"heforshe@kent.police.uk"}
    assert _traces(app, NAME, EMAIL) == []


def test_closing_needs_your_password_again(app, leaver):
    person, kept, archived, _ = leaver
    client = signed_in(app, person)
    wrong = _close(client, kept, archived, password="not my password")
    assert wrong.status_code == 400 and "Your password is not correct" in wrong.text
    missing = _close(client, kept, archived, password=None)
    assert missing.status_code == 400 and "Enter your password" in missing.text
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == EMAIL)).closed_at is None
