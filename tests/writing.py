"""Write, submit and decide on case studies through the real pages, as people do."""

import html
import io
import re
import zipfile

from sqlalchemy import select

from portal.extensions import db
from portal.models import CaseStudy, Revision, RevisionState, Theme

from .conftest import csrf_from

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    return buffer.getvalue()


def theme_ids(app, *names):
    with app.app_context():
        return [db.session.scalar(select(Theme.id).where(Theme.name == n)) for n in names]


def complete(app, **changes):
    """Form data for a complete case study, ready to submit."""
    data = {
        "title": "Walk and talk for Movember",
        "summary": "Officers walked 10 km a day in November and talked about men's health.",
        "body": "## What we did\n\nWe walked, we talked, we raised money.",
        "themes": theme_ids(app, "Men's health and wellbeing"),
        "partners-0": "Movember",
        "partners-1": "",
        "partners-2": "",
        "partners-3": "",
        "event_day": "1",
        "event_month": "11",
        "event_year": "2025",
        "outcomes": "230 walkers; 41 people asked for support.",
        "lessons": "Start planning in September.",
        "evidence": "worked",
        "contact_name": "Sergeant Ali Khan",
        "contact_email": "ali.khan@kent.police.uk",
        "no_personal_data": "y",
        "not_sensitive": "y",
        "permission": "y",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post_case_study(client, data, *, action="submit", case_study_id=None, files=None):
    path = f"/case-studies/{case_study_id}/edit" if case_study_id else "/case-studies/new"
    token = csrf_from(client.get(path).get_data(as_text=True))
    payload = {**data, "action": action, "csrf_token": token}
    if files:
        payload["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post(path, data=payload, content_type="multipart/form-data")


def only_case_study(app) -> CaseStudy:
    with app.app_context():
        case_study = db.session.scalars(select(CaseStudy).order_by(CaseStudy.id.desc())).first()
        db.session.expunge_all()
        return case_study


def states(app, case_study_id) -> list[RevisionState]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(Revision.state)
                .where(Revision.case_study_id == case_study_id)
                .order_by(Revision.number)
            )
        )


def seen_on(page: str) -> str:
    """The submission a review or check page shows (its hidden `seen` field), or ""."""
    match = re.search(r'name="seen" value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else ""


def decide(client, revision_id, decision, comment=""):
    """Decide as a moderator does: on the review page; an approval through its check page."""
    page = client.get(f"/moderation/{revision_id}").get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "seen": seen_on(page)}
    if decision == "approve":
        return client.post(f"/moderation/{revision_id}/approve", data={**data, "comment": comment})
    return client.post(
        f"/moderation/{revision_id}", data={**data, "decision": decision, "comment": comment}
    )


def submitted(app, author) -> tuple[int, int]:
    assert post_case_study(author, complete(app)).status_code == 303
    case_study = only_case_study(app)
    with app.app_context():
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_study.id)
        )
    return case_study.id, revision_id
