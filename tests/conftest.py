"""Fixtures shared by every test: a fresh instance folder, the app, its clients."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from portal import create_app
from portal.cli import init_db
from portal.extensions import db

from .records import case_study_line


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Keep the developer's PORTAL_* variables out of the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)


def make_app(instance: Path, **config):
    """Build an app whose runtime files all live in `instance`."""
    return create_app({"INSTANCE_PATH": str(instance), "TESTING": True, **config})


@pytest.fixture(scope="session")
def _template_instance(tmp_path_factory) -> Path:
    """Run the migrations and seed reference data once; tests copy the result."""
    instance = tmp_path_factory.mktemp("template-instance")
    app = make_app(instance)
    with app.app_context():
        init_db()
        db.session.remove()
        db.engine.dispose()  # closes the last connection, which checkpoints the WAL
    return instance


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
