"""`portal backup` and `portal restore`: a consistent copy while the portal writes, restored."""

from __future__ import annotations

import io
import sqlite3
import tarfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Attachment, CaseStudy, Revision, User
from portal.search import SearchQuery, get_backend

from ..backends import SERVER, embedded_only
from ..conftest import make_app
from ..records import case_study_line, pdf_attachment

PDF = b"%PDF-1.4\n" + b"x" * 2000 + b"\n%%EOF\n"


def _counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (User, CaseStudy, Revision, Attachment)
        }


@embedded_only
def test_a_backup_taken_while_the_portal_writes_restores_into_a_fresh_instance(
    app, runner, published, make_user, tmp_path, auth, client
):
    ids = published(*[case_study_line(title=f"Backed up scheme {n}") for n in range(12)])
    user = make_user("contributor", email="kept@kent.police.uk")
    with app.app_context():
        revision = db.session.scalars(
            select(Revision).where(Revision.case_study_id == ids[0])
        ).one()
        revision.attachments.append(pdf_attachment(PDF))
        db.session.commit()
        database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")

    # Another connection keeps writing while the backup runs.
    stop = threading.Event()

    def keep_writing():
        conn = sqlite3.connect(database, timeout=15)
        n = 0
        while not stop.is_set():
            conn.execute(
                "INSERT INTO audit_event (at, action, detail) "
                "VALUES (CURRENT_TIMESTAMP, 'test.write', ?)",
                (f"write {n}",),
            )
            conn.commit()
            n += 1
        conn.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = runner.invoke(args=["backup", str(tmp_path / "backups")])
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    archive = next((tmp_path / "backups").glob("portal-backup-*.tar.gz"))
    assert archive.stat().st_mode & 0o077 == 0  # it holds the secret key: owner only
    with tarfile.open(archive) as tar:
        assert set(tar.getnames()) == {"manifest.json", "portal.db", "secret_key"}

    before = _counts(app)
    restored = make_app(tmp_path / "restored")
    outcome = restored.test_cli_runner().invoke(args=["restore", str(archive)])
    assert outcome.exit_code == 0, outcome.output
    assert "search index rebuilt with 12 published case studies" in outcome.output

    restored = make_app(tmp_path / "restored")  # a new process on the restored instance
    assert _counts(restored) == before
    assert (tmp_path / "restored" / "secret_key").read_bytes() == (
        Path(app.instance_path) / "secret_key"
    ).read_bytes()
    with restored.app_context():
        assert get_backend().query(SearchQuery(text="backed up scheme")).total == 12
        attachment = db.session.scalars(select(Attachment)).one()
        assert attachment.data == PDF
    # The restored account signs in with its password.
    from ..conftest import Auth

    login = Auth(restored.test_client()).login(user, follow=False)
    assert login.status_code == 303 and "/auth/login" not in login.location


@embedded_only
def test_restore_refuses_to_overwrite_and_refuses_a_damaged_backup(app, runner, tmp_path):
    assert runner.invoke(args=["backup", str(tmp_path / "b")]).exit_code == 0
    archive = next((tmp_path / "b").glob("*.tar.gz"))
    over = runner.invoke(args=["restore", str(archive)])
    assert over.exit_code != 0 and "--replace" in over.output

    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "secret_key":
                data = b"0" * len(data)
            out.addfile(member, io.BytesIO(data))
    fresh = make_app(tmp_path / "fresh")
    result = fresh.test_cli_runner().invoke(args=["restore", str(damaged)])
    assert result.exit_code != 0 and "secret_key is damaged" in result.output
    assert (
        not (tmp_path / "fresh" / "portal.db").exists()
        or not (tmp_path / "fresh" / "portal.db").stat().st_size
    )

    planted = tmp_path / "planted.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(planted, "w:gz") as out:
        for member in src.getmembers():
            out.addfile(member, src.extractfile(member))
        extra = tarfile.TarInfo("search")
        extra.size = 1
        out.addfile(extra, io.BytesIO(b"x"))
    result = fresh.test_cli_runner().invoke(args=["restore", str(planted)])
    assert result.exit_code != 0 and "unexpected entry in the backup: 'search'" in result.output

    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a backup")
    result = fresh.test_cli_runner().invoke(args=["restore", str(junk)])
    assert result.exit_code != 0 and "not a readable backup" in result.output


@embedded_only
def test_restore_with_replace_keeps_the_database_it_replaces(app, runner, tmp_path, published):
    assert runner.invoke(args=["backup", str(tmp_path / "b")]).exit_code == 0
    archive = next((tmp_path / "b").glob("*.tar.gz"))
    published(case_study_line(title="Added after the backup"))
    result = runner.invoke(args=["restore", "--replace", str(archive)])
    assert result.exit_code == 0, result.output
    kept = list(Path(app.instance_path).glob("portal.db.before-restore-*"))
    assert len(kept) == 1
    with sqlite3.connect(kept[0]) as old:
        assert old.execute("SELECT count(*) FROM case_study").fetchone()[0] == 1
    again = make_app(Path(app.instance_path))
    with again.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseStudy)) == 0
        assert get_backend().query(SearchQuery(text="added after")).total == 0


@pytest.mark.skipif(not SERVER, reason="on PostgreSQL only: the PostgreSQL pass of make test")
def test_on_postgresql_backup_points_to_pg_dump(runner, tmp_path):
    result = runner.invoke(args=["backup", str(tmp_path / "b")])
    assert result.exit_code != 0 and "pg_dump" in result.output
