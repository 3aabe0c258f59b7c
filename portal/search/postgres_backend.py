"""The scale-out search backend: PostgreSQL full-text search over the portal's own database.

`search_entry` (migration 0006) holds one row per published case study with a weighted
tsvector (title and themes A, summary and force B, body, outcomes, lessons and partners C)
under a GIN index, in the `portal_english` configuration (English stemming after
`unaccent`). Index changes are written by `queue_change` in the same transaction as the
content (`transactional = True`), so the index can never drift from the database.

The user's words never reach SQL or tsquery syntax: the text is split here into words,
"phrases", -exclusions and OR, and each piece is a bound parameter of its own
`websearch_to_tsquery`, combined with && || !!. That is also where synonyms (VAWG) and
compounds (night-time) are added in place, which one `websearch_to_tsquery` over the
whole text cannot do.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from flask import current_app, g
from markupsafe import escape
from sqlalchemy import text

from ..extensions import db
from ..web.metrics import timed_search
from . import failures
from .analysis import SYNONYMS, corrected, normalise_text
from .contract import SearchDocument, SearchHit, SearchQuery, SearchResults
from .words import Option, fold, most, parse

CONFIG = "portal_english"
STATEMENT_TIMEOUT_MS = 5_000  # a library search that takes longer is cancelled (no results)
RANK_WHOLE_DOCUMENTS = 1000  # above this many matches, rank on the heading vector only
START, STOP = "\u27e6", "\u27e7"  # marks around a match from ts_headline, made <mark> after
# The excerpt is stored with these in place of < > & so that ts_headline (whose parser
# drops anything that looks like a tag) keeps every character; they are escaped after.
HIDDEN = {"<": "\ue000", ">": "\ue001", "&": "\ue002"}
_PLAIN = re.compile(r"[^\W_]+")
_WORDS = re.compile(r"[^\W\d_]{3,}")
# The search generation (migration 0013): a token that every index write changes in its
# own transaction, so anything keyed by it is never read after the index has changed.
GENERATION = "(SELECT token FROM portal_search.generation)"
# Whether the history still names generation :seen with the token :seen_token, so that the
# state read now descends from it (NULL when it is too old; false after a restored backup).
_ANCESTOR = "(SELECT h.token = :seen_token FROM portal_search.history h WHERE h.number = :seen)"
CACHE_SECONDS = 120  # how long a shared cached result is kept (a new generation misses it)
CACHE_PAUSE_SECONDS = 10  # after a cache error, search without it this long
CACHE_FORMAT = 5  # change when what is cached, or how results are computed, changes
# Related case studies: the first this many sharing a title or theme word are ranked, with
# ts_rank (about 3.5 µs each; ts_rank_cd took 20 µs for a title's dozen OR-ed words).
RELATED_CANDIDATES = 1000
CACHED_SUGGESTIONS = 512  # "did you mean" answers kept per process (a few bytes each)
CACHED_LIST_IDS = 2_000_000  # ids of ranked matches kept per process (16 MB)
HISTORY_KEPT = 10_000  # generations named in portal_search.history: older lists ranked anew


class PostgresBackend:
    """Search in PostgreSQL; reads and writes go through the app's database session."""

    transactional = True  # queue_change writes the index in the caller's transaction

    def __init__(self) -> None:
        self.synonyms: dict[str, str] = {}
        # "Did you mean" for words typed, per generation: a misspelling comes back with
        # each filter ticked, and working one out costs a trigram search a word.
        self._suggestions: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self.set_synonyms(SYNONYMS)
        self._facet_table: _FacetTable | None = None  # this process's, for one generation
        # The ranked matches of recent words, per generation: a filter ticked, a page
        # turned or the other sort reuses them (at most CACHED_LIST_IDS ids in all).
        self._lists: OrderedDict[str, _Listed] = OrderedDict()
        self._listed_ids = 0
        self._cache: SearchCache | None = None
        self._cache_known = False  # whether the setting has been read

    # The index

    def ensure_index(self) -> None:
        """The tables come with the migrations (0006)."""

    def set_synonyms(self, synonyms: dict[str, str]) -> None:
        self.synonyms = {
            k.strip().lower(): v.strip() for k, v in synonyms.items() if k.strip() and v.strip()
        }
        # What cached results depend on, worked out once (the glossary has hundreds).
        self._suggestions.clear()  # the glossary's short forms are spellings too
        self._synonyms_digest = hashlib.sha256(
            json.dumps(sorted(self.synonyms.items())).encode()
        ).hexdigest()

    def is_current(self) -> bool:
        return True

    def ping(self) -> int:
        count: int = db.session.execute(text("SELECT count(*) FROM search_entry")).scalar_one()
        return count

    # Writing

    def apply(self, upserts: Iterable[SearchDocument], removals: Iterable[int]) -> None:
        self.write(upserts, removals)
        db.session.commit()

    def write(self, upserts: Iterable[SearchDocument], removals: Iterable[int]) -> None:
        """Index these and remove those, in the session's current transaction.

        An upsert (ON CONFLICT ... DO UPDATE), so two transactions indexing the same case
        study one after the other never collide on its key.
        """
        upserts, removals = list(upserts), sorted(set(removals))
        if not upserts and not removals:
            return
        # First, before any entry: every index writer takes this one row's lock before the
        # entries' locks, so two writers never wait for each other crosswise (a deadlock).
        # Holding it to the commit also means versions are committed in their order.
        version = _next_generation()
        if removals:
            db.session.execute(
                text("DELETE FROM search_entry WHERE case_study_id = ANY(:ids)"), {"ids": removals}
            )
        if not upserts:
            return
        db.session.execute(
            text(
                f"""
                INSERT INTO search_entry (case_study_id, revision_id, title, summary, excerpt,
                    force, themes, partners, year, published_at, document, heading, version)
                SELECT CAST(:id AS integer), CAST(:revision AS integer), CAST(:title AS text),
                    CAST(:summary AS text), CAST(:excerpt AS text), CAST(:force AS text),
                    CAST(:themes AS text[]), CAST(:partners AS text[]), CAST(:year AS integer),
                    CAST(:published_at AS timestamp),
                    head || setweight(to_tsvector('{CONFIG}', :c), 'C'), head,
                    CAST(:version AS bigint)
                FROM (SELECT setweight(to_tsvector('{CONFIG}', :a), 'A')
                    || setweight(to_tsvector('{CONFIG}', :b), 'B') AS head) h
                ON CONFLICT (case_study_id) DO UPDATE SET
                    revision_id = excluded.revision_id, title = excluded.title,
                    summary = excluded.summary, excerpt = excluded.excerpt,
                    force = excluded.force, themes = excluded.themes,
                    partners = excluded.partners, year = excluded.year,
                    published_at = excluded.published_at, document = excluded.document,
                    heading = excluded.heading, version = excluded.version
                """  # noqa: S608 - only constants are formatted in; values are bound
            ),
            [
                {**_row(d), "version": version}
                for d in sorted(upserts, key=lambda d: d.case_study_id)
            ],
        )
        words = sorted({w for d in upserts for w in _spelling_words(d)})
        if words:  # in one order, so two writers never wait on each other in a circle
            db.session.execute(
                text(
                    "INSERT INTO search_word (word) SELECT unnest(CAST(:words AS text[])) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"words": words},
            )

    def rebuild(self, documents: Iterable[SearchDocument]) -> int:
        """Rewrite every entry, 500 to a transaction, then drop entries no longer published.

        Searches keep answering throughout, and no lock is held for long, so moderators'
        decisions are never kept waiting; a case study changed meanwhile is put right by
        the repair step of `reindex`.
        """
        seen: set[int] = set()
        vocabulary: set[str] = set()
        batch: list[SearchDocument] = []
        for document in documents:
            batch.append(document)
            vocabulary |= _spelling_words(document)
            if len(batch) == 500:
                self.write(batch, [])
                db.session.commit()
                seen.update(d.case_study_id for d in batch)
                batch = []
        # The last transaction takes the generation's lock first, as every index writer
        # does, even when it writes no entry (else it could wait crosswise with one).
        _next_generation()
        self.write(batch, [])
        seen.update(d.case_study_id for d in batch)
        indexed = set(self.indexed_versions())
        self.write([], indexed - seen)
        # The spelling vocabulary is rebuilt too: words only archived case studies held go.
        db.session.execute(text("DELETE FROM search_word"))
        db.session.execute(
            text(
                "INSERT INTO search_word (word) SELECT DISTINCT unnest(CAST(:words AS text[])) "
                "ON CONFLICT DO NOTHING"
            ),
            {"words": sorted(vocabulary)},
        )
        db.session.commit()
        # Fresh statistics now, not when autovacuum next looks: without them the planner
        # misjudges "version > n" (how few entries were written since a list was ranked)
        # and ANDs in the words' whole GIN postings (2-4 ms, not 0.1 ms, after each write).
        db.session.execute(text("ANALYZE search_entry, search_word"))
        db.session.commit()
        return len(seen)

    def indexed_versions(self) -> dict[int, int]:
        rows = db.session.execute(text("SELECT case_study_id, revision_id FROM search_entry"))
        return {int(a): int(b) for a, b in rows}

    # Reading

    def query(self, query: SearchQuery) -> SearchResults:
        with timed_search("postgres"):  # /metrics: portal_search_duration_seconds
            try:
                # However odd the words, a search gives up rather than hold the database
                # (SET LOCAL); the same round trip reads the generation the cache is keyed by.
                # Each statement is planned for its own values: psycopg prepares a statement
                # run five times, and PostgreSQL's generic plan for "version > $n" (a third
                # of the entries, it guesses) ANDed in the words' whole GIN postings, so
                # bringing a list up to date after a write took 2-4 ms, not 0.1.
                generation = db.session.execute(
                    text(
                        "SELECT set_config('statement_timeout', "
                        f"'{STATEMENT_TIMEOUT_MS}', true), "
                        "set_config('plan_cache_mode', 'force_custom_plan', true), "
                        f"{GENERATION}"
                    )
                ).one()[2]
                cache = self._shared_cache()
                key = self._cache_key(generation, query) if cache and generation else None
                if cache and key and (found := cache.get(key)) is not None:
                    return found
                results = self._query(query, generation)
                if cache and key:
                    cache.put(key, results)
                return results
            except Exception:  # a query must never become an error page; the log says why
                db.session.rollback()
                failures.report("query", query)
                return SearchResults(hits=[], total=0)

    def _matching(
        self, query: SearchQuery, params: dict[str, object], *, relaxed: bool = False
    ) -> tuple[str, bool, str | None, str] | None:
        """Return the FROM ... WHERE of the matches, whether words were searched, (when
        `relaxed`) the SQL counting the clauses each match holds, and the SELECT of the
        query (`q.query`). None: nothing can match (words typed but nothing searchable in
        them; or no relaxing a single clause)."""
        words = query.text.strip()
        held: str | None = None
        joined = ""
        tier = "true"  # whether a match holds the words as typed (see _rank)
        typed_query = "NULL::tsquery"  # the words as typed, when everyday words were added
        marks = "NULL::tsquery"  # what snippets mark, when not the query's words
        if words:
            built = self._tsqueries(words, query.partial, params)
            if built is None:
                return None
            positive, negative, typed, weak, marked = built
            if marked != positive[: len(marked)]:
                # A snippet marks no word of an everyday phrase (change of life: not changed).
                marks = f"({' || '.join(marked)})"
            excluded = "".join(f" && !!{sql}" for sql in negative)
            if relaxed:
                if len(positive) < 2:
                    return None
                # Which clauses each case study holds, from the GIN index one clause at a
                # time (never reading the long vectors row by row), kept when at least half;
                # ordered by those held as typed (an everyday word only widens what is found).
                need = most(len(positive))
                if typed is None:
                    each = " UNION ALL ".join(
                        f"SELECT case_study_id FROM search_entry WHERE document @@ {sql}"  # noqa: S608
                        for sql in positive
                    )
                    counted = (
                        f"SELECT case_study_id, count(*) AS held FROM ({each}) c "  # noqa: S608
                        f"GROUP BY case_study_id HAVING count(*) >= {need}"
                    )
                else:
                    # A clause with everyday words: the words as typed (t = 1), and the
                    # everyday words where the words typed are not (t = 0: found through the
                    # index, and only those read again). Ranked on the words typed alone.
                    each = " UNION ALL ".join(
                        f"SELECT case_study_id, {t} AS t FROM search_entry "  # noqa: S608
                        f"WHERE document @@ {sql}"
                        for n in range(len(positive))
                        for t, sql in (
                            (1, typed[n]),
                            (0, f"{weak[n]} AND NOT document @@ {typed[n]}" if weak[n] else ""),
                        )
                        if sql
                    )
                    counted = (
                        f"SELECT case_study_id, sum(t) AS held FROM ({each}) c "  # noqa: S608
                        f"GROUP BY case_study_id HAVING count(*) >= {need}"
                    )
                    typed_query = f"({' || '.join(typed)})"
                joined = f" JOIN ({counted}) h ON h.case_study_id = e.case_study_id"
                held = "h.held"
                select = f"({' || '.join(positive)}) AS query"
                where = []
                if negative:
                    unwanted = " || ".join(negative)
                    excluding = (
                        f"SELECT case_study_id FROM search_entry WHERE document @@ ({unwanted})"  # noqa: S608, E501
                    )
                    where.append(f"e.case_study_id NOT IN ({excluding})")
            else:
                strict = " && ".join(positive) if positive else ""
                if not positive:  # only exclusions: everything without those words
                    strict = excluded[4:]
                    excluded = ""
                select = f"({strict}){excluded} AS query"
                where = ["e.document @@ q.query"]
                if typed is not None:
                    # Those holding the words only through everyday words rank below every
                    # one holding them as typed, which are ranked on the words typed alone.
                    # Such a case study holds an everyday word and not the words typed:
                    # found once per statement through the GIN index; or, when a list is
                    # brought up to date (`rowwise`: a few entries written since), read
                    # from each entry (a look over the whole table after each write cost
                    # the load test a quarter of its search p95).
                    typed_query = f"({' && '.join(typed)})"
                    everyday = " || ".join(sql for sql in weak if sql)
                    through = (  # the planner picks: an anti-join, or a look-up each
                        "SELECT w.case_study_id FROM search_entry w "  # noqa: S608
                        f"WHERE w.document @@ ({everyday}) AND NOT EXISTS (SELECT 1 "
                        "FROM search_entry x WHERE x.case_study_id = w.case_study_id "
                        f"AND x.document @@ {typed_query})"
                    )
                    params.setdefault("rowwise", False)
                    tier = (
                        f"CASE WHEN :rowwise THEN (NOT e.document @@ ({everyday}) "
                        f"OR e.document @@ {typed_query}) "
                        f"ELSE e.case_study_id NOT IN ({through}) END"
                    )
        else:
            select, where = "NULL::tsquery AS query", []
        if query.force:
            where.append("e.force = ANY(:forces)")
            params["forces"] = list(query.force)
        if query.theme:  # every theme ticked (any of the forces and years ticked)
            where.append("e.themes @> CAST(:themes AS text[])")
            params["themes"] = list(query.theme)
        if query.year:
            where.append("e.year = ANY(:years)")
            params["years"] = list(query.year)
        if query.partner:  # every partner ticked
            where.append(
                "(SELECT count(DISTINCT lower(p)) FROM unnest(e.partners) p "
                "WHERE lower(p) = ANY(:partners)) = :partner_count"
            )
            partners = sorted({p.lower() for p in query.partner})  # as PostgreSQL lower()
            params.update(partners=partners, partner_count=len(partners))
        select = f"{select}, {typed_query} AS typed, {marks} AS marks"
        source = (  # noqa: S608 - only constants and parameter names are formatted in
            f"FROM search_entry e{joined}, (SELECT {select}) q, LATERAL (SELECT {tier} AS typed) t "
            f"WHERE {' AND '.join(where) or 'true'}"
        )
        return source, bool(words), held, select

    @staticmethod
    def _order(query: SearchQuery, searched: bool, total: int, held: str | None) -> str:
        """Return the ORDER BY of the matches: newest first, or best first."""
        if query.sort == "newest" or not searched:
            return "e.published_at DESC, e.case_study_id DESC"
        # Ranking reads each match's vector: for a broad query that would be thousands of
        # long bodies, so it ranks on the short heading vector instead (title, themes,
        # summary, force), where the best matches of a broad query stand out anyway.
        # Most words first (relaxed): then the heading decides among equals.
        vector = "document" if total <= RANK_WHOLE_DOCUMENTS and not held else "heading"
        rank = f"{_rank(vector)} DESC, e.case_study_id"
        return f"{held} DESC, {rank}" if held else rank

    def _ranking_total(self, query: SearchQuery, total: int, held: str | None) -> int:
        """The count the ranking rule goes by: of the case studies holding the words, with
        no filter (as the lists of `_rank_all` count them); `total` when nothing is ticked."""
        if held or not (query.force or query.theme or query.year or query.partner):
            return total
        params: dict[str, object] = {}
        words_only = SearchQuery(text=query.text, partial=query.partial)
        matching = self._matching(words_only, params)
        if matching is None:
            return total
        counted = db.session.execute(text(f"SELECT count(*) {matching[0]}"), params)  # noqa: S608
        return int(counted.scalar_one())

    def _relax(self, query: SearchQuery) -> bool:
        """Whether a search that found nothing should show what holds most of its words:
        when no case study holds all of them, whatever the filters."""
        if not (query.force or query.theme or query.year or query.partner):
            return True
        unfiltered = SearchQuery(text=query.text, partial=query.partial)
        params: dict[str, object] = {}
        matching = self._matching(unfiltered, params)
        if matching is None:
            return True
        found = db.session.execute(text(f"SELECT 1 {matching[0]} LIMIT 1"), params).first()
        return found is None

    def _everyday_only(self, query: SearchQuery) -> bool:
        """Whether the words (whatever the filters) are held by case studies, but only
        through everyday words: then "most of the words" is shown, as if there were none."""
        params: dict[str, object] = {}
        matching = self._matching(SearchQuery(text=query.text, partial=query.partial), params)
        if matching is None or "rowwise" not in params:
            return False  # nothing searchable, or no everyday word added (see _matching)
        found = db.session.execute(
            text(
                f"SELECT EXISTS (SELECT 1 {matching[0]}), "  # noqa: S608 - constants only
                f"EXISTS (SELECT 1 {matching[0]} AND t.typed)"
            ),
            params,
        ).one()
        return bool(found[0]) and not found[1]

    def ranked_ids(self, query: SearchQuery) -> list[int]:
        try:
            generation = self._generation_now()
            chosen = self._chosen(query, generation) if generation else None
            if chosen is not None:
                return [int(i) for i in chosen.ids]
            params: dict[str, object] = {}
            matching = self._matching(query, params)
            if matching is None:
                return []
            source, searched, held, _ = matching
            total = db.session.execute(text(f"SELECT count(*) {source}"), params).scalar_one()
            if searched and ((not total and self._relax(query)) or self._everyday_only(query)):
                loose: dict[str, object] = {}
                relaxed = self._matching(query, loose, relaxed=True)
                if relaxed is not None:
                    source, searched, held, _ = relaxed
                    params = loose
                    total = db.session.execute(
                        text(f"SELECT count(*) {source}"), params
                    ).scalar_one()
            order = self._order(query, searched, self._ranking_total(query, total, held), held)
            rows = db.session.execute(
                text(f"SELECT e.case_study_id {source} ORDER BY {order}"),  # noqa: S608
                params,
            )
            return [int(r[0]) for r in rows]
        except Exception:  # as query(): never an error page
            db.session.rollback()
            failures.report("ranked_ids", query)
            return []

    def _shared_cache(self) -> SearchCache | None:
        if not self._cache_known:
            url = current_app.config.get("SEARCH_CACHE_URL") or ""
            self._cache = SearchCache(url) if url else None
            self._cache_known = True
        return self._cache

    def _cache_key(self, generation: str, query: SearchQuery) -> str:
        """Everything a result depends on: the index's state, the synonyms, the question."""
        described = [
            CACHE_FORMAT,
            generation,
            self._synonyms_digest,
            RANK_WHOLE_DOCUMENTS,
            repr(query),
        ]
        digest = hashlib.sha256(json.dumps(described).encode()).hexdigest()
        return f"portal:search:{digest}"

    def _facets(self, source: str, params: dict[str, object]) -> dict[str, dict[str, int]]:
        """Count the facets of the matches from this process's table of every entry's force,
        themes, year and partners: the database only names the matches (one cheap scan).
        The names and the table must come from the same generation, else it is done in SQL."""
        generation, ids = db.session.execute(
            text(f"SELECT {GENERATION}, array_agg(e.case_study_id) {source}"),  # noqa: S608
            params,
        ).one()
        table = self._facets_of(generation)
        counted = table.count(ids or []) if table is not None else None
        return counted if counted is not None else self._facets_in_sql(source, params)

    def _facets_of(self, generation: str | None) -> _FacetTable | None:
        if generation is None:
            return None
        table = self._facet_table
        if table is None or table.generation != generation:
            table = self._facet_table = self._load_facets(table)
        # A write between the two statements: this once, SQL counts.
        return table if table.generation == generation else None

    def _load_facets(self, known: _FacetTable | None) -> _FacetTable:
        """The facet table of the index as it is now: `known` brought up to date when its
        generation is in the history (only the entries written since are read, with the
        ids of all, which tell those removed), else every entry read anew."""
        if known is not None and known.entries is not None:
            token, number, ancestor, ids, written = db.session.execute(
                text(
                    "SELECT g.token, g.number, "  # noqa: S608 - constants only
                    f"{_ANCESTOR}, "
                    "(SELECT array_agg(case_study_id) FROM search_entry), "
                    f"(SELECT {_FACET_ROWS} FROM search_entry e WHERE e.version > :seen) "
                    "FROM portal_search.generation g"
                ),
                {"seen": known.number, "seen_token": known.generation},
            ).one()
            if ancestor:
                present = set(ids or [])
                entries = {i: v for i, v in known.entries.items() if i in present}
                entries.update(_facet_entry(e) for e in json.loads(written or "[]"))
                if len(entries) == len(present):  # else an entry unaccounted for: read all
                    return _FacetTable.load(str(token), int(number), entries)
        # One JSON text, not a row an entry: a third of the time at 10,000 entries.
        token, number, everything = db.session.execute(
            text(
                f"SELECT g.token, g.number, (SELECT {_FACET_ROWS} FROM search_entry e) "  # noqa: S608 - constants only
                "FROM portal_search.generation g"
            )
        ).one()
        entries = dict(_facet_entry(e) for e in json.loads(everything or "[]"))
        return _FacetTable.load(str(token or ""), int(number or 0), entries)

    def _facets_in_sql(self, source: str, params: dict[str, object]) -> dict[str, dict[str, int]]:
        facets: dict[str, dict[str, int]] = {"force": {}, "theme": {}, "year": {}, "partner": {}}
        rows = db.session.execute(
            text(
                f"""
                WITH m AS (SELECT e.force, e.themes, e.partners, e.year {source})
                SELECT 'force', force, count(*) FROM m GROUP BY force
                UNION ALL SELECT 'theme', t, count(*) FROM m, unnest(m.themes) t GROUP BY t
                UNION ALL SELECT 'year', CAST(year AS text), count(*) FROM m
                    WHERE year IS NOT NULL AND year > 0 GROUP BY year
                UNION ALL SELECT 'partner', p, count(*) FROM m, unnest(m.partners) p GROUP BY p
                """  # noqa: S608 - only constants and parameter names are formatted in
            ),
            params,
        )
        for kind, value, count in rows:
            facets[kind][value] = int(count)
        return facets

    def _query(self, query: SearchQuery, generation: str | None) -> SearchResults:
        """A page of results: from the matches' list (cached per words, whatever the
        filters, sort or page), filtered and counted in this process's facet table."""
        chosen = self._chosen(query, generation) if generation else None
        if chosen is None:
            return self._query_in_sql(query, generation)
        if chosen.nothing:  # typed, but nothing searchable in it: no match
            return SearchResults(hits=[], total=0, facets={})
        start = (max(1, query.page) - 1) * query.per_page
        page = [int(i) for i in chosen.ids[start : start + query.per_page]]
        total = len(chosen.ids)
        words = query.text.strip()
        return SearchResults(
            hits=self._hits(page, query, chosen.searched, chosen.relaxed),
            total=total,
            facets=chosen.table.count_rows(chosen.rows),
            suggestion=(
                self._suggest(words, generation, chosen.relaxed)
                if words and (total < 3 or chosen.relaxed) and not query.partial
                else None
            ),
            relaxed=chosen.relaxed,
        )

    def _chosen(self, query: SearchQuery, generation: str) -> _Chosen | None:
        """Every match of `query` in the order its pages show them, with their rows in the
        facet table of the same generation; None when the two cannot be had together (a
        write each time in between): then SQL answers."""
        for _ in range(3):
            listed = self._listed(query, generation, relaxed=False)
            table = self._facets_of(listed.generation)
            if table is None:
                generation = self._generation_now()
                continue
            if listed.nothing:
                return _Chosen(listed.ids, listed.ids, table, False, False, True)
            # Words: their list. None: every entry (the table holds them all).
            ids, searched = (listed.ids, True) if listed.searched else (table.ids, False)
            rows = table.rows(ids)
            if rows is None:  # not the table's generation after all
                generation = self._generation_now()
                continue
            keep = table.keep(rows, query)
            relaxed = False
            # No case study holds every word (as typed: those holding them only through
            # everyday words rank below 0, and would hide those holding more words typed).
            if searched and (not len(ids) or listed.ranks.max(initial=-1.0) < 0):
                loose = self._listed(query, listed.generation, relaxed=True)
                loose_rows = table.rows(loose.ids) if loose.generation == table.generation else None
                if loose_rows is None and not loose.nothing:  # a write came between
                    generation = self._generation_now()
                    continue
                if loose_rows is not None and not loose.nothing:
                    loose_keep = table.keep(loose_rows, query)
                    if loose_keep.any():
                        ids, rows, keep, relaxed = loose.ids, loose_rows, loose_keep, True
            ids, rows = ids[keep], rows[keep]
            if query.sort == "newest" or not searched:
                order = np.argsort(table.recency[rows], kind="stable")
                ids, rows = ids[order], rows[order]
            return _Chosen(ids, rows, table, searched, relaxed, False)
        return None

    def _generation_now(self) -> str:
        return str(db.session.execute(text(f"SELECT {GENERATION}")).scalar() or "")

    def _listed(self, query: SearchQuery, generation: str, relaxed: bool) -> _Listed:
        """The ids holding the words of `query` (no filter), best first (relaxed: holding
        most of them, most first), and the generation they were read in: this process's
        list of them, brought up to date if the index changed since (only what was written
        since is ranked), else the shared cache's, else ranked anew."""
        words = query.text.strip()
        if not words:
            return _Listed(generation, _NO_IDS, searched=False, nothing=False)
        # Keyed by the query as built, not only the words: how words are read also depends
        # on the synonyms and on the indexed vocabulary (a compound split when both halves
        # are known), so a list is never carried on for another query.
        built: dict[str, object] = {}
        matching = self._matching(
            SearchQuery(text=query.text, partial=query.partial), built, relaxed=relaxed
        )
        if matching is None:  # nothing searchable, or nothing to relax
            return _Listed(self._generation_now(), _NO_IDS, searched=True, nothing=True)
        described = [
            CACHE_FORMAT, RANK_WHOLE_DOCUMENTS, matching[0], matching[2],
            sorted((k, str(v)) for k, v in built.items()),
        ]  # fmt: skip
        mine = hashlib.sha256(json.dumps(described).encode()).hexdigest()
        key = f"portal:search-ids:{mine}"  # the newest list any worker has, with its generation
        cache = self._shared_cache()
        # This worker's own list, brought up to date if need be (only the entries written
        # since are ranked). An update is not shared: bringing a list up to date costs any
        # worker little, and copying it to and from Redis after each write cost more.
        own = self._lists.get(mine)
        found = self._current(own, generation, matching[0], built) if own else None
        if found is None:  # else the list some worker ranked last, from Redis, brought up to date
            raw = cache.get_raw(key) if cache else None
            shared = _Listed.loads(raw) if raw is not None else None
            if shared is not None and (own is None or shared.number > own.number):
                found = self._current(shared, generation, matching[0], built)
        if found is None:
            found = self._rank_all(matching[0], matching[2], built)
            if cache:
                cache.put_raw(key, found.dumps())
        self._remember(mine, found)
        return found

    def _current(
        self, listed: _Listed, generation: str, source: str, built: dict[str, object]
    ) -> _Listed | None:
        """`listed` if it is of `generation`, else brought up to date (None if it cannot be)."""
        return listed if listed.generation == generation else self._updated(listed, source, built)

    def _remember(self, key: str, listed: _Listed) -> None:
        gone = self._lists.pop(key, None)
        self._listed_ids -= len(gone.ids) if gone is not None else 0
        self._lists[key] = listed
        self._listed_ids += len(listed.ids)
        while self._listed_ids > CACHED_LIST_IDS and len(self._lists) > 1:
            _, gone = self._lists.popitem(last=False)
            self._listed_ids -= len(gone.ids)

    def _rank_all(self, source: str, held: str | None, params: dict[str, object]) -> _Listed:
        """Rank every case study holding the words (`_matching` of the words alone) in one
        statement that also reads the generation, so the list and the generation belong
        together."""
        if held:  # most words first; then the heading decides among equals
            ranked = f"SELECT e.case_study_id, {held} AS held, {_rank('heading')} AS r {source}"
            order = "m.held DESC, m.r DESC, m.case_study_id"
        else:
            # Ranking reads each match's vector: for a broad query that would be thousands
            # of long bodies, so it ranks on the short heading vector instead (title,
            # themes, summary, force), where the best matches of a broad query stand out.
            ranked = (
                f"SELECT e.case_study_id, CASE WHEN count(*) OVER () <= {RANK_WHOLE_DOCUMENTS} "
                f"THEN {_rank('document')} ELSE {_rank('heading')} END AS r {source}"
            )
            order = "m.r DESC, m.case_study_id"
        generation, number, ids, ranks = db.session.execute(
            text(
                "SELECT g.token, g.number, c.ids, c.ranks "  # noqa: S608 - constants only
                "FROM portal_search.generation g, LATERAL ("
                f"SELECT array_agg(m.case_study_id ORDER BY {order}) AS ids, "
                f"array_agg(m.r ORDER BY {order}) AS ranks FROM ({ranked}) m) c"
            ),
            params,
        ).one()
        found = np.array(ids or [], dtype=np.int64)
        return _Listed(
            str(generation or ""),
            found,
            searched=True,
            nothing=False,
            number=int(number or 0),
            ranks=np.array(ranks or [], dtype=np.float32),
            whole=not held and len(found) <= RANK_WHOLE_DOCUMENTS,
            held=bool(held),
        )

    def _updated(self, known: _Listed, source: str, built: dict[str, object]) -> _Listed | None:
        """`known` brought up to the index's state now: the entries written or removed
        since its generation taken out, those written since that hold the words ranked and
        merged in (the same order as ranking all anew: rank, then id). None when that
        cannot be done exactly: a relaxed list,
        a generation no longer in the history (or not an ancestor: a restored backup), or
        the list crossing RANK_WHOLE_DOCUMENTS (ranked on the other vector)."""
        if known.held or not known.searched or known.nothing:
            return None
        params = {**built, "seen": known.number, "seen_token": known.generation}
        if "rowwise" in params:
            params["rowwise"] = True  # a few entries: each read, not the whole table
        rank = _rank("document" if known.whole else "heading")
        row = db.session.execute(
            text(
                "SELECT g.token, g.number, "  # noqa: S608 - constants and parameter names only
                f"{_ANCESTOR}, "
                "(SELECT array_agg(case_study_id) FROM search_entry WHERE version > :seen), "
                f"c.ids, c.ranks FROM portal_search.generation g, LATERAL ("
                f"SELECT array_agg(m.case_study_id ORDER BY m.r DESC, m.case_study_id) AS ids, "
                "array_agg(m.r ORDER BY m.r DESC, m.case_study_id) AS ranks FROM ("
                f"SELECT e.case_study_id, {rank} AS r {source} AND e.version > :seen) m) c"
            ),
            params,
        ).one()
        generation, number, ancestor, changed, ids, ranks = row
        table = self._facets_of(str(generation)) if ancestor else None
        if table is None:  # not an ancestor, or a write since the statement: rank anew
            return None
        # Out: every entry written since, and those removed since (the table of the same
        # generation no longer has them). In: those written since that hold the words.
        keep = ~np.isin(known.ids, np.array(changed or [], dtype=np.int64))
        keep &= np.isin(known.ids, table.ids)
        merged_ids = np.concatenate([known.ids[keep], np.array(ids or [], dtype=np.int64)])
        merged_ranks = np.concatenate([known.ranks[keep], np.array(ranks or [], np.float32)])
        if known.whole != (len(merged_ids) <= RANK_WHOLE_DOCUMENTS):
            return None  # now ranked on the other vector: rank anew
        order = np.lexsort((merged_ids, -merged_ranks))
        return _Listed(
            str(generation),
            merged_ids[order],
            searched=True,
            nothing=False,
            number=int(number),
            ranks=merged_ranks[order],
            whole=known.whole,
            held=False,
        )

    def _hits(
        self, page: list[int], query: SearchQuery, searched: bool, relaxed: bool
    ) -> list[SearchHit]:
        """The page's case studies with their snippets (the words marked), in page order."""
        if not page:
            return []
        params: dict[str, object] = {"page": page}
        matching = (
            self._matching(
                SearchQuery(text=query.text, partial=query.partial), params, relaxed=relaxed
            )
            if searched
            else None
        )
        if matching is not None:
            sql = (
                f"SELECT e.case_study_id, {_headline('e.excerpt', MARKS)}, e.summary "  # noqa: S608 - constants only
                f"FROM search_entry e, (SELECT {matching[3]}) q "
                "WHERE e.case_study_id = ANY(:page)"
            )
        else:
            sql = (
                "SELECT case_study_id, summary, summary FROM search_entry "
                "WHERE case_study_id = ANY(:page)"
            )
        found = {
            int(i): (shown, summary) for i, shown, summary in db.session.execute(text(sql), params)
        }
        marked = matching is not None
        return [SearchHit(i, _snippet(*found[i], marked)) for i in page if i in found]

    def _query_in_sql(self, query: SearchQuery, generation: str | None = None) -> SearchResults:
        words = query.text.strip()
        params: dict[str, object] = {}
        matching = self._matching(query, params)
        if matching is None:  # typed, but nothing searchable in it: no match
            return SearchResults(hits=[], total=0, facets={})
        source, searched, held, _ = matching
        facets = self._facets(source, params)
        total = sum(facets["force"].values())
        relaxed = False
        if searched and ((not total and self._relax(query)) or self._everyday_only(query)):
            loose: dict[str, object] = {}
            matching = self._matching(query, loose, relaxed=True)
            if matching is not None:
                loose_facets = self._facets(matching[0], loose)
                if loose_facets["force"]:
                    source, searched, held, _ = matching
                    params, facets, relaxed = loose, loose_facets, True
                    total = sum(facets["force"].values())
        order = self._order(query, searched, self._ranking_total(query, total, held), held)
        highlight = _headline("page.excerpt", "page.marks") if searched else "page.summary"
        params.update(limit=query.per_page, offset=(max(1, query.page) - 1) * query.per_page)
        page = (
            []
            if query.per_page == 0
            else db.session.execute(
                text(
                    f"""
                SELECT page.case_study_id, {highlight}, page.summary FROM (
                    SELECT e.case_study_id, e.excerpt, e.summary,
                        {MARKS} AS marks {source}
                    ORDER BY {order} LIMIT :limit OFFSET :offset
                ) page
                """  # noqa: S608 - only constants and parameter names are formatted in
                ),
                params,
            ).all()
        )
        hits = [
            SearchHit(int(cid), _snippet(shown, summary, searched)) for cid, shown, summary in page
        ]
        suggestion = (
            self._suggest(words, generation, relaxed)
            if words and (total < 3 or relaxed) and not query.partial
            else None
        )
        return SearchResults(
            hits=hits,
            total=total,
            facets=facets,
            suggestion=suggestion,
            relaxed=relaxed,
        )

    def _tsqueries(
        self, words: str, partial: bool, params: dict[str, object]
    ) -> tuple[list[str], list[str], list[str] | None, list[str], list[str]] | None:
        """Return SQL for the tsquery of each clause, (positive, negated, and when everyday
        words were added, each positive clause without them, them alone, and what snippets
        mark); every piece a bound parameter. None when nothing in the words can be
        searched."""

        def piece(value: str, function: str = "websearch_to_tsquery", config: str = CONFIG) -> str:
            name = f"p{len(params)}"
            params[name] = value
            return f"{function}('{config}', :{name})"

        def option(found: Option) -> str:
            if found.prefix:
                word = fold(found.words[0])
                if _PLAIN.fullmatch(word):  # nothing of tsquery's syntax in it
                    # The word as typed begins the indexed stems (no stemming or common
                    # words for a beginning: offe, all), or it is a whole word (misogyny).
                    begins = piece(f"{word}:*", "to_tsquery", "simple")
                    return f"({begins} || {piece(word)})"
            if len(found.words) == 1:
                return piece(found.words[0])
            return piece(f'"{" ".join(found.words)}"')

        def either(options: Iterable[Option]) -> str:
            sql = [option(o) for o in options]
            return f"({' || '.join(sql)})" if len(sql) > 1 else sql[0]

        question = parse(words, self.synonyms, partial=partial, known=self._known)
        positive: list[str] = []
        negative: list[str] = []
        typed: list[str] = []  # each positive clause without its everyday words
        weak: list[str] = []  # and its everyday words alone ("" if none)
        marked: list[str] = []  # and what snippets mark: not an everyday phrase's words
        weak_words = question.weak  # worked out once, not per clause
        for clause in question.clauses:
            sql = either(clause.options)
            (negative if clause.negated else positive).append(sql)
            if weak_words and not clause.negated:
                own = [o for o in clause.options if not o.weak]
                others = [o for o in clause.options if o.weak]
                typed.append(either(own) if others else sql)
                weak.append(either(others) if others else "")
                shown = [o for o in clause.options if not o.weak or len(o.words) == 1]
                marked.append(either(shown) if len(shown) < len(clause.options) else sql)
        if not positive and not negative:
            return None
        return positive, negative, typed or None, weak, marked

    def _known(self, words: Iterable[str]) -> set[str]:
        """Which of the words the vocabulary holds: each looked up by its key (never through
        the trigram index, which a long list would make the planner choose), once a request."""
        wanted = tuple(words)
        asked = g.setdefault("portal_known_words", {})
        if wanted not in asked:
            found = text(
                "SELECT w FROM unnest(CAST(:words AS text[])) w "
                # A range, not =: the planner took the trigram index for =, about 6 ms a
                # word (pg_trgm answers = too); the primary key answers a range in 0.03 ms.
                "WHERE EXISTS (SELECT 1 FROM search_word s WHERE s.word >= w AND s.word <= w)"
            )
            asked[wanted] = set(db.session.scalars(found, {"words": list(wanted)}))
        known: set[str] = asked[wanted]
        return known

    def _suggest(self, words: str, generation: str | None, relaxed: bool) -> str | None:
        """A spelling that finds more (`corrected`), kept per generation of the index; one
        edit away when most of the words were found (all the library applies there)."""
        edits = 1 if relaxed else 2
        key = (generation or "", f"{edits} {words}")
        if generation and key in self._suggestions:
            self._suggestions.move_to_end(key)
            return self._suggestions[key]
        found = self._work_out_suggestion(words, edits)
        if generation:
            self._suggestions[key] = found
            while len(self._suggestions) > CACHED_SUGGESTIONS:
                self._suggestions.popitem(last=False)
        return found

    def _work_out_suggestion(self, words: str, edits: int) -> str | None:
        def known(word: str) -> bool:
            """Held as written, or found by its stem (forces finds force)."""
            found = text("SELECT 1 FROM search_word WHERE word >= :w AND word <= :w")
            return db.session.execute(found, {"w": word}).first() is not None or self._finds(word)

        def options(word: str) -> list[str]:
            near = text(
                "SELECT word FROM search_word WHERE word % :w "
                "ORDER BY similarity(word, :w) DESC, word LIMIT 8"
            )
            return list(db.session.scalars(near, {"w": word}))

        # Only a word that still finds something: the vocabulary keeps the words of case
        # studies archived since the last reindex. The glossary's short forms are words too.
        return corrected(
            words, fold, known, options, usable=self._finds, also=self.synonyms, edits=edits
        )

    def _finds(self, word: str) -> bool:
        return (
            db.session.execute(
                text(
                    "SELECT 1 FROM search_entry WHERE document @@ "  # noqa: S608 - a constant
                    f"websearch_to_tsquery('{CONFIG}', :w) LIMIT 1"
                ),
                {"w": word},
            ).first()
            is not None
        )

    def related(self, case_study_id: int, limit: int = 4) -> list[int]:
        """Case studies whose title or themes share words with this one's (the first
        RELATED_CANDIDATES ranked on the short heading vectors); if too few, any that hold
        those words (at most 200 looked at). Among equals, the most similar titles."""
        sql = """
            WITH me AS (
                SELECT title, to_tsquery('simple', string_agg(quote_literal(l) || :weight, ' | '))
                    AS query
                FROM search_entry, unnest(tsvector_to_array(ts_filter(heading, '{a}'))) l
                WHERE case_study_id = :id GROUP BY title
            ), candidates AS (
                SELECT e.case_study_id, e.title, e.heading FROM search_entry e, me
                WHERE e.case_study_id <> ALL(:exclude) AND e.{vector} @@ me.query
                LIMIT :cap
            ), ranked AS (
                SELECT c.case_study_id, c.title, ts_rank(c.heading, me.query) AS r
                FROM candidates c, me
            ), cut AS (  -- the rank of the last one shown: the titles are compared only
                         -- for those ranked as well or better (trigrams cost most)
                SELECT r FROM ranked ORDER BY r DESC LIMIT 1 OFFSET :limit - 1
            )
            SELECT k.case_study_id FROM ranked k, me
            WHERE k.r >= coalesce((SELECT r FROM cut), '-infinity')
            ORDER BY k.r DESC, similarity(k.title, me.title) DESC, k.case_study_id
            LIMIT :limit
        """
        try:
            found: list[int] = []
            for vector, weight, cap in (
                ("heading", ":A", RELATED_CANDIDATES),
                ("document", "", 200),
            ):
                rows = db.session.execute(
                    text(sql.replace("{vector}", vector)),
                    {
                        "id": case_study_id,
                        "exclude": [case_study_id, *found],
                        "weight": weight,
                        "cap": cap,
                        "limit": limit - len(found),
                    },
                )
                found += [int(r[0]) for r in rows]
                if len(found) >= limit:
                    break
            return found
        except Exception:  # the page shows no related case studies; the log says why
            db.session.rollback()
            failures.report("related", case_study=case_study_id)
            return []


def _row(document: SearchDocument) -> dict[str, object]:
    def clean(value: str) -> str:
        return normalise_text(value.replace(START, " ").replace(STOP, " "))

    themes = " ".join(document.theme_names)
    return {
        "id": document.case_study_id,
        "revision": document.revision_id,
        "title": document.title,
        "summary": document.summary,
        "excerpt": _hide(document.excerpt),
        "force": document.force,
        "themes": list(document.themes),
        "partners": list(document.partners),
        "year": document.year,
        "published_at": document.published_at,
        "a": clean(f"{document.title} {themes}"),
        "b": clean(f"{document.summary} {' '.join(document.force_names)}"),
        "c": clean(
            " ".join(
                [document.body, document.outcomes, document.lessons, " ".join(document.partners)]
            )
        ),
    }


def _spelling_words(document: SearchDocument) -> set[str]:
    source = " ".join([document.title, document.summary, *document.theme_names, *document.partners])
    return {fold(w) for w in _WORDS.findall(source)}


def _hide(value: str) -> str:
    value = value.replace(START, " ").replace(STOP, " ")
    for char in HIDDEN.values():
        value = value.replace(char, " ")
    for char, stand_in in HIDDEN.items():
        value = value.replace(char, stand_in)
    return value


def _snippet(shown: str | None, summary: str, highlighted: bool) -> str:
    if not highlighted or not shown or START not in shown:
        return str(escape(summary))
    html = str(escape(shown))
    for char, stand_in in HIDDEN.items():
        html = html.replace(stand_in, str(escape(char)))
    return html.replace(START, "<mark>").replace(STOP, "</mark>")


def _next_generation() -> int:
    """Name and number a new state of the index, in the writer's transaction (seen when it
    commits), and record it in the history (the last HISTORY_KEPT); return its number."""
    number, token = db.session.execute(
        text(
            "UPDATE portal_search.generation SET token = gen_random_uuid()::text, "
            "number = number + 1 RETURNING number, token"
        )
    ).one()
    db.session.execute(
        text(
            "INSERT INTO portal_search.history (number, token) VALUES (:number, :token) "
            "ON CONFLICT (number) DO UPDATE SET token = excluded.token"
        ),
        {"number": number, "token": token},
    )
    db.session.execute(
        text("DELETE FROM portal_search.history WHERE number <= :number - :kept"),
        {"number": number, "kept": HISTORY_KEPT},
    )
    return int(number)


MARKS = "coalesce(q.marks, q.query)"  # what a snippet marks: the words, not everyday phrases


def _headline(excerpt: str, query: str) -> str:
    """SQL marking the query's words in an excerpt (the columns' SQL names)."""
    return (
        f"ts_headline('{CONFIG}', {excerpt}, {query}, "
        f"'StartSel={START}, StopSel={STOP}, MaxWords=40, MinWords=15, MaxFragments=2, "
        'FragmentDelimiter=" … "\')'
    )


def _rank(vector: str) -> str:
    """SQL ranking the entry `e` on one of its vectors for the query `q`. When everyday words
    were added: those holding the words as typed (`t.typed`) on those words alone, and the
    others below every one of them, in their own order (a rank r becomes -1/(1+r))."""
    weights = "'{0.1, 0.2, 0.4, 1.0}'"
    as_typed = f"ts_rank_cd({weights}, e.{vector}, coalesce(q.typed, q.query))"
    # The second tier by ts_rank: often most of the matches (the typed word the rare one),
    # and ts_rank_cd's cost grows with the everyday words OR-ed in (7.7 µs an entry for six).
    rank = f"ts_rank({weights}, e.{vector}, q.query)"
    return f"(CASE WHEN t.typed THEN {as_typed} ELSE CAST(-1 / (1 + {rank}) AS real) END)"


_NO_IDS = np.zeros(0, dtype=np.int64)
_NO_YEAR = np.iinfo(np.int64).min  # a NULL year (equal to no year ticked) or date


@dataclass(frozen=True)
class _Listed:
    """The ids holding some words, best first, as read in one generation of the index."""

    generation: str
    ids: np.ndarray
    searched: bool  # words were searched (else: every entry, no list needed)
    nothing: bool  # words typed, but nothing searchable in them
    number: int = 0  # the generation's number (migration 0014)
    ranks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    whole: bool = False  # ranked on the whole documents (else on the headings)
    held: bool = False  # relaxed: ordered by how many of the words each holds first

    def dumps(self) -> bytes:
        token = self.generation.encode()
        head = [self.number, int(self.whole), int(self.held), len(self.ids), len(token)]
        body = np.array(head, "<i8").tobytes() + token + self.ids.astype("<i8").tobytes()
        return zlib.compress(body + self.ranks.astype("<f4").tobytes(), 1)

    @classmethod
    def loads(cls, raw: bytes) -> _Listed | None:
        try:
            unpacking = zlib.decompressobj()
            data = unpacking.decompress(raw, 64 + 12 * CACHED_LIST_IDS)
            if unpacking.unconsumed_tail:  # larger than any list we write
                return None
            number, whole, held, count, size = (int(v) for v in np.frombuffer(data[:40], "<i8"))
            generation = data[40 : 40 + size].decode()
            start = 40 + size
            ids = np.frombuffer(data[start : start + 8 * count], "<i8").astype(np.int64)
            ranks = np.frombuffer(data[start + 8 * count :], "<f4").astype(np.float32)
        except (ValueError, UnicodeDecodeError, zlib.error):  # not what we wrote
            return None
        if len(ids) != count or len(ranks) != count or not generation:
            return None
        if len(np.unique(ids)) != count or not np.isfinite(ranks).all():
            return None  # not a list we wrote
        return cls(generation, ids, True, False, number, ranks, bool(whole), bool(held))


@dataclass(frozen=True)
class _Chosen:
    """Every match of a query, in page order, and its rows in the facet table."""

    ids: np.ndarray
    rows: np.ndarray
    table: _FacetTable
    searched: bool
    relaxed: bool
    nothing: bool


# Each entry's facet values and age, in one JSON text: [id, force, themes, partners, year,
# published at in microseconds], ...
_FACET_ROWS = (
    "json_agg(json_build_array(e.case_study_id, e.force, e.themes, e.partners, e.year, "
    "CAST(extract(epoch FROM e.published_at) * 1000000 AS bigint)))::text"
)


def _facet_entry(row: list[Any]) -> tuple[int, tuple[Any, ...]]:
    """(id, (force, themes, partners, year, published at)) from a row of _FACET_ROWS, each
    name one shared string (a worker keeps every entry's, from one generation to the next)."""
    case_study_id, force, themes, partners, year, stamp = row
    return int(case_study_id), (
        sys.intern(force) if force is not None else None,
        tuple(sys.intern(t) for t in themes or ()),
        tuple(sys.intern(p) for p in partners or ()),
        year,
        stamp,
    )


@dataclass(frozen=True)
class _FacetTable:
    """Every entry's facet values and age, in arrays, for one generation of the index."""

    generation: str
    ids: np.ndarray  # the case study ids, ascending; a row is a position in it
    single: dict[str, tuple[np.ndarray, list[str]]]  # force, year: a value code a row (-1 none)
    multi: dict[str, tuple[np.ndarray, np.ndarray, list[str]]]  # theme, partner: (row, code)
    years: np.ndarray  # each row's year as stored (_NO_YEAR for NULL)
    recency: np.ndarray  # each row's place newest first (published_at DESC, id DESC)
    number: int = 0  # the generation's number
    # What it was made from (id -> force, themes, partners, year, published at in
    # microseconds), for the next generation's table; None for one made otherwise.
    entries: dict[int, tuple[Any, ...]] | None = None

    @classmethod
    def load(cls, generation: str, number: int, found: dict[int, tuple[Any, ...]]) -> _FacetTable:
        """From each entry's (force, themes, partners, year, published at in microseconds)
        by case study id."""
        entries = [(i, *found[i]) for i in sorted(found)]

        def codes(values: list[str | None]) -> tuple[np.ndarray, list[str]]:
            names = sorted({v for v in values if v is not None})
            code = {v: n for n, v in enumerate(names)}
            return np.array([-1 if v is None else code[v] for v in values], dtype=np.int64), names

        def pairs(lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
            owner = np.array([n for n, values in enumerate(lists) for _ in values], np.int64)
            flat, names = codes([v for values in lists for v in values])
            return owner, flat, names

        ids = np.array([r[0] for r in entries], dtype=np.int64)
        stamps = np.array([_NO_YEAR if r[5] is None else r[5] for r in entries], np.int64)
        newest_first = np.lexsort((ids, stamps))[::-1]
        recency = np.empty(len(ids), dtype=np.int64)
        recency[newest_first] = np.arange(len(ids))
        return cls(
            generation=generation,
            number=number,
            entries=found,
            ids=ids,
            years=np.array([_NO_YEAR if r[4] is None else r[4] for r in entries], np.int64),
            recency=recency,
            single={
                "force": codes([r[1] for r in entries]),
                "year": codes(
                    [str(r[4]) if r[4] is not None and r[4] > 0 else None for r in entries]
                ),
            },
            multi={
                "theme": pairs([r[2] for r in entries]),
                "partner": pairs([r[3] for r in entries]),
            },
        )

    def rows(self, ids: np.ndarray) -> np.ndarray | None:
        """The rows of these ids; None if one is not in the table."""
        rows = np.searchsorted(self.ids, ids)
        if len(ids) and (rows.max() >= len(self.ids) or (self.ids[rows] != ids).any()):
            return None
        return rows

    def keep(self, rows: np.ndarray, query: SearchQuery) -> np.ndarray:
        """Which of these rows the query's filters keep, as `_matching`'s SQL does: any of
        the forces and years ticked, every theme and every partner (in any case) ticked."""
        keep = np.ones(len(rows), dtype=bool)

        def holding(kind: str, wanted: str, folded: bool = False) -> np.ndarray:
            owner, code, names = self.multi[kind]
            codes = [
                n for n, name in enumerate(names) if (name.lower() if folded else name) == wanted
            ]
            held = np.zeros(len(self.ids), dtype=bool)
            held[owner[np.isin(code, codes)]] = True
            return cast(np.ndarray, held[rows])

        if query.force:
            code, names = self.single["force"]
            ticked = [n for n, name in enumerate(names) if name in set(query.force)]
            keep &= np.isin(code[rows], ticked)
        for theme in set(query.theme):
            keep &= holding("theme", theme)
        if query.year:
            keep &= np.isin(self.years[rows], [int(y) for y in query.year])
        for partner in {p.lower() for p in query.partner}:
            keep &= holding("partner", partner, folded=True)
        return keep

    def count(self, matched: list[int]) -> dict[str, dict[str, int]] | None:
        """The facet counts of these ids as SQL's GROUP BY gives them; None if one is unknown."""
        rows = self.rows(np.asarray(matched, dtype=np.int64))
        return None if rows is None else self.count_rows(rows)

    def count_rows(self, rows: np.ndarray) -> dict[str, dict[str, int]]:
        """The facet counts of these rows as SQL's GROUP BY gives them."""
        chosen = np.zeros(len(self.ids), dtype=bool)
        chosen[rows] = True

        def named(counts: np.ndarray, names: list[str]) -> dict[str, int]:
            return {names[n]: int(counts[n]) for n in np.flatnonzero(counts)}

        facets: dict[str, dict[str, int]] = {}
        for name in ("force", "theme", "year", "partner"):
            if name in self.single:
                code, names = self.single[name]
                held = code[rows]
                facets[name] = named(np.bincount(held[held >= 0], minlength=len(names)), names)
            else:
                owner, code, names = self.multi[name]
                facets[name] = named(np.bincount(code[chosen[owner]], minlength=len(names)), names)
        return facets


class SearchCache:
    """Results shared by every worker, in Redis, keyed by the index's generation: an index
    write makes a new generation, so a publication or withdrawal is seen by the next search.
    Any trouble with Redis only means searching without it for a while."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.25, socket_timeout=0.25, health_check_interval=30
        )
        self.paused_until = 0.0

    def get(self, key: str) -> SearchResults | None:
        raw = self.get_raw(key)
        try:
            return _loaded(raw) if raw is not None else None
        except (ValueError, KeyError, TypeError, zlib.error):  # not what we wrote: ask again
            return None

    def put(self, key: str, results: SearchResults) -> None:
        self.put_raw(key, _dumped(results))

    def get_raw(self, key: str) -> bytes | None:
        if time.monotonic() < self.paused_until:
            return None
        try:
            raw = self.client.get(key)
        except Exception:  # noqa: BLE001 - Redis away: search without the cache
            self._pause()
            return None
        return raw if isinstance(raw, bytes) else None

    def put_raw(self, key: str, value: bytes) -> None:
        if time.monotonic() < self.paused_until:
            return
        try:
            self.client.set(key, value, ex=CACHE_SECONDS)
        except Exception:  # noqa: BLE001 - as get
            self._pause()

    def _pause(self) -> None:
        self.paused_until = time.monotonic() + CACHE_PAUSE_SECONDS
        current_app.logger.warning("search cache unavailable: searching without it", exc_info=True)


def _dumped(results: SearchResults) -> bytes:
    value = {
        "hits": [[h.case_study_id, h.snippet] for h in results.hits],
        "total": results.total,
        "facets": results.facets,
        "suggestion": results.suggestion,
        "relaxed": results.relaxed,
    }
    return zlib.compress(json.dumps(value).encode(), 1)


def _loaded(raw: bytes) -> SearchResults:
    value = json.loads(zlib.decompress(raw))
    return SearchResults(
        hits=[SearchHit(int(i), str(s)) for i, s in value["hits"]],
        total=int(value["total"]),
        facets=value["facets"],
        suggestion=value["suggestion"],
        relaxed=bool(value["relaxed"]),
    )
