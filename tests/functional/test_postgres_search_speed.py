"""PostgreSQL search's shortcuts answer as the long way does, and never show what has left.

The shared result cache (Redis) and each worker's facet table are keyed by the index's
generation, which every index write changes in its own transaction: a publication or a
withdrawal is seen by the very next search, a rolled-back write by none.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import event, select, text

from portal.extensions import db
from portal.models import CaseStudy, User
from portal.search import SearchDocument, SearchQuery, get_backend

from ..backends import REDIS, SEARCH
from ..conftest import make_app
from ..records import case_study_line
from ..writing import complete, decide, post_case_study, submitted

pytestmark = pytest.mark.skipif(
    SEARCH != "postgres" or not REDIS,
    reason="PostgreSQL search and Redis: the PostgreSQL pass of make test",
)


@pytest.fixture
def app(instance_path):
    """The portal with its search results shared through Redis, as when scaled out."""
    app = make_app(instance_path, SEARCH_CACHE_URL=REDIS)
    _forget_cached_results()
    yield app
    _forget_cached_results()
    with app.app_context():
        db.engine.dispose()


def _forget_cached_results() -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter("portal:search:*"):
        client.delete(key)
    client.close()


def _cached_results() -> int:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        return sum(1 for _ in client.scan_iter("portal:search:*"))
    finally:
        client.close()


class Statements:
    """The SQL statements the app's engine runs meanwhile."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        event.listen(db.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_) -> None:
        event.remove(db.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args) -> None:
        self.seen.append(statement)

    def reading_entries(self) -> list[str]:
        return [s for s in self.seen if "search_entry" in s]


def test_a_repeated_search_is_answered_from_the_cache(app, published):
    published(case_study_line(title="Rugby allies in Kent"))
    with app.app_context():
        first = get_backend().query(SearchQuery(text="rugby"))
        assert first.total == 1 and _cached_results() == 1
        with Statements() as statements:
            again = get_backend().query(SearchQuery(text="rugby"))
        assert statements.reading_entries() == []  # only the generation was read
        assert again == first


def test_a_withdrawn_case_study_leaves_the_cached_library_at_once(
    app, published, member, moderator
):
    from portal.casestudies import services

    kept, archived = published(
        case_study_line(title="Rugby allies kept in the library"),
        case_study_line(title="Rugby allies archived since"),
    )
    for _ in range(2):  # the second from the cache
        page = member.get("/library?q=rugby+allies", headers={"HX-Request": "true"})
        assert "archived since" in page.get_data(as_text=True)
    assert _cached_results() >= 1
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.email == moderator.user.email))
        services.archive(actor, db.session.get(CaseStudy, archived))
    text = member.get("/library?q=rugby+allies", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "archived since" not in text and "kept in the library" in text
    with app.app_context():
        found = get_backend().query(SearchQuery(text="rugby allies"))
    assert [h.case_study_id for h in found.hits] == [kept] and found.total == 1
    assert found.facets["force"] == {"northamptonshire-police": 1}


def test_an_approval_is_found_at_once_through_the_cache(app, author, moderator):
    words = complete(app)["title"]
    with app.app_context():
        assert get_backend().query(SearchQuery(text=words)).total == 0  # now cached
    _, revision_id = submitted(app, author)
    with app.app_context():
        assert get_backend().query(SearchQuery(text=words)).total == 0  # submitted: not shown
    assert decide(moderator, revision_id, "approve").status_code == 303
    with app.app_context():
        assert get_backend().query(SearchQuery(text=words)).total == 1


def test_a_rolled_back_withdrawal_changes_nothing_and_a_committed_one_is_seen(app, published):
    (case_study_id,) = published(case_study_line(title="Menopause support for staff"))
    with app.app_context():
        backend = get_backend()
        assert backend.query(SearchQuery(text="menopause")).total == 1
        backend.write([], [case_study_id])
        assert backend.query(SearchQuery(text="menopause")).total == 0  # inside it
        db.session.rollback()
        with Statements() as statements:
            assert backend.query(SearchQuery(text="menopause")).total == 1
        assert statements.reading_entries() == []  # the generation is as it was: cached
        backend.write([], [case_study_id])
        db.session.commit()
        assert backend.query(SearchQuery(text="menopause")).total == 0


def test_other_synonyms_are_other_cached_results(app, published):
    published(case_study_line(title="Tackling violence against women and girls"))
    with app.app_context():
        backend = get_backend()
        assert backend.query(SearchQuery(text="vawg")).total == 1
        backend.set_synonyms({})
        assert backend.query(SearchQuery(text="vawg")).total == 0


def _document(case_study_id: int, **fields) -> SearchDocument:
    values = {
        "case_study_id": case_study_id,
        "revision_id": case_study_id * 10,
        "title": f"Night-time safety scheme {case_study_id}",
        "summary": "Women safe at night.",
        "body": "Street Pastors and licensees walked the town.",
        "themes": ("night-time-economy",),
        "theme_names": ("Night-time economy",),
        "partners": ("Street Pastors",),
        "force": "kent-police",
        "force_names": ("Kent Police",),
        "outcomes": "",
        "lessons": "",
        "year": 2025,
    }
    values.update(fields)
    if "published_at" not in values:
        values["published_at"] = datetime(2025, 1, case_study_id)
    return SearchDocument(**values)


def test_the_facet_table_counts_exactly_as_sql_does_and_follows_each_write(app):
    with app.app_context():
        backend = get_backend()
        backend.apply(
            [
                _document(1),
                _document(2, force="gwent-police", year=None, partners=("Unison", "unison")),
                _document(3, year=0, themes=("night-time-economy", "workplace-culture")),
                _document(4, partners=("Street Pastors", "Street Pastors"), themes=()),
                _document(5, title="Rugby allies", body="Players stood by the team."),
            ],
            [],
        )
        questions = ["night safety", "", "street pastors", "zebra", "rugby OR night", "-rugby"]

        def both_ways(words: str) -> tuple[dict, dict]:
            params: dict[str, object] = {}
            source = backend._matching(SearchQuery(text=words), params)[0]
            return backend._facets(source, dict(params)), backend._facets_in_sql(source, params)

        for words in questions:
            quick, long_way = both_ways(words)
            assert quick == long_way, words
        assert both_ways("night safety")[0]["partner"] == {
            "Street Pastors": 4,
            "Unison": 1,
            "unison": 1,
        }
        before = backend._facet_table
        backend.apply([_document(6, force="gwent-police")], [1])
        quick, long_way = both_ways("night safety")
        assert quick == long_way and quick["force"] == {"gwent-police": 2, "kent-police": 2}
        assert backend._facet_table is not before  # a new generation, a new table


def _same_table(one, other) -> None:
    assert (one.generation, one.number, one.entries) == (
        other.generation,
        other.number,
        other.entries,
    )
    for name in ("ids", "years", "recency"):
        assert getattr(one, name).tolist() == getattr(other, name).tolist(), name
    for kind in ("force", "year"):
        assert one.single[kind][0].tolist() == other.single[kind][0].tolist(), kind
        assert one.single[kind][1] == other.single[kind][1], kind
    for kind in ("theme", "partner"):
        owner, code, names = one.multi[kind]
        assert (owner.tolist(), code.tolist(), names) == (
            other.multi[kind][0].tolist(),
            other.multi[kind][1].tolist(),
            other.multi[kind][2],
        ), kind


def test_a_new_generation_reads_only_the_entries_written_since_and_equals_a_whole_read(app):
    """Each worker's facet table follows a write by reading what was written since (and the
    ids of all, for those removed), never every entry again; it is the table a fresh read
    gives, field for field. A generation not in the history is read whole."""
    from sqlalchemy import text

    with app.app_context():
        backend = get_backend()
        backend.apply([_document(i) for i in range(1, 6)], [])
        first = backend._facets_of(_generation())
        backend.apply(
            [
                _document(6, force="gwent-police", partners=("Unison",), year=None),
                _document(2, themes=("workplace-culture",), published_at=datetime(2026, 3, 1)),
            ],
            [3],
        )
        backend.apply([], [4])
        with Statements() as statements:
            followed = backend._facets_of(_generation())
        assert followed is not None and followed is not first
        assert any("e.version > " in s for s in statements.seen)
        assert not any("FROM search_entry e)" in s for s in statements.seen)  # not all read
        _same_table(followed, backend._load_facets(None))
        assert followed.ids.tolist() == [1, 2, 5, 6]

        # The history forgets the table's generation (a restored backup, or too old).
        db.session.execute(text("DELETE FROM portal_search.history"))
        db.session.commit()
        backend.apply([_document(7, force="gwent-police")], [])
        with Statements() as statements:
            whole = backend._facets_of(_generation())
        assert any("FROM search_entry e)" in s for s in statements.seen)
        _same_table(whole, backend._load_facets(None))
        assert whole.ids.tolist() == [1, 2, 5, 6, 7]


def test_searches_go_on_without_the_cache_when_redis_is_away(instance_path, published):
    away = make_app(instance_path, SEARCH_CACHE_URL="redis://127.0.0.1:9/0")  # nothing listens
    with away.app_context():
        assert get_backend().query(SearchQuery(text="misogyny")).total == 0
    (case_study_id,) = published(case_study_line())  # through the fixture's app
    with away.app_context():
        found = get_backend().query(SearchQuery(text="misogyny"))
        assert [h.case_study_id for h in found.hits] == [case_study_id]


def test_a_library_search_still_reads_the_published_case_studies_only(app, author, member):
    """A submitted case study's words find nothing, cached or not."""
    assert post_case_study(author, complete(app, title="Zebra crossing patrols")).status_code == 303
    for _ in range(2):
        text = member.get("/library?q=zebra", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "Zebra crossing patrols" not in text


def _generation() -> str:
    from sqlalchemy import text

    return str(db.session.execute(text("SELECT token FROM portal_search.generation")).scalar())


def test_pages_from_the_cached_lists_answer_exactly_as_sql_does(app):
    """A page cut from the words' cached list, filtered and counted in this process's
    table, is the page the SQL of each query gives: hits in order, total, counts, snippets."""
    import itertools
    import random

    rng = random.Random(11)
    forces = ["kent-police", "gwent-police", "merseyside-police"]
    themes = ["night-time-economy", "workplace-culture", "menopause-support"]
    partners = ["Street Pastors", "street pastors", "Unison", "Fire Service"]
    words = "rugby allies night safety mentoring pledge licensees menopause".split()
    with app.app_context():
        backend = get_backend()
        backend.apply(
            [
                _document(
                    n,
                    title=" ".join(rng.sample(words, 2)),
                    summary=" ".join(rng.choices(words, k=4)),
                    body=" ".join(rng.choices(words, k=rng.randint(3, 30))),
                    force=rng.choice(forces),
                    themes=tuple(rng.sample(themes, rng.randint(0, 2))),
                    partners=tuple(rng.sample(partners, rng.randint(0, 2))),
                    year=rng.choice([None, 0, 2023, 2024, 2025]),
                    published_at=datetime(2025, 1 + n % 12, 1 + n % 5),  # ties: by id
                )
                for n in range(1, 61)
            ],
            [],
        )
        texts = [
            "",
            "rugby",
            "night safety",
            "rugby OR pledge",
            "-rugby",
            '"rugby allies"',
            "rugby zebra night",
            "zebra",
            "menop",
            "sa",
            "%%",
            "rugby -night -safety",
            "rugger",  # held only through an everyday word (rugby)
            "rugger night",  # so most of the words, as if there were none
            "rugger -night",
        ]
        filters = [
            {},
            {"force": ("kent-police",)},
            {"force": ("kent-police", "gwent-police"), "year": (2024, 0)},
            {"theme": ("night-time-economy", "workplace-culture")},
            {"partner": ("STREET PASTORS",)},
            {"partner": ("street pastors", "unison"), "year": (2025,)},
            {"theme": ("no-such-theme",)},
        ]
        generation = _generation()
        seen = {"relaxed": False, "paged": False}
        for words_typed, ticked, sort, page in itertools.product(
            texts, filters, ["relevance", "newest"], [1, 2]
        ):
            query = SearchQuery(
                text=words_typed, sort=sort, page=page, per_page=7,
                partial=words_typed in ("menop", "sa"), **ticked,
            )  # fmt: skip
            assert backend._chosen(query, generation) is not None  # not SQL's way after all
            quick = backend._query(query, generation)
            assert quick == backend._query_in_sql(query), query
            seen.update(
                relaxed=seen["relaxed"] or quick.relaxed,
                paged=seen["paged"] or page == 2 and bool(quick.hits),
            )
            everything = SearchQuery(**{**query.__dict__, "per_page": 500, "page": 1})
            assert backend.ranked_ids(query) == [
                h.case_study_id for h in backend._query_in_sql(everything).hits
            ], query
        assert seen == {"relaxed": True, "paged": True}  # most of the words; a second page


def test_a_filter_ticked_a_page_turned_or_the_sort_changed_ranks_nothing_again(app, published):
    published(*[case_study_line(title=f"Rugby allies {n}") for n in range(12)])
    with app.app_context():
        get_backend().query(SearchQuery(text="rugby allies", per_page=5))
        for changed in (
            SearchQuery(text="rugby allies", per_page=5, page=2),
            SearchQuery(text="rugby allies", per_page=5, sort="newest"),
            SearchQuery(text="rugby allies", per_page=5, force=("northamptonshire-police",)),
        ):
            with Statements() as statements:
                found = get_backend().query(changed)
            assert found.total == 12 and len(found.hits) == 5
            ranking = [s for s in statements.reading_entries() if "array_agg" in s]
            assert ranking == []  # only the page's snippets were read


def test_a_list_brought_up_to_date_answers_as_one_ranked_anew(app, monkeypatch):
    """After writes, a worker's ranked list of some words is updated from what was written
    since (not ranked anew), and every page is still exactly SQL's: new and edited entries
    ranked in, removed ones and those no longer holding the words gone. A generation not
    in the history (a restored backup) and a list crossing the whole-document ranking's
    limit are ranked anew."""
    from sqlalchemy import text

    from portal.search import postgres_backend

    monkeypatch.setattr(postgres_backend, "RANK_WHOLE_DOCUMENTS", 8)
    # "rugger": rugby's everyday word, held as typed only once a write brings it.
    words = ["rugby allies", "night", "pledge", "safety -rugby", "zebra", "rugger"]
    queries = [
        SearchQuery(text=w, per_page=5, page=p, sort=s, **f)
        for w in words
        for p in (1, 2)
        for s in ("relevance", "newest")
        for f in ({}, {"force": ("gwent-police",)})
    ]

    def same_as_sql() -> tuple[int, int]:
        """Check every query; return how many lists were updated and how many ranked anew."""
        generation = _generation()
        seen = []
        for query in queries:
            with Statements() as statements:
                quick = backend._query(query, generation)
            assert quick == backend._query_in_sql(query), query
            seen += statements.seen
        return (
            sum("AND e.version >" in s for s in seen),
            sum("count(*) OVER ()" in s or "held" in s for s in seen),
        )

    def _dated(n: int, **fields) -> SearchDocument:
        return _document(n, published_at=datetime(2025, 1 + n % 12, 1 + n % 28), **fields)

    with app.app_context():
        backend = get_backend()
        backend.apply(
            [
                _dated(n, title=f"Rugby allies {n}" if n % 3 else f"Night pledge {n}")
                for n in range(1, 21)
            ],
            [],
        )
        assert same_as_sql()[0] == 0  # ranked anew: nothing to update yet
        backend.apply(
            [
                _dated(3, title="Rugby allies night pledge", force="gwent-police"),
                _dated(4, title="Zebra crossing"),  # no longer holds rugby allies
                _dated(30, title="Rugby allies new", body="zebra safety"),
                _dated(33, title="Rugger at the club", body="Rugger on a Sunday."),
            ],
            [5, 6],
        )
        assert same_as_sql() == (len(words), 0)  # each brought up to date, none ranked anew
        backend.apply([_dated(31, title="Pledge for safety")], [7])
        assert same_as_sql() == (len(words), 0)
        # A restored backup: the list's generation is not this history's.
        db.session.execute(text("UPDATE portal_search.history SET token = 'elsewhere'"))
        db.session.commit()
        backend.apply([_dated(32, title="Rugby allies restored")], [])
        assert same_as_sql()[1] == len(words)  # none could be updated: all ranked anew
        # More than RANK_WHOLE_DOCUMENTS now hold "pledge": ranked on the headings instead.
        backend.apply([_dated(n, title=f"Pledge watch {n}") for n in range(40, 50)], [])
        updated, anew = same_as_sql()
        assert anew == 1 and updated == len(words)  # "pledge" ranked on the other vector


def test_another_worker_brings_the_shared_list_up_to_date(app, published):
    """A worker with no list of its own takes the newest one any worker shared in Redis and
    updates it from the writes since, rather than ranking all anew."""
    from portal.search.postgres_backend import PostgresBackend

    published(*[case_study_line(title=f"Rugby allies {n}") for n in range(6)])
    query = SearchQuery(text="rugby allies", per_page=4)
    with app.app_context():
        first = get_backend()
        first.query(query)  # ranked, and shared
        published(case_study_line(title="Rugby allies joined later"))
        other = PostgresBackend()  # another worker: nothing of its own yet
        with Statements() as statements:
            found = other.query(query)
        assert found.total == 7
        assert any("AND e.version >" in s for s in statements.seen)
        assert not any("count(*) OVER ()" in s for s in statements.seen)
        assert found == other._query_in_sql(query)


def test_a_list_is_not_carried_on_when_the_words_are_read_differently(app):
    """How words are searched also depends on the indexed vocabulary (a joined compound is
    split once both halves are known): a list ranked for the old reading is never updated
    for the new one; it is ranked anew, and the page is SQL's."""
    query = SearchQuery(text="nighttime", per_page=10)

    def reading() -> tuple:
        from flask import g

        g.pop("portal_known_words", None)  # the known words are asked once a request
        params: dict[str, object] = {}
        source = backend._matching(query, params)[0]
        return source, sorted(params.items())

    with app.app_context():
        backend = get_backend()
        plain = {"theme_names": ("Safety",), "summary": "Patrols."}
        backend.apply(
            [
                _document(1, title="Nighttime patrols at night", **plain),
                _document(2, title="Evening patrols", body="Out at night time.", **plain),
            ],
            [],
        )
        before = reading()
        first = backend._query(query, _generation())
        assert first == backend._query_in_sql(query)
        backend.apply([_document(3, title="Time for change", **plain)], [])  # "time" known
        assert reading() != before  # the premise: "nighttime" is now read another way
        with Statements() as statements:
            again = backend._query(query, _generation())
        assert not any("AND e.version >" in s for s in statements.seen)  # ranked anew
        assert again == backend._query_in_sql(query)


def test_a_search_plans_each_statement_for_its_own_values(app, published):
    # psycopg prepares a statement run five times; PostgreSQL's generic plan for
    # "version > $n" guessed a third of the entries and read the words' whole GIN postings
    # each time a list was brought up to date. A search's transaction plans for its values.
    published(case_study_line(title="Rugby allies in Kent"))
    with app.app_context():
        get_backend().query(SearchQuery(text="rugby"))
        mode = db.session.execute(text("SHOW plan_cache_mode")).scalar()
        db.session.rollback()
        after = db.session.execute(text("SHOW plan_cache_mode")).scalar()
    assert (mode, after) == ("force_custom_plan", "auto")  # SET LOCAL: the search's only


def test_a_large_import_leaves_statistics_for_the_planner(app, jsonl, monkeypatch):
    # Until autovacuum looked (up to a minute), searches over a bulk import were planned
    # blind: 10-30 times slower under load.
    from portal.casestudies import importer

    monkeypatch.setattr(importer, "ANALYZE_AFTER", 3)
    lines = [case_study_line(title=f"Rugby allies {n}") for n in range(3)]
    analysed = text(
        "SELECT relname, coalesce(extract(epoch FROM last_analyze), 0) FROM pg_stat_user_tables "
        "WHERE relname IN ('search_entry', 'revision')"
    )
    with app.app_context():
        before = dict(db.session.execute(analysed).all())
        db.session.rollback()
        importer.import_case_studies(jsonl(lines))
        db.session.rollback()  # statistics views are read once a transaction
        after = dict(db.session.execute(analysed).all())
    assert after.keys() == {"search_entry", "revision"}
    assert all(after[table] > before[table] for table in after), (before, after)
