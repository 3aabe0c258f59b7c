"""The embedded search backend: a Whoosh index in the instance folder.

Built for speed the way docs/search.md measured it: one searcher per process, reopened
only when the index changes (never `refresh()`, which keeps stale segments in
whoosh-reloaded 2.7.5); facet values read once per searcher into arrays; matching
documents collected once and used for the total, the facets and as the filter of the
scored top hits; snippets only for the hits shown, from stored short text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

import numpy as np
from markupsafe import escape
from whoosh import index
from whoosh.columns import VarBytesColumn
from whoosh.fields import COLUMN, DATETIME, ID, KEYWORD, NUMERIC, STORED, TEXT, Schema
from whoosh.index import EmptyIndexError
from whoosh.query import Or, Phrase, Term
from whoosh.reading import TermNotFound
from whoosh.spelling import Corrector

from ..web.metrics import timed_search
from . import failures, highlight
from .analysis import SYNONYMS, analyzer, corrected, spelling_analyzer
from .contract import SearchDocument, SearchHit, SearchQuery, SearchResults
from .whoosh_build import (
    ARRAYS_EXT,
    BulkWriter,
    CachedAnalysis,
    build_segments,
    commit_segments,
    write_segments,
)
from .whoosh_matching import (
    Codes,
    Matches,
    Segment,
    SegmentArrays,
    View,
    at_least,
    intersect,
    tiered,
    union,
)
from .words import Clause, Option, Question, fold, most, parse

# Two scored fields only: each extra field would walk its own postings on every query.
# Summary and theme names weigh more than the body by appearing twice in `content`.
SEARCHED_FIELDS = ("title", "content")
CACHED_QUERIES = 256
CACHED_MATCHES = 4_000_000  # at most about 48 MB of cached matches per process
CACHED_SUGGESTIONS = 512  # "did you mean" answers kept per index version (a few bytes each)
MERGE_AFTER_SEGMENTS = 4  # the repair job merges small segments once there are this many
SMALL_SEGMENT_DOCS = 5_000  # ...small: merged in well under a second; larger ones stay
MERGE_IN_APPLY_AFTER = 24  # ...and an update does only when they pile up (no job running)
LOCKING = {"timeout": 30.0, "delay": 0.05}  # a writer waits for another process's lock
BUILD_SEGMENT_POSTINGS = 8_000_000  # about 20,000 case studies and 250 MB a segment
OPEN_ATTEMPTS = 3  # reads of the `current` link when a rebuild swaps it meanwhile
PREFIX_SCANNED = 5_000  # indexed words read for one half-typed word, at most
PREFIX_TERMS = 40  # of which the commonest are searched
_ANALYSE = analyzer()


def build_schema() -> Schema:
    """Return the index schema: public fields of published revisions only."""
    text = analyzer()
    return Schema(
        case_study_id=ID(stored=True, unique=True),
        revision_id=STORED(),
        title=TEXT(analyzer=text, stored=True, field_boost=3.0),
        summary=STORED(),
        content=TEXT(analyzer=text),  # summary and themes (twice), body, partners, force...
        # Whole words (not stems) for "Did you mean": never searched, only read for spelling.
        words=TEXT(analyzer=spelling_analyzer(), spelling=True, field_boost=0.0),
        excerpt=STORED(),
        force=ID(stored=True),
        themes=KEYWORD(stored=True, commas=True, scorable=False),
        partners=STORED(),
        year=NUMERIC(int, stored=True),
        published_at=DATETIME(stored=True, sortable=True),
        # Everything the facets and date order need, in one column: read for every
        # document in one sweep when a searcher opens (much faster than stored fields).
        facets=COLUMN(VarBytesColumn()),
    )


class WhooshBackend:
    """Search over a Whoosh index that lives in `root`/current (a link swapped on rebuild)."""

    transactional = False  # files beside the database: changes go through the outbox

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._searcher: Any = None
        # (index folder, generation) the searcher was opened on
        self._opened: tuple[Path, int] | None = None
        self._ix: Any = None
        self._facets: _SearcherState | None = None
        self._segments: dict[tuple[Path, str], Segment] = {}
        self._retired: Any = None  # the searcher before this one
        # The searchers' open files are closed when the backend goes (the build writes
        # separate files, which unlike a compound file's parts are real open files).
        self._open: list[Any] = []
        weakref.finalize(self, _close_all, self._open)
        self._codes = {"force": Codes(), "theme": Codes(), "partner": Codes()}
        self._analyses: list[CachedAnalysis] = []  # analysed words, kept between writes
        self.synonyms: dict[str, str] = {}
        self.set_synonyms(SYNONYMS)

    # The index on disk

    @property
    def current(self) -> Path:
        return self.root / "current"

    def ensure_index(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.current.exists() and index.exists_in(str(self.current)):
            return
        folder = self.root / f"index-{time.time_ns()}"
        folder.mkdir()
        index.create_in(str(folder), build_schema())
        self._point_at(folder)

    def _point_at(self, folder: Path) -> None:
        link = self.root / f".current-{os.getpid()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(folder.name)
        os.replace(link, self.current)  # atomic: readers see the old or the new index

    def _index(self) -> Any:
        return index.open_dir(str(self.current))

    def set_synonyms(self, synonyms: dict[str, str]) -> None:
        cleaned = {k.strip().lower(): v for k, v in synonyms.items() if k.strip() and v.strip()}
        if cleaned != self.synonyms:
            self.synonyms = cleaned
            if self._facets is not None:
                self._facets.forget()  # cached results were ranked with the old list

    def is_current(self) -> bool:
        """Return False when the index on disk was built with another schema (an upgrade)."""
        return set(self._index().schema.names()) == set(build_schema().names())

    def ping(self) -> int:
        count: int = self._index().doc_count()
        return count

    # Writing

    def apply(self, upserts: Iterable[SearchDocument], removals: Iterable[int]) -> None:
        upserts, removals = list(upserts), list(removals)
        if not upserts and not removals:
            return
        # Whoosh's writer with this process's analysis cache (whoosh_build.py): a word
        # analysed once is not analysed again for the next approval.
        writer = self._writer(self._bulk_writer)
        try:
            for document in upserts:
                writer.update_document(**_fields(document))
            for case_study_id in removals:
                writer.delete_by_term("case_study_id", str(case_study_id))
        except BaseException:
            writer.cancel()
            raise
        # Merging segments costs up to a second at 10,000 (docs/search.md): never while
        # someone waits for an approval. The repair job merges them (merge_segments);
        # only if it does not run do they merge here, many at once.
        if len(_small(writer.segments)) >= MERGE_IN_APPLY_AFTER:
            writer.commit(mergetype=_merge_small_segments)
        else:
            writer.commit(merge=False)

    def merge_segments(self) -> bool:
        """Merge the small segments that updates leave into one, once there are several;
        return whether it did (the repair job calls this, so approvals never wait)."""
        writer = self._writer(self._bulk_writer)
        if len(_small(writer.segments)) < MERGE_AFTER_SEGMENTS:
            writer.cancel()  # nothing written: searchers stay valid
            return False
        writer.commit(mergetype=_merge_small_segments)
        return True

    def _bulk_writer(self, ix: Any) -> BulkWriter:
        return BulkWriter(ix, analyses=self._analyses, arrays=SEARCHED_FIELDS, **LOCKING)

    def _writer(self, make: Callable[[Any], Any]) -> Any:
        for attempt in range(OPEN_ATTEMPTS):
            try:
                return make(self._index())
            except (EmptyIndexError, OSError):
                # Another process's commit removed the table of contents we had just
                # found, or a rebuild swapped the link: look again.
                if attempt == OPEN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def rebuild(self, documents: Iterable[SearchDocument]) -> int:
        # The same files as Whoosh's writer, several times sooner (whoosh_build.py); a
        # segment per BUILD_SEGMENT_POSTINGS postings bounds the memory a build holds.
        # Separate files, not one compound file: Whoosh copies a compound file's part
        # into memory each time a reader opens it (about 100 ms for the terms of 10,000
        # case studies, twice an approval: the writer's deletion and the new searcher).
        return self._swap_in_new(
            lambda fresh, _folder: build_segments(
                fresh,
                map(_fields, documents),
                BUILD_SEGMENT_POSTINGS,
                compound=False,
                arrays=SEARCHED_FIELDS,
            )
        )

    def rebuild_parts(
        self,
        parts: Sequence[Iterable[SearchDocument]],
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """Build a new index from several parts at once, a process each (the cores of the
        machine), and swap it in, as `rebuild` does. Each part is read in its own process,
        so it must pickle (documents.PublishedPart reads its case studies there); its
        documents follow the previous part's, in the same order as one process's build."""
        return self._swap_in_new(
            lambda _fresh, folder: _build_in_processes(folder, parts, progress)
        )

    def _swap_in_new(self, build: Callable[[Any, Path], int]) -> int:
        """Build a new index in a folder of its own, then point `current` at it."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f"index-{time.time_ns()}"
        folder.mkdir()
        try:
            count = build(index.create_in(str(folder), build_schema()), folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        previous = self.current.resolve() if self.current.exists() else None
        self._point_at(folder)
        if previous is not None and previous != folder:
            # Searchers still reading the old files keep them open until they close.
            shutil.rmtree(previous, ignore_errors=True)
        return count

    def indexed_versions(self) -> dict[int, int]:
        with self._index().searcher() as searcher:
            return {
                int(fields["case_study_id"]): int(fields["revision_id"])
                for fields in searcher.all_stored_fields()
            }

    # Reading

    def _current_searcher(self) -> tuple[Any, _SearcherState]:
        """Return this process's searcher and what it knows, reopened if the index changed."""
        with self._lock:
            for attempt in range(OPEN_ATTEMPTS):
                try:
                    return self._open_current()
                except (EmptyIndexError, OSError):
                    # A rebuild swapped the link and removed the old folder between our
                    # reading the link and opening what it named: read the link again.
                    if attempt == OPEN_ATTEMPTS - 1:
                        raise
                    self._opened = None
            raise AssertionError("unreachable")

    def _open_current(self) -> tuple[Any, _SearcherState]:
        """Open (or keep) the searcher of the folder `current` names; under the lock."""
        folder = self.current.resolve()
        if self._opened is None or self._opened[0] != folder:
            self._ix = index.open_dir(str(folder))  # reads the schema once per index
        ix = self._ix
        state = (folder, ix.latest_generation())
        if self._searcher is None or self._opened != state:
            old, searcher = self._searcher, ix.searcher()
            try:
                facets = _SearcherState(searcher, self._view(folder, searcher))
            except BaseException:
                searcher.close()
                raise
            # All three together, or none: a failure above leaves the last good searcher.
            self._searcher, self._opened, self._facets = searcher, state, facets
            # A request on another thread may still be reading the old searcher: it is
            # closed one reopen later, not now.
            if self._retired is not None:
                self._retired.close()
            self._retired = old
            self._open[:] = [s for s in (old, searcher) if s is not None]
        # Opened together with the searcher above: never None here.
        return self._searcher, cast(_SearcherState, self._facets)

    def _view(self, folder: Path, searcher: Any) -> View:
        """Line up the searcher's segments, reading only those not seen before."""
        parts: list[tuple[Segment, Any, int]] = []
        kept: dict[tuple[Path, str], Segment] = {}
        for reader, offset in searcher.reader().leaf_readers():
            if reader.segment() is None:  # an index holding no documents yet: nothing to read
                continue
            key = (folder, reader.segment().segment_id())
            segment = self._segments.get(key)
            if segment is None:
                arrays = SegmentArrays.open(folder / f"{key[1]}.{ARRAYS_EXT}")
                segment = Segment(reader, SEARCHED_FIELDS, _decode_facets, self._codes, arrays)
            kept[key] = segment
            parts.append((segment, reader, offset))
        self._segments = kept  # segments merged away are dropped
        return View(searcher, parts)

    def forget(self, everything: bool = False) -> None:
        """Drop this process's cached query results, and with `everything` the postings read
        so far too (benchmarks use this to time a query typed for the first time)."""
        with self._lock:
            if self._facets is not None:
                self._facets.forget()
            if everything:
                for segment in self._segments.values():
                    segment.forget()

    def write(self, upserts: Iterable[SearchDocument], removals: Iterable[int]) -> None:
        """Not transactional: the outbox applies changes after the commit (see apply)."""
        raise NotImplementedError("Whoosh is written through the outbox, after the commit")

    def query(self, query: SearchQuery) -> SearchResults:
        with timed_search("whoosh"):  # /metrics: portal_search_duration_seconds
            try:
                return self._query(query)
            except Exception:  # a query must never become an error page; the log says why
                failures.report("query", query)
                return SearchResults(hits=[], total=0)

    def _known(self, searcher: Any) -> Callable[[Iterable[str]], set[str]]:
        """Which words the index holds (to split joined compounds such as nighttime)."""
        reader = searcher.reader()

        def known(words: Iterable[str]) -> set[str]:
            return {
                word
                for word in words
                if (terms := highlight.terms_of(word))
                and all(("content", term) in reader for term in terms)
            }

        return known

    def _expand(self, searcher: Any, prefix: str) -> set[str]:
        """The indexed words starting with `prefix`: the commonest, a bounded number."""
        found: dict[str, int] = {}
        # Segment by segment: over several, Whoosh's reader merges their word lists in
        # Python, several times slower than reading each.
        for leaf, _ in searcher.reader().leaf_readers():
            for field in SEARCHED_FIELDS:
                for n, (term, info) in enumerate(leaf.iter_prefix(field, prefix)):
                    if n >= PREFIX_SCANNED:
                        break
                    word = term.decode("utf-8") if isinstance(term, bytes) else str(term)
                    found[word] = found.get(word, 0) + info.doc_frequency()
        return set(sorted(found, key=lambda w: (-found[w], w))[:PREFIX_TERMS])

    def _option(self, searcher: Any, option: Option) -> Any:
        if option.prefix:
            word = option.words[0]
            terms = set(highlight.terms_of(word)) | self._expand(searcher, fold(word))
            if not terms:
                return None
            return Or([Term(f, t) for t in sorted(terms) for f in SEARCHED_FIELDS])
        tokens = [t.text for t in _ANALYSE(" ".join(option.words))]
        if not tokens:  # only words the index leaves out (the, and...)
            return None
        if len(tokens) == 1:
            return Or([Term(f, tokens[0]) for f in SEARCHED_FIELDS])
        return Or([Phrase(f, tokens) for f in SEARCHED_FIELDS])

    def _clause(self, searcher: Any, clause: Clause) -> Any:
        options = [q for q in (self._option(searcher, o) for o in clause.options) if q is not None]
        return Or(options) if options else None

    def _evaluate(
        self, searcher: Any, state: _SearcherState, question: Question
    ) -> tuple[Matches, bool]:
        """Every live document holding all the clauses, or if none does, most of them;
        those holding them only through everyday words ranked below those that do not."""
        view = state.view
        # A clause of words the index leaves out (the, and...) asks for nothing.
        positive: list[Any] = []
        weak: list[Any] = []  # each positive clause's everyday words alone (or None)
        negative: list[Any] = []
        for clause in question.clauses:
            if clause.negated:
                if (compiled := self._clause(searcher, clause)) is not None:
                    negative.append(compiled)
                continue
            typed = Clause(tuple(o for o in clause.options if not o.weak))
            everyday = Clause(tuple(o for o in clause.options if o.weak))
            as_typed, others = self._clause(searcher, typed), self._clause(searcher, everyday)
            if as_typed is not None or others is not None:
                positive.append(as_typed)
                weak.append(others)
        relaxed = False
        if positive:
            # Each clause as typed, and with its everyday words (a union of the two).
            typed_found = [view.evaluate(q) if q is not None else Matches.empty() for q in positive]
            found = [
                union([held, view.evaluate(others)]) if others is not None else held
                for held, others in zip(typed_found, weak, strict=True)
            ]
            matches = intersect(found)
            if len(matches.docs) and question.weak:
                as_typed = intersect(typed_found).docs
                # None holds every word as typed: most of the words, as without everyday
                # words (which would otherwise hide those holding more of the words typed).
                matches = tiered(matches, as_typed) if len(as_typed) else Matches.empty()
            if not len(matches.docs) and len(found) > 1:
                matches = at_least(found, most(len(found)), typed_found if question.weak else None)
                relaxed = bool(len(matches.docs))
            if not len(matches.docs) and question.weak:  # one clause: its everyday words
                matches = tiered(intersect(found), np.empty(0, dtype=np.int64))
        elif negative and not question.positive:
            matches = Matches(view.live_docs, np.zeros(view.count, dtype=np.float32))
        else:
            return Matches.empty(), False
        excluded = [view.evaluate(q) for q in negative]
        if excluded:
            gone = union(excluded).docs
            keep = ~np.isin(matches.docs, gone, assume_unique=True)
            matches = Matches(matches.docs[keep], matches.scores[keep])
        return matches, relaxed

    def _matches(self, query: SearchQuery) -> tuple[Any, _SearcherState, Any, Matches, bool]:
        """Return the searcher, its state, the positive query (for marks), every filtered
        match, and whether they hold most of the words rather than all."""
        searcher, state = self._current_searcher()
        view = state.view
        text = query.text.strip()
        marks = None
        relaxed = False
        if text:
            question = parse(
                text, self.synonyms, partial=query.partial, known=self._known(searcher)
            )
            # A snippet marks no word of an everyday phrase (change of life: not "changed").
            shown = [
                Clause(tuple(o for o in c.options if not o.weak or len(o.words) == 1))
                for c in question.positive
            ]
            positive = [self._clause(searcher, c) for c in shown]
            marks = Or([q for q in positive if q is not None])
            found, relaxed = state.matches(
                (query.partial, text), lambda: self._evaluate(searcher, state, question)
            )
        else:
            found = Matches(view.live_docs, np.zeros(view.count, dtype=np.float32))
        keep = view.mask(self._codes, query.force, query.theme, query.year, query.partner)
        if keep is not None:
            chosen = keep[found.docs]
            found = Matches(found.docs[chosen], found.scores[chosen])
        return searcher, state, marks, found, relaxed

    def _query(self, query: SearchQuery) -> SearchResults:
        searcher, state, marks, found, relaxed = self._matches(query)
        view = state.view
        text = query.text.strip()
        counts = view.facet_counts(found.docs, self._codes)
        start = (max(1, query.page) - 1) * query.per_page
        newest = query.sort == "newest" or not text
        page = view.page(found, newest, start, query.per_page)
        terms = highlight.positive_terms(marks)
        hits = [SearchHit(int(view.case_id[n]), _snippet(searcher, terms, int(n))) for n in page]
        total = len(found.docs)
        suggestion = (
            # Most of the words found: only a spelling one edit away (all the library
            # applies there; a name the library lacks is often two from one of its words).
            state.suggestion(
                text, lambda: _suggest(searcher, text, self.synonyms, 1 if relaxed else 2)
            )
            if text and (total < 3 or relaxed) and not query.partial
            else None
        )
        return SearchResults(
            hits=hits, total=total, facets=counts, suggestion=suggestion, relaxed=relaxed
        )

    def ranked_ids(self, query: SearchQuery) -> list[int]:
        try:
            _, state, _, found, _ = self._matches(query)
            newest = query.sort == "newest" or not query.text.strip()
            # The same ordering as a page's, over every match: page 1 holding them all.
            order = state.view.page(found, newest, 0, len(found.docs))
            ids: list[int] = state.view.case_id[order].tolist()
            return ids
        except Exception:  # as query(): never an error page
            failures.report("ranked_ids", query)
            return []

    def related(self, case_study_id: int, limit: int = 4) -> list[int]:
        """The case studies scoring best for this one's key terms (scored on arrays)."""
        try:
            searcher, state = self._current_searcher()
            docnum = searcher.document_number(case_study_id=str(case_study_id))
            if docnum is None:
                return []
            text = searcher.stored_fields(docnum).get("excerpt", "")
            terms = searcher.key_terms_from_text("content", text, numterms=12)
            like = Or([Term("content", word, boost=weight) for word, weight in terms])
            found = state.view.evaluate(like)
            others = found.docs != docnum
            top = state.view.page(
                Matches(found.docs[others], found.scores[others]), False, 0, limit
            )
            return [int(state.view.case_id[n]) for n in top]
        except Exception:  # the page shows no related case studies; the log says why
            failures.report("related", case_study=case_study_id)
            return []


def _close_all(searchers: list[Any]) -> None:
    for searcher in searchers:
        searcher.close()


def _small(segments: list[Any]) -> list[Any]:
    """The segments updates left: small ones, never the largest (the last build's)."""
    if not segments:
        return []
    largest = max(segments, key=lambda s: s.doc_count_all())
    return [s for s in segments if s is not largest and s.doc_count_all() < SMALL_SEGMENT_DOCS]


def _merge_small_segments(writer: Any, segments: list[Any]) -> list[Any]:
    """Whoosh merge policy: the small segments become one; big ones are never rewritten."""
    from whoosh.reading import SegmentReader

    small = _small(segments)
    for segment in small:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        writer.add_reader(reader)
        reader.close()
    return [s for s in segments if s not in small]


def _build_in_processes(
    folder: Path,
    parts: Sequence[Iterable[SearchDocument]],
    progress: Callable[[int], object] | None,
) -> int:
    """Write each part's segments in a process of its own, then name them all, in the
    order of the parts, in the new index's table of contents; return how many documents.

    Each process is a new interpreter running `python -m portal.search.build_part`: not a
    fork (the caller may have threads), and not multiprocessing's spawn, which would run
    the caller's main script again in each child."""
    children: list[tuple[subprocess.Popen[bytes], Connection]] = []
    try:
        for part in parts:
            children.append(_start_part(folder, part))
        done = [0] * len(children)
        written: list[list[Any]] = [[] for _ in children]
        waiting: dict[Connection, int] = {c: n for n, (_, c) in enumerate(children)}
        reported = 0
        while waiting:
            for ready in wait(list(waiting)):
                connection = cast(Connection, ready)
                n = waiting[connection]
                try:
                    message: tuple[Any, ...] = connection.recv()
                except EOFError:
                    try:
                        code: int | None = children[n][0].wait(5)
                    except subprocess.TimeoutExpired:
                        code = None
                    raise RuntimeError(
                        f"index build: part {n + 1} ended without a result (exit code {code})"
                    ) from None
                if message[0] == "failed":
                    raise RuntimeError(f"index build: part {n + 1} failed\n{message[1]}")
                done[n] = message[-1]
                if message[0] == "done":
                    written[n] = message[1]
                    del waiting[connection]
            if progress is not None and sum(done) // 1000 > reported:
                reported = sum(done) // 1000
                progress(reported * 1000)
        for child, _ in children:
            child.wait()
    finally:
        for child, connection in children:
            connection.close()
            if child.poll() is None:
                child.kill()
                child.wait()
    commit_segments(index.open_dir(str(folder)), [s for segments in written for s in segments])
    return sum(done)


def _start_part(
    folder: Path, part: Iterable[SearchDocument]
) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start a process that builds one part; return it and where its messages arrive."""
    child_reads, parent_writes = os.pipe()  # (read end, write end)
    parent_reads, child_writes = os.pipe()
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds `portal`
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        child = subprocess.Popen(  # noqa: S603 - this interpreter, a module of ours
            [sys.executable, "-m", "portal.search.build_part", str(child_reads), str(child_writes)],
            pass_fds=(child_reads, child_writes),
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        for fd in (child_reads, parent_writes, parent_reads, child_writes):
            os.close(fd)
        raise
    os.close(child_reads)
    os.close(child_writes)
    receiving = Connection(parent_reads, writable=False)
    try:
        with Connection(parent_writes, readable=False) as sending:
            sending.send((str(folder), part))
    except BaseException:  # the part would not pickle, or the child died at once
        receiving.close()
        child.kill()
        child.wait()
        raise
    return child, receiving


def _build_part(folder: str, part: Iterable[SearchDocument], connection: Any) -> bool:
    """A build process's work (`rebuild_parts`): read its part, write its segments, send
    them back with its progress on the way; return whether it succeeded."""
    try:
        count = 0

        def fields() -> Iterator[dict[str, object]]:
            nonlocal count
            for document in part:
                count += 1
                yield _fields(document)

        segments = write_segments(
            index.open_dir(folder),
            fields(),
            BUILD_SEGMENT_POSTINGS,
            compound=False,
            arrays=SEARCHED_FIELDS,
            progress=lambda done: connection.send(("progress", done)),
        )
        connection.send(("done", segments, count))
        return True
    except BaseException:
        connection.send(("failed", traceback.format_exc()))
        return False
    finally:
        connection.close()


def _fields(document: SearchDocument) -> dict[str, object]:
    weighty = f"{document.summary} {' '.join(document.theme_names)}"
    content = " ".join(
        [
            weighty,
            weighty,
            document.body,
            " ".join(document.partners),
            " ".join(document.force_names),
            document.outcomes,
            document.lessons,
        ]
    )
    return {
        "case_study_id": str(document.case_study_id),
        "revision_id": document.revision_id,
        "title": document.title,
        "summary": document.summary,
        "content": content,
        # Titles, summaries, themes and partners carry the words people misspell; the whole
        # body would make indexing twice as slow for little gain.
        "words": f"{weighty} {document.title} {' '.join(document.partners)}",
        "excerpt": document.excerpt,
        "force": document.force,
        "themes": ",".join(document.themes),
        "partners": list(document.partners),
        "year": document.year if document.year is not None else 0,
        "published_at": document.published_at,
        "facets": json.dumps(
            [
                document.force,
                list(document.themes),
                document.year,
                list(document.partners),
                document.published_at.timestamp(),
                document.case_study_id,
            ]
        ).encode(),
    }


class _SearcherState:
    """What one searcher knows beyond the index: its segments as arrays, recent queries."""

    def __init__(self, searcher: Any, view: View) -> None:
        self.searcher = searcher
        self.view = view
        self._cache: OrderedDict[tuple[bool, str], tuple[Matches, bool]] = OrderedDict()
        self._cached_docs = 0  # matches held by the cache: 12 bytes each
        self._cache_lock = threading.Lock()
        # "Did you mean" for words typed, kept for this index version: a misspelling is
        # typed again with each filter ticked (a fifth of a worker's time when not kept).
        self._suggestions: OrderedDict[str, str | None] = OrderedDict()

    def suggestion(self, text: str, work_out: Callable[[], str | None]) -> str | None:
        with self._cache_lock:
            if text in self._suggestions:
                self._suggestions.move_to_end(text)
                return self._suggestions[text]
        found = work_out()
        with self._cache_lock:
            self._suggestions[text] = found
            while len(self._suggestions) > CACHED_SUGGESTIONS:
                self._suggestions.popitem(last=False)
        return found

    def forget(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._cached_docs = 0
            self._suggestions.clear()  # the glossary's short forms are spellings too

    def matches(
        self, key: tuple[bool, str], evaluate: Callable[[], tuple[Matches, bool]]
    ) -> tuple[Matches, bool]:
        """Return every live document matching a query, scored, and whether they match most
        of its words rather than all.

        Kept for this index version, so ticking a filter, paging or going Back repeats no
        search.
        """
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        found = evaluate()
        with self._cache_lock:
            if key not in self._cache:
                self._cache[key] = found
                self._cached_docs += len(found[0].docs)
            while len(self._cache) > 1 and (
                len(self._cache) > CACHED_QUERIES or self._cached_docs > CACHED_MATCHES
            ):
                _, (dropped, _) = self._cache.popitem(last=False)
                self._cached_docs -= len(dropped.docs)
        return found


def _decode_facets(raw: bytes | None) -> list[Any]:
    values: list[Any] = json.loads(raw or b"[]")  # older entries may hold fewer values
    defaults: list[Any] = ["", [], None, [], 0, 0]
    return (values + defaults[len(values) :])[:6]


def _snippet(searcher: Any, terms: set[str], docnum: int) -> str:
    stored = searcher.stored_fields(docnum)
    text = stored.get("excerpt") or stored.get("summary") or ""
    return highlight.snippet(text, terms) or str(escape(stored.get("summary") or text[:220]))


class _SegmentsCorrector(Corrector):
    """Whoosh's ReaderCorrector (the same suggestions, in the same order), each segment's
    words searched with that segment's own automaton: over several segments (a build in
    several processes), Whoosh's would compare the word with every indexed word in Python,
    about 100 ms a word at 10,000 case studies."""

    def __init__(self, searcher: Any, fieldname: str) -> None:
        self.reader = searcher.reader()
        self.leaves = [leaf for leaf, _ in self.reader.leaf_readers()]
        self.fieldname = fieldname

    def _suggestions(self, text: str, maxdist: int, prefix: int) -> Iterator[tuple[float, str]]:
        seen: set[str] = set()
        for leaf in self.leaves:
            for word in leaf.terms_within(self.fieldname, text, maxdist, prefix=prefix):
                if word not in seen:
                    seen.add(word)
                    frequency = self.reader.frequency(self.fieldname, word) or 1
                    yield 0 - (maxdist + (1.0 / frequency * 0.5)), word


def _suggest(searcher: Any, text: str, synonyms: dict[str, str], edits: int) -> str | None:
    corrector = _SegmentsCorrector(searcher, "words")
    reader = searcher.reader()

    def known(word: str) -> bool:
        """Held as written, or found by its stem (forces finds force: not a misspelling)."""
        terms = highlight.terms_of(word)
        stemmed = any(all((f, t) in reader for t in terms) for f in SEARCHED_FIELDS)
        return bool(terms) and stemmed or _in_a_live_document(searcher, word)

    return corrected(
        text,
        str.lower,
        known,
        # The corrector's order: the commonest first among equally close spellings.
        # Two edits whatever `edits`: the automaton counts a swap (allise, allies) as two.
        lambda word: corrector.suggest(word, limit=8, maxdist=2),
        # A segment keeps the words of documents deleted from it until it is merged: never
        # offer a word only an archived (or replaced) case study held.
        usable=lambda word: _in_a_live_document(searcher, word),
        also=synonyms,  # the glossary's short forms are words too
        edits=edits,
    )


def _in_a_live_document(searcher: Any, word: str) -> bool:
    reader = searcher.reader()
    if not reader.has_deletions():
        return bool(searcher.doc_frequency("words", word) > 0)
    try:
        postings = reader.postings("words", word)
    except TermNotFound:
        return False
    return any(not reader.is_deleted(docnum) for docnum in postings.all_ids())
