"""The search contract: every backend must pass these (Whoosh, and PostgreSQL full-text
search on the PostgreSQL pass of `make test`)."""

from __future__ import annotations

from datetime import datetime

import pytest

from portal.search import SearchDocument, SearchQuery
from portal.search.whoosh_backend import WhooshBackend

from ..backends import SERVER

BACKENDS = ["whoosh", "postgres"]


def make(backend_name: str, request, tmp_path):
    if backend_name == "whoosh":
        backend = WhooshBackend(str(tmp_path / "search"))
        backend.ensure_index()
        return backend
    if backend_name == "postgres":
        if not SERVER:
            pytest.skip("PostgreSQL search: runs on the PostgreSQL pass of make test")
        from portal.search.postgres_backend import PostgresBackend

        app = request.getfixturevalue("app")
        context = app.app_context()
        context.push()
        request.addfinalizer(context.pop)
        return PostgresBackend()
    raise AssertionError(backend_name)


def doc(
    case_study_id: int,
    title: str,
    body: str = "",
    *,
    summary: str = "",
    themes=("workplace-culture",),
    theme_names=("Workplace culture",),
    partners=(),
    force="kent-police",
    force_names=("Kent Police", "Kent"),
    outcomes="",
    lessons="",
    year=2025,
    day=1,
    revision_id: int | None = None,
) -> SearchDocument:
    return SearchDocument(
        case_study_id=case_study_id,
        revision_id=revision_id or case_study_id * 10,
        title=title,
        summary=summary or title,
        body=body,
        themes=tuple(themes),
        theme_names=tuple(theme_names),
        partners=tuple(partners),
        force=force,
        force_names=tuple(force_names),
        outcomes=outcomes,
        lessons=lessons,
        year=year,
        published_at=datetime(2026, 1, day),
    )


CORPUS = [
    doc(
        1,
        "Challenging misogyny with the fire service",
        "A joint evening on sexism at work.",
        themes=("challenging-misogyny",),
        theme_names=("Challenging misogyny",),
        partners=("Kent Fire and Rescue Service",),
        day=1,
    ),
    doc(
        2,
        "Mentoring for new officers",
        "Senior officers mentored probationers; mentors met monthly.",
        force="greater-manchester-police",
        force_names=("Greater Manchester Police", "GMP"),
        year=2024,
        day=2,
    ),
    doc(
        3,
        "Safer nights in Cwmbrân",
        "Keeping women safe in the night-time economy with street pastors.",
        force="gwent-police",
        force_names=("Gwent Police",),
        themes=("night-time-economy",),
        theme_names=("Night-time economy",),
        partners=("Street Pastors",),
        day=3,
    ),
    doc(
        4,
        "Bystander training",
        "Violence against women and girls: officers learnt the 5Ds of bystander action.",
        themes=("allyship-and-bystander-action",),
        theme_names=("Allyship and bystander action",),
        day=4,
    ),
    doc(
        5,
        "Movember walks",
        "Men's health walks with a nighttime finish. Misogyny came up once.",
        day=5,
    ),
    doc(
        6,
        "Organisation-wide menopause café",
        "A monthly menopause café for all staff.",
        themes=("menopause-support",),
        theme_names=("Menopause support",),
        day=6,
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    backend = make(request.param, request, tmp_path)
    backend.apply(CORPUS, [])
    return backend


def ids(backend, text="", **filters) -> list[int]:
    return [h.case_study_id for h in backend.query(SearchQuery(text=text, **filters)).hits]


def test_title_matches_rank_above_body_matches(backend):
    found = ids(backend, "misogyny")
    assert found[0] == 1 and set(found) == {1, 5}


@pytest.mark.parametrize("word", ["mentor", "mentoring", "mentored", "mentors"])
def test_stemming_finds_every_form_of_a_word(backend, word):
    assert 2 in ids(backend, word)


def test_accents_are_folded_both_ways(backend):
    assert ids(backend, "Cwmbran") == [3]
    assert ids(backend, "cwmbrân") == [3]


@pytest.mark.parametrize("written", ["night-time", "nighttime", "night time"])
def test_compounds_match_however_they_are_written(backend, written):
    found = set(ids(backend, written))
    assert 3 in found
    if written != "night time":
        assert 5 in found  # "nighttime" in the Movember body


def test_american_spellings_find_british_ones(backend):
    assert 6 in ids(backend, "organization")


def test_an_acronym_finds_its_words(backend):
    assert 4 in ids(backend, "VAWG")
    assert 3 in ids(backend, "NTE")


def test_phrases_exclusion_and_or(backend):
    assert ids(backend, '"street pastors"') == [3]
    assert ids(backend, '"women keeping"') == []
    assert set(ids(backend, "misogyny -Movember")) == {1}
    assert set(ids(backend, "menopause OR bystander")) == {4, 6}


def test_filters_and_facet_counts(backend):
    everything = backend.query(SearchQuery())
    assert everything.total == 6
    assert everything.facets["force"]["kent-police"] == 4
    assert everything.facets["year"] == {"2025": 5, "2024": 1}
    assert ids(backend, force=("gwent-police",)) == [3]
    assert ids(backend, theme=("menopause-support",)) == [6]
    assert ids(backend, year=(2024,)) == [2]
    assert ids(backend, partner=("street pastors",)) == [3]
    filtered = backend.query(SearchQuery(text="officers", force=("kent-police",)))
    assert [h.case_study_id for h in filtered.hits] == [4] and filtered.facets["force"] == {
        "kent-police": 1
    }


def test_newest_first_and_paging(backend):
    assert ids(backend, sort="newest") == [6, 5, 4, 3, 2, 1]
    assert ids(backend, sort="newest", page=2, per_page=4) == [2, 1]


def test_snippets_are_escaped_and_mark_the_match(backend):
    backend.apply(
        [doc(7, "Plain title", "Tags like <script>alert(1)</script> near a misogyny mention.")], []
    )
    hit = next(h for h in backend.query(SearchQuery(text="misogyny")).hits if h.case_study_id == 7)
    assert "<script>" not in hit.snippet and "&lt;script&gt;" in hit.snippet
    assert "<mark>misogyny</mark>" in hit.snippet.lower()


@pytest.mark.parametrize(("typed", "meant"), [("misogny", "misogyny"), ("movmber", "movember")])
def test_misspellings_get_a_suggestion(backend, typed, meant):
    assert backend.query(SearchQuery(text=typed)).suggestion == meant


def test_the_glossary_both_ways(backend):
    from portal.reference import glossary

    backend.set_synonyms({term: expansion for term, (expansion, _) in glossary().items()})
    backend.apply(
        [
            doc(11, "Risk meetings", "Each multi-agency risk assessment conference met."),
            doc(12, "MARAC chairs trained", "Our MARAC now meets weekly."),
            doc(13, "Detective constables mentored", "New detective constables paired up."),
            doc(14, "Benefits advice for victims", "Help to claim personal independence payment."),
        ],
        [],
    )
    assert set(ids(backend, "MARAC")) >= {11, 12}
    assert set(ids(backend, "multi agency risk assessment conference")) >= {11, 12}
    assert 13 in ids(backend, "DCs")  # a plural form
    assert 14 in ids(backend, "PIP")  # one of its two meanings


def test_everyday_words_widen_a_search_but_never_outrank_the_words_typed(backend):
    # An everyday word finds the other words people use for the same thing; a case study
    # holding the words only that way ranks below every one holding them as typed, however
    # often it says them (its title says them, too).
    backend.apply(
        [
            doc(21, "Children children children", "Children at football. Children again."),
            doc(22, "A holiday club", "Kids from the estate played football."),
            doc(23, "Youth work", "Nippers and kids met at the youth club."),
            doc(24, "A fun run", "Runners of every age."),
        ],
        [],
    )
    found = ids(backend, "kids")
    assert set(found[:2]) == {22, 23} and found[2:] == [21]  # the everyday word last
    assert ids(backend, "kids football") == [22, 21]
    assert ids(backend, "children")[:1] == [21] and set(ids(backend, "children")) == {21, 22, 23}
    # Most of the words: the clauses held as typed come first, whatever the score.
    relaxed = backend.query(SearchQuery(text="kids football zqxv"))
    assert relaxed.relaxed and [h.case_study_id for h in relaxed.hits][:2] == [22, 21]
    # Excluding a word excludes what was typed, and in quotes only the words typed count.
    assert 21 in ids(backend, "football -kids") and 22 not in ids(backend, "football -kids")
    assert set(ids(backend, '"kids"')) == {22, 23}
    # Ticking a filter keeps the order of what stays.
    assert ids(backend, "kids", force=("kent-police",)) == found


def test_a_suggestion_follows_the_index(backend):
    # "Did you mean" is kept per index version (a misspelling comes back with each filter
    # ticked): a word published since is suggested at once, and one archived no longer is.
    assert backend.query(SearchQuery(text="zebbra")).suggestion is None
    assert backend.query(SearchQuery(text="zebbra", force=("kent-police",))).suggestion is None
    backend.apply([doc(8, "Zebra crossings lit at night", "Safer zebra crossings.")], [])
    assert backend.query(SearchQuery(text="zebbra")).suggestion == "zebra"
    assert backend.query(SearchQuery(text="zebbra", force=("kent-police",))).suggestion == "zebra"
    backend.apply([], [8])
    assert backend.query(SearchQuery(text="zebbra")).suggestion is None


def test_everyday_words_never_hide_case_studies_holding_more_of_the_words_typed(backend):
    # Only D holds all three clauses, and only through an everyday word (children for kids):
    # A and C hold two of the words as typed and are shown too, as "most of the words".
    backend.apply(
        [
            doc(41, "Zorblat kids", "Kids at the zorblat."),
            doc(42, "Quimper kids", "Kids at the quimper."),
            doc(43, "Children zorblat quimper", "Children at the zorblat and quimper."),
        ],
        [],
    )
    found = backend.query(SearchQuery(text="kids quimper zorblat"))
    assert found.relaxed and {h.case_study_id for h in found.hits} == {41, 42, 43}
    assert found.total == 3 and backend.ranked_ids(SearchQuery(text="kids quimper zorblat"))
    # One word: its everyday words are what there is.
    assert set(ids(backend, "bairns")) >= {41, 42, 43}


def test_a_snippet_marks_no_word_of_an_everyday_phrase(backend):
    # "change of life" is an everyday phrase for menopause: a case study saying "changed"
    # is not marked there, but an everyday word found is ("kids" for children).
    backend.apply(
        [
            doc(31, "Uniform changed", "We changed the uniform for menopause at work."),
            doc(32, "Holiday club", "The kids played at the holiday club."),
        ],
        [],
    )

    def snippet(text: str, case_study_id: int) -> str:
        hits = backend.query(SearchQuery(text=text)).hits
        return next(h.snippet for h in hits if h.case_study_id == case_study_id)

    shown = snippet("menopause", 31)
    assert "<mark>menopause</mark>" in shown and "<mark>changed" not in shown
    assert "<mark>kids</mark>" in snippet("children", 32)


def test_a_spelling_is_offered_for_most_of_the_words_and_from_the_glossary(backend):
    # A misspelt word beside a found one: the search holds most of the words, and the
    # close spelling is offered all the same (the library applies it when it finds more).
    backend.set_synonyms({"marac": "multi agency risk assessment conference"})
    found = backend.query(SearchQuery(text="challenging misogny"))
    assert found.relaxed and found.suggestion == "challenging misogyny"
    # A word found by its stem, or a common word, is no misspelling.
    assert backend.query(SearchQuery(text="fire services")).suggestion is None
    assert backend.query(SearchQuery(text="challenging into misogny")).suggestion in (
        None,
        "challenging into misogyny",
    )
    # A short form of the glossary is a word, whether or not a case study holds it.
    assert backend.query(SearchQuery(text="maracc")).suggestion == "marac"
    assert backend.query(SearchQuery(text="marac")).suggestion is None
    # Kept per index version, and per glossary: a short form removed is offered no more.
    backend.set_synonyms({})
    assert backend.query(SearchQuery(text="maracc")).suggestion is None


def test_related_case_studies(backend):
    related = backend.related(1)
    assert related and 1 not in related and 5 in related


@pytest.mark.parametrize(
    "text",
    [
        "title:draft",
        "status:draft",
        "*",
        "mis*",
        "[a TO z]",
        '"unbalanced',
        "(open",
        "AND",
        "OR",
        "NOT",
        "C++",
        "&",
        "%",
        "x" * 5000,
        "-",
        '"',
        "\\",
        "title:(a OR b)^5",
    ],
)
def test_hostile_input_is_plain_text_and_never_raises(backend, text):
    results = backend.query(SearchQuery(text=text))
    assert results.total >= 0
    if text in ("title:draft", "status:draft"):
        assert results.total == 0  # no field syntax: the words are simply not there


def test_updates_leave_no_duplicates_or_stale_text(backend):
    for round_ in range(14):  # the refresh() trap of whoosh-reloaded needs several commits
        backend.apply([doc(2, f"Mentoring round {round_}", "Mentors met monthly.")], [])
        backend.query(SearchQuery(text="mentoring"))
    found = backend.query(SearchQuery(text="mentoring"))
    assert [h.case_study_id for h in found.hits].count(2) == 1
    assert backend.query(SearchQuery()).total == 6
    assert ids(backend, "probationers") == []
    assert backend.indexed_versions()[2] == 20


def test_removed_case_studies_disappear(backend):
    backend.apply([], [3])
    assert ids(backend, "Cwmbran") == []
    assert 3 not in backend.indexed_versions()


def test_rebuild_swaps_in_a_whole_new_index(backend):
    assert backend.rebuild(iter(CORPUS[:2])) == 2
    assert backend.query(SearchQuery()).total == 2
    assert set(backend.indexed_versions()) == {1, 2}


def _generated(count: int, seed: int) -> list:
    import random

    rng = random.Random(seed)
    words = "women safety allies rugby mentoring night economy pledge health culture".split()
    forces = ["kent-police", "gwent-police", "greater-manchester-police"]
    themes = ["workplace-culture", "night-time-economy", "menopause-support"]
    return [
        doc(
            n,
            " ".join(rng.choices(words, k=3)),
            " ".join(rng.choices(words, k=rng.randint(5, 40))),
            force=rng.choice(forces),
            themes=rng.sample(themes, k=rng.randint(1, 2)),
            partners=rng.sample(["Street Pastors", "Fire Service", "Rugby Club"], k=1),
            year=rng.choice([2023, 2024, 2025]),
            day=rng.randint(1, 28),
        )
        for n in range(100, 100 + count)
    ]


def _answers(backend) -> list:
    queries = [
        SearchQuery(),
        SearchQuery(text="women"),
        SearchQuery(text="rugby -pledge"),
        SearchQuery(text='"night economy"'),
        SearchQuery(text="safety OR health", theme=("menopause-support",)),
        SearchQuery(text="allies", force=("kent-police",), year=(2024, 2025)),
        SearchQuery(text="culture", partner=("fire service",)),
    ]
    answers = []
    for query in queries:
        wide = SearchQuery(**{**query.__dict__, "per_page": 500})
        found = backend.query(wide)
        newest = backend.query(SearchQuery(**{**wide.__dict__, "sort": "newest"}))
        answers.append(
            (
                found.total,
                found.facets,
                sorted(h.case_study_id for h in found.hits),
                [h.case_study_id for h in newest.hits],
            )
        )
    return answers


def test_an_index_written_piece_by_piece_answers_as_one_built_at_once(backend):
    """Many small writes, updates and removals (many segments) give the same answers."""
    backend.apply([], [d.case_study_id for d in CORPUS])
    first, second = _generated(60, seed=1), _generated(60, seed=2)
    for start in range(0, 60, 7):
        backend.apply(first[start : start + 7], [])
        backend.query(SearchQuery(text="women"))  # a searcher open on every version
    backend.apply(second[:30], [140, 150, 151])
    latest = {d.case_study_id: d for d in first + second[:30]}
    for gone in (140, 150, 151):
        latest.pop(gone)
    pieces = _answers(backend)
    assert pieces[0][0] == 57
    backend.rebuild(iter(latest.values()))
    assert _answers(backend) == pieces


# Every match at once, for exports


def _every_page(backend, query: SearchQuery, per_page: int = 7) -> list[int]:
    found, page = [], 1
    while True:
        paged = SearchQuery(**{**query.__dict__, "page": page, "per_page": per_page})
        hits = backend.query(paged).hits
        if not hits:
            return found
        found += [h.case_study_id for h in hits]
        page += 1


EXPORTED_QUERIES = [
    SearchQuery(),
    SearchQuery(sort="newest"),
    SearchQuery(text="women"),
    SearchQuery(text="women", sort="newest"),
    SearchQuery(text="rugby -pledge"),
    SearchQuery(text='"night economy"'),
    SearchQuery(text="safety OR health", theme=("menopause-support",)),
    SearchQuery(text="allies", force=("kent-police",), year=(2024, 2025)),
    SearchQuery(text="culture", partner=("fire service",), sort="newest"),
    SearchQuery(force=("gwent-police", "kent-police"), year=(2023,)),
]


@pytest.mark.parametrize("broad_above", [None, 5])
def test_ranked_ids_are_every_page_of_results_in_order(backend, broad_above, monkeypatch):
    backend.apply(_generated(80, seed=3), [])
    if broad_above is not None:  # PostgreSQL ranks many matches on headings only
        from portal.search import postgres_backend

        monkeypatch.setattr(postgres_backend, "RANK_WHOLE_DOCUMENTS", broad_above)
    for query in EXPORTED_QUERIES:
        everything = backend.ranked_ids(SearchQuery(**{**query.__dict__, "page": 3}))
        assert everything == _every_page(backend, query), query
        assert len(everything) == backend.query(query).total
        assert len(set(everything)) == len(everything)
    assert len(backend.ranked_ids(SearchQuery())) == 86


@pytest.mark.parametrize("text", ["nothingmatches", "-", '""', "OR", "title:x*", "\x00"])
def test_ranked_ids_of_no_match_or_hostile_text_are_empty_never_an_error(backend, text):
    found = backend.ranked_ids(SearchQuery(text=text))
    assert found == [h.case_study_id for h in backend.query(SearchQuery(text=text)).hits]


# Search as you type: the last word of a query still being typed is also a prefix.


def typing(backend, text, **filters) -> list[int]:
    query = SearchQuery(text=text, partial=True, **filters)
    return [h.case_study_id for h in backend.query(query).hits]


def test_a_half_typed_word_finds_the_words_it_begins(backend):
    assert set(typing(backend, "misog")) == {1, 5}
    assert typing(backend, "misog")[0] == 1  # the same ranking: the title match first
    assert typing(backend, "menop") == [6]
    assert typing(backend, "Cwmbr") == [3]  # accents folded in prefixes too
    assert typing(backend, "bystander trai") == [4]


def test_a_finished_query_is_matched_as_typed(backend):
    assert ids(backend, "misog") == []
    assert set(ids(backend, "misogyny")) == set(typing(backend, "misogyny")) == {1, 5}


def test_one_letter_waits_for_the_next(backend):
    assert typing(backend, "bystander t") == ids(backend, "bystander") == [4]


def test_the_prefix_keeps_the_filters(backend):
    assert typing(backend, "misog", force=("kent-police",), year=(2025,)) == [1, 5]
    assert typing(backend, "misog", theme=("challenging-misogyny",)) == [1]


# Questions in plain words.


def test_a_question_with_a_missing_word_shows_what_holds_most_of_them(backend):
    strict = backend.query(SearchQuery(text="misogyny fire"))
    assert [h.case_study_id for h in strict.hits] == [1] and not strict.relaxed
    loose = backend.query(SearchQuery(text="misogyny fire walrus"))
    assert [h.case_study_id for h in loose.hits] == [1] and loose.relaxed  # 2 of 3 words
    assert loose.total == 1
    two = backend.query(SearchQuery(text="misogyny walrus"))
    assert set(h.case_study_id for h in two.hits) == {1, 5} and two.relaxed


def test_most_words_ranks_by_how_many_words_are_held(backend):
    found = backend.query(SearchQuery(text="misogyny fire service walrus"))
    assert found.relaxed and [h.case_study_id for h in found.hits][0] == 1


def test_most_words_still_honours_exclusions_and_filters(backend):
    assert ids(backend, "misogyny walrus -fire") == [5]
    assert ids(backend, "misogyny walrus", theme=("challenging-misogyny",)) == [1]


def test_filters_that_empty_a_full_match_do_not_relax_it(backend):
    found = backend.query(SearchQuery(text="misogyny fire", force=("gwent-police",)))
    assert found.total == 0 and not found.relaxed


def test_a_single_unknown_word_is_not_relaxed(backend):
    found = backend.query(SearchQuery(text="walrus"))
    assert found.total == 0 and not found.relaxed


@pytest.mark.parametrize(
    "question",
    [
        "how did the officers mentor",
        "what is the menopause café",
        "who were the street pastors",
    ],
)
def test_common_words_never_decide_a_match(backend, question):
    found = backend.query(SearchQuery(text=question))
    assert found.total >= 1 and not found.relaxed


def test_common_words_alone_are_still_searched(backend):
    assert backend.query(SearchQuery(text="the")).total == 0  # not everything


VAWG_ONLY = doc(7, "VAWG summit", "A VAWG summit for partners.", day=7)
NIGHTTIME = doc(8, "A nighttime economy forum", "Licensees met monthly.", day=8)


@pytest.mark.parametrize(
    "typed",
    [
        "VAWG",
        "vawg",
        "violence against women and girls",
        "Violence against women and girls",
        '"violence against women and girls"',
    ],
)
def test_acronyms_and_their_words_find_each_other(backend, typed):
    backend.apply([VAWG_ONLY], [])
    assert {4, 7} <= set(ids(backend, typed))


@pytest.mark.parametrize(
    "typed",
    [
        '"night-time economy"',
        '"nighttime economy"',
        '"night time economy"',
        "night-time economy",
        "nighttime economy",
    ],
)
def test_compounds_work_inside_quotes_too(backend, typed):
    backend.apply([NIGHTTIME], [])
    assert {3, 8} <= set(ids(backend, typed))


def test_the_words_of_an_acronym_in_quotes_stay_a_phrase(backend):
    backend.apply([VAWG_ONLY], [])
    assert ids(backend, '"women against violence"') == []


def test_themes_and_partners_ticked_together_narrow_forces_and_years_widen(backend):
    two = doc(9, "Menopause and culture", themes=("menopause-support", "workplace-culture"),
              partners=("Street Pastors", "Unison"), force="gwent-police", year=2024)  # fmt: skip
    backend.apply([two], [])
    assert ids(backend, theme=("menopause-support", "workplace-culture")) == [9]
    assert ids(backend, partner=("street pastors", "UNISON")) == [9]
    assert set(ids(backend, force=("gwent-police", "greater-manchester-police"))) == {2, 3, 9}
    assert set(ids(backend, year=(2024,))) == {2, 9}
