"""Which setup the tests run on: the embedded default, or PostgreSQL + Redis (CI's second run)."""

from __future__ import annotations

import os

import pytest

# e.g. postgresql+psycopg://postgres@127.0.0.1 (a fresh database is made under it per run)
SERVER = os.environ.get("PORTAL_TEST_POSTGRES")
SEARCH = os.environ.get("PORTAL_TEST_SEARCH_BACKEND", "postgres") if SERVER else "whoosh"
REDIS = os.environ.get("PORTAL_TEST_REDIS", "") if SERVER else ""

embedded_only = pytest.mark.skipif(
    bool(SERVER), reason="about the embedded default (SQLite files in the instance folder)"
)
whoosh_only = pytest.mark.skipif(SEARCH != "whoosh", reason="about the Whoosh index's files")
