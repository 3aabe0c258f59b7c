"""A UK public-sector service's duties: the accessibility statement, the privacy notice and
the cookies page (linked from every page), a person's copy of their data, and retention as
a policy the portal enforces (its periods read from the settings the jobs act on)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.config import ConfigError
from portal.extensions import db
from portal.jobs.retention import due_now, purge_sign_in_states, purge_unconfirmed
from portal.models import (
    AuditEvent,
    Follow,
    SignInState,
    User,
    UserStatus,
    utcnow,
)
from portal.reference import find_force
from tests.conftest import csrf_from, make_app, signed_in

PAGES = ("/accessibility", "/privacy", "/cookies")


@pytest.mark.parametrize("path", PAGES)
def test_each_page_is_open_to_everyone_and_linked_from_every_page(app, member, path):
    anonymous = app.test_client()
    assert anonymous.get(path).status_code == 200
    assert member.get(path).status_code == 200
    for page in ("/auth/login", "/status", "/no-such-page"):
        assert f'href="{path}"' in anonymous.get(page).text
    for page in ("/", "/account", "/library"):
        assert f'href="{path}"' in member.get(page).text


def test_the_accessibility_statement_has_the_model_statements_parts(app):
    app.config.update(ORGANISATION="Kent Police", CONTACT_EMAIL="heforshe@kent.police.uk")
    page = app.test_client().get("/accessibility").text
    for part in (
        "Accessibility statement for the HeForShe Practice Library",
        "How accessible this website is",
        "Reporting accessibility problems with this website",
        "Enforcement procedure",
        "Compliance status",
        "Non-accessible content",
        "How we tested this website",
        "Preparation of this accessibility statement",
        "WCAG",
        "It is run by Kent Police",
        "mailto:heforshe@kent.police.uk",
        "last reviewed on 5 December 2026",
    ):
        assert part in page, part


def test_the_privacy_notice_states_the_periods_the_jobs_apply(instance_path):
    app = make_app(
        instance_path,
        AUDIT_RETENTION_DAYS=400,
        MAIL_RETENTION_DAYS=45,
        SEARCH_INSIGHTS_DAYS=30,
        UNCONFIRMED_DAYS=10,
        LAWFUL_BASIS="legitimate_interests",
        DPO_CONTACT="dpo@kent.police.uk",
    )
    page = app.test_client().get("/privacy").text
    assert "400 days" in page and "45 days after sending; 90 days" in page
    assert "30 days" in page and "10 days after registering" in page
    assert "legitimate interests" in page and "6(1)(f)" in page
    assert 'href="mailto:dpo@kent.police.uk"' in page
    default = make_app(instance_path).test_client().get("/privacy").text
    assert "2 years" in default and "7 days after registering" in default
    assert "public task" in default and "6(1)(e)" in default


@pytest.mark.parametrize(
    ("name", "value"),
    [("ACCESSIBILITY_REVIEWED", "last week"), ("LAWFUL_BASIS", "consent"), ("UNCONFIRMED_DAYS", 1)],
)
def test_settings_the_pages_cannot_use_stop_the_start(instance_path, name, value):
    with pytest.raises(ConfigError, match=name):
        make_app(instance_path, **{name: value})


def test_every_cookie_the_portal_sets_is_on_the_cookies_page(app, client, make_user):
    """Walk what people do (sign in with a second factor, write, search, sign out) and
    collect every cookie set on the way: each must be on the cookies page."""
    set_names: set[str] = set()

    def seen(response):
        for header in response.headers.getlist("Set-Cookie"):
            set_names.add(header.split("=", 1)[0].strip())
        return response

    moderator = make_user("moderator")
    seen(client.get("/auth/login"))
    token = csrf_from(client.get("/auth/login").text)
    seen(
        client.post(
            "/auth/login",
            data={"email": moderator.email, "password": moderator.password, "csrf_token": token},
        )
    )
    token = csrf_from(client.get("/auth/two-factor").text)
    seen(client.post("/auth/two-factor", data={"code": moderator.totp(), "csrf_token": token}))
    for path in ("/", "/library?q=rugby", "/library", "/case-studies/new", "/moderation",
                 "/account", "/account/data", "/forces", "/status", "/no-such-page"):  # fmt: skip
        seen(client.get(path))
        seen(client.get(path, headers={"HX-Request": "true"}))
    seen(client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/").text)}))
    assert set_names, "no cookie seen at all: the walk is broken"
    page = client.get("/cookies").text
    for name in set_names:
        assert f'<code class="portal-break">{name}</code>' in page, f"{name} is not listed"


# Your data


def _tables_referring_to_users() -> set[str]:
    return {
        table.name
        for table in db.metadata.sorted_tables
        for key in table.foreign_keys
        if key.column.table.name == "user"
    }


def test_the_download_covers_every_table_that_refers_to_a_person():
    from portal.account.data import COVERED

    missing = _tables_referring_to_users() - set(COVERED)
    assert not missing, f"tables that refer to a user but are not in the download: {missing}"


def test_a_person_downloads_everything_held_about_them_and_nothing_secret(
    app, make_user, published
):
    author = make_user("moderator", email="riley.ward@kent.police.uk", name="Riley Ward")
    other = make_user(email="someone.else@kent.police.uk", name="Someone Else")
    client = signed_in(app, author)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == author.email))
        db.session.add(Follow(user_id=user.id, force=find_force("Essex Police")))
        db.session.commit()
        secret, hashed = user.totp_secret, user.password_hash
    page = client.get("/account/data")
    assert page.status_code == 200 and "Download your data" in page.text
    response = client.get("/account/data.json")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    document = json.loads(text)
    assert document["account"]["email"] == author.email
    assert document["account"]["force"] == "Kent Police"
    assert document["account"]["two_factor"]["on"] is True
    assert document["following"] == [
        {"force": "Essex Police", "theme": None, "since": document["following"][0]["since"]}
    ]
    assert any(e["action"] == "auth.login" for e in document["audit_events"])
    assert secret not in text and hashed not in text
    assert other.email not in text
    assert "account.data_downloaded" in [
        e.action for e in _events(app) if e.action.startswith("account.")
    ]
    assert signed_in(app, other).get("/account/data.json").json["account"]["email"] == other.email


def test_the_download_needs_you_signed_in(client):
    response = client.get("/account/data.json")
    assert response.status_code == 302 and "/auth/login" in response.location


def _events(app) -> list[AuditEvent]:
    with app.app_context():
        events = db.session.scalars(select(AuditEvent)).all()
        db.session.expunge_all()
        return list(events)


# Retention


def _pending(app, email: str, days_old: int) -> None:
    from portal import audit

    with app.app_context():
        user = User(
            email=email,
            name="Pending Person",
            force=find_force("Kent Police"),
            status=UserStatus.PENDING,
            password_hash="x",
            created_at=utcnow() - timedelta(days=days_old),
        )
        db.session.add(user)
        db.session.flush()
        audit.record("auth.registered", actor=user, target=user)
        db.session.commit()


def test_unconfirmed_registrations_go_after_their_period_and_no_sooner(app, make_user):
    _pending(app, "old@kent.police.uk", 8)
    _pending(app, "new@kent.police.uk", 6)
    make_user(email="confirmed@kent.police.uk")  # active: never touched
    with app.app_context():
        assert due_now()["purge_unconfirmed"] == 1
        assert purge_unconfirmed(batch=1) == 1
        left = set(db.session.scalars(select(User.email)))
        assert left == {"new@kent.police.uk", "confirmed@kent.police.uk"}
        # Its audit event stays (for the audit log's own period), without the account.
        orphans = db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "auth.registered", AuditEvent.actor_id.is_(None))
        )
        assert orphans == 1
        assert purge_unconfirmed() == 0


def test_used_sign_in_states_go_after_a_day(app):
    with app.app_context():
        db.session.add_all(
            [
                SignInState(state_hash="a" * 64, used_at=utcnow() - timedelta(hours=25)),
                SignInState(state_hash="b" * 64, used_at=utcnow() - timedelta(hours=23)),
            ]
        )
        db.session.commit()
        assert due_now()["purge_sign_in_states"] == 1
        assert purge_sign_in_states() == 1
        assert db.session.scalars(select(SignInState.state_hash)).all() == ["b" * 64]


def test_the_command_line_dry_run_says_what_would_go_and_deletes_nothing(app, runner):
    _pending(app, "old@kent.police.uk", 30)
    result = runner.invoke(args=["retention", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "unconfirmed: 1 would go" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
    done = runner.invoke(args=["retention"])
    assert done.exit_code == 0 and "unconfirmed: 1 deleted" in done.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
        run = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "retention.run"))
        assert '"purge_unconfirmed": 1' in run.detail
