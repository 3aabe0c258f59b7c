"""Move an embedded install (SQLite) to PostgreSQL with nothing lost, and prove it.

The target database is brought to the current schema by the migrations, must be empty,
and is filled table by table in foreign-key order, in one transaction. Then every table is
compared: row counts, and a SHA-256 over every row in primary-key order, each value read
back through the same column types on both sides. The search entries are built last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from sqlalchemy import LargeBinary, create_engine, func, select, text
from sqlalchemy.engine import Engine

from .extensions import db

# Rebuilt on the target rather than copied: Whoosh's queue means nothing to PostgreSQL.
SKIPPED = {"search_outbox"}


class MigrationError(RuntimeError):
    """The data cannot be moved; nothing was written (or what was written was rolled back)."""


@dataclass(frozen=True)
class TableCheck:
    name: str
    source_rows: int
    target_rows: int
    same_content: bool

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.same_content


def _tables():
    return [t for t in db.metadata.sorted_tables if t.name not in SKIPPED]


def _batch_size(table) -> int:
    # Attachments are up to 20 MB each: a few at a time keeps memory flat.
    return 10 if any(isinstance(c.type, LargeBinary) for c in table.columns) else 1000


def _normal(value):
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def table_digest(engine: Engine, table) -> tuple[int, str]:
    """Return (rows, SHA-256 over every row in primary-key order) of one table."""
    digest, count = hashlib.sha256(), 0
    order = list(table.primary_key.columns) or list(table.columns)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=_batch_size(table)).execute(
            select(table).order_by(*order)
        )
        for row in result:
            digest.update(json.dumps([_normal(v) for v in row], default=str).encode())
            digest.update(b"\n")
            count += 1
    return count, digest.hexdigest()


def copy_all(source: Engine, target: Engine, progress: Callable[[str, int], None]) -> None:
    """Copy every table's rows from source to the (empty) target, in one transaction."""
    tables = _tables()
    with target.connect() as check:
        for table in tables:
            if check.scalar(select(func.count()).select_from(table)):
                raise MigrationError(
                    f"the target database already holds data (table {table.name}): "
                    "migrate into an empty database"
                )
    with source.connect() as read, target.begin() as write:
        for table in tables:
            size = _batch_size(table)
            result = read.execution_options(yield_per=size).execute(select(table))
            copied = 0
            for rows in result.partitions(size):
                write.execute(table.insert(), [dict(r._mapping) for r in rows])
                copied += len(rows)
            if "id" in table.c and target.dialect.name == "postgresql":
                name = table.name  # from our own metadata, never from input
                biggest = f'COALESCE((SELECT max(id) FROM "{name}"), 0) + 1'  # noqa: S608
                sql = f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), {biggest}, false)"
                write.execute(text(sql))
            progress(table.name, copied)


def compare(source: Engine, target: Engine) -> list[TableCheck]:
    checks = []
    for table in _tables():
        source_rows, source_digest = table_digest(source, table)
        target_rows, target_digest = table_digest(target, table)
        checks.append(
            TableCheck(table.name, source_rows, target_rows, source_digest == target_digest)
        )
    return checks


def target_engine(url: str) -> Engine:
    if not url.startswith("postgresql"):
        raise MigrationError("--to must be a PostgreSQL URL: postgresql+psycopg://user@host/db")
    return create_engine(url)
