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


def test_a_misspelling_that_finds_nothing_shows_the_close_spelling_and_says_so(library):
    page = library.get("/library?q=menopuase").get_data(as_text=True)
    assert "Menopause café" in page and "1 case study matching <strong>menopause</strong>" in page
    assert "Showing results for <strong>menopause</strong>" in page
    typed = "/library?q=menopuase&amp;as_typed=menopuase"
    assert f'href="{typed}"' in page and "Search instead for menopuase" in page
    assert "Did you mean" not in page
    # The words as typed, exactly: nothing found, the spelling offered, and it stays so
    # through a filter ticked (the form carries it) but not for new words.
    exact = library.get(typed.replace("&amp;", "&")).get_data(as_text=True)
    assert "0 case studies matching <strong>menopuase</strong>" in exact
    assert "Showing results for" not in exact and "Did you mean" in exact
    assert '<input type="hidden" name="as_typed" value="menopuase">' in exact
    filtered = library.get(
        "/library?q=menopuase&as_typed=menopuase&force=greater-manchester-police"
    )
    assert "Showing results for" not in filtered.get_data(as_text=True)
    other = library.get("/library?q=menopuase&as_typed=menopause").get_data(as_text=True)
    assert "Showing results for <strong>menopause</strong>" in other


def test_a_spelling_is_applied_only_when_it_finds_much_more(library):
    # "rugbby" finds nothing: corrected. "rugby OR menopuase" finds the rugby one, and
    # "rugby OR menopause" only one more (not three times as many): offered, not applied.
    assert "Showing results for" not in library.get("/library?q=rugby").get_data(as_text=True)
    fixed = library.get("/library?q=rugbby").get_data(as_text=True)
    assert "Showing results for <strong>rugby</strong>" in fixed and "Rugby allies" in fixed
    little = library.get("/library?q=rugby+OR+menopuase").get_data(as_text=True)
    assert "Rugby allies" in little and "Showing results for" not in little
    assert "Did you mean" in little and ">rugby OR menopause</a>?" in little
    # A word found by its stem is no misspelling: nothing offered.
    stem = library.get("/library?q=rugbys").get_data(as_text=True)
    assert "Rugby allies" in stem and "Did you mean" not in stem


def test_a_spelling_never_comes_from_an_unpublished_case_study(library, published):
    published(
        case_study_line(title="Zebrafish welfare in custody suites", status="draft"),
        case_study_line(title="Quokka awareness for response teams", status="submitted"),
    )
    for typed in ("zebrafsh", "quoka"):
        page = library.get(f"/library?q={typed}").get_data(as_text=True)
        assert "Showing results for" not in page and "Did you mean" not in page
        assert "0 case studies matching" in page


def test_a_search_being_typed_is_never_corrected(library):
    fragment = library.get("/library?q=menopuase", headers=TYPING).get_data(as_text=True)
    assert "Showing results for" not in fragment and "Keep typing" in fragment


def test_a_glossary_short_form_is_a_spelling(app, library, published):
    published(case_study_line(title="Multi-agency risk assessment conference chairs trained"))
    page = library.get("/library?q=maracc").get_data(as_text=True)
    assert "Showing results for <strong>marac</strong>" in page
    assert "Multi-agency risk assessment conference chairs trained" in page


def test_the_fragment_is_the_whole_panel_with_a_title_and_announces_the_count(library):
    response = library.get("/library?q=rugby", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment
    assert fragment.strip().startswith(
        "<title>rugby – 1 case study – Library – HeForShe Practice Library</title>"
    )
    assert '<div id="library-panel"' in fragment and 'name="theme"' in fragment  # filters too
    assert "1 case study found" in fragment and 'hx-target="#announcer"' in fragment
    assert "HX-Request" in response.headers["Vary"]


def test_the_full_page_has_no_fragment_wrappers(library):
    page = library.get("/library?q=rugby").get_data(as_text=True)
    body = page[page.index("<body") :]
    assert "<hx-partial" not in page and "<title>" not in body
    assert "case study found" not in page  # the announcement is for updates only
    assert "<title>rugby – 1 case study – Library – HeForShe Practice Library</title>" in page


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


def test_a_library_with_nothing_published_yet_answers_every_search_without_an_error(member, caplog):
    # A new deployment: the index exists and holds no documents at all.
    for query in ("misogyny", "", "mis", "misogyny&force=kent-police"):
        for _ in range(2):  # the second search reuses what the first one opened
            page = member.get(f"/library?q={query}")
            assert page.status_code == 200
    assert "No case studies" in page.get_data(as_text=True)
    assert "search query failed" not in caplog.text


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


# Search as you type, one truthful panel, and what the insights count.

TYPING = {"HX-Request": "true", "Portal-Typing": "1"}
FINISHED = {"HX-Request": "true", "Portal-New-Search": "1"}


def test_while_typing_the_last_word_is_a_beginning(library):
    response = library.get("/library?q=rug", headers=TYPING)
    fragment = response.get_data(as_text=True)
    assert "Rugby allies" in fragment and "1 case study matching" in fragment
    assert response.headers["Portal-Typing"] == "1"  # library.js keeps one history entry
    assert "Portal-Typing" in response.headers["Vary"]
    assert "begin with it" not in fragment  # nothing to explain while typing


def test_while_typing_nothing_found_is_not_no_results(library):
    fragment = library.get("/library?q=zzqx", headers=TYPING).get_data(as_text=True)
    assert "Keep typing" in fragment and "No case studies match" not in fragment
    assert "<title>zzqx – Searching – Library" in fragment


def test_a_finished_half_word_shows_the_words_it_begins_and_says_so(library):
    page = library.get("/library?q=rug").get_data(as_text=True)
    assert "Rugby allies" in page
    assert "No case studies have the word “rug”; showing words that begin with it." in page
    nothing = library.get("/library?q=zzqx").get_data(as_text=True)
    assert "No case studies match" in nothing and "0 case studies matching" in nothing


def test_a_question_missing_a_word_shows_what_matches_most_words(library):
    page = library.get("/library?q=how+did+the+rugby+allies+use+walruses").get_data(as_text=True)
    assert "Rugby allies" in page
    assert "No case studies match all your words" in page


def test_filter_counts_are_of_these_results_and_empty_options_are_left_out(library):
    page = library.get("/library?q=rugby").get_data(as_text=True)
    assert 'Women in sport <span class="portal-count">(1)</span>' in page
    assert "Menopause support" not in page  # no result of this search has it
    ticked = library.get("/library?q=rugby&theme=menopause-support").get_data(as_text=True)
    assert 'id="theme-menopause-support"' in ticked and "checked" in ticked  # can be unticked
    assert 'Menopause support <span class="portal-count">(0)</span>' in ticked


def test_checkboxes_keep_their_ids_whatever_the_counts(library):
    first = library.get("/library").get_data(as_text=True)
    second = library.get("/library?q=rugby").get_data(as_text=True)
    assert 'id="theme-women-in-sport"' in first and 'id="theme-women-in-sport"' in second
    partner = library.get("/library?partner=Saracens+Foundation").get_data(as_text=True)
    assert 'id="partner-' in partner and "Saracens Foundation" in partner


def logged(app) -> list[tuple[str, int, bool]]:
    from portal.models import SearchLog

    with app.app_context():
        rows = db.session.scalars(select(SearchLog).order_by(SearchLog.id))
        return [(r.query_text, r.results, r.opened) for r in rows]


def test_insights_count_finished_new_searches_only(app, library):
    library.get("/library?q=rug", headers=TYPING)  # still typing
    library.get("/library?q=rugby", headers=FINISHED)  # finished, new words
    library.get("/library?q=rugby&theme=women-in-sport", headers={"HX-Request": "true"})
    library.get("/library?q=rugby&page=2", headers=FINISHED)  # a later page
    assert logged(app) == [("rugby", 1, False)]


def test_insights_count_a_full_page_search_unless_it_came_from_the_same_search(app, library):
    library.get("/library?q=Menopause")  # a shared link, or the form without JavaScript
    library.get(
        "/library?q=menopause&theme=menopause-support",
        headers={"Referer": "http://localhost/library?q=menopause"},  # a filter ticked
    )
    library.get(
        "/library?q=menopause",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},  # Back
    )
    assert logged(app) == [("menopause", 1, False)]


def test_a_result_opened_from_a_search_is_counted_once(app, library):
    page = library.get("/library?q=rugby", headers=FINISHED).get_data(as_text=True)
    import re

    link = re.search(r'href="(/case-studies/\d+/[^"?]+\?search=[^"]+)"', page).group(1)
    library.get(link.replace("&amp;", "&"))
    library.get(link.replace("&amp;", "&"))
    assert logged(app) == [("rugby", 1, True)]
    plain = library.get("/library?q=rugby", headers=TYPING).get_data(as_text=True)
    assert "?search=" not in plain  # a search still being typed is not counted


def test_insights_count_what_the_words_find_whatever_the_filters(app, library):
    library.get("/library?q=rugby&theme=menopause-support", headers=FINISHED)
    library.get("/library?q=%22", headers=FINISHED)  # nothing to count in it
    library.get("/library?q=a", headers=FINISHED)
    assert logged(app) == [("rugby", 1, False)]


def test_insights_count_the_words_typed_with_what_their_spelling_finds(app, library):
    library.get("/library?q=rugbby&theme=women-in-sport", headers=FINISHED)
    library.get("/library?q=menopuase", headers=FINISHED)
    assert logged(app) == [("rugbby", 1, False), ("menopuase", 1, False)]


def test_a_short_word_or_a_word_beside_found_ones_is_offered_not_replaced(library, published):
    # A word of four letters may be a place (york is not "work"); beside words found, a word
    # the library lacks may be a name: it is corrected only one edit away.
    published(
        case_study_line(title="Work and rugby", summary="Rugby at work for the team."),
        case_study_line(title="Rugby allies at the county ground"),
        case_study_line(title="More rugby allies"),
    )
    for typed in ("york", "rugby york"):  # "work" is offered on Whoosh; never applied
        page = library.get(f"/library?q={typed}").get_data(as_text=True)
        assert "Showing results for" not in page and f"matching <strong>{typed}</strong>" in page
        assert "yoi" not in page  # a glossary short form two edits away is not offered
    page = library.get("/library?q=rugby+allise").get_data(as_text=True)  # one edit
    assert "Showing results for <strong>rugby allies</strong>" in page


def test_a_second_force_shows_what_it_would_add(library):
    page = library.get("/library?force=kent-police").get_data(as_text=True)
    assert 'Kent Police <span class="portal-count">(1)</span>' in page
    assert '(+1<span class="govuk-visually-hidden"> more</span>)' in page  # GMP, the Met


def test_themes_ticked_together_narrow_and_counts_say_what_ticking_shows(library):
    page = library.get("/library?theme=night-time-economy").get_data(as_text=True)
    assert 'Partnership working <span class="portal-count">(1)</span>' in page
    both = library.get("/library?theme=night-time-economy&theme=partnership-working")
    assert "1 case study" in both.get_data(as_text=True)


@whoosh_only  # PostgreSQL builds its entries in the database, in one process
def test_a_large_reindex_is_built_by_two_processes_and_answers_as_before(
    app, published, monkeypatch
):
    from whoosh import index

    from portal.search import sync

    published(*[case_study_line(title=f"Parallel {n} rugby allies") for n in range(30)])
    queries = [SearchQuery(text="rugby", per_page=100), SearchQuery(per_page=100)]
    with app.app_context():
        before = [[h.case_study_id for h in get_backend().query(q).hits] for q in queries]
        monkeypatch.setattr(sync, "PARALLEL_BUILD_FROM", 10)
        assert len(sync._build_parts(get_backend())) == 2
        assert sync.reindex() == 30
        backend = get_backend()
        assert len(index.open_dir(str(backend.current))._segments()) == 2  # one per process
        assert [[h.case_study_id for h in backend.query(q).hits] for q in queries] == before
        assert sync.check().clean
        monkeypatch.setattr(sync, "PARALLEL_BUILD_FROM", 31)
        assert sync._build_parts(get_backend()) == []  # too few to be worth two processes


def test_the_parts_of_a_build_read_every_published_case_study_once(app, published):
    from portal.search.documents import (
        PublishedPart,
        all_documents,
        published_count,
        split_points,
    )

    published(*[case_study_line(title=f"Part {n}") for n in range(7)])
    with app.app_context():
        everything = [d.case_study_id for d in all_documents(batch=2)]
        assert published_count() == 7
        for processes in (1, 2, 3, 8):
            parts = PublishedPart.runs(split_points(processes, 7))
            assert len(parts) == min(processes, 7)
            read = [[d.case_study_id for d in part] for part in parts]
            assert [i for ids in read for i in ids] == everything
            assert all(read)  # no part is empty
        assert split_points(2, 0) == []
    # Outside any app, as in a build process of its own: it opens the database itself.
    assert [d.case_study_id for d in parts[1]] == read[1]


def test_a_server_worker_opens_the_index_before_its_first_search(app, published, caplog):
    from portal.search import warm

    published(case_study_line(title="Warm welcome"))
    app.extensions.pop("portal_search", None)
    warm(app)  # as wsgi.py does in each server worker
    backend = app.extensions["portal_search"]
    opened = getattr(backend, "_searcher", None) or getattr(backend, "_facet_table", None)
    assert opened is not None  # the searcher (Whoosh) or the facet table (PostgreSQL)
    assert "not opened" not in caplog.text
    with app.app_context():
        assert get_backend().query(SearchQuery(text="welcome")).total == 1
