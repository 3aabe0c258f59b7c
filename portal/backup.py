"""Back up and restore the embedded default: the SQLite database, the secret key, the config.

The database is copied with SQLite's online backup API, so the copy is consistent even
while the portal runs and writes (attachments live in the database, so they come with it).
The search index is not copied: it is derived from the database and rebuilt on restore.
A backup is one .tar.gz holding the files and a manifest with their SHA-256 checksums.
On PostgreSQL use pg_dump and pg_restore instead (docs/operations.md, Deployment).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app

FORMAT = 1
DATABASE = "portal.db"
EXTRA_FILES = ("secret_key", "config.py")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


def _sqlite_path() -> Path:
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite:///"):
        raise BackupError(
            "portal backup copies the embedded SQLite database; for PostgreSQL use pg_dump "
            "(see docs/operations.md, Deployment)"
        )
    return Path(url.removeprefix("sqlite:///"))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _private(path: Path) -> int:
    """Open a new file for writing that only its owner can read (before anything is in it)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def create_backup(destination: Path) -> Path:
    """Write a consistent backup of this instance into `destination` (a folder)."""
    database = _sqlite_path()
    instance = Path(current_app.instance_path)
    destination.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = destination / f"portal-backup-{stamp}.tar.gz"
    with tempfile.TemporaryDirectory(dir=destination) as tmp:
        copy = Path(tmp) / DATABASE
        os.close(_private(copy))
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        dest = sqlite3.connect(copy)
        try:
            source.backup(dest)  # a consistent snapshot, whatever is being written meanwhile
            counts = {
                name: dest.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
                for (name,) in dest.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            }
            revision = dest.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            dest.close()
            source.close()
        files = {DATABASE: copy}
        for name in EXTRA_FILES:
            if (instance / name).is_file():
                files[name] = instance / name
        manifest = {
            "format": FORMAT,
            "created": stamp,
            "schema": revision[0] if revision else None,
            "rows": counts,
            "files": {name: _file_sha256(path) for name, path in files.items()},
        }
        partial = Path(tmp) / "backup.tar.gz"
        with (
            os.fdopen(_private(partial), "wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz") as tar,
        ):
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
            for name, path in files.items():  # streamed from disk: memory stays flat
                info = tar.gettarinfo(str(path), arcname=name)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
        os.replace(partial, target)
    return target


def _known_schema(revision: str | None) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        found = revision is not None and ScriptDirectory.from_config(config).get_revision(revision)
        return bool(found)
    except Exception:
        return False


def read_backup(path: Path, into: Path) -> dict:
    """Unpack a backup's files into the folder `into`, checking every name and checksum;
    return its manifest."""
    allowed = {"manifest.json", DATABASE, *EXTRA_FILES}
    found: dict[str, Path] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile() or member.name not in allowed or member.name in found:
                    raise BackupError(f"unexpected entry in the backup: {member.name!r}")
                target = into / member.name
                source = archive.extractfile(member)
                if source is None:
                    raise BackupError(f"unexpected entry in the backup: {member.name!r}")
                with source, os.fdopen(_private(target), "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                found[member.name] = target
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise BackupError(f"{path} is not a readable backup: {error}") from error
    if "manifest.json" not in found:
        raise BackupError(f"{path} has no manifest.json: not a portal backup")
    manifest = json.loads(found.pop("manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if set(found) != set(manifest["files"]) or DATABASE not in found:
        raise BackupError("the backup's files do not match its manifest")
    for name, file in found.items():
        if _file_sha256(file) != manifest["files"][name]:
            raise BackupError(f"{name} is damaged: its checksum does not match the manifest")
    if not _known_schema(manifest.get("schema")):
        raise BackupError(
            f"the backup's schema {manifest.get('schema')!r} is unknown to this version of "
            "the portal (a backup from a newer release?): restore it with that release"
        )
    return manifest


def restore_backup(path: Path, *, replace: bool = False) -> dict:
    """Put a backup's files into this instance; the caller migrates and reindexes after.

    Everything is unpacked and checked before anything in the instance changes; with
    --replace the database it replaces is kept beside it, renamed, never deleted.
    """
    database = _sqlite_path()
    if database.exists() and database.stat().st_size and not replace:
        raise BackupError(
            f"{database} already exists: restore into an empty instance folder, or pass "
            "--replace to overwrite it (stop the portal first)"
        )
    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    from .extensions import db

    db.session.remove()
    db.engine.dispose()  # no connection of ours keeps the old file open
    with tempfile.TemporaryDirectory(dir=instance, prefix=".restore-") as tmp:
        manifest = read_backup(path, Path(tmp))
        if database.exists() and database.stat().st_size:
            kept = database.with_name(f"{database.name}.before-restore-{manifest['created']}")
            os.replace(database, kept)
        for leftover in (f"{database}-wal", f"{database}-shm"):  # they belonged to the old file
            Path(leftover).unlink(missing_ok=True)
        for name in manifest["files"]:
            target = database if name == DATABASE else instance / name
            os.replace(Path(tmp) / name, target)
    return manifest
