"""The command line: init-db, seed-demo, import-case-studies, create-user."""

import json

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    CaseStudy,
    Force,
    ForceAlias,
    Partner,
    Revision,
    RevisionState,
    Role,
    Theme,
    User,
)
from portal.reference import find_force

from ..conftest import make_app
from ..records import case_study_line

TABLES = (Force, ForceAlias, Theme, User, CaseStudy, Revision, Partner, AuditEvent)


def row_counts(app) -> dict[str, int]:
    with app.app_context():
        return {t.__name__: db.session.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.fixture
def empty_app(tmp_path):
    app = make_app(tmp_path / "fresh")
    yield app
    with app.app_context():
        db.engine.dispose()


def test_init_db_creates_every_force_and_theme_and_a_second_run_changes_nothing(empty_app):
    runner = empty_app.test_cli_runner()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    counts = row_counts(empty_app)
    assert counts["Force"] == 50  # 43 territorial + 5 other forces + College of Policing + NPCC
    assert counts["Theme"] == 15

    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0, second.output
    assert row_counts(empty_app) == counts


def test_init_db_creates_the_search_index(empty_app):
    empty_app.test_cli_runner().invoke(args=["init-db"])
    assert empty_app.test_client().get("/healthz").json["checks"]["search"]["ok"] is True


@pytest.mark.parametrize(
    ("typed", "official"),
    [
        ("Northants Police", "Northamptonshire Police"),
        ("the met", "Metropolitan Police Service"),
        ("GMP", "Greater Manchester Police"),
        ("psni", "Police Service of Northern Ireland"),
        ("BTP", "British Transport Police"),
        ("Avon & Somerset", "Avon and Somerset Constabulary"),
        ("POLICE SCOTLAND", "Police Scotland"),
        ("  dyfed-powys   police ", "Dyfed-Powys Police"),
        ("NPCC", "National Police Chiefs' Council"),
        ("College of Policing", "College of Policing"),
    ],
)
def test_forces_are_found_by_name_or_alias_in_any_case(app, typed, official):
    with app.app_context():
        assert find_force(typed).name == official


def test_every_territorial_force_of_england_and_wales_is_there(app):
    with app.app_context():
        territorial = db.session.scalars(
            select(Force).where(Force.nation.in_(["England", "Wales"]))
        ).all()
    assert len(territorial) == 43


def test_seed_demo_adds_accounts_and_case_studies_once_and_prints_logins(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "sam.patel@northants.police.uk / rugby kit for allies 42" in result.output
    assert "moderator" in result.output and "admin" in result.output
    counts = row_counts(app)
    assert counts["User"] == 3
    assert counts["CaseStudy"] >= 12

    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0
    assert row_counts(app) == counts
    with app.app_context():
        roles = set(db.session.scalars(select(User.role)))
        assert roles == {Role.CONTRIBUTOR, Role.MODERATOR, Role.ADMIN}
        titles = db.session.scalars(select(Revision.title)).all()
    assert any("Misogyny" in t for t in titles)
    assert not any("lorem" in t.lower() for t in titles)


def test_import_writes_every_line_with_its_themes_and_partners(app, runner, jsonl):
    path = jsonl(
        [
            case_study_line(),
            case_study_line(
                title="Rugby allies",
                force="GMP",
                themes=["women in sport"],
                partners=["Sale Sharks Foundation", "sale sharks foundation"],
                status="submitted",
                evidence="promising",
                lessons="Start early.",
            ),
            case_study_line(title="A draft", status="draft", partners=[]),
        ]
    )
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 3 case studies." in result.output
    with app.app_context():
        revisions = {r.title: r for r in db.session.scalars(select(Revision))}
        rugby = revisions["Rugby allies"]
        assert rugby.state == RevisionState.SUBMITTED
        assert rugby.case_study.force.name == "Greater Manchester Police"
        assert [t.name for t in rugby.themes] == ["Women in sport"]
        assert [p.name for p in rugby.partners] == ["Sale Sharks Foundation"]
        assert rugby.evidence.value == "promising"
        assert rugby.published_at is None
        first = revisions["Challenging Misogyny with the fire service"]
        assert first.state == RevisionState.PUBLISHED and first.published_at is not None
        assert first.case_study.first_published_at is not None
        assert revisions["A draft"].state == RevisionState.DRAFT
        audit = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "case_studies.imported")
        )
        assert json.loads(audit.detail)["count"] == 3


def test_import_reuses_partner_organisations_named_before(app, runner, jsonl):
    runner.invoke(args=["import-case-studies", str(jsonl([case_study_line()], name="a.jsonl"))])
    runner.invoke(
        args=[
            "import-case-studies",
            str(
                jsonl(
                    [case_study_line(partners=["NORTHAMPTONSHIRE FIRE AND RESCUE SERVICE"])],
                    name="b.jsonl",
                )
            ),
        ]
    )
    assert row_counts(app)["Partner"] == 1


def test_import_credits_the_author_named_by_email(app, runner, jsonl):
    runner.invoke(args=["seed-demo"])
    path = jsonl([case_study_line(author_email="Sam.Patel@northants.police.uk")])
    assert runner.invoke(args=["import-case-studies", str(path)]).exit_code == 0
    with app.app_context():
        case_study = db.session.scalars(select(CaseStudy).order_by(CaseStudy.id.desc())).first()
        assert case_study.author.email == "sam.patel@northants.police.uk"


INVALID_LINES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "each line must be a JSON object"),
    (case_study_line(title=None), "'title' is missing"),
    (case_study_line(title="   "), "'title' is empty"),
    (case_study_line(title=42), "'title' must be text"),
    (case_study_line(summary="x" * 301), "'summary' is longer than 300 characters"),
    (case_study_line(force="Gotham City Police"), "unknown force 'Gotham City Police'"),
    (case_study_line(themes=["Knitting"]), "unknown theme 'Knitting'"),
    (case_study_line(themes=[]), "'themes' must name 1 to 3 themes"),
    (case_study_line(themes="Women in sport"), "'themes' must be a list of text"),
    (
        case_study_line(
            themes=["Women in sport", "Domestic abuse", "Menopause support", "Community safety"]
        ),
        "'themes' must name 1 to 3 themes",
    ),
    (case_study_line(event_date="08/03/2025"), "'event_date' '08/03/2025' is not a date"),
    (case_study_line(event_date="2025-02-30"), "'event_date' '2025-02-30' is not a date"),
    (case_study_line(event_date="20250308"), "'event_date' '20250308' is not a date"),
    (case_study_line(contact_email="not an email"), "'contact_email' 'not an email' is not"),
    (case_study_line(status="live"), "'status' must be one of"),
    (case_study_line(evidence="great"), "'evidence' must be one of"),
    (case_study_line(author_email="nobody@kent.police.uk"), "no user has the email"),
    (case_study_line(summery="typo"), "unknown field 'summery'"),
]


@pytest.mark.parametrize(("bad", "reason"), INVALID_LINES)
def test_an_invalid_line_aborts_the_import_and_writes_nothing(app, runner, jsonl, bad, reason):
    before = row_counts(app)
    path = jsonl([case_study_line(), case_study_line(title="Second"), bad, case_study_line()])
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert result.exit_code != 0
    assert f"line 3: {reason}" in result.output
    assert "Nothing was imported." in result.output
    assert row_counts(app) == before


def test_a_thousand_line_file_with_a_bad_force_on_line_700_names_that_line(app, runner, jsonl):
    lines = [case_study_line(title=f"Case study {n}") for n in range(1, 1001)]
    lines[699] = case_study_line(force="Nowhere Constabulary")
    before = row_counts(app)
    result = runner.invoke(args=["import-case-studies", str(jsonl(lines))])
    assert result.exit_code != 0
    assert "line 700: unknown force 'Nowhere Constabulary'" in result.output
    assert row_counts(app) == before


def test_a_file_that_is_not_utf8_is_refused(app, runner, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(case_study_line()).encode() + b"\n\xff\xfe\n")
    before = row_counts(app)
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert result.exit_code != 0
    assert "not UTF-8" in result.output
    assert row_counts(app) == before


def test_blank_lines_are_skipped_and_line_numbers_stay_true(app, runner, jsonl):
    path = jsonl([case_study_line(), "", case_study_line(force="Atlantis")])
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert "line 3: unknown force 'Atlantis'" in result.output


def test_create_user_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(
        args=[
            "create-user",
            "Lead@Kent.police.uk",
            "--name",
            "Pat Lead",
            "--force",
            "kent",
            "--role",
            "admin",
        ],
        input="a long enough passphrase\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "lead@kent.police.uk"))
        assert user.role == Role.ADMIN and user.force.name == "Kent Police"
        assert user.password_hash.startswith("$argon2id$")
        assert "a long enough passphrase" not in user.password_hash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x@kent.police.uk", "--name", "X", "--force", "Gotham"], "unknown force"),
        (["not-an-email", "--name", "X", "--force", "Kent"], "is not an email address"),
        (["x@kent.police.uk", "--name", " ", "--force", "Kent"], "a name is required"),
    ],
)
def test_create_user_refuses_bad_input_and_writes_nothing(app, runner, args, message):
    before = row_counts(app)
    result = runner.invoke(args=["create-user", *args], input="a long enough passphrase\n")
    assert result.exit_code != 0
    assert message in result.output
    assert row_counts(app) == before


def test_create_user_refuses_a_short_password_and_a_duplicate_email(app, runner):
    args = ["create-user", "x@kent.police.uk", "--name", "X", "--force", "Kent"]
    assert "at least 12" in runner.invoke(args=args, input="short\n").output
    assert runner.invoke(args=args, input="a long enough passphrase\n").exit_code == 0
    assert "already exists" in runner.invoke(args=args, input="another passphrase!\n").output


HOSTILE_LINES = [
    ('{"title": ' + "9" * 5000 + "}", "not valid JSON"),
    ("[" * 100_000, "not valid JSON"),
    (
        json.dumps(case_study_line(title="Lone \ud800 surrogate")),
        "'title' contains control characters",
    ),
    (json.dumps(case_study_line(title="Null\u0000byte")), "'title' contains control characters"),
    (
        json.dumps(case_study_line(partners=["Bell\u0007"])),
        "'partners' contains control characters",
    ),
    (
        json.dumps(case_study_line(event_date="2025-W10-6")),
        "'event_date' '2025-W10-6' is not a date",
    ),
    (
        json.dumps(case_study_line(event_date="0001-01-01")),
        "'event_date' '0001-01-01' is not a date",
    ),
    (json.dumps(case_study_line(event_date="2025-3-8")), "'event_date' '2025-3-8' is not a date"),
    (json.dumps(case_study_line(contact_email="a@b.co?cc=x%40evil.example")), "'contact_email'"),
    (json.dumps(case_study_line(contact_email='"><x@y.zz')), "'contact_email'"),
    (
        json.dumps(case_study_line(title=None) | {"title": {"nested": "object"}}),
        "'title' must be text",
    ),
]


@pytest.mark.parametrize(("bad", "reason"), HOSTILE_LINES)
def test_hostile_lines_are_refused_with_their_line_number(app, runner, tmp_path, bad, reason):
    path = tmp_path / "hostile.jsonl"
    path.write_text(
        json.dumps(case_study_line()) + "\n" + bad + "\n", encoding="utf-8", errors="surrogatepass"
    )
    before = row_counts(app)
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert result.exit_code == 1
    assert f"line 2: {reason}" in result.output
    assert row_counts(app) == before


def test_a_byte_order_mark_and_windows_line_endings_are_fine(app, runner, tmp_path):
    path = tmp_path / "excel.jsonl"
    lines = [json.dumps(case_study_line(title=f"From Excel {n}")) for n in range(3)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 3 case studies." in result.output


def test_a_bad_byte_is_reported_on_its_own_line(app, runner, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = (json.dumps(case_study_line()) + "\n").encode()
    path.write_bytes(good * 3000 + b'{"title": "caf\xe9"}\n' + good)
    result = runner.invoke(args=["import-case-studies", str(path)])
    assert "line 3001: the line is not UTF-8 text" in result.output


def test_the_models_and_the_migrations_agree(runner):
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_seeded_demo_case_studies_are_published_and_on_the_home_page(app, runner, auth):
    runner.invoke(args=["seed-demo"])
    from portal.demo import DEMO_ACCOUNTS

    account = DEMO_ACCOUNTS[0]
    auth.login(
        type(
            "Account",
            (),
            {"email": account.email, "password": account.password, "totp_secret": None},
        )
    )
    home = auth.client.get("/").get_data(as_text=True)
    assert home.count('class="portal-card"') == 6
    library = auth.client.get("/library").get_data(as_text=True)
    assert "12 case studies" in library and "Challenging Misogyny" in library
    with app.app_context():
        states = set(db.session.scalars(select(Revision.state)))
    assert states == {RevisionState.PUBLISHED}


def test_the_portal_command_and_flask_app_option_both_work(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path / "cli-instance")
    bin_dir = Path(sys.executable).parent
    portal = subprocess.run(
        [bin_dir / "portal", "init-db"], env=env, capture_output=True, text=True
    )
    assert portal.returncode == 0, portal.stderr
    assert "Database ready." in portal.stdout
    flask = subprocess.run(
        [bin_dir / "flask", "--app", "portal", "import-case-studies", "--help"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert flask.returncode == 0 and "JSON Lines" in flask.stdout
