"""Search insights: what is kept of a search, the opened mark, retention, the admins' page."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, text

from portal.extensions import db
from portal.insights import services
from portal.models import AuditEvent, SearchLog, Synonym, utcnow

from ..conftest import Auth, csrf_from, make_app

PAGE = "/admin/search-insights"
ADD = "/admin/search-insights/synonyms"


@pytest.fixture
def admin(app, client, make_user):
    user = make_user("admin", email="chief.admin@kent.police.uk")
    assert Auth(client).login(user).status_code == 303
    return client


def rows(app) -> list[SearchLog]:
    with app.app_context():
        found = list(db.session.scalars(select(SearchLog).order_by(SearchLog.id)))
        db.session.expunge_all()
        return found


def record(app, query: str, results: int = 3) -> str | None:
    with app.app_context():
        return services.record(query, results)


def add_rows(app, *searches: tuple[str, int, bool, int]) -> None:
    """Rows as if searched `days` ago: (query, results, opened, days)."""
    with app.app_context():
        for query, results, opened, days in searches:
            db.session.add(
                SearchLog(
                    query_text=query,
                    results=results,
                    opened=opened,
                    created_at=utcnow() - timedelta(days=days),
                )
            )
        db.session.commit()


def synonyms(app) -> dict[str, str]:
    with app.app_context():
        found = db.session.execute(select(Synonym.term, Synonym.expansion))
        return {term: expansion for term, expansion in found}


def table(page: str, table_id: str) -> list[tuple[str, ...]]:
    """The rows of one table on the page: each row's header and cells, as text."""
    body = re.search(rf'<table class="govuk-table" id="{table_id}">(.*?)</table>', page, re.S)
    assert body, f"no table {table_id}"
    found = []
    for row in re.findall(r"<tbody.*?>(.*?)</tbody>", body.group(1), re.S)[0].split("</tr>"):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        if cells:
            found.append(tuple(re.sub(r"<[^>]+>", "", c).strip() for c in cells[:2]))
    return found


# What is kept of a search


def test_a_search_is_kept_normalised_with_its_result_count_and_nothing_else(app):
    token = record(app, "  Domestic\tABUSE  \u202eplan ", results=4)
    assert token
    (row,) = rows(app)
    assert (row.query_text, row.results, row.opened) == ("domestic abuse plan", 4, False)
    assert (row.created_at.minute, row.created_at.second, row.created_at.microsecond) == (0, 0, 0)
    assert abs(utcnow() - row.created_at) < timedelta(hours=1, minutes=1)
    with app.app_context():
        columns = {c.name for c in SearchLog.__table__.columns}
    assert columns == {"id", "created_at", "query_text", "results", "opened"}


@pytest.mark.parametrize(
    "query",
    [
        "jane.smith@kent.police.uk",
        "Jane＠Kent.Police.UK",
        "jane (at) kent.police.uk",
        "07700 900123",
        "+44 (0)20 7946 0958",
        "٠٧٧٠٠٩٠٠١٢٣",
        "0770\u200b0900\u200b123",
        "",
        "  \u200b ",
    ],
)
def test_emails_phone_numbers_and_empty_searches_are_not_kept(app, query):
    assert record(app, query, results=0) is None
    assert rows(app) == []


def test_result_counts_are_kept_within_range(app):
    record(app, "negative", results=-5)
    record(app, "huge", results=10**12)
    assert [(r.query_text, r.results) for r in rows(app)] == [
        ("negative", 0),
        ("huge", 2**31 - 1),
    ]


def test_nothing_is_recorded_when_the_retention_is_zero(instance_path):
    app = make_app(instance_path, SEARCH_INSIGHTS_DAYS=0)
    assert record(app, "vawg") is None
    assert rows(app) == []


def test_a_failing_write_never_breaks_the_search_and_logs_no_words(app, caplog):
    with app.app_context():
        db.session.execute(text("ALTER TABLE search_log RENAME TO search_log_away"))
        db.session.commit()
    try:
        with app.app_context(), caplog.at_level(logging.ERROR):
            assert services.record("secret operation name", 2) is None
            services.mark_opened(services._serializer().dumps(1))  # no error either
            assert db.session.scalar(select(1)) == 1  # the session is usable again
    finally:
        with app.app_context():
            db.session.execute(text("ALTER TABLE search_log_away RENAME TO search_log"))
            db.session.commit()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "could not record a search" in logged
    assert "could not mark a search as opened" in logged
    assert "secret" not in logged and "operation" not in logged


# The opened mark


def test_opening_a_result_marks_its_search_once(app, member, published):
    (case_study,) = published()
    token = record(app, "walk and talk")
    other = record(app, "movember")
    moved = member.get(f"/case-studies/{case_study}?search={token}")
    assert moved.status_code == 301 and "search=" not in moved.location
    assert [r.opened for r in rows(app)] == [True, False]
    assert member.get(f"{moved.location}?search={token}").status_code == 200  # opened again
    with app.app_context():
        services.mark_opened(token)
    assert [r.opened for r in rows(app)] == [True, False]  # still one search, opened once
    assert member.get(f"{moved.location}?search={other}").status_code == 200
    assert [r.opened for r in rows(app)] == [True, True]


def test_opening_a_result_counts_only_when_the_case_study_can_be_seen(app, member):
    token = record(app, "a draft")
    assert member.get(f"/case-studies/999?search={token}").status_code == 404
    assert [r.opened for r in rows(app)] == [False]


def forged_tokens(app) -> list[str]:
    secret = app.config["SECRET_KEY"]

    class Yesterday(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - services.TOKEN_MAX_AGE - 60

    return [
        "",
        "1",
        "not-a-token",
        "x" * 5000,
        "1.abc.def",
        URLSafeTimedSerializer("not the secret", salt=services.SALT).dumps(1),
        URLSafeTimedSerializer(secret, salt="portal.feed-link").dumps(1),  # another purpose
        URLSafeTimedSerializer(secret, salt=services.SALT, signer=Yesterday).dumps(1),  # expired
        URLSafeTimedSerializer(secret, salt=services.SALT).dumps("1"),  # not an id
        URLSafeTimedSerializer(secret, salt=services.SALT).dumps(True),
        URLSafeTimedSerializer(secret, salt=services.SALT).dumps(2**40),
        URLSafeTimedSerializer(secret, salt=services.SALT).dumps([1]),
    ]


def test_a_forged_expired_or_odd_token_changes_nothing(app, member, published):
    (case_study,) = published()
    record(app, "walk and talk")
    for token in forged_tokens(app):
        response = member.get(f"/case-studies/{case_study}", query_string={"search": token})
        assert response.status_code == 301, token
        with app.app_context():
            services.mark_opened(token)
    with app.app_context():
        services.mark_opened(None)
    assert [r.opened for r in rows(app)] == [False]


# Retention


def test_the_page_deletes_searches_older_than_the_retention(app, admin):
    add_rows(app, ("old", 1, False, 91), ("recent", 1, False, 89))
    assert admin.get(PAGE + "?days=90").status_code == 200
    assert [r.query_text for r in rows(app)] == ["recent"]


def test_recording_deletes_expired_searches_at_most_once_an_hour(app):
    add_rows(app, ("old", 1, False, 100))
    record(app, "first")
    assert [r.query_text for r in rows(app)] == ["first"]
    add_rows(app, ("older", 1, False, 100))
    record(app, "second")  # within the hour: no second DELETE
    assert [r.query_text for r in rows(app)] == ["first", "older", "second"]


def test_the_retention_is_a_setting(instance_path):
    app = make_app(instance_path, SEARCH_INSIGHTS_DAYS=10)
    add_rows(app, ("eleven days", 1, False, 11), ("nine days", 1, False, 9))
    record(app, "today")
    assert [r.query_text for r in rows(app)] == ["nine days", "today"]


def test_a_retention_out_of_range_stops_the_portal(instance_path):
    from portal.config import ConfigError

    with pytest.raises(ConfigError, match="PORTAL_SEARCH_INSIGHTS_DAYS"):
        make_app(instance_path, SEARCH_INSIGHTS_DAYS=-1)


# The page


def test_the_page_counts_the_period_chosen(app, admin):
    add_rows(
        app,
        ("vawg", 5, True, 1),
        ("vawg", 5, False, 2),
        ("vawg", 5, False, 20),
        ("nte", 0, False, 3),
        ("nte", 0, False, 50),
        ("mentoring", 8, False, 4),
        ("mentoring", 8, False, 5),
        ("menopause", 2, False, 60),
    )
    week = admin.get(PAGE + "?days=7").get_data(as_text=True)
    assert table(week, "frequent") == [("mentoring", "2"), ("vawg", "2"), ("nte", "1")]
    assert table(week, "no-results") == [("nte", "1")]
    assert table(week, "unopened") == [("mentoring", "2")]
    assert "<strong>5</strong> searches, <strong>1</strong> with no results" in week
    assert 'id="days-7" name="days" type="radio" value="7" checked' in week

    month = admin.get(PAGE + "?days=30").get_data(as_text=True)
    assert table(month, "frequent")[0] == ("vawg", "3")
    quarter = admin.get(PAGE + "?days=90").get_data(as_text=True)
    assert table(quarter, "no-results") == [("nte", "2")]
    assert ("menopause", "1") in table(quarter, "unopened")
    assert "<strong>8</strong> searches" in quarter


@pytest.mark.parametrize("days", ["", "abc", "1", "31", "-7", "1e309", "99999999999999999999"])
def test_a_period_not_offered_shows_the_last_30_days(admin, days):
    page = admin.get(PAGE, query_string={"days": days})
    assert page.status_code == 200
    assert 'id="days-30" name="days" type="radio" value="30" checked' in page.get_data(as_text=True)


def test_each_list_holds_the_top_20(app, admin):
    add_rows(app, *[(f"word{n:02}", 0, False, 1) for n in range(25) for _ in range(n % 3 + 1)])
    page = admin.get(PAGE).get_data(as_text=True)
    assert len(table(page, "frequent")) == 20
    assert len(table(page, "no-results")) == 20


def test_searches_are_shown_escaped(app, admin):
    add_rows(app, ("<script>alert(1)</script>", 0, False, 1))
    page = admin.get(PAGE).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_tables_are_labelled_regions_that_scroll_by_themselves(app, admin):
    add_rows(app, ("vawg", 0, False, 1), ("nte", 3, False, 1))
    page = admin.get(PAGE).get_data(as_text=True)
    for name in ("frequent", "no-results", "unopened"):
        assert (
            f'<div class="portal-table-wrap" role="region" aria-labelledby="{name}-heading" '
            'tabindex="0">' in page
        )
        assert f'id="{name}-heading"' in page
    assert page.count('<caption class="govuk-table__caption') == 3
    assert 'scope="col"' in page and 'scope="row"' in page


def test_the_admin_page_links_to_the_insights(admin):
    # Since issue 15 the admin pages are linked from one page, /admin (not from /admin/users).
    assert f'href="{PAGE}"' in admin.get("/admin").get_data(as_text=True)


# Who may see it


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_anonymous_visitors_are_sent_to_sign_in(client, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(PAGE, headers=headers)
    if htmx:
        assert response.status_code == 401 and "/auth/login" in response.headers["HX-Redirect"]
    else:
        assert response.status_code == 302 and "/auth/login" in response.location


@pytest.mark.parametrize("role", ["contributor", "moderator"])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_only_admins_may_see_the_page_or_add_a_synonym(app, make_user, role, htmx):
    add_rows(app, ("secretword", 0, False, 1))
    client = app.test_client()
    assert Auth(client).login(make_user(role)).status_code == 303
    token = csrf_from(client.get("/account").get_data(as_text=True))
    headers = {"HX-Request": "true", "X-CSRFToken": token} if htmx else {}
    page = client.get(PAGE, headers=headers)
    assert page.status_code == 403 and "secretword" not in page.get_data(as_text=True)
    added = client.post(
        ADD,
        data={"term": "zqx", "expansion": "z q x", "search": "zqx", "csrf_token": token},
        headers=headers,
    )
    assert added.status_code == 403
    assert "zqx" not in synonyms(app)


def test_an_admin_without_two_factor_is_sent_to_set_it_up(app, make_user):
    client = app.test_client()
    assert Auth(client).login(make_user("admin", mfa=False)).status_code == 303
    response = client.get(PAGE)
    assert response.status_code == 302 and "/account/two-factor" in response.location


# Adding a synonym from a search that found nothing


def test_an_admin_adds_a_synonym_beside_a_search_that_found_nothing(app, admin):
    add_rows(app, ("hfs", 0, False, 1))
    page = admin.get(PAGE + "?days=7").get_data(as_text=True)
    assert 'id="synonym-1-term" name="term" type="text" value="hfs"' in page
    response = admin.post(
        ADD + "?days=7",
        data={
            "term": "hfs",
            "expansion": "heforshe",
            "search": "hfs",
            "csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 303 and response.location.endswith(PAGE + "?days=7")
    assert synonyms(app)["hfs"] == "heforshe"
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event.action == "admin.synonym_added"
    shown = admin.get(response.location).get_data(as_text=True)
    assert "Added hfs. Searches use it now." in shown
    assert "Already a synonym of “heforshe”" in shown


def test_a_search_of_several_words_offers_each_as_the_short_form(app, admin):
    add_rows(app, ("vawg strategy 2024", 0, False, 1), ("cwmbrân ünïcode", 0, False, 1))
    page = admin.get(PAGE).get_data(as_text=True)
    # vawg is seeded as a synonym already, so the next word is offered first
    assert 'value="strategy"' in page and 'list="synonym-' in page
    assert re.search(r'<datalist id="synonym-\d-words">.*?"vawg".*?"strategy".*?"2024"', page)
    assert 'type="text" value=""' in page  # no word of the other search could be one


@pytest.mark.parametrize(
    ("term", "expansion", "field", "message"),
    [
        ("two words", "x y", "term", "Enter one word of 2 to 20 letters or digits"),
        ("x", "y z", "term", "Enter one word of 2 to 20 letters or digits"),
        ("vawg", "dup", "term", "vawg is already in the list"),
        ("", "y z", "term", "Enter the short form"),
        ("zqx", "", "expansion", "Enter the words it stands for"),
        ("zqx", "bell\x07", "expansion", "Enter the words it stands for, up to 200"),
    ],
)
def test_a_refused_synonym_is_shown_next_to_its_field_with_what_was_typed(
    app, admin, term, expansion, field, message
):
    add_rows(app, ("first search", 0, False, 1), ("abc def", 0, False, 1))
    token = csrf_from(admin.get(PAGE).get_data(as_text=True))
    response = admin.post(
        ADD + "?days=90",
        data={"term": term, "expansion": expansion, "search": "abc def", "csrf_token": token},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    (key,) = re.findall(r'<details class="[^"]*" id="(synonym-\d)" open>', page)
    assert key == "synonym-1"  # "abc def", the row the form was sent from, is open
    error = re.search(
        rf'<p id="{key}-{field}-error" class="govuk-error-message">(.*?)</p>', page, re.S
    )
    assert error and message in error.group(1)
    assert f'href="#{key}-{field}"' in page  # the summary leads to the field
    typed = term if field == "expansion" else expansion
    other = "expansion" if field == "term" else "term"
    if typed and "\x07" not in typed:
        assert f'id="{key}-{other}" name="{other}" type="text" value="{typed}"' in page
    assert 'id="days-90" name="days" type="radio" value="90" checked' in page
    assert synonyms(app).get(term.strip().lower()) in (None, "violence against women and girls")


def test_a_refused_synonym_for_a_search_no_longer_listed_is_still_shown(app, admin):
    token = csrf_from(admin.get(PAGE).get_data(as_text=True))
    response = admin.post(
        ADD, data={"term": "a", "expansion": "kept words", "search": "gone", "csrf_token": token}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Add a synonym for “gone”" in page
    assert 'id="synonym-new-term-error"' in page
    assert 'id="synonym-new-expansion" name="expansion" type="text" value="kept words"' in page


def test_adding_a_synonym_needs_the_csrf_token(app, admin):
    add_rows(app, ("hfs", 0, False, 1))
    response = admin.post(ADD, data={"term": "hfs", "expansion": "heforshe", "search": "hfs"})
    assert response.status_code == 400
    assert "Something was wrong with that request" in response.get_data(as_text=True)
    assert "hfs" not in synonyms(app)
    forged = admin.post(
        ADD, data={"term": "hfs", "expansion": "heforshe", "search": "hfs", "csrf_token": "x"}
    )
    assert forged.status_code == 400 and "hfs" not in synonyms(app)
