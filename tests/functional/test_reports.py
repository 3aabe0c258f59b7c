"""The force directory, force pages, the dashboard and the annual report.

The figures are checked against a generated data set whose answers this file works out on
its own, in plain Python, from the same random choices that made the rows.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    Adoption,
    AdoptionKind,
    CaseStudy,
    Evidence,
    Force,
    ModerationAction,
    ModerationEvent,
    Revision,
    RevisionState,
    Theme,
    User,
    utcnow,
)
from portal.reports import figures

from ..conftest import PASSWORD, csrf_from

THIS_YEAR = utcnow().year
YEARS = (THIS_YEAR - 2, THIS_YEAR - 1, THIS_YEAR)


@dataclass
class Spec:
    """What the generated rows hold, kept in plain Python to compute the answers from."""

    live: list[dict] = field(default_factory=list)  # force, themes, year, evidence, id
    hidden: list[dict] = field(default_factory=list)  # archived or never published
    cycles: list[tuple[int, datetime, str | None, datetime | None]] = field(default_factory=list)
    adoptions: list[tuple[int, str, AdoptionKind, datetime]] = field(default_factory=list)


def _at(rng: random.Random, year: int) -> datetime:
    return datetime(year, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23))


@pytest.fixture
def data(app) -> Spec:
    """Write 80 case studies with revisions, moderation histories and adoptions."""
    rng = random.Random(20261128)
    spec = Spec()
    with app.app_context():
        forces = db.session.scalars(select(Force).order_by(Force.id).limit(9)).all()
        themes = db.session.scalars(select(Theme).order_by(Theme.position)).all()
        for n in range(80):
            force = rng.choice(forces)
            chosen = rng.sample(themes, rng.randint(1, 3))
            kind = rng.choices(["live", "edited", "archived", "draft"], weights=[10, 2, 2, 2])[0]
            year = rng.choice(YEARS)
            evidence = rng.choice([*Evidence, None])
            published_at = _at(rng, year) if kind != "draft" else None
            case_study = CaseStudy(
                slug=f"case-{n}",
                force_id=force.id,
                first_published_at=published_at,
                archived_at=published_at + timedelta(days=30) if kind == "archived" else None,
            )
            state = {
                "live": RevisionState.PUBLISHED,
                "edited": RevisionState.PUBLISHED,
                "archived": RevisionState.ARCHIVED,
                "draft": RevisionState.DRAFT,
            }[kind]
            title = f"{kind.title()} practice no. {n} here"
            revision = Revision(
                case_study=case_study,
                number=1,
                state=state,
                title=title,
                summary=f"Summary {n}",
                evidence=evidence,
                themes=chosen,
                published_at=published_at,
                contact_name=f"Contact {n}",
                contact_email=f"contact{n}@example.police.uk",
            )
            db.session.add_all([case_study, revision])
            if kind == "edited":  # a newer version waiting: still counted once
                db.session.add(
                    Revision(
                        case_study=case_study,
                        number=2,
                        state=RevisionState.SUBMITTED,
                        title=f"Unpublished edit {n}",
                        themes=themes[:1],
                    )
                )
            db.session.flush()
            entry = {
                "id": case_study.id,
                "force": force.name,
                "force_id": force.id,
                "themes": [t.name for t in chosen],
                "year": year,
                "evidence": evidence,
                "title": title,
            }
            (spec.live if kind in ("live", "edited") else spec.hidden).append(entry)

            # One to three rounds of moderation, some crossing into the next year.
            at = _at(rng, rng.choice(YEARS)) - timedelta(days=rng.randint(0, 40))
            for _ in range(rng.randint(1, 3)):
                db.session.add(
                    ModerationEvent(
                        case_study_id=case_study.id,
                        revision_id=revision.id,
                        action=ModerationAction.SUBMITTED,
                        at=at,
                    )
                )
                if rng.random() < 0.15:  # still waiting
                    spec.cycles.append((revision.id, at, None, None))
                    break
                decided = at + timedelta(hours=rng.randint(2, 24 * 30))
                action = rng.choice(
                    ["approved", "changes_requested", "changes_requested", "rejected"]
                )
                db.session.add(
                    ModerationEvent(
                        case_study_id=case_study.id,
                        revision_id=revision.id,
                        action=ModerationAction(action),
                        at=decided,
                    )
                )
                spec.cycles.append((revision.id, at, action, decided))
                if action != "changes_requested":
                    break
                at = decided + timedelta(days=rng.randint(1, 20))

        for entry in spec.live + spec.hidden:
            for force in rng.sample(forces, rng.choice([0, 0, 1, 2, 3])):
                kind = rng.choice(list(AdoptionKind))
                at = _at(rng, rng.choice(YEARS))
                db.session.add(
                    Adoption(
                        case_study_id=entry["id"],
                        force_id=force.id,
                        kind=kind,
                        note="We did it too",
                        created_at=at,
                    )
                )
                if entry in spec.live:
                    spec.adoptions.append((entry["id"], force.name, kind, at))
        db.session.commit()
    return spec


def expected_moderation(spec: Spec, year: int):
    submissions = sum(1 for _, submitted, _, _ in spec.cycles if submitted.year == year)
    decisions = Counter(a for _, _, a, at in spec.cycles if a and at.year == year)
    waits = [
        (at - submitted).total_seconds() / 86400
        for _, submitted, a, at in spec.cycles
        if a and at.year == year
    ]
    first: dict[int, tuple[str, datetime]] = {}
    for revision_id, _, action, at in spec.cycles:
        if action and revision_id not in first:
            first[revision_id] = (action, at)
    first_in_year = [action for action, at in first.values() if at.year == year]
    return submissions, decisions, waits, first_in_year


def test_published_figures_match_the_data(app, data):
    with app.app_context():
        assert figures.total_live() == len(data.live)
        assert dict(figures.by_year()) == Counter(e["year"] for e in data.live)
        assert {f.name: n for f, n in figures.by_force()} == Counter(e["force"] for e in data.live)
        themes = Counter(t for e in data.live for t in e["themes"])
        assert {t.name: n for t, n in figures.by_theme() if n} == themes
        evidence = Counter(e["evidence"] for e in data.live)
        expected = [(level.label, evidence.get(level, 0)) for level in Evidence]
        assert figures.by_evidence() == [*expected, ("Not stated", evidence.get(None, 0))]
        for year in YEARS:
            in_year = [e for e in data.live if e["year"] == year]
            assert figures.total_live(year) == len(in_year)
            assert {f.name: n for f, n in figures.by_force(year)} == Counter(
                e["force"] for e in in_year
            )


@pytest.mark.parametrize("year", YEARS)
def test_moderation_figures_match_the_data(app, data, year):
    submissions, decisions, waits, first_in_year = expected_moderation(data, year)
    assert waits and first_in_year, "the generated data should exercise every figure"
    with app.app_context():
        result = figures.moderation(year)
    assert result.submissions == submissions
    assert {a.value: n for a, n in result.decisions.items()} == decisions
    assert result.median_days == pytest.approx(statistics.median(waits))
    assert result.first_decided == len(first_in_year)
    assert result.approved_first_time == first_in_year.count("approved")


@pytest.mark.parametrize("year", YEARS)
def test_coverage_matches_the_data(app, data, year):
    expected = defaultdict(set)
    for entry in data.live:
        if entry["year"] == year:
            for theme in entry["themes"]:
                expected[theme].add(entry["force"])
    with app.app_context():
        coverage = figures.coverage(year)
        names = {f.id: f.name for f in coverage.forces}
        got = {
            theme.name: {names[i] for i in coverage.published.get(theme.id, ())}
            for theme in coverage.themes
        }
        assert {k: v for k, v in got.items() if v} == dict(expected)
        for theme in coverage.themes:
            missing = {f.name for f in coverage.missing(theme)}
            assert missing == set(names.values()) - expected.get(theme.name, set())


def test_adoption_figures_match_the_data(app, data):
    with app.app_context():
        result = figures.adoptions()
        assert result.total == len(data.adoptions)
        assert result.by_kind == {
            kind: sum(1 for a in data.adoptions if a[2] == kind) for kind in AdoptionKind
        }
        assert result.forces_adopting == len({a[1] for a in data.adoptions})
        counts = Counter(a[0] for a in data.adoptions)
        assert [(row[0], row[3]) for row in result.most_adopted] == sorted(
            counts.items(),
            key=lambda item: (
                -item[1],
                next(e["title"] for e in data.live if e["id"] == item[0]),
            ),
        )[:10]
        # A year's adoptions are those of the case studies first published that year,
        # whenever recorded: one count for the dashboard and the annual report.
        year_of = {e["id"]: e["year"] for e in data.live}
        for year in YEARS:
            assert figures.adoptions(year).total == sum(
                1 for a in data.adoptions if year_of[a[0]] == year
            )


class Tables(HTMLParser):
    """Collect every table's rows as lists of cell texts, by the table's id."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            name = dict(attrs).get("id") or f"t{len(self.tables)}"
            self._table = self.tables.setdefault(name, [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, text):
        if self._cell is not None:
            self._cell.append(text)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def figure(html: str, figure_id: str) -> int:
    match = re.search(rf'id="{figure_id}">(\d+)<', html)
    assert match, figure_id
    return int(match.group(1))


def test_dashboard_shows_the_figures(app, data, member):
    year = YEARS[1]
    html = member.get(f"/reports?year={year}").get_data(as_text=True)
    assert figure(html, "figure-total") == len(data.live)
    assert figure(html, "figure-year") == sum(1 for e in data.live if e["year"] == year)
    year_of = {e["id"]: e["year"] for e in data.live}
    assert figure(html, "figure-adoptions") == sum(
        1 for a in data.adoptions if year_of[a[0]] == year
    )
    tables = tables_of(html)
    submissions, decisions, waits, first_in_year = expected_moderation(data, year)
    moderation = dict(tables["moderation-figures"])
    assert moderation["Submissions"] == str(submissions)
    assert moderation["Approved"] == str(decisions["approved"])
    assert moderation["Changes requested"] == str(decisions["changes_requested"])
    assert moderation["Rejected"] == str(decisions["rejected"])
    assert moderation["Median days from submission to decision"] == (
        f"{statistics.median(waits):.1f}"
    )
    approved = first_in_year.count("approved")
    assert moderation["Approved first time"].endswith(f"({approved} of {len(first_in_year)})")
    # Each chart's table holds the figures the chart draws.
    forces = Counter(e["force"] for e in data.live)
    force_rows = next(rows for rows in tables.values() if rows and rows[0][0] == "Force")
    assert {name: int(n) for name, n in force_rows[1:]} == forces
    coverage = {row[0]: int(row[1]) for row in tables["coverage-table"][1:]}
    for theme, count in coverage.items():
        assert count == len(
            {e["force"] for e in data.live if e["year"] == year and theme in e["themes"]}
        )
    assert "<svg" in html and 'role="img"' in html


def test_dashboard_ignores_an_odd_year(data, member):
    for odd in ("1999", "abc", "99999999999999999999", str(THIS_YEAR + 1)):
        response = member.get("/reports", query_string={"year": odd})
        assert response.status_code == 200
        assert f"Moderation in {THIS_YEAR}" in response.get_data(as_text=True)


def test_annual_report_holds_the_years_practice_only(app, data, member):
    year = YEARS[2]
    html = member.get(f"/reports/annual/{year}").get_data(as_text=True)
    in_year = [e for e in data.live if e["year"] == year]
    assert figure(html, "figure-published") == len(in_year)
    assert figure(html, "figure-forces") == len({e["force"] for e in in_year})
    assert figure(html, "figure-themes") == len({t for e in in_year for t in e["themes"]})
    for entry in in_year:
        assert entry["title"] in html
    for entry in data.live:
        if entry["year"] != year:
            assert entry["title"] not in html
    for entry in data.hidden:
        assert entry["title"] not in html
    assert "Unpublished edit" not in html
    # A section per force, in name order.
    sections = re.findall(r'<h3 class="govuk-heading-m" id="force-[^"]+">([^<]+)</h3>', html)
    assert sections == sorted({e["force"] for e in in_year})


def test_annual_report_for_a_year_out_of_range_is_not_found(data, member):
    for huge in ("99999999999999999999999", "3000000000"):
        assert member.get(f"/reports/annual/{huge}").status_code == 404
        assert member.get(f"/reports/annual/{huge}/pdf/1").status_code == 404
        assert member.get(f"/reports/annual/{huge}/pdf/1.pdf").status_code == 404
    assert member.get("/reports/annual/1999").status_code == 404
    assert member.get(f"/reports/annual/{THIS_YEAR + 1}").status_code == 404
    assert member.get("/reports/annual/abc").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/reports",
        f"/reports/annual/{THIS_YEAR}",
        f"/reports/annual/{THIS_YEAR}/pdf/1",
        f"/reports/annual/{THIS_YEAR}/pdf/1.pdf",
    ],
)
@pytest.mark.parametrize("public", [False, True])
def test_reports_are_for_signed_in_users(make_app_with, path, public):
    client = make_app_with(PUBLIC_LIBRARY=public).test_client()
    response = client.get(path)
    assert response.status_code == 302
    assert "/auth/login" in response.location


@pytest.fixture
def make_app_with(tmp_path, _template_instance):
    import shutil

    from ..conftest import make_app

    apps = []

    def make(**config):
        instance = tmp_path / f"instance{len(apps)}"
        shutil.copytree(_template_instance, instance, symlinks=True)
        apps.append(make_app(instance, **config))
        return apps[-1]

    yield make
    for made in apps:
        with made.app_context():
            db.engine.dispose()


def test_force_directory_lists_every_force_with_its_count(app, data, member):
    html = member.get("/forces").get_data(as_text=True)
    counts = Counter(e["force"] for e in data.live)
    rows = [row for rows in tables_of(html).values() for row in rows[1:]]
    with app.app_context():
        assert len(rows) == db.session.scalar(select(db.func.count()).select_from(Force))
    for name, _region, count, _latest in rows:
        assert int(count) == counts.get(name, 0)


def test_force_page_shows_its_practice_themes_and_years(app, data, member):
    with app.app_context():
        force = db.session.get(Force, data.live[0]["force_id"])
        slug, name = force.slug, force.name
    html = member.get(f"/forces/{slug}").get_data(as_text=True)
    mine = [e for e in data.live if e["force"] == name]
    for entry in mine[:20]:
        assert entry["title"] in html
    for entry in data.hidden:
        if entry["force"] == name:
            assert entry["title"] not in html
    tables = tables_of(html)
    years = next(rows for rows in tables.values() if rows[0][0] == "Year first published")
    assert {int(y): int(n) for y, n in years[1:]} == Counter(e["year"] for e in mine)
    for theme, count in Counter(t for e in mine for t in e["themes"]).items():
        assert f'{theme}</a> <span class="portal-muted">({count})' in html.replace("&#39;", "'")


@pytest.mark.parametrize(
    "path",
    [
        "/forces/no-such-force",
        "/forces/%00%3Cscript%3E",
        "/forces/%00/feed.atom",
        "/themes/%00/feed.atom",
        "/themes/no-such-theme/feed.atom",
    ],
)
def test_unknown_force_or_theme_is_not_found(member, path):
    assert member.get(path).status_code == 404


def opt_in(client, **data):
    token = csrf_from(client.get("/account/profile").get_data(as_text=True))
    form = {"name": "Alex Example", "csrf_token": token, **data}
    return client.post("/account/profile", data=form)


def test_colleague_opts_in_to_be_listed_as_a_contact(app, member, make_user, auth, client):
    assert "Alex Example" not in member.get("/forces/kent-police").get_data(as_text=True)
    response = opt_in(member, listed_as_contact="y", contact_role="Force HeForShe lead")
    assert response.status_code == 303
    page = member.get("/forces/kent-police").get_data(as_text=True)
    assert "Force HeForShe lead" in page and member.user.email in page
    # Another force's page doesn't list them.
    assert member.user.email not in member.get("/forces/essex-police").get_data(as_text=True)
    # Unticking takes them off.
    assert opt_in(member, contact_role="Force HeForShe lead").status_code == 303
    assert member.user.email not in member.get("/forces/kent-police").get_data(as_text=True)


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("Lead " * 30, "Your role must be 120 characters or fewer"),
        ("Lead\x00\u202e", "Remove the control characters from your role"),
    ],
)
def test_a_bad_role_is_refused_and_kept(member, role, message):
    response = opt_in(member, listed_as_contact="y", contact_role=role)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert role.strip()[:4] in html
    with member.application.app_context():
        user = db.session.scalar(select(User).where(User.email == member.user.email))
        assert not user.listed_as_contact


def test_contacts_are_hidden_from_anonymous_readers(make_app_with):
    app = make_app_with(PUBLIC_LIBRARY=True)
    with app.app_context():
        force = db.session.scalar(select(Force).where(Force.slug == "kent-police"))
        from portal.accounts import create_user
        from portal.models import Role

        email = "lead@kent.police.uk"
        user = create_user(email, "Lee Lead", force.name, Role.CONTRIBUTOR, PASSWORD)
        user.listed_as_contact = True
        db.session.commit()
    client = app.test_client()
    response = client.get("/forces/kent-police")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "lead@kent.police.uk" not in html and "Lee Lead" not in html
    assert "to see who to contact" in html
    assert client.get("/forces").status_code == 200


def test_force_pages_need_sign_in_when_the_library_is_private(client):
    for path in ("/forces", "/forces/kent-police"):
        response = client.get(path)
        assert response.status_code == 302 and "/auth/login" in response.location


def test_annual_report_downloads_as_a_pdf(data, member):
    from portal.reports import pdf

    from .test_reports_polish import made_pdf

    if not pdf.available():
        pytest.skip("WeasyPrint can't load Pango here (apt-get install libpangoft2-1.0-0)")
    page = member.get(f"/reports/annual/{YEARS[2]}").get_data(as_text=True)
    assert "Make the PDF" in page
    response = made_pdf(member, YEARS[2])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert (
        f"heforshe-progress-report-{YEARS[2]}-draft.pdf" in response.headers["Content-Disposition"]
    )
    assert response.data.rstrip().endswith(b"%%EOF") and len(response.data) > 10_000
    # The report's page now offers the file itself.
    page = member.get(f"/reports/annual/{YEARS[2]}").get_data(as_text=True)
    assert "Make the PDF" not in page and re.search(
        r"Download the PDF.*?\(\d+ pages, \d+ KB\)", page
    )
    assert member.get("/reports/annual/1999/pdf/1.pdf").status_code == 404


def test_a_report_past_the_servers_bound_says_to_print_instead(app, data, member, monkeypatch):
    """The bound is a safety net far above any year (pdf.MAX_CASE_STUDIES): lowered here."""
    from portal.jobs import pending
    from portal.reports import pdf

    if not pdf.available():
        pytest.skip("WeasyPrint can't load Pango here (apt-get install libpangoft2-1.0-0)")
    year = YEARS[2]
    monkeypatch.setattr(pdf, "MAX_CASE_STUDIES", 1)
    page = member.get(f"/reports/annual/{year}").text
    assert "Make the PDF" not in page
    assert "does not make a PDF of more than 1 case studies" in page
    response = member.post(
        f"/reports/annual/{year}/pdf", data={"csrf_token": csrf_from(page)}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "more than the 1 the server can put in one PDF" in response.text
    assert pending(app) == 0


def test_pdf_downloads_are_rate_limited_per_user(member):
    for _ in range(10):
        assert member.get("/reports/annual/1999/pdf/1.pdf").status_code == 404
    assert member.get("/reports/annual/1999/pdf/1.pdf").status_code == 429
