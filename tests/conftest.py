"""Fixtures shared by every test: a fresh instance folder, the app, its clients."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.serving import make_server

from portal import create_app
from portal.cli import init_db
from portal.extensions import db
from portal.jobs import make_huey, queue_of

from .backends import REDIS, SEARCH, SERVER
from .records import case_study_line

# The scale-out run (CI's second pass): PostgreSQL, its search backend and Redis. Read when
# imported, before the fixture below clears PORTAL_* variables for each test.
SERVER_CONFIG = (
    {"SEARCH_BACKEND": SEARCH, "RATELIMIT_STORAGE_URL": REDIS, "QUEUE_URL": REDIS} if SERVER else {}
)
# This run's fresh database, when SERVER is set; kept in the environment because test modules
# may import this file under another module name than pytest does.
RUN_DATABASE = "HEFORSHE_TEST_RUN_DATABASE"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Keep the developer's PORTAL_* variables out of the tests."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)


_APPS: list = []  # apps made by this test, whose connections are closed after it


@pytest.fixture(autouse=True)
def _fresh_state(request):
    """On PostgreSQL and Redis (shared by the run), start each test as on a fresh instance."""
    # Browser tests share one live app with demo data for the whole run, as they do on the
    # embedded default (its own instance folder there): their database is left alone.
    if SERVER and "e2e" not in request.keywords:
        request.getfixturevalue("_template_instance")
        _reset_database(os.environ[RUN_DATABASE])
        if REDIS:
            import redis

            client = redis.Redis.from_url(REDIS)
            for pattern in ("LIMITS*", "portal:search*"):  # limits, shared search results
                for key in client.scan_iter(pattern):
                    client.delete(key)
            client.close()
    yield
    while _APPS:
        app = _APPS.pop()
        with app.app_context():
            db.engine.dispose()
        if app.config["QUEUE_URL"].startswith("redis"):
            queue_of(app).huey.storage.flush_all()  # this app's own keys (its queue's name)


class SentClient(FlaskClient):
    """A test client that reads each response whole and closes it, as a server does once the
    last byte is sent (work the portal defers until then has run when a request returns)."""

    def open(self, *args, buffered: bool = True, **kwargs):
        response = super().open(*args, buffered=buffered, **kwargs)
        if buffered:  # the request is over: its body (a temporary file when large) too
            response.request.input_stream.close()
        return response


def _whole(app):
    """`app`, each response read whole and closed before the server writes a byte of it.

    Werkzeug's development server closes a response only after draining the connection, and
    a browser that resets the connection (a favicon abandoned by a navigation) makes that
    drain raise first: the response (an open static file) is then left to the garbage
    collector, whose ResourceWarning fails whichever test it lands in."""

    def buffered(environ, start_response):
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return buffered


@contextmanager
def served(app):
    """Serve `app` on a free port of 127.0.0.1, each request in a thread; yield its address."""
    server = make_server("127.0.0.1", 0, _whole(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in memory for the whole run and shared by its apps.

    Each test makes its own app, whose Jinja environment would otherwise compile every
    template it renders again (a third of a second in a test's first requests). Jinja checks
    each template's source against the checksum kept with its code."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


def _share_url_builders() -> None:
    """Compile each URL rule's builder functions once for the whole run.

    Werkzeug writes and compiles two Python functions for every URL rule each time an app
    binds it: nine tenths of the 26 ms that making an app takes, and each test makes its
    own. A builder depends only on the rule's parts, its defaults and the kind asked for
    (it finds the rule's converters through the rule it is bound to when called), so one
    compiled function serves the same rule in every app of the run."""
    from werkzeug.routing import Rule

    compile_builder = Rule._compile_builder
    built: dict = {}

    def shared(rule, append_unknown: bool = True):
        defaults = sorted((k, repr(v)) for k, v in (rule.defaults or {}).items())
        key = (rule.rule, tuple(rule._trace), tuple(defaults), append_unknown)
        if key not in built:
            built[key] = compile_builder(rule, append_unknown)
        return built[key]

    Rule._compile_builder = shared  # type: ignore[method-assign]


_share_url_builders()


def make_app(instance: Path, **config):
    """Build an app whose runtime files all live in `instance` (and, in the scale-out run,
    whose database is this run's PostgreSQL database)."""
    database = os.environ.get(RUN_DATABASE)
    server = {"DATABASE_URL": database, **SERVER_CONFIG} if database else {}
    server = {k: v for k, v in server.items() if v}
    if server.get("QUEUE_URL"):  # a queue of its own on the shared Redis
        server["QUEUE_NAME"] = f"portal-test-{uuid.uuid4().hex[:12]}"
    app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, **server, **config})
    app.test_client_class = SentClient
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    _APPS.append(app)
    return app


@pytest.fixture(scope="session")
def _template_instance(tmp_path_factory) -> Path:
    """Run the migrations and seed reference data once; tests copy the result."""
    if SERVER:
        os.environ[RUN_DATABASE] = _fresh_database(SERVER)
    instance = tmp_path_factory.mktemp("template-instance")
    app = make_app(instance)
    with app.app_context():
        init_db()
        if SERVER:
            _REFERENCE.update(_snapshot())
        db.session.remove()
        db.engine.dispose()  # closes the last connection, which checkpoints the WAL
    yield instance
    if SERVER:
        for engine in _ENGINES.values():
            engine.dispose()
        _drop_database(SERVER, os.environ.pop(RUN_DATABASE))


def _fresh_database(server: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"portal_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{server}/{name}"


def _drop_database(server: str, url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


_REFERENCE: dict[str, list[dict]] = {}  # reference rows as init-db left them


def _snapshot() -> dict[str, list[dict]]:
    rows = {}
    for table in db.metadata.sorted_tables:
        found = db.session.execute(table.select()).mappings().all()
        if found:
            rows[table.name] = [dict(r) for r in found]
    return rows


_ENGINES: dict = {}
_SEQUENCES: dict[str, str] = {}  # per database: one SELECT putting every sequence back


def _reset_database(url: str) -> None:
    """Empty every table and put the reference rows back: a fresh database for each test.

    DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE makes new files for every
    table and index of the schema (and syncs them at commit), 0.5 s or more per test. Tables
    the models do not know (the search backend's) go first, then the models' tables, each
    after those that refer to it; every sequence starts again after the reference rows."""
    from sqlalchemy import create_engine, text

    engine = _ENGINES.get(url) or _ENGINES.setdefault(url, create_engine(url))
    with engine.begin() as conn:
        if url not in _SEQUENCES:
            _SEQUENCES[url] = _sequence_reset(conn)
        tables = db.metadata.sorted_tables
        known = {t.name for t in tables} | {"alembic_version"}
        others = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).all()
        for name in [n for n in others if n not in known] + [t.name for t in reversed(tables)]:
            conn.execute(text(f'DELETE FROM "{name}"'))
        for table in tables:
            if table.name in _REFERENCE:
                conn.execute(table.insert(), _REFERENCE[table.name])
        if _SEQUENCES[url]:
            conn.execute(text(_SEQUENCES[url]))


def _sequence_reset(conn) -> str:
    """One SELECT that sets each column's sequence to follow the rows its table holds."""
    from sqlalchemy import text

    owned = conn.execute(
        text(
            "SELECT quote_ident(s.relname), quote_ident(t.relname), quote_ident(a.attname) "
            "FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
            "JOIN pg_namespace n ON n.oid = s.relnamespace "
            "WHERE s.relkind = 'S' AND n.nspname = 'public'"
        )
    ).all()
    calls = [
        f"setval('{seq}', coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
        for seq, table, column in owned
    ]
    return "SELECT " + ", ".join(calls) if calls else ""


@pytest.fixture
def instance_path(tmp_path, _template_instance) -> Path:
    """A fresh instance folder holding an initialised database and search index."""
    instance = tmp_path / "instance"
    shutil.copytree(
        _template_instance, instance, symlinks=True, ignore=shutil.ignore_patterns("*-wal", "*-shm")
    )
    return instance


@pytest.fixture
def app(instance_path):
    app = make_app(instance_path)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def jsonl(tmp_path):
    """Write records (dicts, or raw strings taken as they are) to a .jsonl file."""

    def write(records, name="import.jsonl") -> Path:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def published(app, jsonl):
    """Import published case studies; return a function that does it."""

    def add(*records: dict) -> list[int]:
        from sqlalchemy import select

        from portal.casestudies.importer import import_case_studies
        from portal.models import CaseStudy
        from portal.search.sync import apply_all

        with app.app_context():
            before = set(db.session.scalars(select(CaseStudy.id)))
            import_case_studies(jsonl(list(records) or [case_study_line()], name="fixture.jsonl"))
            apply_all()  # as the CLI does after an import
            return sorted(set(db.session.scalars(select(CaseStudy.id))) - before)

    return add


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(app):
    """Create a confirmed user (optionally with TOTP on); return it with its TOTP secret."""
    from portal.accounts import create_user
    from portal.auth import services
    from portal.models import Role

    created = 0

    def make(
        role: str = "contributor",
        *,
        email: str | None = None,
        mfa: bool | None = None,
        force: str = "Kent Police",
        name: str = "Alex Example",
        password: str = PASSWORD,
    ):
        nonlocal created
        created += 1
        email = email or f"{role}{created}@kent.police.uk"
        with app.app_context():
            user = create_user(email, name, force, Role(role), password)
            secret = None
            if mfa if mfa is not None else role != "contributor":
                import pyotp

                secret = pyotp.random_base32()
                user.totp_pending_secret = secret
                services.enable_mfa(user, password, pyotp.TOTP(secret).now())
                # Forget the step used for set-up, so the test may sign in with the current code.
                user.totp_last_step = None
                db.session.commit()
            db.session.expunge_all()
        return TestUser(email=email, password=password, totp_secret=secret, role=role)

    return make


class TestUser:
    __test__ = False

    def __init__(self, email, password, totp_secret, role):
        self.email, self.password, self.totp_secret, self.role = email, password, totp_secret, role

    def totp(self, offset: int = 0) -> str:

        import pyotp

        return pyotp.TOTP(self.totp_secret).at(time.time() + offset)


def csrf_from(html: str) -> str:
    """Return the CSRF token of the first form in `html`."""
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def register(client, name: str, email: str, force: str, password: str):
    """Fill in and send the registration form."""
    token = csrf_from(client.get("/auth/register").get_data(as_text=True))
    return client.post(
        "/auth/register",
        data={
            "name": name,
            "email": email,
            "force": force,
            "password": password,
            "csrf_token": token,
        },
    )


class Auth:
    """Sign in and out through the real pages, as a browser would."""

    def __init__(self, client):
        self.client = client

    def csrf(self, path: str = "/auth/login") -> str:
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def login(self, user, *, code: str | None = None, follow: bool = True):
        response = self.client.post(
            "/auth/login",
            data={"email": user.email, "password": user.password, "csrf_token": self.csrf()},
        )
        if user.totp_secret and response.status_code == 303 and "two-factor" in response.location:
            response = self.client.post(
                "/auth/two-factor",
                data={"code": code or user.totp(), "csrf_token": self.csrf("/auth/two-factor")},
            )
        return response

    def logout(self):
        return self.client.post("/auth/logout", data={"csrf_token": self.csrf("/account")})


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def member(client, auth, make_user):
    """A test client signed in as a contributor."""
    user = make_user("contributor")
    response = auth.login(user)
    assert response.status_code == 303, response.get_data(as_text=True)
    client.user = user
    return client


# People at work on case studies, each signed in on a client of their own


def signed_in(app, user):
    """Return a new test client signed in as `user` (its second factor too)."""
    client = app.test_client()
    assert Auth(client).login(user).status_code == 303
    client.user = user
    return client


@pytest.fixture
def author(app, make_user):
    return signed_in(app, make_user(email="ali.khan@kent.police.uk", name="Ali Khan"))


@pytest.fixture
def moderator(app, make_user):
    return signed_in(
        app, make_user("moderator", email="mo.derator@npcc.police.uk", name="Mo Derator")
    )


@pytest.fixture
def second_moderator(app, make_user):
    return signed_in(app, make_user("moderator", email="sec.ond@npcc.police.uk", name="Sec Ond"))


@pytest.fixture
def colleague(app, make_user):
    return signed_in(app, make_user(email="other@kent.police.uk"))


@pytest.fixture
def outage_app(instance_path):
    """Make apps on this test's instance whose Redis may be down or behind a proxy.

    conftest empties each app's queue after the test through the app itself, which cannot
    reach a Redis that is down: these apps' queues are emptied on the real server instead.
    """
    made = []

    def make(**config):
        app = make_app(instance_path, **config)
        _APPS.remove(app)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()
        if REDIS and app.config["QUEUE_URL"].startswith("redis"):
            real = make_huey({"QUEUE_URL": REDIS, "QUEUE_NAME": app.config["QUEUE_NAME"]})
            real.storage.flush_all()
