"""Attacks on the portal's resources and data: costly input, odd Unicode, limits, files."""

from __future__ import annotations

import json
import stat
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.casestudies.importer import MAX_LINE_BYTES, ImportFailed, import_case_studies
from portal.core import rules
from portal.exports.rows import inert
from portal.extensions import db
from portal.models import Partner, Revision

from ..backends import embedded_only
from ..conftest import csrf_from, make_app
from ..records import case_study_line
from ..writing import complete, decide, only_case_study, post_case_study, submitted

# Comparing versions (review finding 1)


def paragraphs(count: int, word: str) -> str:
    return "\n\n".join(
        f"Paragraph {n}: the {word} scheme ran on day {n} with allies." for n in range(count)
    )


def test_history_and_review_of_two_100_kb_versions_answer_at_once(app, author, moderator):
    body = paragraphs(1_600, "allies")
    assert len(body) > 100_000 - 12_000
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "changes", comment="More detail please.")
    assert (
        post_case_study(
            author, complete(app, body=body[: rules.BODY_MAX]), case_study_id=case_id
        ).status_code
        == 303
    )
    with app.app_context():
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_id)
        )
    decide(moderator, revision_id, "changes", comment="Again.")
    # Every line changed a little: the shape that made difflib.ndiff run for minutes.
    edited = paragraphs(1_600, "ally")[: rules.BODY_MAX]
    assert (
        post_case_study(author, complete(app, body=edited), case_study_id=case_id).status_code
        == 303
    )
    for client, path in (
        (author, f"/case-studies/{case_id}/history"),
        (moderator, f"/moderation/{revision_id}"),
    ):
        started = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert "Too large to compare line by line" in response.get_data(as_text=True)
        assert elapsed < 10, (
            f"{path} took {elapsed:.1f} s"
        )  # a backstop; bench/bounds_bench.py times it


def test_an_18_kb_body_edited_all_over_shows_the_words_that_changed(app, author, moderator):
    body = paragraphs(200, "allies")
    case_id, revision_id = submitted(app, author)
    decide(moderator, revision_id, "changes", comment="More.")
    post_case_study(author, complete(app, body=body), case_study_id=case_id)
    with app.app_context():
        revision_id = db.session.scalar(
            select(Revision.id).where(Revision.case_study_id == case_id)
        )
    decide(moderator, revision_id, "changes", comment="Again.")
    post_case_study(author, complete(app, body=paragraphs(200, "ally")), case_study_id=case_id)
    page = author.get(f"/case-studies/{case_id}/history").get_data(as_text=True)
    assert page.count('<strong class="portal-diff__word">ally</strong>') == 200


# One-line fields (review finding 6)

LINE_BREAKERS = ["\u2028", "\u2029", "\u202e", "\u202a", "\u2066", "\u2069", "\x85", "\x0b"]


@pytest.mark.parametrize("character", LINE_BREAKERS)
def test_a_title_holding_a_line_separator_or_bidi_control_is_refused(app, author, character):
    title = f"Walk and talk{character}for Movember"
    response = post_case_study(author, complete(app, title=title), action="save")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Remove the line breaks and control characters" in page
    assert title in page  # what was typed is kept
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Revision)) == 0


@pytest.mark.parametrize("character", ["\u2028", "\u202e"])
@pytest.mark.parametrize("field", ["partners-0", "contact_name"])
def test_other_one_line_fields_refuse_them_too(app, author, field, character):
    response = post_case_study(
        author, complete(app, **{field: f"Kent{character}Fire"}), action="save"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("character", ["\u2028", "\u202e"])
def test_the_importer_refuses_them_in_one_line_fields(app, jsonl, character):
    with app.app_context(), pytest.raises(ImportFailed) as failure:
        import_case_studies(jsonl([case_study_line(title=f"Walk{character}talk")]))
    assert "line 1" in str(failure.value)


@pytest.mark.parametrize("character", ["\u2028", "\u202e", "\u2066"])
def test_a_person_or_role_name_with_them_is_refused(member, character):
    page = member.get("/account/profile").get_data(as_text=True)
    response = member.post(
        "/account/profile",
        data={"name": f"Sam{character}Patel", "contact_role": "", "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 400


def test_a_subject_holding_a_line_separator_still_makes_a_message(app):
    raw = EmailMessage()
    with pytest.raises(ValueError):  # what stopped the moderators' emails before
        raw["Subject"] = "Walk\u2028Bcc: everyone@example.com"
    from portal.mail import build_message, queue_mail

    with app.test_request_context():
        row = queue_mail("x@kent.police.uk", "Walk\u2028talk\u202e\r\nBcc: a@b.c", "body")
        db.session.flush()
        message = build_message(row)
        db.session.rollback()
    assert message["Subject"] == "Walk talk Bcc: a@b.c" and "Bcc" not in message


# Documented limits (review finding 7)


def test_twenty_partners_in_a_crafted_post_are_refused(app, author):
    partners = {f"partners-{n}": f"Partner number {n}" for n in range(20)}
    response = post_case_study(author, complete(app, **partners))
    assert response.status_code == 400
    assert f"Name at most {rules.PARTNERS_MAX} partner organisations" in response.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Revision)) == 0
        assert db.session.scalar(select(func.count()).select_from(Partner)) == 0


def test_four_partners_are_accepted(app, author):
    partners = {f"partners-{n}": f"Partner number {n}" for n in range(4)}
    assert post_case_study(author, complete(app, **partners)).status_code == 303


def test_the_service_enforces_every_limit_whoever_calls_it(app, make_user):
    from portal.casestudies import services
    from portal.core.errors import FieldErrors
    from portal.models import User

    user = make_user()
    too_much = {
        "title": "x" * (rules.TITLE_MAX + 1),
        "summary": "x" * (rules.SUMMARY_MAX + 1),
        "body": "x" * (rules.BODY_MAX + 1),
        "outcomes": "x" * (rules.OUTCOMES_MAX + 1),
        "lessons": "x" * (rules.LESSONS_MAX + 1),
        "contact_name": "x" * (rules.CONTACT_NAME_MAX + 1),
        "contact_email": "not an address",
        "theme_ids": [1, 2, 3, 4],
        "partners": [f"Partner {n}" for n in range(rules.PARTNERS_MAX + 1)],
    }
    with app.test_request_context():
        author = db.session.scalar(select(User).where(User.email == user.email))
        for name, value in too_much.items():
            with pytest.raises(FieldErrors) as refused:
                services.save(author, None, rules.Content(**{name: value}))
            assert set(refused.value.errors) == {"themes" if name == "theme_ids" else name}
        assert db.session.scalar(select(func.count()).select_from(Revision)) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partners", [f"Partner {n}" for n in range(5)]),
        ("body", "x" * (rules.BODY_MAX + 1)),
        ("outcomes", "x" * (rules.OUTCOMES_MAX + 1)),
        ("lessons", "x" * (rules.LESSONS_MAX + 1)),
    ],
)
def test_the_importer_enforces_the_same_limits(app, jsonl, field, value):
    with app.app_context(), pytest.raises(ImportFailed) as failure:
        import_case_studies(jsonl([case_study_line(**{field: value})]))
    assert failure.value.errors[0][0] == 1


# Runtime files (review finding 8)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@embedded_only
def test_the_instance_folder_and_its_files_are_private(tmp_path, caplog):
    from portal.cli import init_db
    from portal.jobs import run_queued
    from portal.mail import queue_mail

    instance = tmp_path / "instance"
    instance.mkdir()
    instance.chmod(0o755)
    (instance / "notes.txt").write_text("left by an operator")
    (instance / "notes.txt").chmod(0o644)
    assert mode(instance) == 0o755  # open to everyone, as umask 022 left it
    app = make_app(instance)
    assert mode(instance) == 0o700 and mode(instance / "notes.txt") == 0o600
    assert "could be read by other users" in caplog.text
    with app.test_request_context():
        init_db()
        queue_mail("x@kent.police.uk", "Reset your password", "a link")
        db.session.commit()
        assert run_queued(app) == 1  # the worker wrote it to the outbox
        db.session.remove()
        db.engine.dispose()
    for path in instance.rglob("*"):
        wanted = 0o700 if path.is_dir() else 0o600
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}, wanted {oct(wanted)}"
    assert {p.name for p in instance.iterdir()} >= {
        "portal.db",
        "secret_key",
        "outbox",
        "search",
        "jobs.db",
    }


# Exports and imports (review finding 9)


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        " =1+1",
        "   @SUM(A1)",
        "\n=cmd|' /C calc'!A0",
        "\r\n+1",
        "\t-2",
        "\u00a0=1",
        " \n -3",
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_madeinert(cell):
    assert inert(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["plain", "A=B", "1 - 2", "name@force.police.uk"])
def test_ordinary_cells_are_left_alone(cell):
    assert inert(cell) == cell


def test_the_csv_export_says_its_charset_once(member, published):
    published()
    response = member.get("/reports/export.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    response = member.get("/reports/export.jsonl")
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"


def test_an_import_line_longer_than_the_cap_is_refused_by_number(app, tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(case_study_line()) + "\n")
        handle.write(json.dumps(case_study_line(body="x" * (MAX_LINE_BYTES + 10))) + "\n")
        handle.write(json.dumps(case_study_line(title="Third")) + "\n")
    with app.app_context(), pytest.raises(ImportFailed) as failure:
        import_case_studies(path)
    assert failure.value.errors == [(2, "the line is longer than 2 MB (one case study per line)")]


def test_an_import_of_one_endless_line_is_refused_without_reading_it_whole(app, tmp_path):
    path = tmp_path / "endless.jsonl"
    with path.open("wb") as handle:
        for _ in range(12):
            handle.write(b"x" * (1024 * 1024))
    with app.app_context(), pytest.raises(ImportFailed) as failure:
        import_case_studies(path)
    assert failure.value.errors[0][0] == 1


# Held: odd input never gives a 500 or changes data


@pytest.mark.parametrize(
    "path",
    [
        "/library?q=%00",
        "/library?q=%ED%A0%80",
        "/library?page=99999999999999999999",
        "/library?page=-1&year=abc&force=%00&theme=..%2F..",
        "/library?q=" + "a" * 5000,
        "/library?q=" + "%22" * 300,
        "/library?q=(((((((((((((((((((((((((((a",
        "/library?q=a+OR+b+OR+c+NOT+d+" * 20,
        "/forces/%00",
        "/moderation?force=%00",
        "/admin/users?q=%00",
        "/reports/export.csv?force=%00",
        "/themes/%ED%A0%80/feed.atom",
        "/case-studies/99999999999",
        "/case-studies/1/%00",
        "/reports?year=99999",
        "/reports/annual/0",
    ],
)
def test_odd_requests_are_answered_never_a_500(member, path):
    assert member.get(path).status_code < 500


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/auth/login", "email"),
        ("/auth/register", "force"),
        ("/auth/reset", "email"),
        ("/case-studies/new", "title"),
    ],
)
def test_a_nul_character_in_a_form_finds_nothing_and_breaks_nothing(app, member, path, field):
    visitor = app.test_client() if path.startswith("/auth") else member
    token = csrf_from(visitor.get(path).get_data(as_text=True))
    response = visitor.post(path, data={field: "Kent\x00Police", "csrf_token": token})
    assert response.status_code in (303, 400)  # a reset answers as for any address


def test_an_admin_moving_a_user_to_a_force_holding_nul_gets_an_error_next_to_it(app, make_user):
    from ..conftest import signed_in

    admin = signed_in(app, make_user("admin"))
    target = make_user()
    with app.app_context():
        from portal.models import User

        user_id = db.session.scalar(select(User.id).where(User.email == target.email))
    token = csrf_from(admin.get(f"/admin/users/{user_id}").get_data(as_text=True))
    response = admin.post(
        f"/admin/users/{user_id}/force", data={"force": "Kent\x00Police", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "Choose your force from the list" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    ["/auth/login", "/auth/register", "/auth/reset", "/case-studies/new", "/account/profile"],
)
@pytest.mark.parametrize(
    "body", [{"email": 5, "name": {"a": 1}}, {"email": "x@kent.police.uk", "password": "\ud800"}]
)
def test_a_json_body_is_refused_on_every_form(app, member, path, body):
    visitor = app.test_client() if path.startswith("/auth") else member
    token = csrf_from(visitor.get(path).get_data(as_text=True))
    before = audited_rows(app)
    response = visitor.post(
        path, json={**body, "csrf_token": token}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 415
    assert audited_rows(app) == before  # not even a failed sign-in was evaluated


def audited_rows(app) -> int:
    from portal.models import AuditEvent

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent))


def test_a_preview_past_the_body_limit_is_not_rendered(app, author):
    body = "|a|b|\n|-|-|\n" + "|x|y|\n" * 300_000  # 1.8 MB: a 13 MB table, 25 s to render
    started = time.perf_counter()
    response = post_case_study(author, complete(app, body=body), action="preview")
    assert time.perf_counter() - started < 5
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "<table>" not in page
    assert "characters or fewer" in page


def test_the_live_preview_is_limited_per_person(author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    statuses = [
        author.post("/case-studies/preview", data={"body": "**hi**"}, headers=headers).status_code
        for _ in range(61)
    ]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429


def test_an_import_error_never_writes_escape_codes_to_the_terminal(app, jsonl):
    with app.app_context(), pytest.raises(ImportFailed) as failure:
        import_case_studies(jsonl([{**case_study_line(), "\x1b[2Jx": "y"}]))
    assert "\x1b" not in str(failure.value) and "\\x1b" in str(failure.value)


def test_a_lone_surrogate_in_a_form_never_reaches_the_database(app, author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    response = author.post(
        "/case-studies/new",
        data=f"title=Walk%ED%A0%80talk&action=save&csrf_token={token}".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 303  # Werkzeug keeps undecodable bytes as typed
    with app.app_context():
        title = db.session.scalar(select(Revision.title))
    assert title.startswith("Walk") and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in title)


def test_a_form_larger_than_allowed_is_refused_whole(app, author):
    token = csrf_from(author.get("/case-studies/new").get_data(as_text=True))
    response = author.post(
        "/case-studies/new",
        data={
            "title": "Big",
            "body": "x" * (3 * 1024 * 1024),
            "action": "save",
            "csrf_token": token,
        },
    )
    assert response.status_code in (400, 413)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Revision)) == 0


@pytest.mark.parametrize(
    "body",
    [
        ("Allies **together** [link](https://example.org) " * 3000)[: rules.BODY_MAX],
        "> " * 2000 + "deep\n\n" + "*" * 5000 + "\n\n" + "[" * 5000 + "\n\n" + "- " * 2000 + "x",
        "|a|b|\n|-|-|\n" + "|x|y|\n" * 14_000,
    ],
    ids=["largest-body", "deeply-nested", "long-table"],
)
def test_the_largest_and_most_tangled_markdown_is_shown_in_bounded_time(app, author, body):
    response = post_case_study(author, complete(app, body=body[: rules.BODY_MAX]), action="save")
    assert response.status_code == 303
    case_study = only_case_study(app)
    started = time.perf_counter()
    assert author.get(f"/case-studies/{case_study.id}", follow_redirects=True).status_code == 200
    assert time.perf_counter() - started < 10
