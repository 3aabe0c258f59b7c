"""The library through the web: search, filters, fragments, and the index kept in step."""

import multiprocessing

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import SearchOutbox
from portal.search import SearchQuery, get_backend

from ..backends import whoosh_only
from ..records import case_study_line


@pytest.fixture
def library(member, published):
    published(
        case_study_line(
            title="Rugby allies for the women's team",
            force="Kent",
            themes=["Women in sport"],
            partners=["Saracens Foundation"],
            event_date="2024-05-01",
        ),
        case_study_line(title="Menopause café", force="GMP", themes=["Menopause support"]),
        case_study_line(
            title="Night-time economy partnership",
            force="the Met",
            themes=["Night-time economy", "Partnership working"],
        ),
    )
    return member


def test_search_finds_by_stem_and_shows_highlighted_snippets(library):
    page = library.get("/library?q=partnerships").get_data(as_text=True)
    assert "1 case study matching" in page and "Night-time economy partnership" in page


def test_facets_count_and_filter_and_applied_filters_can_be_removed(library):
    page = library.get("/library?theme=women-in-sport").get_data(as_text=True)
    assert "1 case study" in page and "Rugby allies" in page
    assert 'aria-label="Filters applied"' in page and "remove this filter" in page
    assert 'href="/library"' in page  # removing the only filter goes back to everything
    everything = library.get("/library").get_data(as_text=True)
    assert 'Menopause support <span class="portal-count">(1)</span>' in everything


def test_misspelt_queries_suggest_a_link(library):
    page = library.get("/library?q=menopuase").get_data(as_text=True)
    assert "Did you mean" in page and "/library?q=menopause" in page


def test_the_fragment_is_only_the_results_and_announces_the_count(library):
    response = library.get("/library?q=rugby", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and fragment.strip().startswith('<div id="results">')
    assert "1 case study found" in fragment and 'hx-target="#announcer"' in fragment
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize(
    "query",
    [
        "?q=title:draft",
        "?q=%22unbalanced",
        "?q=C%2B%2B+%26",
        "?q=" + "x" * 5000,
        "?force=../../etc",
        "?year=abcd&year=99999",
        "?theme=<script>",
        "?sort=drop+table",
        "?page=-1",
        "?partner=%00",
    ],
)
def test_hostile_queries_give_a_normal_page(library, query):
    response = library.get("/library" + query)
    assert response.status_code == 200
    assert "There is a problem" not in response.get_data(as_text=True)


def test_related_case_studies_show_on_the_case_study_page(app, member, published):
    ids = published(
        case_study_line(
            title="Bystander training for officers", body="Active bystander training, the 5Ds."
        ),
        case_study_line(
            title="Bystander training for staff", body="Bystander training for police staff."
        ),
        case_study_line(title="Menopause café", body="Tea and talk.", themes=["Menopause support"]),
    )
    page = member.get(f"/case-studies/{ids[0]}", follow_redirects=True).get_data(as_text=True)
    assert "Related case studies" in page and "Bystander training for staff" in page


# The index follows the database


def test_approval_and_archive_reach_the_index(app, member, published):
    (case_id,) = published(case_study_line(title="Findable"))
    with app.app_context():
        assert [
            h.case_study_id for h in get_backend().query(SearchQuery(text="findable")).hits
        ] == [case_id]


@whoosh_only  # PostgreSQL search has no outbox and no files: nothing to interrupt
def test_an_interrupted_index_update_is_repaired_by_search_sync(app, runner, jsonl):
    from portal.casestudies.importer import import_case_studies

    with app.app_context():
        import_case_studies(jsonl([case_study_line(title="Queued but not applied")]))
        # The process stops here, after the commit and before the index write.
        assert db.session.scalar(select(SearchOutbox.id)) is not None
        assert get_backend().query(SearchQuery(text="queued")).total == 0
    check = runner.invoke(args=["search-check"])
    assert check.exit_code != 0 and "missing: 1" in check.output
    sync = runner.invoke(args=["search-sync"])
    assert sync.exit_code == 0 and "Brought 1 case studies" in sync.output
    assert runner.invoke(args=["search-check"]).exit_code == 0
    with app.app_context():
        assert get_backend().query(SearchQuery(text="queued")).total == 1


def test_reindex_rebuilds_from_the_database_while_search_keeps_answering(app, runner, published):
    published(*[case_study_line(title=f"Scheme {n}") for n in range(30)])
    with app.app_context():
        before = get_backend().query(SearchQuery(text="scheme"))
    result = runner.invoke(args=["reindex"])
    assert result.exit_code == 0 and "Reindexed 30 published case studies" in result.output
    with app.app_context():
        after = get_backend().query(SearchQuery(text="scheme"))
    assert before.total == after.total == 30
    assert runner.invoke(args=["search-check"]).exit_code == 0


def _publish_in_a_process(instance: str, config: dict, worker: int, results) -> None:
    from portal import create_app
    from portal.casestudies.importer import import_case_studies
    from portal.search.sync import apply_all

    app = create_app({"INSTANCE_PATH": instance, "TESTING": True, **config})
    with app.app_context():
        for n in range(5):
            import_case_studies(
                [__import__("json").dumps(case_study_line(title=f"Worker {worker} item {n}"))]
            )
            try:
                apply_all()
            except Exception as error:  # noqa: BLE001 - reported to the test
                results.put(f"worker {worker}: {error!r}")
        db.engine.dispose()
    results.put("ok")


def test_several_processes_publishing_at_once_lose_no_index_update(app, instance_path, runner):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(
            target=_publish_in_a_process,
            args=(
                str(instance_path),
                {k: app.config[k] for k in ("DATABASE_URL", "SEARCH_BACKEND")},
                w,
                results,
            ),
        )
        for w in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    outcomes = [results.get(timeout=10) for _ in workers]
    assert outcomes == ["ok"] * 4
    runner.invoke(args=["search-sync"])  # anything a worker left queued
    check = runner.invoke(args=["search-check"])
    with app.app_context():
        from portal.search.documents import published_versions

        found = get_backend().query(SearchQuery(text="worker")).total
        indexed = get_backend().indexed_versions()
        assert found == 20, (check.output, len(indexed), len(published_versions()))
    assert runner.invoke(args=["search-check"]).exit_code == 0


@whoosh_only
def test_init_db_rebuilds_an_index_made_by_an_older_version(app, runner, instance_path, published):
    from whoosh import index
    from whoosh.fields import ID, Schema

    published(case_study_line(title="Survives the upgrade"))
    old = instance_path / "search" / "index-old"
    old.mkdir()
    index.create_in(str(old), Schema(case_study_id=ID(stored=True, unique=True)))
    current = instance_path / "search" / "current"
    current.unlink()
    current.symlink_to("index-old")
    app.extensions.pop("portal_search", None)
    assert runner.invoke(args=["init-db"]).exit_code == 0
    with app.app_context():
        assert get_backend().is_current()
        assert get_backend().query(SearchQuery(text="upgrade")).total == 1


def test_searches_keep_answering_while_reindex_runs(app, published):
    import threading

    from portal.search.sync import reindex

    published(*[case_study_line(title=f"Steady {n}") for n in range(40)])
    answers, done = [], threading.Event()

    def rebuild():
        with app.app_context():
            reindex()
            db.session.remove()
        done.set()

    worker = threading.Thread(target=rebuild)
    with app.app_context():
        worker.start()
        while not done.is_set():
            answers.append(get_backend().query(SearchQuery(text="steady")).total)
        worker.join()
        answers.append(get_backend().query(SearchQuery(text="steady")).total)
    assert answers and set(answers) == {40}


@whoosh_only  # breaks the index's files
def test_a_failing_search_answers_empty_and_logs_its_shape_not_its_words(
    app, member, published, caplog
):
    import shutil
    from pathlib import Path

    published()
    index = Path(app.config["SEARCH_INDEX_PATH"])
    for segment in index.resolve().rglob("*.seg"):  # the index's postings, gone under it
        segment.unlink()
    shutil.rmtree(index / "current", ignore_errors=True)
    with app.app_context():
        app.extensions.pop("portal_search", None)  # a fresh process would open it anew
    response = member.get(
        "/library", query_string={"q": "misogyny fire service", "force": "kent-police"}
    )
    assert response.status_code == 200
    assert "search query failed" in caplog.text
    assert "'words': 3" in caplog.text and "'force': 1" in caplog.text
    assert "misogyny" not in caplog.text
