"""A scratch PostgreSQL database for one benchmark run, dropped after it (shared code, not a
script)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator


@contextlib.contextmanager
def database(server: str | None) -> Iterator[str | None]:
    """Yield a new database's URL on `server` (dropped after), or None for SQLite."""
    if not server:
        yield None
        return
    from sqlalchemy import create_engine, text

    name = f"portal_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
