"""Accounts and the security baseline, each rule tested as the attack it stops."""

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, User, UserStatus

from ..conftest import PASSWORD, Auth, csrf_from
from ..records import outbox


def body(message) -> str:
    return message.get_payload(decode=True).decode()


def link_in(message) -> str:
    """Return the path of the first link in an email."""
    url = re.search(r"https?://\S+", body(message)).group(0)
    return re.sub(r"^https?://[^/]+", "", url)


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def register(client, **fields):
    data = {
        "name": "Riley Ward",
        "email": "riley.ward@kent.police.uk",
        "force": "Kent Police",
        "password": "seven hills and a quiet river",
    }
    data.update(fields)
    data["csrf_token"] = csrf_from(client.get("/auth/register").get_data(as_text=True))
    return client.post("/auth/register", data=data)


def user_by_email(app, address) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == address))
        if user is not None:
            db.session.expunge(user)
        return user


# Registration and confirmation


def test_registration_sends_a_confirmation_link_and_the_account_waits_for_it(app, client):
    response = register(client)
    assert response.status_code == 303 and response.location.endswith("/auth/check-email")
    user = user_by_email(app, "riley.ward@kent.police.uk")
    assert user.status == UserStatus.PENDING
    assert user.password_hash.startswith("$argon2id$")
    (message,) = outbox(app)
    assert message["To"] == "riley.ward@kent.police.uk"
    assert "/auth/confirm/" in body(message)


def test_an_unconfirmed_account_cannot_sign_in(app, client, auth):
    register(client)
    response = client.post(
        "/auth/login",
        data={
            "email": "riley.ward@kent.police.uk",
            "password": "seven hills and a quiet river",
            "csrf_token": auth.csrf(),
        },
    )
    assert response.status_code == 400
    assert "Confirm your email address first" in response.get_data(as_text=True)


def test_the_confirmation_link_works_once(app, client, auth):
    register(client)
    path = link_in(outbox(app)[0])
    page = client.get(path)
    assert page.status_code == 200 and "Confirm my email address" in page.get_data(as_text=True)
    confirmed = client.post(
        path,
        data={
            "password": "seven hills and a quiet river",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert confirmed.status_code == 303
    assert user_by_email(app, "riley.ward@kent.police.uk").status == UserStatus.ACTIVE
    again = client.get(path)
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)


def test_a_mail_scanner_following_the_link_does_not_confirm_the_account(app, client):
    register(client)
    client.get(link_in(outbox(app)[0]))
    assert user_by_email(app, "riley.ward@kent.police.uk").status == UserStatus.PENDING


def forged_token(app, user_id: int, purpose: str, fingerprint: str, age_seconds: int) -> str:
    """Make a token as the app would have `age_seconds` ago."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - age_seconds

    serializer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt=f"portal.{purpose}", signer=PastSigner
    )
    return serializer.dumps({"u": user_id, "f": fingerprint})


def test_a_confirmation_link_older_than_48_hours_is_refused(app, client):
    register(client)
    path = link_in(outbox(app)[0])
    token = path.rsplit("/", 1)[1]
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="portal.confirm-email")
    data = serializer.loads(token)
    old = forged_token(app, data["u"], "confirm-email", data["f"], 48 * 3600 + 60)
    response = client.get(f"/auth/confirm/{old}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    fresh = forged_token(app, data["u"], "confirm-email", data["f"], 47 * 3600)
    assert client.get(f"/auth/confirm/{fresh}").status_code == 200


def test_a_tampered_link_is_refused(client):
    assert client.get("/auth/confirm/not-a-real-token").status_code == 400
    assert client.get("/auth/reset/eyJ1IjoxfQ.AAAA.BBBB").status_code == 400


@pytest.mark.parametrize(
    "address",
    [
        "riley@gmail.com",
        "riley@police.uk.evil.example",
        "riley@notpolice.uk",
        "riley@kent.police.uk.com",
    ],
)
def test_a_non_police_email_is_refused_next_to_the_field(app, client, address):
    response = register(client, email=address)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="email-error"' in page and "must end in police.uk" in page
    assert 'value="Riley Ward"' in page  # what was typed is kept
    assert user_by_email(app, address) is None
    assert outbox(app) == []


def test_allowed_domains_are_configurable(tmp_path):
    from ..conftest import make_app

    app = make_app(tmp_path / "inst", ALLOWED_EMAIL_DOMAINS="example.org, police.uk")
    from portal.cli import init_db

    with app.app_context():
        init_db()
    client = app.test_client()
    assert register(client, email="riley@team.example.org").status_code == 303
    with app.app_context():
        db.engine.dispose()


def test_registering_an_existing_email_looks_the_same_and_tells_the_owner(app, client, make_user):
    owner = make_user("contributor", email="sam.patel@kent.police.uk")
    fresh = register(client, email="brand.new@kent.police.uk")
    existing = register(client, email=owner.email)
    assert existing.status_code == fresh.status_code == 303
    assert existing.location == fresh.location
    assert client.get(existing.location).get_data(as_text=True) == client.get(
        fresh.location
    ).get_data(as_text=True)
    to_owner = [m for m in outbox(app) if m["To"] == owner.email]
    assert len(to_owner) == 1 and "Someone tried" in to_owner[0]["Subject"]
    with app.app_context():
        assert (
            db.session.scalar(select(User).where(User.email == owner.email)).name == "Alex Example"
        )


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "at least 12 characters"),
        ("x" * 257, "256 characters or fewer"),
        ("RileyWard2026!", "built from your name"),
        ("riley.ward@kent", "built from your name"),
        ("HeForShe-Library-1", "built from your name"),
    ],
)
def test_weak_passwords_are_refused(app, client, password, message):
    response = register(client, password=password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert user_by_email(app, "riley.ward@kent.police.uk") is None


def test_the_most_common_passwords_are_refused(app, client):
    from importlib import resources

    common = [
        line
        for line in resources.files("portal")
        .joinpath("data/common-passwords.txt")
        .read_text()
        .splitlines()
        if len(line) >= 12
    ]
    response = register(client, password=common[0])
    assert "too common" in response.get_data(as_text=True)


def test_long_passwords_with_spaces_and_emoji_are_used_exactly_as_typed(app, client, auth):
    password = "  🦊 the fox jumps 🦊  " + "x" * 100
    assert register(client, password=password).status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "riley.ward@kent.police.uk"))
        user.status = UserStatus.ACTIVE
        db.session.commit()

    def attempt(typed):
        return client.post(
            "/auth/login",
            data={
                "email": "riley.ward@kent.police.uk",
                "password": typed,
                "csrf_token": auth.csrf(),
            },
        )

    assert attempt(password.strip()).status_code == 400
    assert attempt(password).status_code == 303


# Signing in


def test_sign_in_failures_look_the_same_for_unknown_and_known_emails(client, auth, make_user):
    user = make_user()
    for address in (user.email, "nobody@kent.police.uk"):
        response = client.post(
            "/auth/login",
            data={"email": address, "password": "wrong password!", "csrf_token": auth.csrf()},
        )
        assert response.status_code == 400
        assert "Enter a correct email address and password" in response.get_data(as_text=True)


def test_signing_in_and_out_is_audited(app, auth, make_user):
    user = make_user()
    auth.client.post(
        "/auth/login",
        data={"email": user.email, "password": "nope nope nope", "csrf_token": auth.csrf()},
    )
    auth.login(user)
    auth.logout()
    actions = audit_actions(app)
    assert actions[-3:] == ["auth.login_failed", "auth.login", "auth.logout"]


def test_sign_in_starts_a_fresh_session(client, auth, make_user):
    user = make_user()
    auth.csrf()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    auth.login(user)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"].startswith(str(session["_user_id"]).split(":")[0])


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "https://evil.example/",
        "\\\\evil.example",
        " //evil.example",
    ],
)
def test_next_never_leads_off_the_site(client, auth, make_user, target):
    user = make_user()
    response = client.post(
        "/auth/login",
        query_string={"next": target},
        data={"email": user.email, "password": user.password, "csrf_token": auth.csrf()},
    )
    assert response.status_code == 303
    assert response.location == "/"


def test_next_leads_back_to_the_page_asked_for(client, auth, make_user):
    user = make_user()
    first = client.get("/library?q=rugby")
    assert first.status_code == 302 and "next=" in first.location
    response = client.post(
        first.location,
        data={"email": user.email, "password": user.password, "csrf_token": auth.csrf()},
    )
    assert response.location == "/library?q=rugby"


def attempt_from(client, auth, address, email_address, password="wrong password here"):
    token = auth.csrf()
    return client.post(
        "/auth/login",
        data={"email": email_address, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_the_eleventh_wrong_password_for_an_account_is_refused_from_any_address(
    client, auth, make_user
):
    user = make_user()
    for n in range(10):
        assert attempt_from(client, auth, f"10.0.0.{n}", user.email).status_code == 400
    eleventh = attempt_from(client, auth, "10.9.9.9", user.email)
    assert eleventh.status_code == 429
    assert "Too many attempts" in eleventh.get_data(as_text=True)
    # even the right password waits until the window has passed
    assert attempt_from(client, auth, "10.9.9.10", user.email, user.password).status_code == 429


def test_one_address_cannot_try_passwords_across_many_accounts(client, auth, make_user):
    for n in range(10):
        assert (
            attempt_from(client, auth, "10.1.1.1", f"victim{n}@kent.police.uk").status_code == 400
        )
    assert attempt_from(client, auth, "10.1.1.1", "victim99@kent.police.uk").status_code == 429
    assert attempt_from(client, auth, "10.1.1.2", "victim99@kent.police.uk").status_code == 400


def test_successful_sign_ins_do_not_use_up_the_limit(client, auth, make_user):
    user = make_user()
    for _ in range(12):
        assert auth.login(user).status_code == 303
        auth.logout()


# Sessions


def session_cookie(client):
    return client.get_cookie("session").value


def test_a_cookie_captured_before_sign_out_is_refused_afterwards(app, client, auth, make_user):
    user = make_user()
    auth.login(user)
    stolen = session_cookie(client)
    auth.logout()
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    response = replay.get("/account")
    assert response.status_code == 302 and "/auth/login" in response.location


def test_changing_the_password_ends_other_sessions_but_not_this_one(app, client, auth, make_user):
    user = make_user()
    other = app.test_client()
    Auth(other).login(user)
    auth.login(user)
    response = client.post(
        "/account/password",
        data={
            "current_password": user.password,
            "new_password": "a brand new long passphrase",
            "csrf_token": auth.csrf("/account/password"),
        },
    )
    assert response.status_code == 303
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 302
    assert "auth.password_changed" in audit_actions(app)


def test_changing_the_password_needs_the_current_one(client, auth, make_user):
    user = make_user()
    auth.login(user)
    response = client.post(
        "/account/password",
        data={
            "current_password": "not my password",
            "new_password": "a brand new long passphrase",
            "csrf_token": auth.csrf("/account/password"),
        },
    )
    assert response.status_code == 400
    assert "Your password is not correct" in response.get_data(as_text=True)


def test_a_disabled_users_open_session_ends_at_once(app, client, auth, make_user):
    user = make_user()
    auth.login(user)
    assert client.get("/account").status_code == 200
    admin = make_user("admin")
    admin_client = app.test_client()
    Auth(admin_client).login(admin)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == user.email))
    page = admin_client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    response = admin_client.post(
        f"/admin/users/{user_id}/status", data={"status": "disabled", "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 303
    assert client.get("/account").status_code == 302
    assert "disabled" in Auth(app.test_client()).login(user).get_data(as_text=True)


@pytest.mark.parametrize(
    ("key", "age", "message"),
    [
        ("seen_at", 31 * 60, "inactive"),
        ("auth_at", 12 * 3600 + 60, "time limit"),
    ],
)
def test_sessions_time_out(client, auth, make_user, key, age, message):
    auth.login(make_user())
    with client.session_transaction() as session:
        session[key] = int(time.time()) - age
    response = client.get("/account")
    assert response.status_code == 302 and "/auth/login" in response.location
    assert message in client.get(response.location).get_data(as_text=True)


def test_a_session_inside_both_limits_carries_on(client, auth, make_user):
    auth.login(make_user())
    with client.session_transaction() as session:
        session["seen_at"] = int(time.time()) - 29 * 60
        session["auth_at"] = int(time.time()) - 11 * 3600
    assert client.get("/account").status_code == 200


def test_there_is_no_remember_me_cookie(client, auth, make_user):
    auth.login(make_user())
    assert client.get_cookie("remember_token") is None


def test_production_cookies_are_secure_host_only_and_http_only(tmp_path):
    from portal import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path / "prod"), "ENV": "production"})
    from portal.cli import init_db

    with app.app_context():
        init_db()
    client = app.test_client()
    response = client.get("/auth/login", base_url="https://portal.example")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Domain" not in cookie and "Path=/" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    with app.app_context():
        db.engine.dispose()


def test_signed_in_pages_are_not_cached(member):
    assert member.get("/").headers["Cache-Control"] == "no-store"
    assert member.get("/account").headers["Cache-Control"] == "no-store"


# CSRF


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(app, client, auth, make_user):
    user = make_user()
    before = audit_actions(app)
    response = client.post("/auth/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 400
    assert audit_actions(app) == before
    auth.login(user)
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/account").status_code == 200  # still signed in


def test_a_forged_csrf_token_is_refused(client, make_user):
    user = make_user()
    response = client.post(
        "/auth/login", data={"email": user.email, "password": user.password, "csrf_token": "forged"}
    )
    assert response.status_code == 400


def test_htmx_requests_send_the_token_as_a_header(client, auth, make_user):
    auth.login(make_user())
    token = auth.csrf("/account")
    response = client.post("/auth/logout", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 303


# Password reset


def request_reset(client, address):
    token = csrf_from(client.get("/auth/reset").get_data(as_text=True))
    return client.post("/auth/reset", data={"email": address, "csrf_token": token})


def test_reset_never_says_whether_an_account_exists(app, client, make_user):
    user = make_user()
    known, unknown = (
        request_reset(client, user.email),
        request_reset(client, "nobody@kent.police.uk"),
    )
    assert known.status_code == unknown.status_code == 303
    assert known.location == unknown.location
    assert [m["To"] for m in outbox(app)] == [user.email]


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(app, client, auth, make_user):
    user = make_user()
    other = app.test_client()
    Auth(other).login(user)
    request_reset(client, user.email)
    path = link_in(outbox(app)[-1])
    page = client.get(path).get_data(as_text=True)
    new_password = "completely different passphrase"
    done = client.post(path, data={"password": new_password, "csrf_token": csrf_from(page)})
    assert done.status_code == 303
    assert other.get("/account").status_code == 302
    assert client.get(path).status_code == 400  # used
    user.password = new_password
    assert auth.login(user).status_code == 303
    assert "auth.password_reset" in audit_actions(app)


def test_a_reset_link_dies_when_the_password_changes_another_way(app, client, auth, make_user):
    user = make_user()
    request_reset(client, user.email)
    path = link_in(outbox(app)[-1])
    auth.login(user)
    client.post(
        "/account/password",
        data={
            "current_password": user.password,
            "new_password": "another long passphrase",
            "csrf_token": auth.csrf("/account/password"),
        },
    )
    assert client.get(path).status_code == 400


def test_a_reset_link_expires_after_an_hour(app, client, make_user):
    user = make_user()
    request_reset(client, user.email)
    token = link_in(outbox(app)[-1]).rsplit("/", 1)[1]
    data = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="portal.reset-password").loads(
        token
    )
    expired = forged_token(app, data["u"], "reset-password", data["f"], 3600 + 60)
    response = client.get(f"/auth/reset/{expired}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_email_links_use_the_configured_address_not_the_host_header(app, client, make_user):
    user = make_user()
    evil = "http://evil.example"
    token = csrf_from(client.get("/auth/reset", base_url=evil).get_data(as_text=True))
    client.post("/auth/reset", data={"email": user.email, "csrf_token": token}, base_url=evil)
    assert "evil.example" not in body(outbox(app)[-1])
    assert app.config["BASE_URL"] in body(outbox(app)[-1])


# Second factor


def test_a_moderator_without_2fa_is_sent_to_set_it_up_before_the_queue(
    app, client, auth, make_user
):
    moderator = make_user("moderator", mfa=False)
    auth.login(moderator)
    response = client.get("/moderation")
    assert response.status_code == 302 and response.location == "/account/two-factor"
    htmx = client.get("/moderation", headers={"HX-Request": "true"})
    assert htmx.status_code == 403 and htmx.headers["HX-Redirect"] == "/account/two-factor"


def test_an_admin_without_2fa_cannot_open_admin_pages(client, auth, make_user):
    auth.login(make_user("admin", mfa=False))
    assert client.get("/admin/users").status_code == 302


def test_a_moderator_with_2fa_signs_in_with_a_code_and_opens_the_queue(client, auth, make_user):
    moderator = make_user("moderator")
    first = client.post(
        "/auth/login",
        data={"email": moderator.email, "password": moderator.password, "csrf_token": auth.csrf()},
    )
    assert first.location == "/auth/two-factor"
    assert client.get("/moderation").status_code == 302  # not signed in yet
    done = client.post(
        "/auth/two-factor",
        data={"code": moderator.totp(), "csrf_token": auth.csrf("/auth/two-factor")},
    )
    assert done.status_code == 303
    assert client.get("/moderation").status_code == 200


def test_a_totp_code_cannot_be_used_twice(app, make_user):
    moderator = make_user("moderator")
    code = moderator.totp()
    first, second = Auth(app.test_client()), Auth(app.test_client())
    assert first.login(moderator, code=code).status_code == 303
    response = second.login(moderator, code=code)
    assert response.status_code == 400
    assert "Enter a correct code" in response.get_data(as_text=True)


def test_contributors_cannot_open_moderation_or_admin(member):
    assert member.get("/moderation").status_code == 403
    assert member.get("/admin/users").status_code == 403


def test_setting_up_2fa_gives_ten_recovery_codes_that_each_work_once(app, client, auth, make_user):
    import pyotp

    user = make_user("contributor", mfa=False)
    auth.login(user)
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "<svg" in page and "portal-qr" in page
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    done = client.post(
        "/account/two-factor",
        data={
            "code": pyotp.TOTP(secret).now(),
            "password": user.password,
            "csrf_token": csrf_from(page),
        },
    )
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", done.get_data(as_text=True))
    assert len(codes) == 10
    with app.app_context():
        stored = db.session.scalar(select(User).where(User.email == user.email))
        hashes = [r.code_hash for r in stored.recovery_codes]
        assert all(h.startswith("$argon2id$") for h in hashes)
        assert not any(code in h or code.replace("-", "") in h for code in codes for h in hashes)
    user.totp_secret = secret
    auth.logout()
    assert Auth(app.test_client()).login(user, code=codes[0].upper()).status_code == 303
    assert Auth(app.test_client()).login(user, code=codes[0]).status_code == 400
    assert "auth.mfa_enabled" in audit_actions(app) and "auth.recovery_code_used" in audit_actions(
        app
    )


def test_a_wrong_setup_code_keeps_2fa_off(app, client, auth, make_user):
    user = make_user("contributor", mfa=False)
    auth.login(user)
    page = client.get("/account/two-factor").get_data(as_text=True)
    response = client.post(
        "/account/two-factor",
        data={"code": "123456", "password": user.password, "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 400
    assert user_by_email(app, user.email).totp_enabled_at is None


def test_moderators_cannot_turn_2fa_off_but_contributors_can(app, auth, make_user):
    moderator = make_user("moderator")
    client = auth.client
    auth.login(moderator)
    response = client.post(
        "/account/two-factor/disable",
        data={"password": moderator.password, "csrf_token": auth.csrf("/account")},
    )
    assert response.status_code == 400
    assert user_by_email(app, moderator.email).totp_enabled_at is not None
    contributor = make_user("contributor", mfa=True)
    other = Auth(app.test_client())
    other.login(contributor)
    done = other.client.post(
        "/account/two-factor/disable",
        data={"password": contributor.password, "csrf_token": other.csrf("/account")},
    )
    assert done.status_code == 303
    assert user_by_email(app, contributor.email).totp_enabled_at is None
    assert "auth.mfa_disabled" in audit_actions(app)


def test_second_factor_guesses_are_rate_limited(client, auth, make_user):
    moderator = make_user("moderator")
    client.post(
        "/auth/login",
        data={"email": moderator.email, "password": moderator.password, "csrf_token": auth.csrf()},
    )
    token = auth.csrf("/auth/two-factor")
    statuses = [
        client.post("/auth/two-factor", data={"code": "000000", "csrf_token": token}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429


# Who may open what


@pytest.mark.parametrize(
    "path", ["/", "/library", "/case-studies/1", "/account", "/moderation", "/admin/users"]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/auth/login?next=")


def test_anonymous_htmx_requests_get_a_redirect_header(client):
    response = client.get("/library", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/auth/login")


@pytest.mark.parametrize(
    "path", ["/auth/login", "/auth/register", "/auth/reset", "/auth/confirm/resend", "/healthz"]
)
def test_account_pages_are_open_to_everyone(client, path):
    assert client.get(path).status_code == 200


def test_public_library_opens_published_case_studies_to_anonymous_readers(tmp_path, jsonl):
    from portal.casestudies.importer import import_case_studies
    from portal.cli import init_db

    from ..conftest import make_app
    from ..records import case_study_line

    app = make_app(tmp_path / "public", PUBLIC_LIBRARY=True)
    with app.app_context():
        init_db()
        import_case_studies(
            jsonl([case_study_line(), case_study_line(title="Draft", status="draft")])
        )
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/library").status_code == 200
    assert client.get("/case-studies/1", follow_redirects=True).status_code == 200
    assert client.get("/case-studies/2").status_code == 404
    assert client.get("/account").status_code == 302
    with app.app_context():
        db.engine.dispose()


# Logs


def test_user_input_cannot_forge_log_lines(app, caplog):
    with app.app_context():
        app.logger.warning("sign-in failed for %s", "x@kent.police.uk\nINFO admin signed in")
    message = caplog.records[-1].getMessage()
    assert "\n" not in message and "\\n" in message


def test_no_password_reaches_the_audit_log(app, client, auth, make_user):
    user = make_user()
    client.post(
        "/auth/login",
        data={"email": user.email, "password": "guessing this one", "csrf_token": auth.csrf()},
    )
    auth.login(user)
    with app.app_context():
        details = " ".join(db.session.scalars(select(AuditEvent.detail)))
    assert "guessing this one" not in details and PASSWORD not in details


# Attacks found in review


def test_registering_first_cannot_take_over_the_real_owners_account(app, client, auth):
    attacker_password = "attacker chose this one"
    register(client, password=attacker_password)  # the attacker, who cannot read the mailbox
    attackers_link = link_in(outbox(app)[-1])
    owner = app.test_client()
    register(owner, name="Riley Ward", password="the owner's own passphrase")
    owners_link = link_in(outbox(app)[-1])
    assert owners_link != attackers_link
    assert owner.get(attackers_link).status_code == 400  # the earlier link died

    page = owner.get(owners_link).get_data(as_text=True)
    wrong = owner.post(
        owners_link, data={"password": attacker_password, "csrf_token": csrf_from(page)}
    )
    assert wrong.status_code == 400
    assert "Enter the password you chose" in wrong.get_data(as_text=True)
    right = owner.post(
        owners_link, data={"password": "the owner's own passphrase", "csrf_token": csrf_from(page)}
    )
    assert right.status_code == 303

    def sign_in(password):
        return client.post(
            "/auth/login",
            data={
                "email": "riley.ward@kent.police.uk",
                "password": password,
                "csrf_token": auth.csrf(),
            },
        )

    assert sign_in(attacker_password).status_code == 400
    assert sign_in("the owner's own passphrase").status_code == 303


@pytest.mark.parametrize(
    "password",
    [
        "жёлтый медведь пьёт чай",
        "🔒🦊🌧️🎻🧭🪁🍋🚲🗝️🌵🧩🦉",
        "48291038471029384756",
        "ＡＢＣ　ｐａｓｓ　ｗｏｒｄ　９",
    ],
)
def test_passwords_in_any_script_or_all_digits_are_accepted(app, client, password):
    assert register(client, password=password).status_code == 303


def test_a_name_with_line_breaks_or_links_is_refused(app, client):
    for name in (
        "Colleague,\n\nIMPORTANT: sign in at https://evil.example",
        "Visit www.evil.example",
    ):
        response = register(client, name=name)
        assert response.status_code == 400
        assert 'id="name-error"' in response.get_data(as_text=True)
    assert outbox(app) == []


def test_the_confirmation_email_does_not_repeat_the_name_typed(app, client):
    # Since issue 15 the email greets by name when the name typed is the one the address
    # spells (riley.ward@ and "Riley Ward"): any other name typed is still never repeated.
    register(client, name="Mallory Mallet")
    assert "Mallory" not in body(outbox(app)[-1])


def test_wrong_current_passwords_are_limited_and_audited(app, client, auth, make_user):
    user = make_user()
    auth.login(user)
    token = auth.csrf("/account/password")
    statuses = [
        client.post(
            "/account/password",
            data={
                "current_password": "guess number one",
                "new_password": "a brand new long passphrase",
                "csrf_token": token,
            },
        ).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429
    assert audit_actions(app).count("auth.password_check_failed") == 10


def test_ten_wrong_codes_pause_the_second_step_and_tell_the_owner(app, make_user):
    moderator = make_user("moderator")
    for attempt in range(2):  # two sign-ins from different places, 5 wrong codes each
        client = app.test_client()
        auth = Auth(client)
        client.post(
            "/auth/login",
            data={
                "email": moderator.email,
                "password": moderator.password,
                "csrf_token": auth.csrf(),
            },
            environ_base={"REMOTE_ADDR": f"10.2.0.{attempt}"},
        )
        token = auth.csrf("/auth/two-factor")
        for _ in range(5):
            client.post("/auth/two-factor", data={"code": "000000", "csrf_token": token})
    assert [m["Subject"] for m in outbox(app)][-1] == "Someone is trying to sign in to your account"
    from portal.auth import services

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == moderator.email))
        assert user.second_factor_locked_until is not None
        with pytest.raises(services.SecondFactorLocked):  # even the right code, for an hour
            services.verify_second_factor(user, moderator.totp())


def test_create_user_applies_the_password_rules(runner):
    result = runner.invoke(
        args=[
            "create-user",
            "boss@kent.police.uk",
            "--name",
            "Pat Boss",
            "--force",
            "Kent",
            "--role",
            "admin",
        ],
        input="password1234\n",
    )
    assert result.exit_code != 0 and "too common" in result.output


def test_seed_demo_refuses_to_run_in_production(tmp_path):
    from portal import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path / "prod")})
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0 and "PORTAL_ENV=development" in result.output


def test_the_key_being_set_up_is_not_kept_in_the_cookie(client, auth, make_user):
    auth.login(make_user("contributor", mfa=False))
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    with client.session_transaction() as session:
        assert secret not in repr(dict(session))


def test_turning_on_2fa_needs_the_password(app, client, auth, make_user):
    import pyotp

    user = make_user("contributor", mfa=False)
    auth.login(user)
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    response = client.post(
        "/account/two-factor",
        data={
            "code": pyotp.TOTP(secret).now(),
            "password": "not the password",
            "csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 400
    assert user_by_email(app, user.email).totp_enabled_at is None


def test_a_password_typed_into_the_email_box_stays_out_of_the_audit_log(app, client, auth):
    client.post(
        "/auth/login",
        data={"email": "MySecretPassphrase!", "password": "x", "csrf_token": auth.csrf()},
    )
    with app.app_context():
        details = " ".join(db.session.scalars(select(AuditEvent.detail)))
    assert "MySecretPassphrase" not in details


def test_rate_limiter_log_lines_cannot_be_forged(client, auth, caplog):
    import logging

    caplog.set_level(logging.INFO)
    forged = "x@kent.police.uk\nWARNING portal: admin exported all users"
    for _ in range(11):
        client.post(
            "/auth/login",
            data={"email": forged, "password": "wrong one here", "csrf_token": auth.csrf()},
        )
    assert all("\n" not in record.getMessage() for record in caplog.records)
    assert not any("exported all users" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("path", "limit"), [("/auth/register", 10), ("/auth/reset", 5), ("/auth/confirm/resend", 5)]
)
def test_account_emails_are_rate_limited_per_address(client, path, limit):
    token = csrf_from(client.get(path).get_data(as_text=True))
    data = {
        "email": "someone@kent.police.uk",
        "name": "Sam Someone",
        "force": "Kent",
        "password": "seven hills and a quiet river",
        "csrf_token": token,
    }
    statuses = [client.post(path, data=data).status_code for _ in range(limit + 1)]
    assert 429 not in statuses[:limit] and statuses[limit] == 429


def test_spoofed_forwarded_for_does_not_escape_the_address_limit(client, auth):
    for n in range(10):
        client.post(
            "/auth/login",
            data={
                "email": f"v{n}@kent.police.uk",
                "password": "wrong guess!",
                "csrf_token": auth.csrf(),
            },
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )
    blocked = client.post(
        "/auth/login",
        data={"email": "v99@kent.police.uk", "password": "x", "csrf_token": auth.csrf()},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert blocked.status_code == 429


def test_next_is_kept_safe_through_the_second_factor(client, auth, make_user):
    moderator = make_user("moderator")
    for target, expected in (("//evil.example", "/"), ("/moderation", "/moderation")):
        client.post(
            "/auth/login",
            query_string={"next": target},
            data={
                "email": moderator.email,
                "password": moderator.password,
                "csrf_token": auth.csrf(),
            },
        )
        done = client.post(
            "/auth/two-factor",
            data={
                "code": moderator.totp(30 if target == "/moderation" else 0),
                "csrf_token": auth.csrf("/auth/two-factor"),
            },
        )
        assert done.location == expected
        auth.logout()


def test_a_half_signed_in_session_opens_nothing_and_expires(client, auth, make_user):
    moderator = make_user("moderator")
    client.post(
        "/auth/login",
        data={"email": moderator.email, "password": moderator.password, "csrf_token": auth.csrf()},
    )
    for path in ("/", "/account", "/moderation"):
        assert client.get(path).status_code == 302
    with client.session_transaction() as session:
        session["mfa_pending"] = {**session["mfa_pending"], "at": int(time.time()) - 301}
    response = client.get("/auth/two-factor")
    assert response.status_code == 303 and response.location == "/auth/login"


def test_disabling_a_user_is_audited(app, client, make_user):
    admin = make_user("admin")
    target = make_user()
    Auth(client).login(admin)
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == target.email))
    page = client.get(f"/admin/users/{uid}").get_data(as_text=True)
    client.post(
        f"/admin/users/{uid}/status", data={"status": "disabled", "csrf_token": csrf_from(page)}
    )
    assert audit_actions(app)[-1] == "admin.user_status_changed"
