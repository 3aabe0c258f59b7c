"""Measure that no request waits on the mail server: a submission with 1 and 50 moderators.

Usage: python bench/mail_fanout.py [SUBMISSIONS]   (default: 10 per round)

A fresh embedded instance; the portal's mail backend points at an SMTP server that accepts
connections and never answers (the worst a mail server can do to a request that sends
mail itself). Contributors submit complete case studies through the web app (Flask's test
client, signed in through the real pages); each submission records one email per moderator
and a receipt. Prints the time of each submit request with 1 and with 50 moderators, and
how many emails each round recorded. The worker is not running: the emails wait in the
database, as they would while the mail server hangs.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from portal import create_app  # noqa: E402
from portal.accounts import create_user  # noqa: E402
from portal.cli import init_db  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import MailMessage, Role, Theme, User  # noqa: E402

PASSWORD = "a long bench password 2026"


def silent_smtp_server() -> tuple[int, socket.socket]:
    """Listen on a free port, accept every connection and never say a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    held = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], listener


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def submit_as(app, email: str, theme_id: int, n: int) -> float:
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    client.post(
        "/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf(page)}
    )
    token = csrf(client.get("/case-studies/new").get_data(as_text=True))
    data = {
        "title": f"Walk and talk for Movember {n}",
        "summary": "Officers walked 10 km a day in November and talked about men's health.",
        "body": "## What we did\n\nWe walked, we talked, we raised money.",
        "themes": [theme_id],
        "partners-0": "Movember",
        "event_day": "1",
        "event_month": "11",
        "event_year": "2025",
        "outcomes": "230 walkers; 41 people asked for support.",
        "evidence": "worked",
        "contact_name": "Sergeant Ali Khan",
        "contact_email": "ali.khan@kent.police.uk",
        "no_personal_data": "y",
        "not_sensitive": "y",
        "permission": "y",
        "action": "submit",
        "csrf_token": token,
    }
    started = time.perf_counter()
    response = client.post("/case-studies/new", data=data)
    elapsed = time.perf_counter() - started
    assert response.status_code == 303, response.status_code
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Time a submission with 1 and with 50 moderators while the mail server "
        "accepts connections and never answers (a fresh embedded instance; no worker running)."
    )
    parser.add_argument(
        "submissions",
        nargs="?",
        type=int,
        default=10,
        help="submissions per round (default: 10)",
    )
    rounds = parser.parse_args().submissions
    port, listener = silent_smtp_server()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "INSTANCE_PATH": folder,
                "TESTING": True,
                "MAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": port,
                "SMTP_TIMEOUT": 30,
            }
        )
        with app.app_context():
            init_db()
            theme_id = db.session.scalar(select(Theme.id).order_by(Theme.id))
            for n in range(2 * rounds):
                create_user(
                    f"writer{n}@kent.police.uk", f"Writer {n}", "Kent", Role.CONTRIBUTOR, PASSWORD
                )
        print(
            f"{'moderators':>10} {'submissions':>11} {'p50 ms':>7} {'max ms':>7} {'emails recorded':>16}"
        )
        writer = 0
        for moderators in (1, 50):
            with app.app_context():
                have = db.session.scalar(select(func.count()).select_from(MailMessage))
                made = db.session.scalar(
                    select(func.count()).select_from(User).where(User.role == Role.MODERATOR)
                )
                for m in range(made, moderators):
                    create_user(
                        f"moderator{m}@npcc.police.uk",
                        f"Moderator {m}",
                        "NPCC",
                        Role.MODERATOR,
                        PASSWORD,
                    )
            times = []
            for _ in range(rounds):
                times.append(submit_as(app, f"writer{writer}@kent.police.uk", theme_id, writer))
                writer += 1
            with app.app_context():
                now = db.session.scalar(select(func.count()).select_from(MailMessage))
            print(
                f"{moderators:>10} {rounds:>11} {statistics.median(times) * 1000:>7.0f} "
                f"{max(times) * 1000:>7.0f} {now - have:>16}"
            )
    listener.close()


if __name__ == "__main__":
    main()
