"""Attacks through attachments: files judged by their content, served only as downloads."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Attachment, CaseStudy, Revision, RevisionState

from ..writing import PDF, PNG, complete, decide, docx_bytes, only_case_study, post_case_study


def test_an_attachment_is_served_only_as_a_download_to_those_who_may_see_it(
    app, author, moderator, colleague
):
    assert post_case_study(author, complete(app), files=[("report.pdf", PDF)]).status_code == 303
    case_study = only_case_study(app)
    with app.app_context():
        attachment_id = (
            db.session.scalars(select(Revision).where(Revision.case_study_id == case_study.id))
            .one()
            .attachments[0]
            .id
        )
    path = f"/case-studies/{case_study.id}/attachments/{attachment_id}"
    assert colleague.get(path).status_code == 404
    assert moderator.get(path).status_code == 200
    with app.app_context():
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_study.id)
        )
    decide(moderator, revision_id, "approve")
    response = colleague.get(path)
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Disposition"].startswith('attachment; filename="report.pdf"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"] == "application/pdf"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "diagram.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "must be a PDF",
        ),
        ("report.pdf", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "must be a PDF"),
        ("slides.pptx", b"PK\x03\x04not really a zip", "must be a PDF"),
        ("empty.pdf", b"", "is empty"),
    ],
)
def test_files_are_judged_by_their_content(app, author, name, content, message):
    response = post_case_study(author, complete(app), files=[(name, content)])
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        # The refused file is stored nowhere; what was typed waits as a draft, not submitted.
        assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
        assert db.session.scalars(select(Revision.state)).all() == [RevisionState.DRAFT]


def test_a_file_one_byte_over_the_limit_is_refused(app, author):
    assert app.config["ATTACHMENT_MAX_BYTES"] == 20 * 1024 * 1024  # the default
    app.config["ATTACHMENT_MAX_BYTES"] = limit = (
        64 * 1024
    )  # configurable; small keeps the test quick
    too_big = PDF + b"0" * (limit - len(PDF) + 1)
    just_right = PDF + b"0" * (limit - len(PDF))
    refused = post_case_study(author, complete(app), files=[("big.pdf", too_big)])
    assert refused.status_code == 400 and "is larger than" in refused.get_data(as_text=True)
    accepted = post_case_study(author, complete(app), files=[("ok.pdf", just_right)])
    assert accepted.status_code == 303


def test_a_path_in_the_filename_is_dropped_and_the_real_extension_used(app, author):
    post_case_study(
        author,
        complete(app),
        files=[("../../etc/passwd.exe", PNG), ("..\\..\\win.ini", docx_bytes())],
    )
    with app.app_context():
        revision = db.session.scalars(select(Revision)).one()
        names = sorted(a.filename for a in revision.attachments)
    assert names == ["passwd.png", "win.docx"]


def test_at_most_five_attachments(app, author):
    response = post_case_study(author, complete(app), files=[(f"f{n}.pdf", PDF) for n in range(6)])
    assert response.status_code == 400
    assert "at most 5 attachments" in response.get_data(as_text=True)


def test_a_real_pdf_under_the_same_name_is_accepted(app, author):
    """The control for the refusals above: the upload path works for an honest file."""
    assert post_case_study(author, complete(app), files=[("report.pdf", PDF)]).status_code == 303


def test_a_pdf_holding_html_is_served_so_no_browser_runs_it(app, author, moderator):
    polyglot = PDF + b"<html><script>alert(document.cookie)</script></html>"
    post_case_study(author, complete(app), files=[("x.html", polyglot)])
    case_study = only_case_study(app)
    with app.app_context():
        revision = db.session.scalars(select(Revision)).one()
        attachment = revision.attachments[0]
        assert attachment.filename == "x.pdf"  # the real type's extension, whatever the name
        path = f"/case-studies/{case_study.id}/attachments/{attachment.id}"
    response = moderator.get(path)
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "name",
    ['re"port\r\nSet-Cookie: a=b.pdf', "rapport\u202egnp.pdf", "ünïcødé 报告.pdf", "<script>.pdf"],
)
def test_an_odd_filename_cannot_break_the_download_header(app, author, moderator, name):
    post_case_study(author, complete(app), files=[(name, PDF)])
    case_study = only_case_study(app)
    with app.app_context():
        attachment = db.session.scalars(select(Revision)).one().attachments[0]
        path = f"/case-studies/{case_study.id}/attachments/{attachment.id}"
    response = moderator.get(path)
    disposition = response.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert "a=b" not in response.headers.get("Set-Cookie", "")
    assert "\u202e" not in attachment.filename and "<" not in attachment.filename
    assert disposition.startswith('attachment; filename="') and disposition.count('"') == 2


def test_a_zip_bomb_dressed_as_a_word_file_is_never_unpacked(app, author):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (200 * 1024 * 1024))  # 200 MB of zeros
    assert len(buffer.getvalue()) < 1024 * 1024
    started = time.perf_counter()
    response = post_case_study(author, complete(app), files=[("bomb.docx", buffer.getvalue())])
    assert response.status_code == 303  # a well-formed package: stored as it came
    assert time.perf_counter() - started < 10  # only the central directory was read


def test_a_request_larger_than_every_allowed_file_together_is_refused(app, author):
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024  # set from the limits; small keeps it quick
    response = post_case_study(author, complete(app), files=[("big.pdf", PDF + b"0" * 300_000)])
    assert response.status_code == 413
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaseStudy)) == 0
