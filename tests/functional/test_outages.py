"""When Redis or PostgreSQL is down: refuse cleanly (503, never a 500), keep what was saved,
and come back by itself.

The machine's Redis and PostgreSQL are shared with other tests running at the same time, so
none is ever stopped: "down" is an address nothing listens on (redis://127.0.0.1:1/0), and
"down, then back" is a TCP proxy in front of the real server that the test stops and starts
(tests/tcp_proxy.py). A PostgreSQL restart is pg_terminate_backend() of this app's own
connections only, told apart by their application_name.
"""

from __future__ import annotations

import html
import re
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal.accounts import create_user
from portal.auth import tokens
from portal.extensions import db
from portal.jobs import run_periodic
from portal.models import (
    AuditEvent,
    CaseStudy,
    MailMessage,
    RevisionState,
    Role,
    User,
    UserStatus,
)
from portal.web.errors import database_unavailable

from ..backends import REDIS, SERVER
from ..conftest import PASSWORD, RUN_DATABASE, Auth, csrf_from, signed_in
from ..records import case_study_line, outbox
from ..tcp_proxy import TcpProxy
from ..writing import complete, only_case_study, post_case_study, states

#: Where no Redis answers: connections are refused at once.
NO_REDIS = "redis://127.0.0.1:1/0"

needs_redis = pytest.mark.skipif(not REDIS, reason="needs Redis: the PostgreSQL pass of make test")
needs_postgres = pytest.mark.skipif(
    not SERVER, reason="needs PostgreSQL: the PostgreSQL pass of make test"
)

SIGN_IN_PAUSED = "Signing in is paused for a moment"
PAUSED = "Sorry, this is paused for a moment"
DATABASE_DOWN = "The service is having a problem"


def heading(response) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", response.get_data(as_text=True), re.S)
    return found.group(1).strip() if found else ""


def assert_paused(response, title: str = SIGN_IN_PAUSED) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 503, page[:500]
    assert heading(response) == title
    assert "Try again in a minute" in page
    assert response.headers["Retry-After"] == "60"
    assert response.headers["Cache-Control"] == "no-store"


def assert_database_down(response) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 503, page[:500]
    assert heading(response) == DATABASE_DOWN
    assert "Try again in a few minutes" in page
    assert response.headers["Retry-After"] == "60"


def carried_over(client, app):
    """A client of `app` holding `client`'s session (same instance folder: same secret key).

    Signing in needs the counters, so a person is signed in on an app that has them, then
    carries on against the app whose counters are down. (Flask-Limiter keeps one storage
    for the whole process, set by the last app made: the down app is always made second.)
    """
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def post_form(client, path: str, data: dict, form_path: str | None = None):
    token = csrf_from(client.get(form_path or path).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def moderators(app, count: int = 2) -> list[str]:
    emails = [f"moderator{n}@npcc.police.uk" for n in range(count)]
    with app.app_context():
        for n, email in enumerate(emails):
            create_user(email, f"Moderator {n}", "NPCC", Role.MODERATOR, PASSWORD)
    return emails


def mail_to(app) -> dict[str, list[str]]:
    with app.app_context():
        rows = db.session.execute(select(MailMessage.to, MailMessage.state)).all()
    found: dict[str, list[str]] = {}
    for to, state in rows:
        found.setdefault(to, []).append(state.value)
    return found


# Redis's rate-limit counters down: everything they guard fails closed


def test_signing_in_while_the_limit_counters_are_down_is_paused_not_let_through(
    outage_app, make_user
):
    user = make_user("contributor", email="kim.lee@kent.police.uk")
    app = outage_app(RATELIMIT_STORAGE_URL=NO_REDIS)
    client = app.test_client()
    assert client.get("/auth/login").status_code == 200  # the form itself counts nothing
    right = {"email": user.email, "password": user.password}
    assert_paused(post_form(client, "/auth/login", right))
    # However many guesses, none is ever evaluated: no 400 telling a wrong one, no 429.
    for _ in range(12):
        wrong = post_form(client, "/auth/login", {**right, "password": "guess"})
        assert_paused(wrong)
    assert client.get("/account").status_code in (302, 303)  # nobody was signed in


def test_registering_resetting_and_confirming_are_paused_too(outage_app, make_user):
    user = make_user("contributor", email="kim.lee@kent.police.uk")
    app = outage_app(RATELIMIT_STORAGE_URL=NO_REDIS)
    with app.app_context():
        pending = create_user(
            "new.starter@kent.police.uk", "New Starter", "Kent", Role.CONTRIBUTOR, PASSWORD
        )
        pending.status = UserStatus.PENDING
        db.session.commit()
        confirm = tokens.make_token(pending, tokens.CONFIRM)
        known = db.session.scalar(select(User).filter_by(email=user.email))
        reset = tokens.make_token(known, tokens.RESET)
    client = app.test_client()
    registration = {
        "name": "Sam Example",
        "email": "sam.example@kent.police.uk",
        "force": "Kent Police",
        "password": "a long new password 2026",
    }
    assert_paused(post_form(client, "/auth/register", registration))
    assert_paused(post_form(client, "/auth/reset", {"email": user.email}))
    assert_paused(post_form(client, "/auth/confirm/resend", {"email": user.email}))
    assert_paused(post_form(client, f"/auth/confirm/{confirm}", {"password": PASSWORD}))
    new_password = {"password": "another long password 2026"}
    assert_paused(post_form(client, f"/auth/reset/{reset}", new_password))
    with app.app_context():
        still = db.session.scalar(select(User.status).filter_by(email="new.starter@kent.police.uk"))
        assert still == UserStatus.PENDING
        assert not db.session.scalar(select(User).filter_by(email=registration["email"]))
        assert db.session.scalar(select(func.count()).select_from(MailMessage)) == 0


def test_pages_that_count_nothing_still_open_while_the_counters_are_down(
    app, make_user, published, outage_app
):
    (case_id,) = published(case_study_line())
    up = signed_in(app, make_user("contributor", email="kim.lee@kent.police.uk"))
    down_app = outage_app(RATELIMIT_STORAGE_URL=NO_REDIS)
    reader = carried_over(up, down_app)
    for path in ("/", "/library?q=misogyny", f"/case-studies/{case_id}", "/account", "/forces"):
        response = reader.get(path, follow_redirects=True)
        assert response.status_code == 200, path
    # Writing to an author is limited (no flood of mail): it waits, and says so.
    message = {"message": "Hello, we would like to run your event in Kent. Who helped you?"}
    assert_paused(post_form(reader, f"/case-studies/{case_id}/contact", message), PAUSED)
    with down_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MailMessage)) == 0


def test_a_submission_while_the_counters_are_down_is_kept_as_a_draft_and_not_sent(
    app, make_user, outage_app
):
    moderators(app)
    author = signed_in(app, make_user("contributor", email="ali.khan@kent.police.uk"))
    down_app = outage_app(RATELIMIT_STORAGE_URL=NO_REDIS)
    writer = carried_over(author, down_app)
    response = post_case_study(writer, complete(down_app))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 503
    assert "Your draft has been saved, but it could not be sent to the moderators" in page
    assert "Walk and talk for Movember" in page  # what was typed is on the form again
    case_study = only_case_study(down_app)
    assert states(down_app, case_study.id) == [RevisionState.DRAFT]
    assert mail_to(down_app) == {}


# The job queue down: the change and its email are saved, and sent when it is back


def test_a_submission_while_the_queue_is_down_is_saved_with_its_emails(app, make_user, outage_app):
    team = moderators(app)
    author = signed_in(app, make_user("contributor", email="ali.khan@kent.police.uk"))
    down_app = outage_app(QUEUE_URL=NO_REDIS)
    writer = carried_over(author, down_app)
    started = time.perf_counter()
    response = post_case_study(writer, complete(down_app))
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert time.perf_counter() - started < 5  # nobody waits on the queue
    waiting = mail_to(down_app)
    assert {to: waiting[to] for to in team} == {to: ["waiting"] for to in team}
    assert waiting["ali.khan@kent.police.uk"] == ["waiting"]  # the receipt


@needs_redis
def test_mail_saved_while_redis_was_down_is_delivered_once_when_it_is_back(
    app, make_user, outage_app
):
    team = moderators(app)
    author = signed_in(app, make_user("contributor", email="ali.khan@kent.police.uk"))
    with TcpProxy(make_url(REDIS).port or 6379) as proxy:
        queue = f"redis://127.0.0.1:{proxy.port}/{make_url(REDIS).database or 0}"
        scale_out = outage_app(QUEUE_URL=queue)
        writer = carried_over(author, scale_out)
        proxy.stop()
        assert post_case_study(writer, complete(scale_out)).status_code == 303
        proxy.start()  # Redis is back; the portal was not restarted
        assert run_periodic("sweep_mail", scale_out) == len(team) + 1
        sent = [m["To"] for m in outbox(scale_out)]
        assert sorted(sent) == sorted([*team, "ali.khan@kent.police.uk"])
        run_periodic("sweep_mail", scale_out)  # again: nothing is due, nothing goes twice
        assert len(outbox(scale_out)) == len(sent)
        assert set(sum(mail_to(scale_out).values(), [])) == {"sent"}


@needs_redis
def test_signing_in_pauses_while_redis_is_down_and_resumes_when_it_is_back(
    outage_app,
):
    with TcpProxy(make_url(REDIS).port or 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/{make_url(REDIS).database or 0}"
        app = outage_app(RATELIMIT_STORAGE_URL=url, QUEUE_URL=url)
        with app.app_context():
            create_user("jo.lead@npcc.police.uk", "Jo Lead", "NPCC", Role.CONTRIBUTOR, PASSWORD)
        client = app.test_client()
        person = {"email": "jo.lead@npcc.police.uk", "password": PASSWORD}
        proxy.stop()
        assert_paused(post_form(client, "/auth/login", person))
        assert_paused(post_form(client, "/auth/reset", {"email": person["email"]}))
        proxy.start()  # no restart of the portal: redis-py and Flask-Limiter reconnect
        assert post_form(client, "/auth/login", person).status_code == 303
        assert client.get("/account").status_code == 200
        Auth(client).logout()
        response = post_form(client, "/auth/reset", {"email": person["email"]})
        assert response.status_code == 303


@needs_redis
def test_the_second_factor_is_paused_while_redis_is_down(outage_app, make_user):
    user = make_user("moderator", email="mo.derator@npcc.police.uk")
    with TcpProxy(make_url(REDIS).port or 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/{make_url(REDIS).database or 0}"
        app = outage_app(RATELIMIT_STORAGE_URL=url)
        client = app.test_client()
        password = post_form(client, "/auth/login", {"email": user.email, "password": PASSWORD})
        assert "two-factor" in password.location
        proxy.stop()
        code = {"code": user.totp()}
        assert_paused(post_form(client, "/auth/two-factor", code))
        proxy.start()
        assert post_form(client, "/auth/two-factor", code).status_code == 303


# PostgreSQL restarting: requests in flight answer 503, nothing is half-written, and the
# portal comes back by itself


def tagged(url: str, name: str) -> str:
    """The database URL with an application_name, to find this app's connections by."""
    return (
        make_url(url)
        .update_query_dict({"application_name": name})
        .render_as_string(hide_password=False)
    )


@needs_postgres
def test_a_submission_cut_off_by_a_postgresql_restart_is_a_503_and_leaves_nothing(
    outage_app, _template_instance
):
    import os

    database = os.environ[RUN_DATABASE]
    app = outage_app(DATABASE_URL=tagged(database, "portal_outage_test"))
    team = moderators(app)
    with app.app_context():
        create_user("ali.khan@kent.police.uk", "Ali Khan", "Kent", Role.CONTRIBUTOR, PASSWORD)
    author = app.test_client()
    assert (
        post_form(
            author, "/auth/login", {"email": "ali.khan@kent.police.uk", "password": PASSWORD}
        ).status_code
        == 303
    )
    answer = {}

    def submit() -> None:
        answer["response"] = post_case_study(author, complete(app))

    side = create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with side.connect() as holder, side.connect() as admin:
            holder.execute(text("BEGIN"))
            # The submission writes its case study, then waits to record its emails...
            holder.execute(text("LOCK TABLE mail_message IN EXCLUSIVE MODE"))
            writer = threading.Thread(target=submit)
            writer.start()
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = :name AND wait_event_type = 'Lock'"
            )
            for _ in range(200):
                if admin.execute(text(waiting), {"name": "portal_outage_test"}).scalar():
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the submission never reached the mail table")
            # ...when PostgreSQL restarts: every connection of the portal is cut.
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> pg_backend_pid() AND application_name = :name"
                ),
                {"name": "portal_outage_test"},
            )
            writer.join(30)
            holder.execute(text("ROLLBACK"))
    finally:
        side.dispose()
    assert_database_down(answer["response"])
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseStudy)) == 0
        assert db.session.scalar(select(func.count()).select_from(MailMessage)) == 0
        assert not db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.like("case_study.%"))
        )
    # The portal recovered by itself (dead connections are replaced as they are taken).
    assert post_case_study(author, complete(app)).status_code == 303
    sent = sorted(mail_to(app))
    assert sent == sorted([*team, "ali.khan@kent.police.uk"])


@needs_postgres
def test_a_connection_cut_after_the_answer_was_made_leaves_that_answer_alone(
    outage_app, _template_instance
):
    import os

    app = outage_app(DATABASE_URL=tagged(os.environ[RUN_DATABASE], "portal_outage_late"))
    moderators(app)
    with app.app_context():
        create_user("ali.khan@kent.police.uk", "Ali Khan", "Kent", Role.CONTRIBUTOR, PASSWORD)
    restart = threading.Event()

    @app.after_request
    def postgresql_restarts_now(response):
        """The answer is made; the request's session still holds its connection."""
        if restart.is_set():
            restart.clear()
            side = create_engine(os.environ[RUN_DATABASE], isolation_level="AUTOCOMMIT")
            with side.connect() as admin:
                admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'portal_outage_late'"
                    )
                )
            side.dispose()
        return response

    author = app.test_client()
    person = {"email": "ali.khan@kent.police.uk", "password": PASSWORD}
    assert post_form(author, "/auth/login", person).status_code == 303
    restart.set()
    assert author.get("/account").status_code == 200  # not the server's 500
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    restart.set()
    data = {**complete(app), "action": "submit", "csrf_token": token}
    assert author.post("/case-studies/new", data=data).status_code == 303  # saved, and says so
    assert only_case_study(app).id
    assert len(mail_to(app)) == 3  # two moderators and the receipt


@needs_postgres
def test_the_portal_answers_503_while_postgresql_is_away_and_recovers_by_itself(
    outage_app, _template_instance
):
    import os

    database = make_url(os.environ[RUN_DATABASE])
    with TcpProxy(database.port or 5432) as proxy:
        through = database.set(host="127.0.0.1", port=proxy.port)
        app = outage_app(DATABASE_URL=through.render_as_string(hide_password=False))
        with app.app_context():
            create_user("kim.lee@kent.police.uk", "Kim Lee", "Kent", Role.CONTRIBUTOR, PASSWORD)
        client = app.test_client()
        person = {"email": "kim.lee@kent.police.uk", "password": PASSWORD}
        assert post_form(client, "/auth/login", person).status_code == 303
        proxy.stop()
        for path in ("/", "/library?q=allies", "/account"):
            response = client.get(path)
            assert_database_down(response)
            assert "Kim Lee" not in response.get_data(as_text=True)
        fragment = client.get("/library?q=allies", headers={"HX-Request": "true"})
        assert fragment.status_code == 503
        assert client.get("/healthz").status_code == 503
        stranger = app.test_client()  # the sign-in form needs no database; signing in does
        assert_database_down(post_form(stranger, "/auth/login", person))
        proxy.start()  # PostgreSQL is back: no restart of the portal
        assert client.get("/account").status_code == 200  # still signed in
        assert client.get("/healthz").status_code == 200


def test_only_an_unreachable_database_is_a_503_a_wrong_statement_stays_a_500(app):
    with app.app_context():
        with pytest.raises(Exception) as wrong:
            db.session.execute(text("SELECT * FROM no_such_table"))
        db.session.rollback()
        assert not database_unavailable(wrong.value)
        with pytest.raises(Exception) as typo:
            db.session.execute(text("SELEC 1"))
        db.session.rollback()
        assert not database_unavailable(typo.value)
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "postgresql":
        unreachable = url.set(host="127.0.0.1", port=1)
    else:
        unreachable = url.set(database="/nonexistent/folder/portal.db")
    engine = create_engine(unreachable)
    try:
        with pytest.raises(Exception) as refused:
            engine.connect()
    finally:
        engine.dispose()
    assert database_unavailable(refused.value)
