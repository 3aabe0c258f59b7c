"""Admins see the mail queue at /admin/mail and resend what failed; nobody sees a body.

The failures are real: a mail server on a free local port (aiosmtpd) refuses one address
with 550 and never answers the end of another message, and the portal's own worker code
(portal.jobs.mail, run by tests.records.outbox) records what it said.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from markupsafe import escape
from sqlalchemy import func, insert, select

from portal.extensions import db
from portal.mail import queue_mail
from portal.models import AuditEvent, MailMessage, MailState, utcnow

from ..conftest import Auth, csrf_from, signed_in
from ..records import outbox

REFUSED = "nobody.here@kent.police.uk"  # the server answers 550 for this address
SILENT = "slow.inbox@kent.police.uk"  # the server takes the message and never answers
BUSY = "lee.smith@kent.police.uk"  # the server asks to be tried again later
RESET_LINK = "https://heforshe.invalid/auth/reset/SECRET-RESET-TOKEN-5521"
PRIVATE = "private words about a colleague, for the author only"


class Server:
    """What the test mail server does with each recipient."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == REFUSED:
            return "550 5.1.1 <nobody.here@kent.police.uk>: Recipient address rejected"
        if address == BUSY:
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if SILENT in envelope.rcpt_tos:
            await asyncio.sleep(4)  # longer than the portal waits for an answer
        self.received.extend(envelope.rcpt_tos)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mail_server(app):
    """The app sends through a real SMTP server on a free local port while the test runs."""
    handler = Server()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config.update(
        MAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=controller.port,
        SMTP_STARTTLS=False,
        SMTP_TIMEOUT=1,
    )
    yield handler
    controller.stop()


@pytest.fixture
def admin(app, make_user):
    return signed_in(app, make_user("admin", email="chief.admin@kent.police.uk", name="Chief"))


def send(app, to: str, subject: str, body: str = f"Reset it: {RESET_LINK}\n") -> int:
    """Record an email as the portal does (its delivery is queued after the commit)."""
    with app.app_context():
        row = queue_mail(to, subject, body)
        db.session.commit()
        return row.id


def message(app, message_id: int) -> MailMessage:
    with app.app_context():
        row = db.session.get(MailMessage, message_id)
        db.session.expunge(row)
        return row


def delivered_to(app) -> list[str]:
    """Run the worker's queued jobs; return who the file backend's messages went to."""
    return [str(m["To"]) for m in outbox(app)]


@pytest.fixture
def failures(app, mail_server):
    """One email sent, one refused with 550, one unconfirmed, one waiting to be tried again;
    then the mail server is swapped for the file backend (the admin fixed the settings)."""
    ids = {
        "sent": send(app, "pat.jones@kent.police.uk", "Your role is now moderator"),
        "failed": send(app, REFUSED, "Reset your password"),
        "unconfirmed": send(app, SILENT, "Someone contacted you about your case study", PRIVATE),
        "waiting": send(app, BUSY, "Confirm your email address"),
    }
    outbox(app)  # the worker tries each once
    app.config.update(MAIL_BACKEND="file")
    return ids


def rows(page: str) -> list[str]:
    """The table's rows, an address's line-break hint (local<wbr>@domain) taken out."""
    body = page.split('<tbody class="govuk-table__body">', 1)[1].split("</tbody>", 1)[0]
    body = body.replace("<wbr>", "")
    return re.findall(r'<tr class="govuk-table__row">(.*?)</tr>', body, re.S)


def resend_path(page: str, message_id: int) -> str:
    found = re.search(rf'action="(/admin/mail/{message_id}/resend[^"]*)"', page)
    assert found, f"no Resend button for message {message_id}"
    return found.group(1).replace("&amp;", "&")


def post(client, path: str, page: str):
    return client.post(path, data={"csrf_token": csrf_from(page)})


def all_at_once(clients, path: str) -> list[int]:
    """Each admin has the page open; all press the same button at the same moment."""
    tokens = [csrf_from(client.get("/admin/mail").get_data(as_text=True)) for client in clients]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def press(client, token):
        start.wait()
        statuses.append(client.post(path, data={"csrf_token": token}).status_code)

    threads = [
        threading.Thread(target=press, args=(client, token))
        for client, token in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def audit_events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        found = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        db.session.expunge_all()
        return found


# Who sees it


def test_only_admins_with_two_factor_see_the_mail_queue(app, make_user, member, moderator):
    failed = send(app, REFUSED, "Reset your password")
    for client in (member, moderator):
        assert client.get("/admin/mail").status_code == 403
        token = csrf_from(client.get("/account").get_data(as_text=True))
        for path in (f"/admin/mail/{failed}/resend", "/admin/mail/resend-failed"):
            assert client.post(path, data={"csrf_token": token}).status_code == 403
    anonymous = app.test_client().get("/admin/mail")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.location
    no_code = app.test_client()
    Auth(no_code).login(make_user("admin", email="new.admin@kent.police.uk", mfa=False))
    setup = no_code.get("/admin/mail")
    assert setup.status_code in (302, 303) and setup.location == "/account/two-factor"
    assert message(app, failed).state == MailState.WAITING  # nobody changed it


# What it shows


def test_admin_sees_counts_states_and_the_servers_answer(app, admin, failures):
    page = admin.get("/admin/mail").get_data(as_text=True)
    assert 'id="mail-count-waiting">1<' in page
    assert 'id="mail-count-sent">1<' in page
    assert 'id="mail-count-attention">2<' in page
    listed = rows(page)
    assert len(listed) == 4
    # Newest first: the waiting one was recorded last.
    assert BUSY in listed[0] and ">Waiting<" in listed[0]
    assert "Next try" in listed[0] and "451 4.7.1 Greylisted" in listed[0]
    assert "Resend" not in listed[0]
    unconfirmed, refused, sent = listed[1], listed[2], listed[3]
    answer = message(app, failures["unconfirmed"]).last_error  # what the worker recorded
    assert ">Unconfirmed<" in unconfirmed and answer and escape(answer) in unconfirmed
    assert ">Failed<" in refused and "Reset your password" in refused
    assert "550 5.1.1" in refused and "Recipient address rejected" in refused
    assert ">Sent<" in sent and "Sent <time" in sent
    assert "Resend" not in sent and "Resend" in refused and "Resend" in unconfirmed
    assert "Resend all" not in page  # one failed email: "Resend the failed email"
    assert "Resend the failed email" in page
    assert "Message bodies are never shown here" in page


def test_no_body_is_ever_shown(app, admin, failures):
    for state in ("", "waiting", "sent", "attention", "failed", "unconfirmed"):
        page = admin.get(f"/admin/mail?state={state}").get_data(as_text=True)
        assert "SECRET-RESET-TOKEN" not in page and "private words" not in page, state


def test_the_filter_keeps_its_state_in_the_url(app, admin, failures):
    page = admin.get("/admin/mail?state=attention").get_data(as_text=True)
    assert len(rows(page)) == 2 and "in <strong>Needs attention</strong>" in page
    assert '<option value="attention" selected>Needs attention (2)</option>' in page
    assert resend_path(page, failures["failed"]) == (
        f"/admin/mail/{failures['failed']}/resend?state=attention"
    )
    failed = admin.get("/admin/mail?state=failed").get_data(as_text=True)
    assert len(rows(failed)) == 1 and REFUSED in rows(failed)[0]
    waiting = admin.get("/admin/mail?state=waiting").get_data(as_text=True)
    assert len(rows(waiting)) == 1 and BUSY in rows(waiting)[0]


ODD_QUERIES = [
    "?state=bogus",
    "?state=%00",
    "?state=%C0%AF",
    "?state=<script>alert(1)</script>",
    "?state=" + "x" * 5000,
    "?state=failed&state=sent",
    "?page=0",
    "?page=-1",
    "?page=x",
    "?page=99999999999999999999999",
    "?page=1e9",
]


def test_odd_filters_and_pages_show_a_real_page(app, admin, failures):
    for query in ODD_QUERIES:
        response = admin.get("/admin/mail" + query)
        assert response.status_code == 200, query
        assert "<script>alert" not in response.get_data(as_text=True)
    # An unknown state shows every email; a second one is ignored.
    page = admin.get("/admin/mail?state=bogus").get_data(as_text=True)
    assert len(rows(page)) == 4 and "4 emails" in page
    assert len(rows(admin.get("/admin/mail?state=failed&state=sent").text)) == 1


def test_fifty_emails_a_page_keeping_the_filter(app, admin):
    with app.app_context():
        now = utcnow()
        db.session.execute(
            insert(MailMessage),
            [
                {
                    "message_id": f"<{n}@test>",
                    "to": f"person{n}@kent.police.uk",
                    "subject": f"Message number {n}",
                    "body": RESET_LINK,
                    "state": MailState.FAILED if n % 2 else MailState.SENT,
                    "attempts": 1,
                    "next_attempt_at": now,
                    "last_error": "the mail server refused the recipient: 550 no" if n % 2 else "",
                    "sent_at": None if n % 2 else now,
                    "created_at": now,
                }
                for n in range(1, 241)
            ],
        )
        db.session.commit()
    first = admin.get("/admin/mail?state=failed").get_data(as_text=True)
    assert len(rows(first)) == 50 and "120 emails" in first and "page 1 of 3" in first
    assert "Message number 239<" in first  # newest first
    assert 'href="/admin/mail?page=2&amp;state=failed"' in first
    last = admin.get("/admin/mail?state=failed&page=3").get_data(as_text=True)
    assert len(rows(last)) == 20 and "Message number 1<" in last
    assert 'href="/admin/mail?page=2&amp;state=failed"' in last
    # A Resend button sends the admin back to the page they were on.
    assert resend_path(last, 1) == "/admin/mail/1/resend?state=failed&page=3"
    assert len(rows(admin.get("/admin/mail?page=5").get_data(as_text=True))) == 40


# Resending


def test_a_resent_failed_email_is_delivered(app, admin, failures):
    page = admin.get("/admin/mail?state=failed").get_data(as_text=True)
    response = post(admin, resend_path(page, failures["failed"]), page)
    assert response.status_code == 303 and response.location == "/admin/mail?state=failed"
    after = admin.get(response.location).get_data(as_text=True)
    assert f"The email to {REFUSED} is back in the queue" in after
    assert delivered_to(app) == [REFUSED]
    row = message(app, failures["failed"])
    assert (row.state, row.attempts, row.last_error) == (MailState.SENT, 1, "")
    (event,) = audit_events(app, "admin.mail_resent")
    assert event.target_type == "mail_message" and event.target_id == failures["failed"]
    detail = json.loads(event.detail)
    assert detail["to"] == REFUSED and detail["status"] == "failed"
    assert "550 5.1.1" in detail["server_answer"]
    assert "SECRET" not in event.detail
    # The audit log names it in plain English.
    log = admin.get("/admin/audit?event=admin.mail_resent").get_data(as_text=True)
    assert "Email resent" in log and "550 5.1.1" in log


def test_a_resent_unconfirmed_email_is_delivered(app, admin, failures):
    page = admin.get("/admin/mail?state=unconfirmed").get_data(as_text=True)
    response = post(admin, resend_path(page, failures["unconfirmed"]), page)
    assert response.status_code == 303
    assert delivered_to(app) == [SILENT]
    assert message(app, failures["unconfirmed"]).state == MailState.SENT


@pytest.mark.parametrize("state", ["sent", "waiting"])
def test_an_email_that_did_not_fail_is_not_resent(app, admin, failures, state):
    page = admin.get("/admin/mail").get_data(as_text=True)
    before = message(app, failures[state])
    response = post(admin, f"/admin/mail/{failures[state]}/resend", page)
    assert response.status_code == 400
    assert "This email was not resent" in response.get_data(as_text=True)
    after = message(app, failures[state])
    assert (after.state, after.attempts, after.next_attempt_at) == (
        before.state,
        before.attempts,
        before.next_attempt_at,
    )
    assert audit_events(app, "admin.mail_resent") == []


@pytest.mark.parametrize("path", ["/admin/mail/999999/resend", "/admin/mail/99999999999/resend"])
def test_resending_an_email_that_does_not_exist_is_a_404(app, admin, path):
    page = admin.get("/admin/mail").get_data(as_text=True)
    assert post(admin, path, page).status_code == 404


def test_resending_needs_a_csrf_token(app, admin, failures):
    for path in (f"/admin/mail/{failures['failed']}/resend", "/admin/mail/resend-failed"):
        assert admin.post(path).status_code == 400
        assert admin.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert message(app, failures["failed"]).state == MailState.FAILED
    assert audit_events(app, "admin.mail_resent") == []


def test_two_admins_pressing_resend_at_once_send_it_once(app, make_user, admin, failures):
    others = [
        signed_in(app, make_user("admin", email=f"admin{n}@kent.police.uk")) for n in range(5)
    ]
    clients = [admin, *others]
    statuses = all_at_once(clients, f"/admin/mail/{failures['failed']}/resend")
    assert sorted(statuses) == [303] + [400] * (len(clients) - 1)
    assert len(audit_events(app, "admin.mail_resent")) == 1
    assert delivered_to(app) == [REFUSED]


def test_a_resend_raced_by_another_admin_changes_nothing(app, make_user, failures):
    """The second admin's page still showed it failed; the first resent it meanwhile."""
    from portal.admin.mail_queue import resend_message
    from portal.core.errors import FieldErrors
    from portal.models import User

    make_user("admin", email="first@kent.police.uk")
    make_user("admin", email="second@kent.police.uk")
    with app.test_request_context():
        second = db.session.scalar(select(User).where(User.email == "second@kent.police.uk"))
        seen = db.session.get(MailMessage, failures["failed"])  # still failed here
        with app.app_context():  # the first admin, in a session of their own
            first = db.session.scalar(select(User).where(User.email == "first@kent.police.uk"))
            resend_message(first, db.session.get(MailMessage, failures["failed"]))
        assert seen.state == MailState.FAILED  # what the second admin saw
        with pytest.raises(FieldErrors):
            resend_message(second, seen)
    assert len(audit_events(app, "admin.mail_resent")) == 1
    assert delivered_to(app) == [REFUSED]


def test_resend_all_puts_every_failed_email_back_but_not_the_unconfirmed(app, admin, failures):
    second = send(app, "someone.else@kent.police.uk", "Your account is confirmed")
    with app.app_context():
        row = db.session.get(MailMessage, second)
        row.state, row.attempts, row.last_error = MailState.FAILED, 8, "out of tries"
        db.session.commit()
    page = admin.get("/admin/mail?state=attention&page=1").get_data(as_text=True)
    assert "Resend all 2 failed emails" in page
    found = re.search(r'action="(/admin/mail/resend-failed[^"]*)"', page)
    assert found and found.group(1) == "/admin/mail/resend-failed?state=attention"
    response = post(admin, found.group(1), page)
    assert response.status_code == 303 and response.location == "/admin/mail?state=attention"
    assert "2 failed emails are back in the queue" in admin.get(response.location).text
    assert sorted(delivered_to(app)) == sorted([REFUSED, "someone.else@kent.police.uk"])
    assert message(app, failures["unconfirmed"]).state == MailState.UNCONFIRMED
    (event,) = audit_events(app, "admin.failed_mail_resent")
    assert json.loads(event.detail) == {"count": 2}
    # Nothing failed now: the button is gone, and pressing an old one changes nothing.
    assert "failed email" not in admin.get("/admin/mail").text
    again = post(admin, "/admin/mail/resend-failed", page)
    assert again.status_code == 400 and "There are no failed emails to resend" in again.text
    assert len(audit_events(app, "admin.failed_mail_resent")) == 1


def add_failed(app, count: int) -> None:
    """Record `count` emails as the worker leaves them after their last try."""
    with app.app_context():
        now = utcnow()
        db.session.execute(
            insert(MailMessage),
            [
                {
                    "message_id": f"<{n}@test>",
                    "to": f"person{n}@kent.police.uk",
                    "subject": f"Message number {n}",
                    "body": RESET_LINK,
                    "state": MailState.FAILED,
                    "attempts": 8,
                    "next_attempt_at": now,
                    "last_error": "out of tries",
                    "created_at": now,
                }
                for n in range(1, count + 1)
            ],
        )
        db.session.commit()


def test_admins_pressing_resend_all_at_once_send_each_email_once(app, make_user, admin):
    add_failed(app, 30)
    clients = [admin] + [
        signed_in(app, make_user("admin", email=f"admin{n}@kent.police.uk")) for n in range(3)
    ]
    statuses = all_at_once(clients, "/admin/mail/resend-failed")
    assert len(statuses) == len(clients) and 303 in statuses
    assert set(statuses) <= {303, 400}
    counts = [json.loads(e.detail)["count"] for e in audit_events(app, "admin.failed_mail_resent")]
    assert sum(counts) == 30 and len(counts) == statuses.count(303)
    sent = delivered_to(app)
    assert len(sent) == 30 and len(set(sent)) == 30


def test_resend_all_takes_at_most_a_thousand_oldest_first_in_one_go(app, admin):
    add_failed(app, 1002)
    page = admin.get("/admin/mail").get_data(as_text=True)
    assert "Resend the oldest 1,000 of 1,002 failed emails" in page
    started = time.perf_counter()
    response = post(admin, "/admin/mail/resend-failed", page)
    took = time.perf_counter() - started
    assert response.status_code == 303
    assert took < 10, f"resending 1,000 took {took:.1f} s"
    with app.app_context():
        left = db.session.scalars(
            select(MailMessage.id).where(MailMessage.state == MailState.FAILED)
        ).all()
        assert left == [1001, 1002]  # the newest two wait for the next press
        waiting = db.session.scalar(
            select(func.count())
            .select_from(MailMessage)
            .where(MailMessage.state == MailState.WAITING, MailMessage.attempts == 0)
        )
        assert waiting == 1000
    assert "1,000 failed emails are back in the queue" in admin.get(response.location).text


def test_the_admin_page_links_the_mail_with_what_needs_attention(app, admin, failures):
    page = admin.get("/admin").get_data(as_text=True)
    assert 'href="/admin/mail"' in page
    assert "2 need attention" in page and 'href="/admin/mail?state=attention"' in page
    with app.app_context():
        for row in db.session.scalars(select(MailMessage)):
            row.state = MailState.SENT
        db.session.commit()
    assert "Nothing needs attention." in admin.get("/admin").text
