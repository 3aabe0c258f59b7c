"""Faults survived, measured: the portal under load while its mail server, Redis, PostgreSQL,
its job worker or a web worker fails, on loopback, with a table of what happened.

Usage: python bench/faults.py [--setup embedded|scale-out|both] [--quick] [--only NAME ...]

Each scenario gets a fresh portal: its own instance folder (and, scaling out, its own
PostgreSQL database on 127.0.0.1:5432, made and dropped, and its own queue on a private
redis-server this script starts on a free port), gunicorn serving it, a real `portal
worker`, and an SMTP server in this process (aiosmtpd) that counts what it receives by
Message-ID. Redis, PostgreSQL and the SMTP server are reached through TCP proxies
(tests/tcp_proxy.py) that the script stops and starts: "down" is a proxy stopped, never a
real server stopped (other work shares them). A few threads act as people: contributors
submit case studies (each emails every moderator, and the author a receipt), ask for
password resets, write to authors, sign in, read pages; a moderator approves what waits.

| scenario | fault |
|---|---|
| baseline | none: the figures the others are compared with |
| mail-down | the mail server refuses connections for the first minute of two (`--quick`: 30 s of 60) |
| smtp-answers | the mail server answers 451 (4xx), then 550 (5xx), then slower than PORTAL_SMTP_TIMEOUT |
| redis-down | Redis (rate limits and queue) unreachable for 15 s, mid-load (scale-out only) |
| pg-restart | every connection cut (pg_terminate_backend), then 10 s refusing them (scale-out only) |
| worker-kill | the job worker SIGKILLed in the middle of jobs (slow SMTP), restarted 2 s later |
| web-kill | a burst of approvals on gunicorn with 2 workers; a random worker SIGKILLed every 3 s |

After the load, each scenario waits for its mail to be delivered (the first retry is 60 s
after a failure and the sweep runs each minute; a message held by a killed worker comes
back when its lease ends) while the next scenario runs, then checks every message (expected
= recorded in the database; delivered, duplicated and lost counted by Message-ID at the
SMTP server) and every case study the load touched: either submitted with every moderator's
email and the receipt, or not at all; approved and searchable, or still waiting.
The whole run takes about 7 minutes on two cores (the two setups run side by side, each
in a process of its own; `--setup` runs one).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tcp_proxy import TcpProxy  # noqa: E402

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
PASSWORD = "fault bench password 2026"
CONTRIBUTORS = 30
MODERATORS = 2
VERBOSE = bool(os.environ.get("BENCH_VERBOSE"))
#: A folder to keep each scenario's gunicorn and worker logs in (BENCH_KEEP_LOGS=path).
KEEP_LOGS = Path(os.environ["BENCH_KEEP_LOGS"]) if os.environ.get("BENCH_KEEP_LOGS") else None
SMTP_TIMEOUT = 3  # PORTAL_SMTP_TIMEOUT: a message's lease is 6 × this + 30 s = 48 s
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SEEN = re.compile(r'name="seen" value="([^"]*)"')
MARK = re.compile(r"faultmark[0-9a-f]{10}")  # a case study the load submitted
SEED = re.compile(r"faultseed[0-9a-f]{10}")  # one waiting for approval before the load
TERMINAL = {"sent", "failed", "unconfirmed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The mail server


class MailSink:
    """An SMTP server that counts each message it receives by Message-ID.

    `mode`: accept; 4xx (451 to every recipient); 5xx (550); `delay` seconds before answering
    each recipient (slower than PORTAL_SMTP_TIMEOUT: the portal gives up and tries later).
    """

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mode = "accept"
        self.delay = 0.0
        self.received: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.proxy = TcpProxy(self.port).start()  # stopped: "the mail server is down"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.mode == "4xx":
            return "451 4.3.0 Mailbox busy, try again later"
        if self.mode == "5xx":
            return "550 5.1.1 No such mailbox here"
        if self.delay:
            await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        headers = BytesHeaderParser(policy=default_policy).parsebytes(envelope.content)
        message_id = str(headers["Message-ID"] or "").strip()
        with self.lock:
            self.received[message_id] += 1
            self.first_seen.setdefault(message_id, time.time())
        return "250 2.0.0 Accepted"

    def close(self) -> None:
        self.proxy.stop()
        self.controller.stop()


# Redis (scale-out): a private server, so nothing here touches the machine's shared one


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603 - the system's redis-server
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        client.close()

    def flush_limits(self) -> None:
        import redis

        client = redis.Redis(port=self.port, db=0)
        client.flushdb()
        client.close()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# The data every scenario starts from, made once per setup


class Template:
    """Schema, reference data, the people and 20 published case studies, made once; each
    scenario starts from a copy (the instance folder; PostgreSQL's CREATE DATABASE TEMPLATE)."""

    def __init__(self, setup: str, folder: Path) -> None:
        from portal import create_app
        from portal.accounts import create_user
        from portal.auth import services
        from portal.casestudies.importer import import_case_studies
        from portal.cli import init_db
        from portal.extensions import db
        from portal.models import Role, User
        from portal.search.sync import apply_all

        self.setup = setup
        self.instance = folder / "template"
        self.instance.mkdir(parents=True)
        self.database = ""
        config = {"ENV": "development"}
        if setup == "scale-out":
            self.database = f"portal_faults_{uuid.uuid4().hex[:8]}_template"
            _admin(f'CREATE DATABASE "{self.database}"')
            config.update(DATABASE_URL=f"{POSTGRES}/{self.database}", SEARCH_BACKEND="postgres")
        app = create_app({"INSTANCE_PATH": str(self.instance), **config})
        self.people: list[dict] = []
        self.sessions: dict[str, dict[str, str]] = {}  # each person's cookies, once signed in
        with app.app_context():
            init_db()
            import pyotp

            for n in range(MODERATORS):
                email = f"moderator{n}@npcc.police.uk"
                user = create_user(email, f"Moderator {n}", "NPCC", Role.MODERATOR, PASSWORD)
                secret = pyotp.random_base32()
                user.totp_pending_secret = secret
                services.enable_mfa(user, PASSWORD, pyotp.TOTP(secret).now())
                db.session.execute(
                    db.update(User).where(User.id == user.id).values(totp_last_step=None)
                )
                db.session.commit()
                self.people.append({"email": email, "role": "moderator", "secret": secret})
            for n in range(CONTRIBUTORS):
                email = f"writer{n}@kent.police.uk"
                create_user(email, f"Writer {n}", "Kent", Role.CONTRIBUTOR, PASSWORD)
                self.people.append({"email": email, "role": "contributor", "secret": None})
            lines = [_record(f"read{n}", "published", n) for n in range(20)]
            import_case_studies([json.dumps(line) for line in lines])
            apply_all()
            db.session.remove()
            db.engine.dispose()  # the last connection: SQLite folds its WAL into the file

    def copy(self, instance: Path) -> str:
        """Copy the template into `instance` (and a new database); return the database's name."""
        import shutil

        shutil.copytree(
            self.instance, instance, symlinks=True, ignore=shutil.ignore_patterns("*-wal", "*-shm")
        )
        if not self.database:
            return ""
        name = f"portal_faults_{uuid.uuid4().hex[:8]}"
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.database}"')
        return name

    def close(self) -> None:
        if self.database:
            _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


# One portal: instance, database, gunicorn, worker


class Portal:
    def __init__(self, template: Template, name: str, folder: Path, redis_server):
        setup = template.setup
        self.setup, self.name, self.folder, self.template = setup, name, folder, template
        self.instance = folder / "instance"
        self.database = template.copy(self.instance)
        self.sink = MailSink()
        self.redis_proxy = TcpProxy(redis_server.port).start() if redis_server else None
        self.pg_proxy: TcpProxy | None = None
        self.settings: dict[str, str] = {
            "ENV": "development",
            "TRUSTED_PROXIES": "1",  # each simulated person has an address of their own
            "BASE_URL": "http://127.0.0.1:5000",
            "MAIL_BACKEND": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.sink.proxy.port),
            "SMTP_STARTTLS": "0",
            "SMTP_TIMEOUT": str(SMTP_TIMEOUT),
        }
        if setup == "scale-out":
            self.pg_proxy = TcpProxy(5432).start()
            assert self.redis_proxy is not None
            redis_url = f"redis://127.0.0.1:{self.redis_proxy.port}"
            self.settings.update(
                DATABASE_URL=self.url(through_proxy=True),
                SEARCH_BACKEND="postgres",
                RATELIMIT_STORAGE_URL=f"{redis_url}/0",
                QUEUE_URL=f"{redis_url}/1",
                QUEUE_NAME=f"faults-{name}",
            )
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.port = 0
        self.app = None
        self.engine = None

    def url(self, through_proxy: bool = False) -> str:
        if not self.database:
            return f"sqlite:///{self.instance / 'portal.db'}"
        if through_proxy:
            assert self.pg_proxy is not None
            host = f"127.0.0.1:{self.pg_proxy.port}"
            return POSTGRES.replace("127.0.0.1:5432", host) + f"/{self.database}"
        return f"{POSTGRES}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update({f"PORTAL_{k}": v for k, v in self.settings.items()})
        env["PORTAL_INSTANCE_PATH"] = str(self.instance)
        return env

    def prepare(self, submitted: int = 0) -> dict:
        """Add the case studies waiting for approval, if any; return what the load needs."""
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from portal import create_app
        from portal.casestudies.importer import import_case_studies
        from portal.config import from_environment
        from portal.extensions import db
        from portal.models import CaseStudy, Revision, RevisionState, Theme
        from portal.search.sync import apply_all

        config = from_environment({f"PORTAL_{k}": v for k, v in self.settings.items()})
        config["DATABASE_URL"] = self.url()  # set-up and checks go straight to the database
        self.app = create_app({"INSTANCE_PATH": str(self.instance), **config})
        with self.app.app_context():
            if submitted:
                lines = [
                    _record(f"faultseed{uuid.uuid4().hex[:10]}", "submitted", n)
                    for n in range(submitted)
                ]
                import_case_studies([json.dumps(line) for line in lines])
                apply_all()
            published = list(
                db.session.scalars(
                    db.select(CaseStudy.id)
                    .join(Revision)
                    .where(Revision.state == RevisionState.PUBLISHED)
                )
            )
            themes = list(db.session.scalars(db.select(Theme.id)))
            db.session.remove()
            db.engine.dispose()
        self.engine = create_engine(self.url(), poolclass=NullPool)
        people = self.template.people
        return {"people": people, "published": published, "themes": themes}

    # Processes

    def start_web(self, workers: int = 3) -> None:
        self.port = free_port()
        log = open(self.folder / "web.log", "ab")  # noqa: SIM115 - the process's own
        self.web = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
             "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--access-logfile", "/dev/null", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/auth/login")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start; see {self.folder / 'web.log'}")

    def web_workers(self) -> list[int]:
        assert self.web is not None
        path = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.send_signal(signal.SIGTERM)
            self.web.wait(40)
            self.web = None

    def start_worker(self) -> None:
        log = open(self.folder / "worker.log", "ab")  # noqa: SIM115 - the process's own
        self.worker = subprocess.Popen(  # noqa: S603 - our own venv's portal command
            [str(Path(sys.executable).parent / "portal"), "worker", "--threads", "2"],
            cwd=ROOT, env=self.env, stdout=log, stderr=log,
        )  # fmt: skip

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(10)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.send_signal(signal.SIGINT)  # finishes its running jobs, then stops
            try:
                self.worker.wait(60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
            self.worker = None

    def terminate_connections(self) -> int:
        """Cut every connection to this portal's database, as a PostgreSQL restart does."""
        from sqlalchemy import create_engine, text

        admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            cut = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.database},
            ).scalar()
        admin.dispose()
        return int(cut or 0)

    # What the database holds

    def mail_rows(self) -> list:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        'SELECT id, message_id, "to", subject, state, attempts, last_error, '
                        "created_at FROM mail_message ORDER BY id"
                    )
                )
            )

    def close(self) -> None:
        self.stop_web()
        self.stop_worker()
        if KEEP_LOGS:
            import shutil

            KEEP_LOGS.mkdir(parents=True, exist_ok=True)
            for log in ("web.log", "worker.log"):
                if (self.folder / log).exists():
                    shutil.copy(self.folder / log, KEEP_LOGS / f"{self.setup}-{self.name}-{log}")
        self.sink.close()
        for proxy in (self.redis_proxy, self.pg_proxy):
            if proxy is not None:
                proxy.stop()
        if self.engine is not None:
            self.engine.dispose()
        if self.app is not None:
            from portal.extensions import db

            with self.app.app_context():
                db.engine.dispose()
        if self.database:
            _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _record(name: str, status: str, n: int) -> dict:
    return {
        "title": f"Walk and talk for Movember {name}",
        "summary": "Officers walked 10 km a day in November and talked about men's health.",
        "body": "## What we did\n\nWe walked, we talked, we raised money.",
        "force": "Kent Police",
        "themes": ["Men's health and wellbeing"],
        "partners": ["Movember"],
        "event_date": "2025-11-01",
        "outcomes": "230 walkers; 41 people asked for support.",
        "contact_name": "Sergeant Ali Khan",
        "contact_email": f"contact{n}@kent.police.uk",
        "author_email": f"writer{n % CONTRIBUTORS}@kent.police.uk",
        "status": status,
    }


# People at work


class Browser:
    """One person's cookies and address; a new connection per request (as through a proxy)."""

    def __init__(self, port: int, address: str) -> None:
        self.port, self.address = port, address
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, data: dict | None = None, headers=None):
        body = urlencode(data, doseq=True) if data is not None else None
        sent = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "X-Forwarded-For": self.address,
            "Connection": "close",
        }
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as error:
            if VERBOSE:
                print(f"dropped: {method} {path}: {type(error).__name__}: {error}", flush=True)
            return None, "", ""  # the connection dropped: no answer at all
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(header).items():
                self.cookies[key] = morsel.value
        return response.status, response.headers.get("Location", ""), text


@dataclass
class Sample:
    kind: str
    started: float  # seconds since the load began
    seconds: float
    status: int | None


@dataclass
class Load:
    """Who does what, and every request's answer and time."""

    portal: Portal
    ready: dict
    began: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    submitted: list[tuple[str, int | None]] = field(default_factory=list)  # (mark, status)
    approved: list[tuple[int, int | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    turn: int = 0

    def call(self, browser: Browser, kind: str, method: str, path: str, data=None, headers=None):
        started = time.time()
        status, location, text = browser.request(method, path, data, headers)
        with self.lock:
            self.samples.append(Sample(kind, started - self.began, time.time() - started, status))
        return status, location, text

    def next_writer(self) -> int:
        with self.lock:  # round robin: nobody reaches the 10 submissions an hour
            self.turn += 1
            return self.turn % CONTRIBUTORS

    def sign_in(self, person: dict, address: str) -> Browser:
        """Sign in once per setup: every scenario's portal is a copy of the same template
        (same people, same secret key), so people stay signed in from one to the next."""
        browser = Browser(self.portal.port, address)
        kept = self.portal.template.sessions.get(person["email"])
        if kept:
            browser.cookies = dict(kept)
            return browser
        status, _, page = browser.request("GET", "/auth/login")
        token = TOKEN.search(page).group(1)
        status, location, _ = self.call(
            browser, "sign-in", "POST", "/auth/login",
            {"email": person["email"], "password": PASSWORD, "csrf_token": token},
        )  # fmt: skip
        if person["secret"]:
            import pyotp

            _, _, page = browser.request("GET", "/auth/two-factor")
            token = TOKEN.search(page).group(1)
            code = pyotp.TOTP(person["secret"]).now()
            status, _, _ = self.call(
                browser, "sign-in", "POST", "/auth/two-factor",
                {"code": code, "csrf_token": token},
            )  # fmt: skip
        if status != 303:
            raise RuntimeError(f"{person['email']} could not sign in ({status})")
        self.portal.template.sessions[person["email"]] = dict(browser.cookies)
        return browser

    # Actions

    def read(self, browser: Browser, rng: random.Random) -> None:
        if rng.random() < 0.5:
            case_id = rng.choice(self.ready["published"])
            self.call(browser, "read", "GET", f"/case-studies/{case_id}")
        else:
            query = rng.choice(["movember", "walk", "health", "talk men"])
            self.call(browser, "read", "GET", "/library?" + urlencode({"q": query}))

    def submit(self, writers: list[Browser], rng: random.Random) -> None:
        browser = writers[self.next_writer()]
        _, _, page = self.call(browser, "form", "GET", "/case-studies/new")
        token = TOKEN.search(page)
        if not token:
            return
        mark = f"faultmark{uuid.uuid4().hex[:10]}"
        data = {
            "title": f"Safer nights scheme {mark}",
            "summary": "Officers and partners met to share what works for women's safety.",
            "body": f"## What we did\n\nWe met, we listened, we changed things. {mark}",
            "themes": [rng.choice(self.ready["themes"])], "partners-0": "Street Pastors",
            "event_day": "1", "event_month": "10", "event_year": "2026",
            "outcomes": "Forty people joined.", "lessons": "Start early.",
            "evidence": "worked", "contact_name": "Sergeant Load",
            "contact_email": "load@kent.police.uk", "no_personal_data": "y",
            "not_sensitive": "y", "permission": "y", "action": "submit",
            "csrf_token": token.group(1),
        }  # fmt: skip
        status, _, _ = self.call(browser, "submission", "POST", "/case-studies/new", data)
        with self.lock:
            self.submitted.append((mark, status))

    def contact(self, writers: list[Browser], rng: random.Random) -> None:
        browser = writers[self.next_writer()]
        case_id = rng.choice(self.ready["published"])
        path = f"/case-studies/{case_id}/contact"
        _, _, page = self.call(browser, "form", "GET", path)
        token = TOKEN.search(page)
        if not token:
            return
        message = "Hello, we would like to run your event in our force. Who did you work with?"
        self.call(
            browser, "contact", "POST", path, {"message": message, "csrf_token": token.group(1)}
        )

    def reset(self, rng: random.Random) -> None:
        browser = Browser(self.portal.port, _address(rng))
        _, _, page = self.call(browser, "form", "GET", "/auth/reset")
        token = TOKEN.search(page)
        if not token:
            return
        email = f"writer{rng.randrange(CONTRIBUTORS)}@kent.police.uk"
        self.call(
            browser, "reset", "POST", "/auth/reset", {"email": email, "csrf_token": token.group(1)}
        )

    def signing_in(self, rng: random.Random) -> None:
        browser = Browser(self.portal.port, _address(rng))
        _, _, page = self.call(browser, "form", "GET", "/auth/login")
        token = TOKEN.search(page)
        if not token:
            return
        email = f"writer{rng.randrange(CONTRIBUTORS)}@kent.police.uk"
        data = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
        self.call(browser, "sign-in", "POST", "/auth/login", data)

    def approve(self, browser: Browser, rng: random.Random) -> bool:
        status, _, queue = self.call(browser, "read", "GET", "/moderation")
        waiting = sorted(set(re.findall(r'/moderation/(\d+)"', queue)))
        if not waiting:
            return False
        revision = rng.choice(waiting)
        _, _, review = self.call(browser, "read", "GET", f"/moderation/{revision}")
        token, seen = TOKEN.search(review), SEEN.search(review)
        if not (token and seen):
            return True  # decided meanwhile
        data = {"csrf_token": token.group(1), "seen": html.unescape(seen.group(1))}
        status, _, _ = self.call(
            browser, "approval", "POST", f"/moderation/{revision}/approve", data
        )
        with self.lock:
            self.approved.append((int(revision), status))
        return True

    # The load

    def run(self, seconds: float, kind: str, fault: Callable[[Load], None] | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        people = self.ready["people"]
        with ThreadPoolExecutor(4) as pool:  # signing in is slow on purpose (argon2)
            writers = list(
                pool.map(
                    lambda n_p: self.sign_in(n_p[1], f"10.1.0.{n_p[0] + 1}"),
                    enumerate(p for p in people if p["role"] == "contributor"),
                )
            )
            moderators = list(
                pool.map(
                    lambda n_p: self.sign_in(n_p[1], f"10.2.0.{n_p[0] + 1}"),
                    enumerate(p for p in people if p["role"] == "moderator"),
                )
            )
        self.samples.clear()  # the sign-ins above prepared the load; they are not measured
        self.began = time.time()
        until = self.began + seconds

        def person(seed: int) -> None:
            mine = random.Random(seed)
            while time.time() < until:
                dice = mine.random()
                if dice < 0.40:
                    self.read(writers[mine.randrange(len(writers))], mine)
                elif dice < 0.70:
                    self.submit(writers, mine)
                elif dice < 0.82:
                    self.reset(mine)
                elif dice < 0.94:
                    self.contact(writers, mine)
                else:
                    self.signing_in(mine)
                time.sleep(mine.uniform(0.2, 0.5))

        def moderator(seed: int, browser: Browser, pause: float) -> None:
            mine = random.Random(seed)
            while time.time() < until:
                if not self.approve(browser, mine):
                    time.sleep(0.5)
                time.sleep(pause)

        def reader(seed: int) -> None:
            mine = random.Random(seed)
            while time.time() < until:
                self.read(writers[mine.randrange(len(writers))], mine)
                time.sleep(mine.uniform(0.1, 0.3))

        if kind == "approvals":  # a burst: four moderators' sessions, no pause, and a reader
            threads = [
                threading.Thread(target=moderator, args=(n, moderators[n % MODERATORS], 0.0))
                for n in range(4)
            ] + [threading.Thread(target=reader, args=(99,))]
        else:
            threads = [threading.Thread(target=person, args=(n,)) for n in range(3)]
            threads.append(threading.Thread(target=moderator, args=(50, moderators[0], 0.6)))
        if fault is not None:
            threads.append(threading.Thread(target=fault, args=(self,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _address(rng: random.Random) -> str:
    return f"10.{rng.randrange(3, 250)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"


# Scenarios


@dataclass
class Events:
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str, load: Load) -> None:
        self.marks[name] = time.time() - load.began


def at(load: Load, second: float) -> None:
    time.sleep(max(0.0, load.began + second - time.time()))


@dataclass
class Scenario:
    name: str
    seconds: float
    setups: tuple[str, ...] = ("embedded", "scale-out")
    kind: str = "people"
    web_workers: int = 3
    submitted: int = 0
    fault: Callable[[Portal, Events], Callable[[Load], None]] | None = None


def mail_down(down: float):
    def script(portal: Portal, events: Events):
        def run(load: Load) -> None:
            portal.sink.proxy.stop()
            events.mark("mail down", load)
            at(load, down)
            portal.sink.proxy.start()
            events.mark("mail up", load)

        return run

    return script


def smtp_answers(phase: float):
    def script(portal: Portal, events: Events):
        def run(load: Load) -> None:
            for n, (mode, delay) in enumerate(
                (("4xx", 0.0), ("5xx", 0.0), ("accept", SMTP_TIMEOUT + 2.0))
            ):
                portal.sink.mode, portal.sink.delay = mode, delay
                events.mark(f"{mode if not delay else 'slow'} from", load)
                at(load, (n + 1) * phase)
            portal.sink.mode, portal.sink.delay = "accept", 0.0
            events.mark("normal", load)

        return run

    return script


def redis_down(start: float, length: float):
    def script(portal: Portal, events: Events):
        def run(load: Load) -> None:
            assert portal.redis_proxy is not None
            at(load, start)
            portal.redis_proxy.stop()
            events.mark("redis down", load)
            at(load, start + length)
            portal.redis_proxy.start()
            events.mark("redis up", load)

        return run

    return script


def pg_restart(cut: float, refuse: float, length: float):
    def script(portal: Portal, events: Events):
        def run(load: Load) -> None:
            assert portal.pg_proxy is not None
            at(load, cut)
            portal.terminate_connections()  # a restart: every connection cut, back at once
            events.mark("connections cut", load)
            at(load, refuse)
            portal.pg_proxy.stop()  # down for a while: connections refused
            events.mark("pg down", load)
            at(load, refuse + length)
            portal.pg_proxy.start()
            events.mark("pg up", load)

        return run

    return script


def worker_kill(at_second: float):
    def script(portal: Portal, events: Events):
        def run(load: Load) -> None:
            portal.sink.delay = 0.4  # slow but within the timeout: jobs last a while
            at(load, at_second)
            portal.kill_worker()
            events.mark("worker killed", load)
            time.sleep(2)  # systemd's Restart=always
            portal.start_worker()
            events.mark("worker restarted", load)
            at(load, at_second + 8)
            portal.sink.delay = 0.0

        return run

    return script


def web_kill(every: float, times: int):
    def script(portal: Portal, events: Events):
        def run(load: Load) -> None:
            rng = random.Random(3)
            for n in range(times):
                at(load, every * (n + 1))
                workers = portal.web_workers()
                if workers:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                    events.mark(f"web worker killed {n + 1}", load)

        return run

    return script


def scenarios(quick: bool) -> list[Scenario]:
    mail_load, mail_down_for = (60, 30) if quick else (120, 60)
    return [
        Scenario("baseline", 15 if quick else 20),
        Scenario("mail-down", mail_load, fault=mail_down(mail_down_for)),
        Scenario("smtp-answers", 30 if quick else 45, fault=smtp_answers(10 if quick else 15)),
        Scenario("redis-down", 40, setups=("scale-out",), fault=redis_down(10, 15)),
        Scenario("pg-restart", 40, setups=("scale-out",), fault=pg_restart(10, 20, 10)),
        Scenario("worker-kill", 30, fault=worker_kill(12)),
        Scenario(
            "web-kill", 20, kind="approvals", web_workers=2, submitted=150, fault=web_kill(3, 5)
        ),
    ]


# Running one scenario, and waiting for its mail


@dataclass
class Outcome:
    scenario: str
    setup: str
    requests: int = 0
    errors: int = 0  # 5xx other than 503
    unavailable: int = 0  # 503
    dropped: int = 0  # no answer: the connection was cut
    slowest: float = 0.0
    p95: float = 0.0
    expected: int = 0
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    recovery: str = ""
    notes: list[str] = field(default_factory=list)


def run_scenario(template: Template, scenario: Scenario, folder: Path, redis_server):
    """Run the load (now); return a function that waits for the mail and checks everything."""
    setup = template.setup
    began = time.time()
    folder.mkdir(parents=True)
    portal = Portal(template, scenario.name, folder, redis_server)
    ready = portal.prepare(submitted=scenario.submitted)
    prepared = time.time()
    if redis_server is not None:
        redis_server.flush_limits()  # a fresh database reuses user ids: fresh counters too
    portal.start_worker()
    portal.start_web(scenario.web_workers)
    events = Events()
    load = Load(portal, ready)
    started = time.time()
    fault = scenario.fault(portal, events) if scenario.fault else None
    load.run(scenario.seconds, scenario.kind, fault)
    ended = time.time()
    portal.stop_web()
    if VERBOSE:
        print(
            f"[{setup}] {scenario.name}: prepared in {prepared - began:.1f} s, served in "
            f"{started - prepared:.1f} s, signed in in {load.began - started:.1f} s",
            flush=True,
        )

    def finish() -> Outcome:
        try:
            return settle(setup, scenario, portal, load, events, ended)
        finally:
            portal.close()

    return finish


def settle(setup, scenario, portal: Portal, load: Load, events: Events, ended: float) -> Outcome:
    from sqlalchemy import text

    deadline = ended + 200
    rows = portal.mail_rows()
    while time.time() < deadline:
        rows = portal.mail_rows()
        if all(r.state in TERMINAL for r in rows):
            break
        time.sleep(2)
    if scenario.kind == "approvals":  # the index repair runs each minute: give it one
        with portal.engine.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM search_outbox")).scalar()
        events.marks["outbox left"] = float(left or 0)
        wait_for_outbox(portal, ended + 75)
    time.sleep(1)
    rows = portal.mail_rows()
    out = Outcome(scenario.name, setup)
    count_requests(out, load)
    read_logs(out, portal)
    count_mail(out, portal, rows, scenario, load, events)
    check_case_studies(out, portal, rows, load)
    recovery(out, portal, rows, load, events, scenario)
    return out


def wait_for_outbox(portal: Portal, deadline: float) -> None:
    from sqlalchemy import text

    while time.time() < deadline:
        with portal.engine.connect() as conn:
            if not conn.execute(text("SELECT count(*) FROM search_outbox")).scalar():
                return
        time.sleep(2)


def read_logs(out: Outcome, portal: Portal) -> None:
    """What the web servers logged that a person would not see: work after a response."""
    log = portal.folder / "web.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    unhandled = text.count("Unhandled exception")
    deferred = text.count("Work after the response failed")
    if unhandled:
        first = text[text.index("Unhandled exception") :].splitlines()
        last = next(
            (line for line in first[1:80] if re.match(r"^[\w.]+(Error|Exception)", line)), ""
        )
        out.notes.append(f"{unhandled} unhandled exceptions logged ({last[:160]})")
    if deferred:
        out.notes.append(
            f"{deferred} reset requests answered, then failed after the response (nothing sent)"
        )


def count_requests(out: Outcome, load: Load) -> None:
    measured = [s for s in load.samples]
    out.requests = len(measured)
    out.errors = sum(
        1 for s in measured if s.status is not None and s.status >= 500 and s.status != 503
    )
    out.unavailable = sum(1 for s in measured if s.status == 503)
    out.dropped = sum(1 for s in measured if s.status is None)
    times = sorted(s.seconds for s in measured)
    out.slowest = times[-1] if times else 0.0
    out.p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0
    by_kind = Counter((s.kind, s.status) for s in measured if s.status == 503)
    if by_kind:
        out.notes.append(
            "503s: " + ", ".join(f"{n} {kind}" for (kind, _), n in by_kind.most_common())
        )
    if out.errors:
        codes = Counter(
            s.status for s in measured if s.status and s.status >= 500 and s.status != 503
        )
        out.notes.append(f"5xx: {dict(codes)}")


def count_mail(out: Outcome, portal: Portal, rows, scenario: Scenario, load: Load, events: Events):
    received = portal.sink.received
    ids = {r.message_id for r in rows}
    out.expected = len(rows)
    out.delivered = sum(1 for r in rows if received[r.message_id])
    out.duplicated = sum(n - 1 for n in received.values() if n > 1) + sum(
        n for m, n in received.items() if m not in ids
    )
    refused = [
        r
        for r in rows
        if not received[r.message_id] and r.state == "failed" and " 550 " in (r.last_error or "")
    ]
    undelivered = [r for r in rows if not received[r.message_id]]
    out.lost = len(undelivered) - len(refused)
    for row in [r for r in undelivered if r not in refused][:3]:
        out.notes.append(
            f"LOST mail {row.id}: {row.state} after {row.attempts} tries: {row.last_error[:120]}"
        )
    if refused:
        out.notes.append(f"{len(refused)} refused with 550: failed, with the server's answer")
    unconfirmed = sum(1 for r in rows if r.state == "unconfirmed")
    if unconfirmed:
        delivered = sum(1 for r in rows if r.state == "unconfirmed" and received[r.message_id])
        out.notes.append(f"{unconfirmed} unconfirmed ({delivered} of them received)")
    stuck = Counter(r.state for r in undelivered if r.state not in TERMINAL)
    if stuck:
        out.notes.append(f"not yet delivered: {dict(stuck)}")
    retried = sum(1 for r in rows if r.attempts > 1 and received[r.message_id])
    if retried:
        out.notes.append(f"{retried} delivered on a later try")
    if scenario.name == "smtp-answers":
        phases = []
        for mode, start_key, end_key in (
            ("4xx", "4xx from", "5xx from"),
            ("5xx", "5xx from", "slow from"),
            ("slow", "slow from", "normal"),
        ):
            start = load.began + events.marks.get(start_key, 0)
            end = load.began + events.marks.get(end_key, 0)
            made = [r for r in rows if start <= _epoch(r.created_at) < end]
            sent = sum(1 for r in made if received[r.message_id])
            failed = sum(1 for r in made if r.state == "failed")
            phases.append(f"{mode}: {len(made)} made, {sent} delivered, {failed} failed")
        out.notes.append("; ".join(phases))


def _epoch(value) -> float:
    if isinstance(value, str):  # SQLite, read without the model's types
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp()


def check_case_studies(out: Outcome, portal: Portal, rows, load: Load) -> None:
    """Every case study either submitted with all its emails, or not at all; each approved
    one published, searchable and its author told once; each waiting one none of those."""
    from sqlalchemy import text

    from portal.extensions import db
    from portal.search import SearchQuery, get_backend

    subjects = Counter(r.subject for r in rows)
    with portal.engine.connect() as conn:
        revisions = conn.execute(
            text("SELECT case_study_id, title, state FROM revision ORDER BY case_study_id, number")
        ).all()
        left = conn.execute(text("SELECT count(*) FROM search_outbox")).scalar()
    studies: dict[int, tuple[str, set[str]]] = {}
    for case_id, title, state in revisions:
        studies.setdefault(case_id, (title or "", set()))[1].add(state)
    wrong: list[str] = []
    published = waiting = 0
    with portal.app.app_context():
        backend = get_backend()
        for case_id, (title, states) in studies.items():
            mark = MARK.search(title) or SEED.search(title)
            if mark is None:
                continue  # read by the load, never changed
            sent_on = bool(states & {"submitted", "published"})
            told = (subjects[f"To moderate: {title}"], subjects[f"Received: {title[:80]}"])
            if MARK.search(title) and told != ((MODERATORS, 1) if sent_on else (0, 0)):
                wrong.append(f"{case_id} {sorted(states)} with {told} moderator emails/receipts")
            live = "published" in states
            published += live
            waiting += states == {"submitted"}
            if subjects[f"Published: {title[:80]}"] != int(live):
                wrong.append(f"{case_id} {sorted(states)}: 'Published' emails wrong")
            found = backend.query(SearchQuery(text=mark.group(0))).total
            if found != int(live):
                wrong.append(f"{case_id} {sorted(states)} found {found} times by search")
        db.session.remove()
    answered = [m for m, status in load.submitted if status == 303]
    titles = " ".join(title for title, _ in studies.values())
    missing = [m for m in answered if m not in titles]
    if missing:
        wrong.append(f"{len(missing)} submissions answered 303 are not in the database")
    if left:
        wrong.append(f"{left} index changes still in the outbox")
    approvals = sum(1 for _, status in load.approved if status == 303)
    out.notes.append(
        f"{len(answered)} submissions and {approvals} approvals answered 303; "
        f"{published} published and searchable, {waiting} waiting"
    )
    out.notes.append(
        f"half-written: {len(wrong)}" + (" (" + "; ".join(wrong[:4]) + ")" if wrong else "")
    )


def recovery(out: Outcome, portal: Portal, rows, load: Load, events: Events, scenario: Scenario):
    marks = events.marks
    received = portal.sink.first_seen

    def delivered_by(before: float) -> float | None:
        made = [r for r in rows if _epoch(r.created_at) < load.began + before]
        times = [received.get(r.message_id) for r in made if r.state != "failed"]
        if not made or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None) - load.began

    def first_success_after(second: float, kinds: set[str]) -> float | None:
        after = [
            s.started + s.seconds
            for s in load.samples
            if s.started >= second and s.kind in kinds and s.status and s.status < 500
        ]
        return min(after) - second if after else None

    def say(value: float | None, what: str) -> None:
        if value is None:
            out.recovery = f"never ({what})"
        else:
            out.recovery = f"{value:.1f} s {what}" if value < 10 else f"{value:.0f} s {what}"

    if scenario.name == "mail-down":
        done = delivered_by(marks["mail up"])
        say(done - marks["mail up"] if done is not None else None, "to deliver the backlog")
    elif scenario.name == "smtp-answers":
        done = delivered_by(marks["normal"])
        say(done - marks["normal"] if done is not None else None, "to deliver the retries")
    elif scenario.name == "redis-down":
        back = first_success_after(marks["redis up"], {"submission", "contact", "reset", "sign-in"})
        done = delivered_by(marks["redis up"])
        mail = (
            f"; mail made meanwhile delivered {done - marks['redis up']:.0f} s after"
            if done
            else ""
        )
        say(back, "to the first limited action" + mail)
    elif scenario.name == "pg-restart":
        back = first_success_after(marks["pg up"], {"read", "submission", "approval", "form"})
        say(back, "to the first answer after PostgreSQL is back")
    elif scenario.name == "worker-kill":
        done = delivered_by(marks["worker killed"])
        say(done - marks["worker killed"] if done is not None else None, "to deliver what it held")
    elif scenario.name == "web-kill":
        left = int(marks.get("outbox left", 0))
        if left:
            out.notes.append(
                f"{left} index changes left by killed workers, applied by the repair job"
            )
        last = max(v for k, v in marks.items() if k.startswith("web worker killed"))
        say(
            first_success_after(last, {"read", "approval"}),
            "to the next answer after the last kill",
        )
    else:
        out.recovery = "-"


# The run


def run_setup(setup: str, quick: bool, only: list[str], barrier: Path | None) -> list[Outcome]:
    chosen = [s for s in scenarios(quick) if setup in s.setups and (not only or s.name in only)]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix=f"faults-{setup}-") as tmp:
        redis_server = PrivateRedis(Path(tmp)) if setup == "scale-out" else None
        draining: list[tuple[threading.Thread, dict]] = []
        template = Template(setup, Path(tmp))
        if barrier is not None:  # the other setup's preparation must not weigh on our load
            (barrier / f"{setup}.ready").touch()
            deadline = time.time() + 300
            while len(list(barrier.glob("*.ready"))) < 2 and time.time() < deadline:
                time.sleep(0.5)
        try:
            for scenario in chosen:
                started = time.time()
                print(f"[{setup}] {scenario.name}: {scenario.seconds:.0f} s of load", flush=True)
                finish = run_scenario(template, scenario, Path(tmp) / scenario.name, redis_server)
                result: dict = {}

                def wait(finish=finish, result=result) -> None:
                    try:
                        result["outcome"] = finish()
                    except Exception as error:  # noqa: BLE001 - reported in the table
                        result["error"] = f"{type(error).__name__}: {error}"

                thread = threading.Thread(target=wait)
                thread.start()  # its mail drains while the next scenario runs
                draining.append((thread, {"scenario": scenario, "result": result}))
                print(
                    f"[{setup}] {scenario.name}: load done in {time.time() - started:.0f} s",
                    flush=True,
                )
            for thread, info in draining:
                thread.join()
                result = info["result"]
                if "outcome" in result:
                    outcomes.append(result["outcome"])
                else:
                    failed = Outcome(info["scenario"].name, setup)
                    failed.notes.append("BENCH FAILED: " + result.get("error", "?"))
                    outcomes.append(failed)
        finally:
            template.close()
            if redis_server is not None:
                redis_server.close()
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    baseline = {o.setup: o for o in outcomes if o.scenario == "baseline"}
    lines = [
        "| scenario | setup | requests | 5xx errors / 503s / dropped | slowest, p95 (baseline) "
        "| mails expected / delivered / duplicated / lost | time to recover |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        base = baseline.get(o.setup)
        slow = f"{o.slowest * 1000:,.0f}, {o.p95 * 1000:,.0f} ms"
        if base is not None and base is not o:
            slow += f" ({base.slowest * 1000:,.0f}, {base.p95 * 1000:,.0f})"
        lines.append(
            f"| {o.scenario} | {o.setup} | {o.requests:,} | {o.errors} / {o.unavailable} / "
            f"{o.dropped} | {slow} | {o.expected} / {o.delivered} / {o.duplicated} / {o.lost} "
            f"| {o.recovery} |"
        )
    notes = [f"- {o.scenario}, {o.setup}: " + " · ".join(o.notes) for o in outcomes if o.notes]
    return "\n".join(lines + [""] + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=["embedded", "scale-out", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="mail down 30 s of 60, not 1 min of 2")
    parser.add_argument("--only", nargs="*", default=[], help="scenario names")
    parser.add_argument("--json", help=argparse.SUPPRESS)  # a child's results, for the parent
    parser.add_argument("--barrier", help=argparse.SUPPRESS)  # where children say they are ready
    args = parser.parse_args()
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    started = time.time()
    if args.setup == "both":  # side by side: each setup in a process of its own
        results: list[Outcome] = []
        with tempfile.TemporaryDirectory() as tmp:
            children = []
            for setup in ("embedded", "scale-out"):
                out = Path(tmp) / f"{setup}.json"
                command = [sys.executable, __file__, "--setup", setup, "--json", str(out)]
                command += ["--barrier", tmp]
                command += ["--quick"] if args.quick else []
                command += ["--only", *args.only] if args.only else []
                children.append((subprocess.Popen(command), out))  # noqa: S603 - this script
            for child, out in children:
                child.wait()
                if out.exists():
                    results += [Outcome(**o) for o in json.loads(out.read_text())]
        order = {s.name: n for n, s in enumerate(scenarios(args.quick))}
        results.sort(key=lambda o: (order.get(o.scenario, 99), o.setup))
    else:
        barrier = Path(args.barrier) if args.barrier else None
        results = run_setup(args.setup, args.quick, args.only, barrier)
        if args.json:
            Path(args.json).write_text(json.dumps([o.__dict__ for o in results]))
            return
    print()
    print(table(results))
    print(f"\nwhole run: {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
