"""Attacks on the library's search and its insights (issue 14's review): each written as
the attack, against the real app."""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import select

from portal.core.text import clean_query
from portal.extensions import db
from portal.insights import services as insights
from portal.models import SearchLog, Synonym
from portal.search.analysis import SYNONYMS
from portal.search.words import MAX_LOOKED_UP, MAX_SPLIT, parse

from ..conftest import csrf_from


def test_one_long_word_asks_the_index_about_a_bounded_number_of_words():
    asked: list[list[str]] = []

    def known(words):
        asked.append(list(words))
        return set()

    parse("x" + "abcdefghij" * 20, SYNONYMS, known=known)  # one 201-letter word
    assert asked == []  # too long to be two joined words: nothing asked
    parse(" ".join("abcdefghijklmnopqrstuvw"[: MAX_SPLIT - 1] for _ in range(32)), SYNONYMS,
          known=known)  # fmt: skip
    assert asked and all(len(words) <= MAX_LOOKED_UP for words in asked)


def test_direction_changing_characters_never_reach_the_title():
    assert clean_query("misogyny\u202etxet") == "misogynytxet"


@pytest.mark.parametrize(
    "typed",
    [
        "0\u200d7\u200d7\u200d0\u200d0\u200d9\u200d0\u200d0",  # joiners between digits
        "07,700,900,123",
        "0\u316477\u31640090",  # blank Hangul fillers
        "0\u03017\u03017\u0301009000",  # combining accents
        "jane.doe at kent.police.uk",
        "jane_at_kent.police.uk",
        "jane%40kent.police.uk",
        "jane&#64;kent.police.uk",
    ],
)
def test_disguised_phone_numbers_and_addresses_are_not_kept(app, typed):
    with app.test_request_context("/library"):
        assert insights.record(typed, 1) is None
        assert insights.pending(typed, 1) is None


def rows(app) -> list[tuple[str, int, bool]]:
    with app.app_context():
        found = db.session.scalars(select(SearchLog).order_by(SearchLog.id))
        return [(r.query_text, r.results, r.opened) for r in found]


def test_words_finished_by_a_pause_are_kept_only_when_a_result_is_opened(app, member, published):
    from ..records import case_study_line

    published(case_study_line(title="Rugby allies for the women's team"))
    paused = {"HX-Request": "true", "Portal-Paused": "1"}
    member.get("/library?q=jane+smi", headers=paused)  # on the way to a name: never kept
    page = member.get("/library?q=rugby", headers=paused).get_data(as_text=True)
    assert rows(app) == []
    import re

    link = re.search(r'href="(/case-studies/\d+/[^"?]+\?search=[^"]+)"', page).group(1)
    member.get(link.replace("&amp;", "&"))
    assert rows(app) == [("rugby", 1, True)]


def test_one_person_cannot_flood_the_insights(app, member):
    for n in range(35):
        member.get(f"/library?q=useless+idiots+{n}", headers={"HX-Request": "true",
                   "Portal-New-Search": "1"})  # fmt: skip
    kept = len(rows(app))
    if not app.config["RATELIMIT_ENABLED"]:
        pytest.skip("rate limits are off in this configuration")
    assert kept == insights.RECORDED.amount


def test_thirty_identical_synonyms_at_once_give_no_server_error(app, live, make_user):
    admin = make_user("admin")
    session = requests.Session()
    response = session.post(live + "/auth/login", data={"email": admin.email,
        "password": admin.password,
        "csrf_token": csrf_from(session.get(live + "/auth/login").text)},
        allow_redirects=False, timeout=60)  # fmt: skip
    if "two-factor" in response.headers.get("Location", ""):
        session.post(live + "/auth/two-factor", data={"code": admin.totp(),
            "csrf_token": csrf_from(session.get(live + "/auth/two-factor").text)},
            allow_redirects=False, timeout=60)  # fmt: skip
    token = csrf_from(session.get(live + "/admin/synonyms").text)
    cookies = session.cookies.get_dict()
    barrier = threading.Barrier(30)
    statuses: list[int] = []

    def post() -> None:
        barrier.wait()
        answer = requests.post(live + "/admin/synonyms", cookies=cookies, timeout=60,
            data={"term": "ptsdx", "expansion": "post traumatic stress", "csrf_token": token},
            allow_redirects=False)  # fmt: skip
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=post) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 500 not in statuses and statuses.count(303) == 1, statuses
    with app.app_context():
        assert db.session.scalars(select(Synonym).where(Synonym.term == "ptsdx")).all()
