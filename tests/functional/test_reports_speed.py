"""The fast report pages: the dashboard's kept figures are never stale; the annual report
streams, with its session settled before the first byte."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import (
    Adoption,
    Force,
    ModerationAction,
    ModerationEvent,
    Revision,
    User,
    utcnow,
)
from portal.reports import dashboard

from ..conftest import Auth, csrf_from, make_app, signed_in
from ..writing import complete, decide, post_case_study, submitted
from .test_reports import tables_of

THIS_YEAR = utcnow().year


def figures(client) -> dict[str, str]:
    """Read the dashboard as a person does: its headline figures and its two tables."""
    html = client.get(f"/reports?year={THIS_YEAR}").get_data(as_text=True)
    found = dict(re.findall(r'<dd class="govuk-heading-xl" id="(figure-[a-z]+)">(\d+)<', html))
    tables = tables_of(html)
    found.update({f"moderation {k}": v for k, v in tables["moderation-figures"]})
    found.update({f"adoptions {k}": v for k, v in tables["adoption-figures"]})
    return found


def changed(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def test_each_write_shows_on_the_next_dashboard_load(app, author, moderator, make_user):
    essex = signed_in(app, make_user(email="lee.hart@essex.police.uk", force="Essex Police"))
    start = figures(author)  # the figures are kept from here on

    case_id, revision_id = submitted(app, author)
    after_submission = figures(author)
    assert changed(start, after_submission) == {"moderation Submissions": ("0", "1")}

    decide(moderator, revision_id, "changes", comment="Please add the number of walkers.")
    sent_back = figures(author)
    assert changed(after_submission, sent_back) == {
        "moderation Changes requested": ("0", "1"),
        "moderation Median days from submission to decision": ("–", "0.0"),
        "moderation Approved first time": ("–", "0% (0 of 1)"),
    }

    assert post_case_study(author, complete(app), case_study_id=case_id).status_code == 303
    decide(moderator, revision_id, "approve")
    published = figures(author)
    assert changed(sent_back, published) == {
        "figure-total": ("0", "1"),
        "figure-year": ("0", "1"),
        "figure-forces": ("0", "1"),
        "moderation Submissions": ("1", "2"),
        "moderation Approved": ("0", "1"),
    }

    page = essex.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    data = {"kind": "adapted", "note": "", "csrf_token": csrf_from(page)}
    assert essex.post(f"/case-studies/{case_id}/adoption", data=data).status_code == 303
    adopted = figures(author)
    assert changed(published, adopted) == {
        "figure-adoptions": ("0", "1"),
        "adoptions Adoptions recorded": ("0", "1"),
        "adoptions Adapted": ("0", "1"),
        "adoptions Forces that have taken up another force's practice": ("0", "1"),
    }

    data["kind"] = "adopted"  # the same force's record, changed
    assert essex.post(f"/case-studies/{case_id}/adoption", data=data).status_code == 303
    kind_changed = figures(author)
    assert changed(adopted, kind_changed) == {
        "adoptions Adopted": ("0", "1"),
        "adoptions Adapted": ("1", "0"),
    }

    with app.app_context():
        adoption_id = db.session.scalar(select(Adoption.id))
    page = essex.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    removed = essex.post(
        f"/case-studies/{case_id}/adoptions/{adoption_id}/remove",
        data={"csrf_token": csrf_from(page)},
    )
    assert removed.status_code == 303
    assert changed(kind_changed, figures(author)) == {
        k: (v, published[k]) for k, v in kind_changed.items() if v != published[k]
    }

    # A write no page makes (an admin's SQL, a restored backup) shows as well.
    with app.app_context():
        db.session.execute(
            update(Force).where(Force.name == "Kent Police").values(name="Kent Police Service")
        )
        db.session.commit()
    html = author.get(f"/reports?year={THIS_YEAR}").get_data(as_text=True)
    assert "Kent Police Service" in html

    page = author.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    archived = author.post(f"/case-studies/{case_id}/archive", data={"csrf_token": csrf_from(page)})
    assert archived.status_code == 303
    after_archive = figures(author)
    assert changed(published, after_archive) == {
        "figure-total": ("1", "0"),
        "figure-year": ("1", "0"),
        "figure-forces": ("1", "0"),
    }


def test_a_rejection_shows_on_the_next_dashboard_load(app, author, moderator):
    start = figures(author)
    _, revision_id = submitted(app, author)
    decide(moderator, revision_id, "reject", comment="This names a victim.")
    after = figures(author)
    assert changed(start, after) == {
        "moderation Submissions": ("0", "1"),
        "moderation Rejected": ("0", "1"),
        "moderation Approved first time": ("–", "0% (0 of 1)"),
        "moderation Median days from submission to decision": ("–", "0.0"),
    }


def test_the_figures_are_kept_while_nothing_changes(app, published):
    (case_id,) = published()
    with app.test_request_context("/reports"):
        first = dashboard.figures_html(THIS_YEAR)
        assert dashboard.figures_html(THIS_YEAR) is first  # kept, not worked out again
        assert dashboard.figures_html(THIS_YEAR - 1) is not first  # each year its own
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_id)
        )
        db.session.add(
            ModerationEvent(
                case_study_id=case_id,
                revision_id=revision_id,
                action=ModerationAction.SUBMITTED,
                at=utcnow(),
            )
        )
        db.session.commit()
        again = dashboard.figures_html(THIS_YEAR)
        assert again is not first and again != first


def test_every_process_sees_a_write_made_by_another(app, instance_path, author, moderator):
    """Two apps on one database stand for two processes (or two hosts)."""
    reader = make_app(instance_path).test_client()
    assert Auth(reader).login(author.user).status_code == 303
    before = figures(reader)
    _, revision_id = submitted(app, author)  # written through the first app
    decide(moderator, revision_id, "approve")
    assert changed(before, figures(reader))["figure-total"] == ("0", "1")


def read_streamed(client, path: str) -> str:
    response = client.get(path, buffered=False)
    assert response.status_code == 200 and response.is_streamed
    pieces = list(response.response)
    response.close()
    assert len(pieces) >= 1
    return b"".join(pieces).decode()


def test_the_annual_report_streams_the_whole_page(app, published, member):
    published()
    html = read_streamed(member, f"/reports/annual/{THIS_YEAR}")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert 'id="figure-published">1<' in html and "How case studies were checked" in html


def test_the_annual_reports_session_is_settled_before_it_streams(
    app, published, member, monkeypatch
):
    from portal.reports import pdf

    if not pdf.available():
        pytest.skip("WeasyPrint can't load Pango here (apt-get install libpangoft2-1.0-0)")
    published()
    path = f"/reports/annual/{THIS_YEAR}"
    # A session with no CSRF token yet: the streamed page makes it, and its cookie carries it.
    with member.session_transaction() as session:
        session.pop("csrf_token", None)
    token = csrf_from(read_streamed(member, path))
    monkeypatch.setattr(pdf, "MAX_CASE_STUDIES", 0)
    asked = member.post(f"{path}/pdf", data={"csrf_token": token})
    assert asked.status_code == 303  # the token was good: the form was not refused
    # The message flashed on the way back is shown once, and taken from the session.
    said = "more than the 0 the server can put in one PDF"
    assert said in read_streamed(member, path)
    assert said not in read_streamed(member, path)


def test_each_write_shows_on_the_next_annual_report_load(app, author, moderator, make_user):
    essex = signed_in(app, make_user(email="lee.hart@essex.police.uk", force="Essex Police"))
    path = f"/reports/annual/{THIS_YEAR}"
    assert 'id="figure-published">0<' in read_streamed(author, path)  # kept from here on
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "approve")
    html = read_streamed(author, path)
    assert 'id="figure-published">1<' in html and "Walk and talk for Movember" in html
    assert "HeForShe contacts" not in html  # nobody listed as a contact yet

    page = essex.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    data = {"kind": "adopted", "note": "", "csrf_token": csrf_from(page)}
    assert essex.post(f"/case-studies/{case_id}/adoption", data=data).status_code == 303
    with app.app_context():  # listed as the force's contact (as the account page does)
        db.session.execute(
            update(User)
            .where(User.email == "ali.khan@kent.police.uk")
            .values(listed_as_contact=True, contact_role="HeForShe lead")
        )
        db.session.commit()
    html = read_streamed(author, path)
    assert 'id="figure-adoptions">1<' in html and "taken up by 1 other force" in html
    assert "Ali Khan (HeForShe lead)" in html

    page = author.get(f"/case-studies/{case_id}", follow_redirects=True).get_data(as_text=True)
    author.post(f"/case-studies/{case_id}/archive", data={"csrf_token": csrf_from(page)})
    html = read_streamed(author, path)
    assert 'id="figure-published">0<' in html and "Walk and talk for Movember" not in html
