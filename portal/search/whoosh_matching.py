"""Matching, scoring, filtering and facet counts for the Whoosh backend, in numpy.

Whoosh walks postings one document at a time in Python, which is what makes a broad query
slow at 100,000 case studies (docs/search.md). Here Whoosh parses the query, reads the
postings and checks phrases; everything per document is done on arrays instead:

- each index segment is read once into arrays (facet values, field lengths), and a term's
  postings are read block by block into arrays and kept; segments never change apart from
  deletions, so after a write only the new, small segment is read;
- the parsed query is evaluated as set operations on sorted document numbers, scoring every
  match with BM25F (the same formula as Whoosh's default, over the same boosted weights);
- filters and facet counts are masks and bincounts; the page is taken with argpartition.
"""

from __future__ import annotations

import mmap
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from itertools import chain
from pathlib import Path
from pickle import loads  # noqa: S403 - Whoosh's own encoding of positions, from our index
from typing import Any, cast

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.system import _INT_SIZE
from whoosh.util.numeric import byte_to_length

B, K1 = 0.75, 1.2  # Whoosh's BM25F defaults
_LENGTHS = np.array([byte_to_length(i) for i in range(256)], dtype=np.float32)
_EMPTY_IDS = np.zeros(0, dtype=np.int64)
_EMPTY_SCORES = np.zeros(0, dtype=np.float32)
SEGMENT_POSTINGS_CACHED = 512  # terms per segment
SEGMENT_POSITIONS_CACHED = 32  # terms' positions per segment, read for phrases only
_KEY = np.int64(1 << 24)  # (document, position) pairs as one integer: positions stay below


class Codes:
    """Small integers for facet values (forces, themes, partners), shared by all segments."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}
        self._lock = threading.Lock()

    def code(self, value: str) -> int:
        found = self._codes.get(value)
        if found is not None:
            return found
        with self._lock:
            if value not in self._codes:
                self._codes[value] = len(self.values)
                self.values.append(value)
            return self._codes[value]

    def find(self, wanted: Callable[[str], bool]) -> np.ndarray:
        """Return the codes of the values for which `wanted(value)` is true."""
        return np.array([c for c, v in enumerate(list(self.values)) if wanted(v)], dtype=np.int64)


class SegmentArrays:
    """A segment's postings as plain arrays, memory-mapped (written by whoosh_build.py).

    Whoosh's blocks hold each posting's positions beside its document, so reading a
    common word's documents unpickles every position too; here a term's documents and
    weights are a slice of a mapped file, and a phrase's positions another.
    """

    def __init__(self, path: Path) -> None:
        with open(f"{path}_terms", "rb") as handle:
            meta = pickle.load(handle)  # noqa: S301 - written by our own build, as Whoosh's files
        self.fields: frozenset[str] = frozenset(meta["fields"])
        self._where: dict[tuple[str, bytes], tuple[int, int, int]] = meta["terms"]
        postings, positions = meta["postings"], meta["positions"]
        with open(path, "rb") as handle:
            mapped: Any = (
                mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if postings else b""
            )
        self._docs = np.frombuffer(mapped, dtype=np.uint32, count=postings)
        self._weights = np.frombuffer(mapped, np.float32, postings, 4 * postings)
        self._counts = np.frombuffer(mapped, np.uint32, postings, 8 * postings)
        self._positions = np.frombuffer(mapped, np.uint32, positions, 12 * postings)

    @classmethod
    def open(cls, path: Path) -> SegmentArrays | None:
        """The arrays of a segment, or None if it has none (written by Whoosh's writer)."""
        try:
            return cls(path)
        except FileNotFoundError:
            return None

    def postings(self, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray]:
        found = self._where.get((field, term))
        if found is None:
            return _EMPTY_IDS, _EMPTY_SCORES
        start, count, _ = found
        end = start + count
        return self._docs[start:end].astype(np.int64), self._weights[start:end].copy()

    def positions(self, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        """As Segment.positions; None when they are not here (read them from Whoosh)."""
        found = self._where.get((field, term))
        if found is None:
            return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32)
        start, count, first = found
        if first < 0:
            return None
        counts = self._counts[start : start + count].astype(np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)))
        return starts, self._positions[first : first + int(starts[-1])].astype(np.int32)


class Segment:
    """One index segment read into arrays; its postings are read on first use and kept."""

    def __init__(
        self,
        reader: Any,
        fields: tuple[str, ...],
        decode: Callable[[bytes | None], list[Any]],
        codes: dict[str, Codes],
        arrays: SegmentArrays | None = None,
    ) -> None:
        self.arrays = arrays
        self.size = size = reader.doc_count_all()
        self.lengths: dict[str, np.ndarray] = {}
        for name in fields:
            self.lengths[name] = _field_lengths(reader, name, size)
        force = np.zeros(size, dtype=np.int64)
        year = np.zeros(size, dtype=np.int64)
        stamp = np.zeros(size, dtype=np.float64)
        case_id = np.zeros(size, dtype=np.int64)
        theme_doc, theme_code, partner_doc, partner_code = [], [], [], []
        column = reader.column_reader("facets") if size else []
        for n, raw in enumerate(column):
            f, themes, y, partners, s, cid = decode(raw)
            force[n] = codes["force"].code(f)
            year[n] = y or 0
            stamp[n], case_id[n] = s, cid
            for theme in themes:
                theme_doc.append(n)
                theme_code.append(codes["theme"].code(theme))
            for partner in partners:
                partner_doc.append(n)
                partner_code.append(codes["partner"].code(partner))
        self.force, self.year, self.stamp, self.case_id = force, year, stamp, case_id
        self.theme_doc = np.array(theme_doc, dtype=np.int64)
        self.theme_code = np.array(theme_code, dtype=np.int64)
        self.partner_doc = np.array(partner_doc, dtype=np.int64)
        self.partner_code = np.array(partner_code, dtype=np.int64)
        self._postings: OrderedDict[tuple[str, bytes], tuple[np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self._values: OrderedDict[tuple[str, bytes], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def postings(self, reader: Any, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Return (document numbers, weights) of a term in this segment, deleted ones too."""
        if self.arrays is not None and field in self.arrays.fields:
            return self.arrays.postings(field, term)
        key = (field, term)
        with self._lock:
            if key in self._postings:
                self._postings.move_to_end(key)
                return self._postings[key]
        with self._lock:  # a reader's files are not to be read by two threads at once
            found = _read_postings(reader, field, term)
            self._postings[key] = found
            while len(self._postings) > SEGMENT_POSTINGS_CACHED:
                self._postings.popitem(last=False)
        return found

    def positions(self, reader: Any, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Return a term's positions for each of its postings (in the order of `postings`):
        (where each posting's positions start in the second array, plus one end; positions).
        """
        if self.arrays is not None and field in self.arrays.fields:
            found = self.arrays.positions(field, term)
            if found is not None:
                return found
        key = (field, term)
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            counts, flat = _positions(_read_values(reader, field, term))
            found = (np.concatenate(([0], np.cumsum(counts))), flat.astype(np.int32))
            self._values[key] = found
            while len(self._values) > SEGMENT_POSITIONS_CACHED:
                self._values.popitem(last=False)
        return found

    def forget(self) -> None:
        with self._lock:
            self._postings.clear()
            self._values.clear()


def _field_lengths(reader: Any, name: str, size: int) -> np.ndarray:
    perdoc = reader._perdoc
    column = perdoc._cached_reader(_lenfield(name), LENGTHS_COLUMN)
    if column is None:
        return np.ones(size, dtype=np.float32)
    raw = column._dbfile.get(column._basepos, min(column._count, size))
    codes = np.zeros(size, dtype=np.uint8)
    codes[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return _LENGTHS[codes]


def _read_postings(reader: Any, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray]:
    if (field, term) not in reader._terms:
        return _EMPTY_IDS, _EMPTY_SCORES
    matcher = reader._terms.matcher(field, term, reader.schema[field].format)
    ids, weights = [], []
    if isinstance(matcher, W3LeafMatcher):
        # Block by block: each block's ids and weights come out as sequences at once.
        while not matcher._atend:
            matcher._read_ids()
            matcher._read_weights()
            ids.append(np.asarray(matcher._ids, dtype=np.int64))
            weights.append(np.asarray(matcher._weights, dtype=np.float32))
            matcher._next_block()
    else:  # a term in a single document, written inline
        one_ids, one_weights = [], []
        while matcher.is_active():
            one_ids.append(matcher.id())
            one_weights.append(matcher.weight())
            matcher.next()
        ids.append(np.array(one_ids, dtype=np.int64))
        weights.append(np.array(one_weights, dtype=np.float32))
    if not ids:
        return _EMPTY_IDS, _EMPTY_SCORES
    return np.concatenate(ids), np.concatenate(weights)


def _read_values(reader: Any, field: str, term: bytes) -> np.ndarray:
    if (field, term) not in reader._terms:
        return np.zeros(0, dtype=object)
    matcher = reader._terms.matcher(field, term, reader.schema[field].format)
    values = []
    if isinstance(matcher, W3LeafMatcher):
        while not matcher._atend:
            matcher._read_values()
            values.extend(matcher._values)
            matcher._next_block()
    else:
        while matcher.is_active():
            values.append(matcher.value())
            matcher.next()
    found = np.empty(len(values), dtype=object)
    found[:] = values
    return found


def _positions(encoded: Iterable[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Decode Whoosh's Positions values: (how many per posting, every position in order)."""
    ends = (v if v.endswith(b".") else v + b"." for v in encoded)
    deltas = [loads(v[_INT_SIZE:]) for v in ends]  # noqa: S301 - our own index, as Whoosh does
    counts = np.fromiter((len(d) for d in deltas), dtype=np.int64, count=len(deltas))
    if not counts.sum():
        return counts, _EMPTY_IDS
    flat = np.fromiter(chain.from_iterable(deltas), dtype=np.int64, count=int(counts.sum()))
    running = np.cumsum(flat)
    starts = np.repeat(np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    before = np.concatenate(([0], running))[starts]  # the sum up to the posting's start
    return counts, running - before


class Matches:
    """Sorted document numbers with a score each."""

    __slots__ = ("docs", "scores")

    def __init__(self, docs: np.ndarray, scores: np.ndarray) -> None:
        self.docs, self.scores = docs, scores

    @classmethod
    def empty(cls) -> Matches:
        return cls(_EMPTY_IDS, _EMPTY_SCORES)


class View:
    """Every segment of one searcher, side by side, with the deletions of that moment."""

    def __init__(self, searcher: Any, segments: list[tuple[Segment, Any, int]]) -> None:
        self.searcher = searcher
        self.segments = segments  # (segment, its reader, offset of its first document)
        self.size = sum(seg.size for seg, _, _ in segments)
        self.live = np.ones(self.size, dtype=bool)
        for _, reader, offset in segments:
            deleted = list(reader.segment().deleted_docs()) if reader.has_deletions() else []
            if deleted:
                self.live[offset + np.array(deleted, dtype=np.int64)] = False

        def joined(name: str) -> np.ndarray:
            parts = [getattr(seg, name) for seg, _, _ in segments]
            return np.concatenate(parts) if parts else np.zeros(0)

        def pairs(doc_name: str, code_name: str) -> tuple[np.ndarray, np.ndarray]:
            doc_parts = [getattr(seg, doc_name) + offset for seg, _, offset in segments]
            code_parts = [getattr(seg, code_name) for seg, _, _ in segments]
            if not doc_parts:
                return _EMPTY_IDS, _EMPTY_IDS
            docs, codes = np.concatenate(doc_parts), np.concatenate(code_parts)
            keep = self.live[docs] if len(docs) else np.zeros(0, dtype=bool)
            return docs[keep], codes[keep]

        self.force = joined("force").astype(np.int64)
        self.year = joined("year").astype(np.int64)
        self.stamp = joined("stamp").astype(np.float64)
        self.case_id = joined("case_id").astype(np.int64)
        self.theme_doc, self.theme_code = pairs("theme_doc", "theme_code")
        self.partner_doc, self.partner_code = pairs("partner_doc", "partner_code")
        self.live_docs = np.flatnonzero(self.live)
        self.count = len(self.live_docs)
        self.lengths: dict[str, np.ndarray] = {}
        self.average: dict[str, float] = {}
        for name in segments[0][0].lengths if segments else ():
            lengths = np.concatenate([seg.lengths[name] for seg, _, _ in segments])
            self.lengths[name] = lengths
            live = lengths[self.live]
            self.average[name] = float(live.mean()) if len(live) and live.mean() > 0 else 1.0
        # Newest first, and among equals (a bulk import) the later case study first.
        order = np.lexsort((self.case_id, self.stamp))
        self.recency = np.empty(self.size, dtype=np.int64)
        self.recency[order] = np.arange(self.size)

    # Terms and queries

    def term(self, field: str, text: str, boost: float = 1.0) -> Matches:
        term = text.encode("utf-8") if isinstance(text, str) else text
        ids, weights = [], []
        for seg, reader, offset in self.segments:
            seg_ids, seg_weights = seg.postings(reader, field, term)
            if len(seg_ids):
                ids.append(seg_ids + offset)
                weights.append(seg_weights)
        if not ids:
            return Matches.empty()
        docs, tf = np.concatenate(ids), np.concatenate(weights)
        keep = self.live[docs]
        docs, tf = docs[keep], tf[keep]
        if field not in self.lengths or not len(docs):
            return Matches(docs, np.full(len(docs), boost, dtype=np.float32))
        idf = np.log(self.count / (len(docs) + 1)) + 1.0
        norm = K1 * ((1 - B) + B * self.lengths[field][docs] / self.average[field])
        scores = (idf * tf * (K1 + 1) / (tf + norm) * boost).astype(np.float32)
        return Matches(docs, scores)

    def evaluate(self, node: Any) -> Matches:
        """Return every live document the parsed query matches, with its score."""
        boost = float(getattr(node, "boost", 1.0) or 1.0)
        if isinstance(node, wq.Term):
            return self.term(node.fieldname, node.text, boost)
        if isinstance(node, type(wq.NullQuery)):
            return Matches.empty()
        if isinstance(node, wq.Every):
            return Matches(self.live_docs, np.zeros(self.count, dtype=np.float32))
        if isinstance(node, wq.AndNot):
            positive, negative = self.evaluate(node.a), self.evaluate(node.b)
            keep = ~np.isin(positive.docs, negative.docs, assume_unique=True)
            return Matches(positive.docs[keep], positive.scores[keep])
        if isinstance(node, wq.AndMaybe):
            required, optional = self.evaluate(node.a), self.evaluate(node.b)
            return _add_where_present(required, optional)
        if isinstance(node, wq.Require):
            required, scope = self.evaluate(node.a), self.evaluate(node.b)
            keep = np.isin(required.docs, scope.docs, assume_unique=True)
            return Matches(required.docs[keep], required.scores[keep])
        if isinstance(node, wq.Not):
            excluded = self.evaluate(node.query)
            keep = ~np.isin(self.live_docs, excluded.docs, assume_unique=True)
            docs = self.live_docs[keep]
            return Matches(docs, np.zeros(len(docs), dtype=np.float32))
        if isinstance(node, wq.And):
            return _scaled(intersect([self.evaluate(q) for q in node.subqueries]), boost)
        if isinstance(node, (wq.Or, wq.DisjunctionMax)):
            return _scaled(union([self.evaluate(q) for q in node.subqueries]), boost)
        if isinstance(node, wq.Phrase):
            return self._phrase(node, boost)
        return self._by_whoosh(node)

    def _phrase(self, node: Any, boost: float) -> Matches:
        words = [self.term(node.fieldname, word) for word in node.words]
        candidates = intersect(words)
        if not len(candidates.docs) or len(node.words) < 2 or node.slop != 1:
            return _scaled(candidates, boost)
        # Only documents holding every word are read: word k must stand at p + k.
        together: np.ndarray | None = None
        for k, word in enumerate(node.words):
            docs, pos = self._word_positions(node.fieldname, word, candidates.docs)
            keys = docs * _KEY + (pos - k)
            together = (
                keys if together is None else np.intersect1d(together, keys, assume_unique=True)
            )
            if not len(together):
                break
        # Never None: the loop above ran, there being two words or more.
        found = _distinct_sorted(cast(np.ndarray, together) // _KEY)
        keep = np.isin(candidates.docs, found, assume_unique=True)
        return _scaled(Matches(candidates.docs[keep], candidates.scores[keep]), boost)

    def _word_positions(
        self, field: str, word: str | bytes, docs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (document, position) pairs of a word in the given documents."""
        term = word.encode("utf-8") if isinstance(word, str) else word
        found_docs, found_positions = [], []
        for seg, reader, offset in self.segments:
            seg_ids, _ = seg.postings(reader, field, term)
            mine = docs[(docs >= offset) & (docs < offset + seg.size)]
            if not len(seg_ids) or not len(mine):
                continue
            starts, flat = seg.positions(reader, field, term)
            at = np.searchsorted(seg_ids, mine - offset)
            counts = starts[at + 1] - starts[at]
            # Every position of every chosen posting, gathered without a Python loop.
            first = np.repeat(starts[at], counts)
            step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            found_docs.append(np.repeat(mine, counts))
            found_positions.append(flat[first + step].astype(np.int64))
        if not found_docs:
            return _EMPTY_IDS, _EMPTY_IDS
        return np.concatenate(found_docs), np.concatenate(found_positions)

    def _by_whoosh(self, node: Any) -> Matches:
        docs = np.unique(np.fromiter(node.docs(self.searcher), dtype=np.int64))
        docs = docs[self.live[docs]] if len(docs) else docs
        return Matches(docs, np.ones(len(docs), dtype=np.float32))

    # Filters, facets, order

    def mask(
        self,
        codes: dict[str, Codes],
        force: tuple[str, ...],
        theme: tuple[str, ...],
        year: tuple[int, ...],
        partner: tuple[str, ...],
    ) -> np.ndarray | None:
        """Return which documents pass the filters (None: no filter): any of the forces and
        years ticked (a case study has one of each), every theme and partner ticked."""
        keep: np.ndarray | None = None

        def both(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
            return b if a is None else a & b

        if force:
            wanted = codes["force"].find(lambda v: v in force)
            keep = both(keep, np.isin(self.force, wanted))
        if year:
            keep = both(keep, np.isin(self.year, np.array(list(year), dtype=np.int64)))
        # A case study has several themes and partners: each one ticked must be among them.
        for one in theme:
            wanted = codes["theme"].find(one.__eq__)
            keep = both(keep, self._having(self.theme_doc, self.theme_code, wanted))
        for one in {p.casefold() for p in partner}:
            wanted = codes["partner"].find(_folded_equals(one))
            keep = both(keep, self._having(self.partner_doc, self.partner_code, wanted))
        return keep

    def _having(
        self, pair_doc: np.ndarray, pair_code: np.ndarray, wanted: np.ndarray
    ) -> np.ndarray:
        having = np.zeros(self.size, dtype=bool)
        having[pair_doc[np.isin(pair_code, wanted)]] = True
        return having

    def facet_counts(self, docs: np.ndarray, codes: dict[str, Codes]) -> dict[str, dict[str, int]]:
        chosen = np.zeros(self.size, dtype=bool)
        chosen[docs] = True

        def named(counts: np.ndarray, values: list[str]) -> dict[str, int]:
            return {values[c]: int(counts[c]) for c in np.flatnonzero(counts)}

        def by_pairs(
            pair_doc: np.ndarray, pair_code: np.ndarray, values: list[str]
        ) -> dict[str, int]:
            selected = pair_code[chosen[pair_doc]] if len(pair_doc) else pair_code
            return named(np.bincount(selected, minlength=len(values)), values)

        forces = named(np.bincount(self.force[docs], minlength=1), codes["force"].values)
        years = np.bincount(self.year[docs], minlength=1) if len(docs) else np.zeros(1)
        return {
            "force": forces,
            "theme": by_pairs(self.theme_doc, self.theme_code, codes["theme"].values),
            "year": {str(y): int(years[y]) for y in np.flatnonzero(years) if y},
            "partner": by_pairs(self.partner_doc, self.partner_code, codes["partner"].values),
        }

    def page(self, matches: Matches, newest: bool, start: int, count: int) -> np.ndarray:
        """Return the document numbers of one page, best (or newest) first."""
        docs = matches.docs
        end = min(len(docs), start + count)
        if start >= end:
            return _EMPTY_IDS
        # Best first; among equals, the earlier document (Whoosh's order).
        key = -self.recency[docs].astype(np.float64) if newest else -matches.scores
        everything = end == len(docs)
        if everything:
            top = np.arange(len(docs))
        else:
            # argpartition picks any of the documents tied at the cut: take them all, so that
            # the order below (ties by document number) is the same for every page.
            cut = key[np.argpartition(key, end - 1)[end - 1]]
            top = np.flatnonzero(key <= cut)
        top = top[np.lexsort((docs[top], key[top]))]
        return docs[top[start:end]]


def _folded_equals(wanted: str) -> Callable[[str], bool]:
    return lambda value: value.casefold() == wanted


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def _scaled(matches: Matches, boost: float) -> Matches:
    if boost == 1.0:
        return matches
    return Matches(matches.docs, matches.scores * boost)


def intersect(parts: list[Matches]) -> Matches:
    if not parts:
        return Matches.empty()
    parts = sorted(parts, key=lambda m: len(m.docs))
    result = parts[0]
    for other in parts[1:]:
        if not len(result.docs):
            break
        docs, mine, theirs = np.intersect1d(
            result.docs, other.docs, assume_unique=True, return_indices=True
        )
        result = Matches(docs, result.scores[mine] + other.scores[theirs])
    return result


def union(parts: list[Matches]) -> Matches:
    parts = [p for p in parts if len(p.docs)]
    if not parts:
        return Matches.empty()
    if len(parts) == 1:
        return parts[0]
    docs = np.concatenate([p.docs for p in parts])
    scores = np.concatenate([p.scores for p in parts])
    unique, inverse = np.unique(docs, return_inverse=True)
    return Matches(unique, np.bincount(inverse, weights=scores).astype(np.float32))


RELAXED_STEP = np.float32(10_000)  # each clause held outranks any score difference


def at_least(parts: list[Matches], need: int, typed: list[Matches] | None = None) -> Matches:
    """Documents found by at least `need` of the parts, the most parts first, then by score.
    `typed`: each part's matches by the words as typed (not through everyday words); then
    only the parts held as typed are counted for the order (everyday words widen what is
    found, never outrank the words typed)."""
    parts = [p for p in parts if len(p.docs)]
    if not parts:
        return Matches.empty()
    docs = np.concatenate([p.docs for p in parts])
    scores = np.concatenate([p.scores for p in parts])
    unique, inverse, held = np.unique(docs, return_inverse=True, return_counts=True)
    summed = np.bincount(inverse, weights=scores)
    keep = held >= need
    unique, held, summed = unique[keep], held[keep], summed[keep]
    if typed is not None:
        as_typed = [p.docs for p in typed if len(p.docs)]
        held = np.zeros(len(unique), dtype=np.int64)
        if as_typed:
            found, counts = np.unique(np.concatenate(as_typed), return_counts=True)
            at = np.minimum(np.searchsorted(found, unique), len(found) - 1)
            held = np.where(found[at] == unique, counts[at], 0)
    return Matches(unique, (held * RELAXED_STEP + summed).astype(np.float32))


def tiered(matches: Matches, typed: np.ndarray) -> Matches:
    """`matches` with those not in `typed` (found only through everyday words) ranked below
    every one that is, in their own order: a score s becomes -1/(1+s)."""
    below = ~np.isin(matches.docs, typed, assume_unique=True)
    if not below.any():
        return matches
    scores = matches.scores.copy()
    scores[below] = -1 / (1 + np.maximum(scores[below], 0))
    return Matches(matches.docs, scores)


def _add_where_present(base: Matches, extra: Matches) -> Matches:
    if not len(extra.docs) or not len(base.docs):
        return base
    _, mine, theirs = np.intersect1d(base.docs, extra.docs, assume_unique=True, return_indices=True)
    scores = base.scores.copy()
    scores[mine] += extra.scores[theirs]
    return Matches(base.docs, scores)
