"""Exports of the library's results: CSV and JSON Lines, streamed, private to signed-in users."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, CaseStudy, Revision, RevisionState, User

from ..backends import SERVER
from ..conftest import Auth, make_app
from ..records import case_study_line


def _library_corpus() -> list[dict]:
    """25 case studies (more than one library page) across forces, themes, years, partners."""
    forces = ["Kent", "GMP", "the Met", "Gwent Police", "Northants Police"]
    themes = [
        ["Women in sport"],
        ["Menopause support", "Workplace culture"],
        ["Night-time economy", "Partnership working"],
        ["Challenging misogyny"],
        ["Allyship and bystander action", "Challenging misogyny"],
    ]
    partners = [["Saracens Foundation"], [], ["Street Pastors", "Saracens Foundation"], [], []]
    words = ["misogyny training", "rugby allies", "menopause café", "bystander training", "walks"]
    return [
        case_study_line(
            title=f"{words[n % 5].capitalize()} scheme number {n}",
            summary=f"How a {words[(n * 3) % 5]} scheme worked, case {n}.",
            body=f"We ran {words[n % 5]} with {words[(n + 2) % 5]}." + " More." * (n % 7),
            force=forces[n % 5],
            themes=themes[(n * 2) % 5],
            partners=partners[n % 5],
            event_date=f"{2021 + n % 4}-0{1 + n % 9}-1{n % 10}",
        )
        for n in range(25)
    ]


@pytest.fixture
def library(published):
    return published(*_library_corpus())


@pytest.fixture
def moderator(client, make_user):
    user = make_user("moderator", email="mo.derator@npcc.police.uk", name="Mo Derator")
    assert Auth(client).login(user).status_code == 303
    return client


def _library_ids(client, query: str) -> list[int]:
    """Every case study the library lists for `query`, page after page, in its order."""
    found: list[int] = []
    page = 1
    while True:
        separator = "&" if query else ""
        html = client.get(f"/library?{query}{separator}page={page}").get_data(as_text=True)
        results = html[html.index('id="results"') :]
        found += [int(i) for i in re.findall(r'href="/case-studies/(\d+)/', results)]
        if 'rel="next"' not in results:
            return found
        page += 1


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _csv_rows(response) -> list[dict]:
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the accents right
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _jsonl(response) -> list[dict]:
    text = response.get_data(as_text=True)
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "q=training",
        "q=training&sort=newest",
        "q=rugby+OR+menopause",
        "q=training+-bystander",
        "q=%22rugby+allies%22",
        "theme=challenging-misogyny",
        "force=kent-police&year=2022",
        "partner=Saracens+Foundation&sort=newest",
        "q=scheme&theme=women-in-sport&theme=workplace-culture",
        "year=2023&year=2024",
        "q=nothingmatchesthisword",
    ],
)
def test_exports_hold_every_match_of_the_library_in_its_order(member, library, query):
    expected = _library_ids(member, query)
    assert len(expected) <= 25 and (query or len(expected) == 25)
    as_csv = [int(r["ID"]) for r in _csv_rows(member.get(f"/reports/export.csv?{query}"))]
    assert as_csv == expected
    titles = {r.title: r.case_study_id for r in _published_revisions(member.application)}
    as_jsonl = [titles[r["title"]] for r in _jsonl(member.get(f"/reports/export.jsonl?{query}"))]
    assert as_jsonl == expected


def test_the_page_parameter_is_ignored_the_export_holds_all_pages(member, library):
    rows = _csv_rows(member.get("/reports/export.csv?page=2"))
    assert len(rows) == 25


def _published_revisions(app) -> list[Revision]:
    with app.app_context():
        revisions = db.session.scalars(
            select(Revision).where(Revision.state == RevisionState.PUBLISHED)
        ).all()
        db.session.expunge_all()
        return revisions


def test_csv_has_spreadsheet_columns_a_link_and_a_dated_filename(app, member, published):
    (case_id,) = published(
        case_study_line(
            title="Café culture in Cwmbrân",
            themes=["Night-time economy", "Partnership working"],
            partners=["Street Pastors", "Gwent Fire"],
            evidence="promising",
            lessons="Start early.",
        )
    )
    response = member.get("/reports/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="case-studies-{_today()}.csv"'
    (row,) = _csv_rows(response)
    assert list(row) == [
        "ID",
        "Link",
        "Title",
        "Summary",
        "Force",
        "Themes",
        "Partners",
        "Event date",
        "First published",
        "Evidence of impact",
        "Outcomes",
        "Lessons learned",
        "Contact name",
    ]
    assert row["ID"] == str(case_id)
    # From PORTAL_BASE_URL, never the request's Host header.
    assert row["Link"].startswith(member.application.config["BASE_URL"] + "/case-studies/")
    assert (
        member.get(row["Link"].removeprefix(member.application.config["BASE_URL"])).status_code
        == 200
    )
    assert row["Title"] == "Café culture in Cwmbrân"
    assert row["Force"] == "Northamptonshire Police"
    assert row["Themes"] == "Night-time economy; Partnership working"
    assert row["Partners"] == "Gwent Fire; Street Pastors"
    assert row["Event date"] == "2025-03-08"
    assert row["First published"] == _today()
    assert row["Evidence of impact"] == "Promising"
    assert row["Lessons learned"] == "Start early."
    assert row["Contact name"] == "Inspector Sarah Khan"


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_made_inert(member, published):
    published(
        case_study_line(
            title='=HYPERLINK("http://evil.example","click")',
            summary="+1 more",
            outcomes="-2 days lost",
            contact_name="@SUM(A1)",
            lessons="A=B is fine in the middle",
            partners=["=cmd|' /C calc'!A0"],
        )
    )
    (row,) = _csv_rows(member.get("/reports/export.csv"))
    assert row["Title"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["Summary"] == "'+1 more"
    assert row["Outcomes"] == "'-2 days lost"
    assert row["Contact name"] == "'@SUM(A1)"
    assert row["Partners"] == "'=cmd|' /C calc'!A0"
    assert row["Lessons learned"] == "A=B is fine in the middle"
    # The JSON Lines export is data, not a spreadsheet: it keeps the text as it is.
    (record,) = _jsonl(member.get("/reports/export.jsonl"))
    assert record["title"] == '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize("path", ["/reports/export.csv", "/reports/export.jsonl?q=x"])
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/auth/login" in response.location


@pytest.mark.parametrize("path", ["/reports/export.csv", "/reports/export.jsonl"])
def test_a_public_library_still_keeps_exports_for_signed_in_users(instance_path, jsonl, path):
    from portal.casestudies.importer import import_case_studies
    from portal.search.sync import apply_all

    app = make_app(instance_path, PUBLIC_LIBRARY=True)
    with app.app_context():
        import_case_studies(jsonl([case_study_line()]))
        apply_all()
    client = app.test_client()
    library = client.get("/library")
    assert library.status_code == 200 and "Challenging Misogyny" in library.get_data(as_text=True)
    assert "/reports/export" not in library.get_data(as_text=True)  # no download links
    response = client.get(path)
    assert response.status_code == 302 and "/auth/login" in response.location


def test_contributors_get_no_contact_email_addresses(member, published):
    published(case_study_line(contact_email="sarah.khan@northants.police.uk"))
    as_csv = member.get("/reports/export.csv")
    assert "Contact email" not in _csv_rows(as_csv)[0]
    as_jsonl = member.get("/reports/export.jsonl")
    (record,) = _jsonl(as_jsonl)
    assert "contact_email" not in record and record["contact_name"] == "Inspector Sarah Khan"
    for response in (as_csv, as_jsonl):
        assert "sarah.khan@" not in response.get_data(as_text=True)


def test_moderators_get_contact_email_addresses(moderator, published):
    published(case_study_line(contact_email="sarah.khan@northants.police.uk"))
    (row,) = _csv_rows(moderator.get("/reports/export.csv"))
    assert row["Contact email"] == "sarah.khan@northants.police.uk"
    (record,) = _jsonl(moderator.get("/reports/export.jsonl"))
    assert record["contact_email"] == "sarah.khan@northants.police.uk"


def test_the_export_is_streamed_a_batch_at_a_time(app, member, published, monkeypatch):
    from portal.exports import rows

    published(*[case_study_line(title=f"Streamed {n}") for n in range(5)])
    monkeypatch.setattr(rows, "BATCH_SIZE", 2)
    for path, header_chunks in (("/reports/export.csv", 1), ("/reports/export.jsonl", 0)):
        response = member.get(path, buffered=False)
        assert response.is_streamed
        chunks = list(response.response)
        response.close()
        assert len(chunks) == header_chunks + 3  # 2 + 2 + 1 case studies
        assert b"".join(chunks).count(b"Streamed ") == 5


def test_archived_and_unpublished_case_studies_are_never_exported(
    app, member, published, make_user
):
    from portal.casestudies import services

    kept, archived, _draft, _submitted = published(
        case_study_line(title="Kept in the library"),
        case_study_line(title="Archived since"),
        case_study_line(title="Still a draft", status="draft"),
        case_study_line(title="Waiting for moderation", status="submitted"),
    )
    make_user("moderator", email="mo.derator@npcc.police.uk")
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.email == "mo.derator@npcc.police.uk"))
        # Archived in the database; the Whoosh index may not have heard yet (its outbox is
        # applied after the request): the export goes by the database.
        services.archive(actor, db.session.get(CaseStudy, archived))
    for path in ("/reports/export.csv", "/reports/export.jsonl"):
        text = member.get(path).get_data(as_text=True)
        assert "Kept in the library" in text
        assert "Archived since" not in text and "Still a draft" not in text
        assert "Waiting for moderation" not in text
    assert [int(r["ID"]) for r in _csv_rows(member.get("/reports/export.csv"))] == [kept]


def test_each_export_is_in_the_audit_log(app, moderator, library):
    moderator.get("/reports/export.csv?q=training&force=kent-police&sort=newest&page=3")
    moderator.get("/reports/export.jsonl")
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "case_studies.exported")
            .order_by(AuditEvent.id)
        ).all()
        details = [json.loads(e.detail) for e in events]
        assert all(e.actor.email == "mo.derator@npcc.police.uk" for e in events)
    assert details[0]["format"] == "csv" and details[0]["contact_email"] is True
    assert details[0]["filters"] == {"q": "training", "force": ["kent-police"], "sort": "newest"}
    assert details[1] == {"format": "jsonl", "filters": {}, "count": 25, "contact_email": True}


@pytest.mark.parametrize(
    "query",
    [
        "q=title:draft",
        "q=%22unbalanced",
        "q=C%2B%2B+%26",
        "q=" + "x" * 5000,
        "force=../../etc",
        "year=abcd&year=99999",
        "theme=<script>",
        "sort=drop+table",
        "page=-1",
        "partner=%00",
        "q=%ff%fe",
    ],
)
def test_odd_parameters_are_dropped_never_an_error(member, library, query):
    for path in ("/reports/export.csv", "/reports/export.jsonl"):
        response = member.get(f"{path}?{query}")
        assert response.status_code == 200, query
        response.get_data()


def test_the_library_offers_downloads_of_its_current_results(member, library):
    page = member.get("/library?q=training&force=kent-police&sort=newest")
    html = page.get_data(as_text=True)
    for endpoint in ("export.csv", "export.jsonl"):
        assert f'href="/reports/{endpoint}?q=training&amp;force=kent-police&amp;sort=newest' in html
    fragment = member.get("/library?q=rugby", headers={"HX-Request": "true"})
    assert 'href="/reports/export.csv?q=rugby"' in fragment.get_data(as_text=True)
    nothing = member.get("/library?q=nothingmatchesthisword").get_data(as_text=True)
    assert "/reports/export.csv" not in nothing


# Round trip: a moderator's JSON Lines export re-imports unchanged


TRICKY = [
    case_study_line(
        title="Café culture in Cwmbrân — “quotes” and ünïcödé 🚓",
        summary="Line one.\nLine two, with a tab\there.",
        body="## What we did\n\n* a list\n* with `code` and <b>html-like</b> text\n\n> quoted"
        "\u2028after a Unicode line separator",
        force="the Met",
        themes=["Night-time economy", "Partnership working", "Women in sport"],
        partners=["Street Pastors", "Saracens Foundation"],
        event_date="2019-12-31",
        outcomes="=1+1 stays as typed in JSON",
        lessons="Start early.\r\nAsk again.",
        evidence="did_not_work",
        contact_name="Sgt O'Brien-Ødegård",
        contact_email="o.brien@met.police.uk",
    ),
    case_study_line(title="No partners, no lessons, no evidence", partners=[], force="GMP"),
    case_study_line(title="Worked", evidence="worked", themes=["Menopause support"]),
]


def _snapshot(app) -> list[dict]:
    """Every field of every published case study, in id order."""
    with app.app_context():
        revisions = db.session.scalars(
            select(Revision)
            .join(CaseStudy)
            .where(Revision.state == RevisionState.PUBLISHED)
            .order_by(Revision.case_study_id)
        ).all()
        return [
            {
                "title": r.title,
                "summary": r.summary,
                "body": r.body,
                "force": r.case_study.force.name,
                "themes": [t.name for t in r.themes],
                "partners": [p.name for p in r.partners],
                "event_date": r.event_date,
                "outcomes": r.outcomes,
                "lessons": r.lessons,
                "evidence": r.evidence,
                "contact_name": r.contact_name,
                "contact_email": r.contact_email,
                "state": r.state,
                "archived": r.case_study.archived_at,
                "slug": r.case_study.slug,
            }
            for r in revisions
        ]


@pytest.fixture
def second_database():
    """A database of its own for a second instance (on the PostgreSQL pass; else SQLite's)."""
    if not SERVER:
        yield {}
        return
    from ..conftest import _drop_database, _fresh_database

    url = _fresh_database(SERVER)
    yield {"DATABASE_URL": url}
    _drop_database(SERVER, url)


def test_a_moderators_json_lines_export_reimports_unchanged(
    app, moderator, published, tmp_path, second_database
):
    from portal.cli import init_db

    published(*TRICKY, *_library_corpus())
    exported = moderator.get("/reports/export.jsonl")
    assert exported.status_code == 200
    assert "\u2028".encode() not in exported.get_data()  # escaped: one case study, one line
    path = tmp_path / "export.jsonl"
    path.write_bytes(exported.get_data())

    other = make_app(tmp_path / "other", **second_database)
    with other.app_context():
        init_db()
    result = other.test_cli_runner().invoke(args=["import-case-studies", str(path)])
    assert result.exit_code == 0, result.output
    assert f"Imported {len(TRICKY) + 25} case studies." in result.output

    original = _snapshot(app)
    copied = _snapshot(other)
    # The export lists the newest first; the import numbers them in the file's order.
    by_title = {c["title"]: c for c in copied}
    assert len(by_title) == len(copied) == len(original)
    for case_study in original:
        assert by_title[case_study["title"]] == case_study


def test_exports_are_rate_limited_per_user(member, published):
    published(case_study_line())
    for n in range(10):
        path = "/reports/export.csv" if n % 2 else "/reports/export.jsonl"
        assert member.get(path).status_code == 200
    assert member.get("/reports/export.csv").status_code == 429
