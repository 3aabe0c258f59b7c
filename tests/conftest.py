"""Fixtures shared by every test: a fresh instance folder, the app, its clients."""

from __future__ import annotations

import json
import shutil
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
        db.engine.dispose()
    return instance


@pytest.fixture
def instance_path(tmp_path, _template_instance) -> Path:
    """A fresh instance folder holding an initialised database and search index."""
    instance = tmp_path / "instance"
    shutil.copytree(_template_instance, instance, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
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

        with app.app_context():
            before = set(db.session.scalars(select(CaseStudy.id)))
            import_case_studies(jsonl(list(records) or [case_study_line()], name="fixture.jsonl"))
            return sorted(set(db.session.scalars(select(CaseStudy.id))) - before)

    return add
