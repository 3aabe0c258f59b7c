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

import re
from collections.abc import Iterable

from flask import g
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


class PostgresBackend:
    """Search in PostgreSQL; reads and writes go through the app's database session."""

    transactional = True  # queue_change writes the index in the caller's transaction

    def __init__(self) -> None:
        self.synonyms: dict[str, str] = {}
        self.set_synonyms(SYNONYMS)

    # The index

    def ensure_index(self) -> None:
        """The tables come with the migrations (0006)."""

    def set_synonyms(self, synonyms: dict[str, str]) -> None:
        self.synonyms = {
            k.strip().lower(): v.strip() for k, v in synonyms.items() if k.strip() and v.strip()
        }

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
                    force, themes, partners, year, published_at, document, heading)
                SELECT CAST(:id AS integer), CAST(:revision AS integer), CAST(:title AS text),
                    CAST(:summary AS text), CAST(:excerpt AS text), CAST(:force AS text),
                    CAST(:themes AS text[]), CAST(:partners AS text[]), CAST(:year AS integer),
                    CAST(:published_at AS timestamp),
                    head || setweight(to_tsvector('{CONFIG}', :c), 'C'), head
                FROM (SELECT setweight(to_tsvector('{CONFIG}', :a), 'A')
                    || setweight(to_tsvector('{CONFIG}', :b), 'B') AS head) h
                ON CONFLICT (case_study_id) DO UPDATE SET
                    revision_id = excluded.revision_id, title = excluded.title,
                    summary = excluded.summary, excerpt = excluded.excerpt,
                    force = excluded.force, themes = excluded.themes,
                    partners = excluded.partners, year = excluded.year,
                    published_at = excluded.published_at, document = excluded.document,
                    heading = excluded.heading
                """  # noqa: S608 - only constants are formatted in; values are bound
            ),
            [_row(d) for d in sorted(upserts, key=lambda d: d.case_study_id)],
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
        return len(seen)

    def indexed_versions(self) -> dict[int, int]:
        rows = db.session.execute(text("SELECT case_study_id, revision_id FROM search_entry"))
        return {int(a): int(b) for a, b in rows}

    # Reading

    def query(self, query: SearchQuery) -> SearchResults:
        with timed_search("postgres"):  # /metrics: portal_search_duration_seconds
            try:
                # However odd the words, a search gives up rather than hold the database.
                db.session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
                return self._query(query)
            except Exception:  # a query must never become an error page; the log says why
                db.session.rollback()
                failures.report("query", query)
                return SearchResults(hits=[], total=0)

    def _matching(
        self, query: SearchQuery, params: dict[str, object], *, relaxed: bool = False
    ) -> tuple[str, bool, str | None] | None:
        """Return the FROM ... WHERE of the matches, whether words were searched, and (when
        `relaxed`) the SQL counting the clauses each match holds. None: nothing can match
        (words typed but nothing searchable in them; or no relaxing a single clause)."""
        words = query.text.strip()
        held: str | None = None
        joined = ""
        if words:
            built = self._tsqueries(words, query.partial, params)
            if built is None:
                return None
            positive, negative = built
            excluded = "".join(f" && !!{sql}" for sql in negative)
            if relaxed:
                if len(positive) < 2:
                    return None
                # Which clauses each case study holds, from the GIN index one clause at a
                # time (never reading the long vectors row by row), kept when at least half.
                each = " UNION ALL ".join(
                    f"SELECT case_study_id FROM search_entry WHERE document @@ {sql}"  # noqa: S608
                    for sql in positive
                )
                need = most(len(positive))
                counted = f"SELECT case_study_id, count(*) AS held FROM ({each}) c"  # noqa: S608
                joined = (
                    f" JOIN ({counted} GROUP BY case_study_id HAVING count(*) >= {need}) h"
                    " ON h.case_study_id = e.case_study_id"
                )
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
        source = (  # noqa: S608 - only constants and parameter names are formatted in
            f"FROM search_entry e{joined}, (SELECT {select}) q "
            f"WHERE {' AND '.join(where) or 'true'}"
        )
        return source, bool(words), held

    @staticmethod
    def _order(query: SearchQuery, searched: bool, total: int, held: str | None) -> str:
        """Return the ORDER BY of the matches: newest first, or best first."""
        if query.sort == "newest" or not searched:
            return "e.published_at DESC, e.case_study_id DESC"
        # Ranking reads each match's vector: for a broad query that would be thousands of
        # long bodies, so it ranks on the short heading vector instead (title, themes,
        # summary, force), where the best matches of a broad query stand out anyway.
        # Most words first (relaxed): then the heading decides among equals.
        vector = "e.document" if total <= RANK_WHOLE_DOCUMENTS and not held else "e.heading"
        rank = f"ts_rank_cd('{{0.1, 0.2, 0.4, 1.0}}', {vector}, q.query) DESC, e.case_study_id"
        return f"{held} DESC, {rank}" if held else rank

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

    def ranked_ids(self, query: SearchQuery) -> list[int]:
        try:
            params: dict[str, object] = {}
            matching = self._matching(query, params)
            if matching is None:
                return []
            source, searched, held = matching
            total = db.session.execute(text(f"SELECT count(*) {source}"), params).scalar_one()
            if not total and searched and self._relax(query):
                loose: dict[str, object] = {}
                relaxed = self._matching(query, loose, relaxed=True)
                if relaxed is not None:
                    source, searched, held = relaxed
                    params = loose
                    total = db.session.execute(
                        text(f"SELECT count(*) {source}"), params
                    ).scalar_one()
            order = self._order(query, searched, total, held)
            rows = db.session.execute(
                text(f"SELECT e.case_study_id {source} ORDER BY {order}"),  # noqa: S608
                params,
            )
            return [int(r[0]) for r in rows]
        except Exception:  # as query(): never an error page
            db.session.rollback()
            failures.report("ranked_ids", query)
            return []

    def _facets(self, source: str, params: dict[str, object]) -> dict[str, dict[str, int]]:
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

    def _query(self, query: SearchQuery) -> SearchResults:
        words = query.text.strip()
        params: dict[str, object] = {}
        matching = self._matching(query, params)
        if matching is None:  # typed, but nothing searchable in it: no match
            return SearchResults(hits=[], total=0, facets={})
        source, searched, held = matching
        facets = self._facets(source, params)
        total = sum(facets["force"].values())
        relaxed = False
        if not total and searched and self._relax(query):
            loose: dict[str, object] = {}
            matching = self._matching(query, loose, relaxed=True)
            if matching is not None:
                loose_facets = self._facets(matching[0], loose)
                if loose_facets["force"]:
                    source, searched, held = matching
                    params, facets, relaxed = loose, loose_facets, True
                    total = sum(facets["force"].values())
        order = self._order(query, searched, total, held)
        highlight = (
            f"ts_headline('{CONFIG}', page.excerpt, page.query, "
            f"'StartSel={START}, StopSel={STOP}, MaxWords=40, MinWords=15, MaxFragments=2, "
            'FragmentDelimiter=" … "\')'
            if searched
            else "page.summary"
        )
        params.update(limit=query.per_page, offset=(max(1, query.page) - 1) * query.per_page)
        page = db.session.execute(
            text(
                f"""
                SELECT page.case_study_id, {highlight}, page.summary FROM (
                    SELECT e.case_study_id, e.excerpt, e.summary, q.query {source}
                    ORDER BY {order} LIMIT :limit OFFSET :offset
                ) page
                """  # noqa: S608 - only constants and parameter names are formatted in
            ),
            params,
        ).all()
        hits = [
            SearchHit(int(cid), _snippet(shown, summary, searched)) for cid, shown, summary in page
        ]
        suggestion = self._suggest(words) if words and total < 3 and not query.partial else None
        return SearchResults(
            hits=hits,
            total=total,
            facets=facets,
            suggestion=suggestion,
            relaxed=relaxed,
        )

    def _tsqueries(
        self, words: str, partial: bool, params: dict[str, object]
    ) -> tuple[list[str], list[str]] | None:
        """Return SQL for the tsquery of each clause, (positive, negated); every piece a
        bound parameter. None when nothing in the words can be searched."""

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

        question = parse(words, self.synonyms, partial=partial, known=self._known)
        positive: list[str] = []
        negative: list[str] = []
        for clause in question.clauses:
            sql = " || ".join(option(o) for o in clause.options)
            sql = f"({sql})" if len(clause.options) > 1 else sql
            (negative if clause.negated else positive).append(sql)
        if not positive and not negative:
            return None
        return positive, negative

    def _known(self, words: Iterable[str]) -> set[str]:
        """Which of the words the vocabulary holds: each looked up by its key (never through
        the trigram index, which a long list would make the planner choose), once a request."""
        wanted = tuple(words)
        asked = g.setdefault("portal_known_words", {})
        if wanted not in asked:
            found = text(
                "SELECT w FROM unnest(CAST(:words AS text[])) w "
                "WHERE EXISTS (SELECT 1 FROM search_word s WHERE s.word = w)"
            )
            asked[wanted] = set(db.session.scalars(found, {"words": list(wanted)}))
        known: set[str] = asked[wanted]
        return known

    def _suggest(self, words: str) -> str | None:
        def known(word: str) -> bool:
            found = text("SELECT 1 FROM search_word WHERE word = :w")
            return db.session.execute(found, {"w": word}).first() is not None

        def options(word: str) -> list[str]:
            near = text(
                "SELECT word FROM search_word WHERE word % :w "
                "ORDER BY similarity(word, :w) DESC, word LIMIT 8"
            )
            return list(db.session.scalars(near, {"w": word}))

        # Only a word that still finds something: the vocabulary keeps the words of case
        # studies archived since the last reindex.
        return corrected(words, fold, known, options, usable=self._finds)

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
        """Case studies whose title or themes share words with this one's (ranked on the
        short heading vectors); if too few, any that hold those words (at most 200 looked
        at). Among equals, the most similar titles (trigrams)."""
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
            )
            SELECT c.case_study_id FROM candidates c, me
            ORDER BY ts_rank_cd(c.heading, me.query) DESC, similarity(c.title, me.title) DESC,
                c.case_study_id
            LIMIT :limit
        """
        try:
            found: list[int] = []
            for vector, weight, cap in (("heading", ":A", 5000), ("document", "", 200)):
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
