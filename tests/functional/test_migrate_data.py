"""`portal migrate-data`: an embedded install moved to PostgreSQL, nothing lost, and proved."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Attachment, AuditEvent, CaseStudy, Revision, User
from portal.search import SearchQuery, get_backend

from ..backends import SERVER
from ..conftest import Auth, _drop_database, _fresh_database, make_app
from ..records import case_study_line, pdf_attachment

pytestmark = pytest.mark.skipif(
    not SERVER, reason="needs PostgreSQL: runs on the PostgreSQL pass of make test"
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
def target():
    url = _fresh_database(SERVER)
    yield url
    _drop_database(SERVER, url)


def _counts(app) -> dict:
    with app.app_context():
        return {
            m.__name__: db.session.scalar(select(func.count()).select_from(m))
            for m in (User, CaseStudy, Revision, Attachment, AuditEvent)
        }


def test_an_embedded_install_moves_to_postgresql_with_nothing_lost(tmp_path, jsonl, target):
    from portal.casestudies.importer import import_case_studies
    from portal.cli import init_db
    from portal.search.sync import apply_all

    embedded = make_app(
        tmp_path / "embedded",
        DATABASE_URL=f"sqlite:///{tmp_path / 'embedded' / 'portal.db'}",
        SEARCH_BACKEND="whoosh",
    )
    with embedded.app_context():
        init_db()
        import_case_studies(
            jsonl(
                [
                    case_study_line(title=f"Moved scheme {n}", summary="Café ≠ cafe")
                    for n in range(25)
                ]
            )
        )
        apply_all()
        revision = db.session.scalars(select(Revision)).first()
        revision.attachments.append(pdf_attachment(PDF))
        db.session.commit()
    from portal.accounts import create_user
    from portal.models import Role

    with embedded.app_context():
        create_user(
            "moved@kent.police.uk",
            "Moved Person",
            "Kent",
            Role.CONTRIBUTOR,
            "orange kettle lamp 42",
        )
    before = _counts(embedded)

    result = embedded.test_cli_runner().invoke(args=["migrate-data", "--to", target])
    assert result.exit_code == 0, result.output
    assert "row counts and content checksums match" in result.output
    assert "DIFFERENT" not in result.output
    assert "PostgreSQL search holds 25 published case studies" in result.output

    moved = make_app(tmp_path / "embedded", DATABASE_URL=target, SEARCH_BACKEND="postgres")
    assert _counts(moved) == before
    with moved.app_context():
        assert get_backend().query(SearchQuery(text="moved scheme")).total == 25
        assert db.session.scalars(select(Attachment)).one().data == PDF
        # New rows get fresh ids: the sequences were moved on past the copied rows.
        create_user(
            "new@kent.police.uk", "New Person", "Kent", Role.CONTRIBUTOR, "violet harbour drum 7"
        )
    client = moved.test_client()

    class Person:
        email, password, totp_secret = "moved@kent.police.uk", "orange kettle lamp 42", None

    response = Auth(client).login(Person(), follow=False)
    assert response.status_code == 303 and "/auth/login" not in response.location

    again = embedded.test_cli_runner().invoke(args=["migrate-data", "--to", target])
    assert again.exit_code != 0 and "already holds data" in again.output


def test_migrate_data_refuses_a_target_that_is_not_postgresql(tmp_path):
    embedded = make_app(
        tmp_path / "e",
        DATABASE_URL=f"sqlite:///{tmp_path / 'e' / 'portal.db'}",
        SEARCH_BACKEND="whoosh",
    )
    result = embedded.test_cli_runner().invoke(args=["migrate-data", "--to", "sqlite:///x.db"])
    assert result.exit_code != 0 and "PostgreSQL URL" in result.output
