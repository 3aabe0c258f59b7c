"""Build a Whoosh index fast: the same segment files Whoosh's own writer makes, sooner.

Profiling a 2,000-document build (docs/benchmarks.md) found Whoosh's writer spending its
time per token and per posting in Python: the analysis chain ran for every one of a
document's words, each posting was pickled into a sorting pool on disk, read back, merged
and handed one by one to the codec, which also read each document's field length back
from the file it had just written. Here, with the codec's own block writer and no change
to what is written:

- each distinct word is analysed once per build (a cache shared by the fields with the
  same analyser), and a document's positions are laid out from the cached results;
- postings are gathered in memory per term, in compact arrays, and are already in
  document order: there is nothing to sort but the terms;
- the codec's postings writer writes each block from a whole slice of a term's postings.

A test (tests/unit/test_whoosh_build.py) checks that the files written are byte for byte
those of Whoosh's writer for the same documents.
"""

from __future__ import annotations

import os
import pickle
from array import array
from collections.abc import Callable, Iterable
from typing import Any

from whoosh.analysis import CompositeAnalyzer, RegexTokenizer
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.formats import Positions
from whoosh.util.numeric import byte_to_length
from whoosh.writing import SegmentWriter

ARRAYS_EXT = "arrays"  # a segment's postings as plain arrays, for reading without Whoosh
TERMS_SUFFIX = "_terms"  # ...and where each term's are in them
CACHED_WORDS = 200_000  # distinct spellings of words analysed and kept, per analyser
_POSITIONS = Positions()  # how Whoosh encodes a posting's positions
_LENGTH_OF_BYTE = [byte_to_length(b) if b else None for b in range(256)]


class CachedAnalysis:
    """One analyser's output for whole texts, each distinct word analysed only once.

    Only what the chain does per word is cached (its term, or its terms and their
    offsets for a compound, or that it is a stop word); where words stand is worked out
    here exactly as the chain's stop filter (renumbering) and compound filter (shifting
    the words after a compound) do.
    """

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self._findall = analyzer.items[0].expression.findall
        # a word → None (a stop word), its term, or (terms and offsets, positions it adds)
        self._words: dict[str, Any] = {}
        self._several: set[str] = set()  # the words that are not one term in place

    @staticmethod
    def supports(analyzer: Any) -> bool:
        """Whether an analyser is a regex tokenizer followed by filters (ours are)."""
        return (
            isinstance(analyzer, CompositeAnalyzer)
            and type(analyzer.items[0]) is RegexTokenizer
            and not analyzer.items[0].gaps
            and not analyzer.items[0].expression.groups
        )

    def _learn(self, raw: str) -> None:
        out: list[tuple[bytes, int]] = []
        for token in self.analyzer(raw, positions=True, removestops=False, mode="index"):
            if token.stopped:
                self._words[raw] = None
                return
            out.append((token.text.encode("utf-8"), token.pos))
        if len(out) == 1 and out[0][1] == 0:
            self._words[raw] = out[0][0]
            return
        self._words[raw] = (tuple(out), max((pos for _, pos in out), default=0))
        self._several.add(raw)

    def positions(self, text: str) -> dict[bytes, list[int]]:
        """Return each term (UTF-8) of the text with its positions, numbered as the chain
        numbers them."""
        words = self._words
        if len(words) >= CACHED_WORDS:
            words.clear()
            self._several.clear()
        raws = self._findall(text)
        for raw in set(raws).difference(words):
            self._learn(raw)
        entries = [words[raw] for raw in raws]
        found: dict[bytes, list[int]] = {}
        # The stop filter's numbering: the first kept word keeps its own place, then +1.
        first = next((n for n, entry in enumerate(entries) if entry is not None), 0)
        kept = [entry for entry in entries if entry is not None]
        if self._several.isdisjoint(raws):
            for pos, term in enumerate(kept, first):
                places = found.get(term)
                if places is None:
                    found[term] = [pos]
                else:
                    places.append(pos)
            return found
        shift = 0  # the compound filter's: positions added by the compounds so far
        for pos, entry in enumerate(kept, first + 0):
            if type(entry) is bytes:
                terms: Iterable[tuple[bytes, int]] = ((entry, 0),)
                extra = 0
            else:
                terms, extra = entry
            for term, offset in terms:
                places = found.get(term)
                if places is None:
                    found[term] = [pos + shift + offset]
                else:
                    places.append(pos + shift + offset)
            shift += extra
        return found


class TermPostings:
    """Every posting of the segment being written, per field and term, in compact arrays."""

    def __init__(self) -> None:
        # field → term → (document numbers, weights, values end to end, where each ends)
        self.fields: dict[str, dict[bytes, Any]] = {}
        self.count = 0
        self.fieldnames: set[str] = set()

    def field(self, fieldname: str) -> dict[bytes, Any]:
        terms = self.fields.get(fieldname)
        if terms is None:
            terms = self.fields[fieldname] = {}
            self.fieldnames.add(fieldname)
        return terms

    def add(self, item: tuple[str, bytes, int, float, bytes | None]) -> None:
        """Whoosh's pool interface: one (field, term, document, weight, value) posting."""
        fieldname, term, docnum, weight, value = item
        terms = self.field(fieldname)
        entry = terms.get(term)
        if entry is None:
            entry = terms[term] = _new_entry()
        docs, weights, values, ends, _, _ = entry
        if docs and docnum <= docs[-1]:
            raise ValueError("postings must come in document order")
        docs.append(docnum)
        weights.append(weight)
        values += value or b""
        ends.append(len(values))
        self.count += 1  # no count of positions: this term's stay out of the arrays file

    def cleanup(self) -> None:
        self.fields = {}


def _new_entry() -> tuple[array[int], array[float], bytearray, array[int], array[int], array[int]]:
    # documents, weights, values end to end, where each ends; and for the arrays file:
    # how many positions each posting has (known only if one per posting), every position
    return (array("I"), array("d"), bytearray(), array("I"), array("I"), array("I"))


class BulkWriter(SegmentWriter):
    """Whoosh's segment writer with the analysis and postings above (same files, faster).

    For building an index from scratch: nothing is merged into it (commit with
    merge=False or optimize=True on a new index).
    """

    def __init__(
        self,
        ix: Any,
        analyses: list[CachedAnalysis] | None = None,
        arrays: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(ix, **kwargs)
        self.pool = TermPostings()
        self._arrays_fields = arrays  # fields whose postings also go to the arrays file
        self._arrays: tuple[tuple[array[Any], ...], bytes] | None = None
        # One cache per analyser, shared by its fields (and by the writers of a process
        # when the caller passes the same list: each opening of an index unpickles new
        # analysers, so an equal analyser's cache is used).
        self._analyses = [] if analyses is None else analyses
        self._fast: dict[str, tuple[CachedAnalysis, float, dict[int, bytes]]] = {}
        for name, field in self.schema.items():
            if field.vector or field.separate_spelling():
                raise ValueError(f"field {name}: term vectors or separate spelling")
            analyzer = getattr(field, "analyzer", None)
            if type(field.format) is Positions and CachedAnalysis.supports(analyzer):
                analysis = self._analysis(analyzer)
                self._fast[name] = (analysis, field.format.field_boost, {})

    def _analysis(self, analyzer: Any) -> CachedAnalysis:
        for analysis in self._analyses:
            if analysis.analyzer is analyzer or analysis.analyzer == analyzer:
                return analysis
        analysis = CachedAnalysis(analyzer)
        self._analyses.append(analysis)
        return analysis

    def add_document(self, **fields: Any) -> None:
        """Add one document: Whoosh's add_document, with the fast path for text fields."""
        self._check_state()
        perdocwriter = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        docboost = self._doc_boost(fields)
        fieldnames = sorted(name for name in fields if not name.startswith("_"))
        self._check_fields(schema, fieldnames)
        perdocwriter.start_doc(docnum)
        try:
            for fieldname in fieldnames:
                value = fields.get(fieldname)
                if value is None:
                    continue
                field = schema[fieldname]
                length = 0
                if field.indexed:
                    fieldboost = self._field_boost(fields, fieldname, docboost)
                    fast = self._fast.get(fieldname)
                    if fast is not None and isinstance(value, str):
                        length = self._add_text(fieldname, docnum, value, fieldboost, fast)
                    else:
                        for tbytes, freq, weight, vbytes in field.index(value):
                            if field.scorable:
                                length += freq
                            self.pool.add((fieldname, tbytes, docnum, weight * fieldboost, vbytes))
                    if not field.scorable:
                        length = 0
                customval = fields.get(f"_stored_{fieldname}", value)
                perdocwriter.add_field(
                    fieldname, field, customval if field.stored else None, length
                )
                column = field.column_type
                if column and customval is not None:
                    perdocwriter.add_column_value(
                        fieldname, column, field.to_column_value(customval)
                    )
        except Exception:
            perdocwriter.cancel_doc()
            raise
        perdocwriter.finish_doc()
        self._added = True
        self.docnum += 1

    def _add_text(
        self,
        fieldname: str,
        docnum: int,
        text: str,
        fieldboost: float,
        fast: tuple[CachedAnalysis, float, dict[int, bytes]],
    ) -> int:
        """Add a text field's postings (Positions values, as Whoosh encodes them)."""
        analysis, boost, single = fast
        pool = self.pool
        terms = pool.field(fieldname)
        encode = _POSITIONS.encode
        length = 0
        found = analysis.positions(text)
        pool.count += len(found)
        for term, places in found.items():
            freq = len(places)
            length += freq
            if freq == 1:
                value = single.get(places[0])
                if value is None:
                    value = single[places[0]] = encode(places)
            else:
                value = encode(places)
            entry = terms.get(term)
            if entry is None:
                entry = terms[term] = _new_entry()
            docs, weights, values, ends, counts, positions = entry
            docs.append(docnum)
            weights.append(float(freq) * boost * fieldboost)
            values += value
            ends.append(len(values))
            counts.append(freq)
            positions.extend(places)
        return length

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        lengths = self.per_document_reader() if self.codec.length_stats else None
        try:
            _write_postings(self.fieldwriter, self.schema, lengths, self.pool)
        finally:
            self.fieldwriter.close()
            if lengths is not None:
                lengths.close()
        if self._arrays_fields:
            self._arrays = _gather_arrays(self.pool, self._arrays_fields)

    def _assemble_segment(self) -> None:
        super()._assemble_segment()
        folder = getattr(self.storage, "folder", None)
        if self._arrays is not None and folder is not None:
            # Beside the segment's files, not inside its compound file; named after the
            # segment, so Whoosh deletes it with the segment. Written before the table
            # of contents that names the segment, so no reader sees the one without.
            data, terms = self._arrays
            base = os.path.join(folder, f"{self.newsegment.segment_id()}.{ARRAYS_EXT}")
            with open(base, "wb") as handle:
                for part in data:
                    handle.write(part)
            with open(f"{base}{TERMS_SUFFIX}", "wb") as handle:
                handle.write(terms)
        self._arrays = None


def _gather_arrays(
    pool: TermPostings, fields: tuple[str, ...]
) -> tuple[tuple[array[Any], ...], bytes]:
    """The arrays file of a segment: every posting's document, weight and count of
    positions, then every position (uint32, uint32, float32 as read back, uint32), and
    where each term's are (pickled)."""
    docs, weights, counts, positions = array("I"), array("d"), array("I"), array("I")
    where: dict[tuple[str, bytes], tuple[int, int, int]] = {}
    for fieldname in fields:
        for term, entry in pool.fields.get(fieldname, {}).items():
            term_docs, term_weights, _, _, term_counts, term_positions = entry
            start = len(docs)
            docs.extend(term_docs)
            weights.extend(term_weights)
            if len(term_counts) == len(term_docs):
                where[(fieldname, term)] = (start, len(term_docs), len(positions))
                counts.extend(term_counts)
                positions.extend(term_positions)
            else:  # postings merged from another segment: read positions from Whoosh
                where[(fieldname, term)] = (start, len(term_docs), -1)
                counts.extend(array("I", bytes(4 * len(term_docs))))
    data = (docs, array("f", weights), counts, positions)  # written one after another
    terms = pickle.dumps(
        {"fields": fields, "postings": len(docs), "positions": len(positions), "terms": where},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return data, terms


def _field_lengths(lengths: Any, fieldname: str) -> list[int | None] | None:
    """Each document's field length as the codec reads it back (None: no length)."""
    if lengths is None:
        return None
    column = lengths._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if column is None:
        return None
    return [_LENGTH_OF_BYTE[b] for b in column]


def _write_postings(fieldwriter: Any, schema: Any, lengths: Any, pool: TermPostings) -> None:
    """Write every term's postings in (field, term) order through the codec's own writer."""
    for fieldname in sorted(pool.fields):
        terms = pool.fields[fieldname]
        fieldwriter.start_field(fieldname, schema[fieldname])
        table = _field_lengths(lengths, fieldname)
        for term in sorted(terms):
            _write_term(fieldwriter, term, terms[term], table)
        fieldwriter.finish_field()


def _write_term(fieldwriter: Any, term: bytes, entry: Any, table: list[int | None] | None) -> None:
    """Write one term's postings a block at a time through the codec's postings writer."""
    docs, weights, values, ends, _, _ = entry
    view = memoryview(values)
    fieldwriter.start_term(term)
    writer = fieldwriter._postwriter
    limit = writer._blocklimit
    total = len(docs)
    for start in range(0, total, limit):
        end = min(total, start + limit)
        ids = docs[start:end]
        block_weights = weights[start:end]
        writer._ids = ids
        writer._weights = array("f", block_weights)
        begin = ends[start - 1] if start else 0
        block_values = []
        for stop in ends[start:end]:
            if stop > begin:  # Whoosh keeps only non-empty values
                block_values.append(bytes(view[begin:stop]))
            begin = stop
        writer._values = block_values
        heaviest = max(block_weights)
        writer._maxweight = heaviest if heaviest > 0 else 0
        if table is None:
            writer._minlength, writer._maxlength = None, 0
        else:
            known = [n for n in (table[d] for d in ids) if n]
            writer._minlength = min(known) if known else None
            writer._maxlength = max(known) if known else 0
        if end < total:  # the last block is written, marked last, by finish_term
            writer._write_block()
    fieldwriter.finish_term()


def build_segments(
    ix: Any,
    documents: Iterable[dict[str, Any]],
    postings_per_segment: int,
    compound: bool = True,
    arrays: tuple[str, ...] = (),
) -> int:
    """Add every document to a new index, a segment per `postings_per_segment` postings
    (the memory a build holds); return how many were added."""
    segments = write_segments(ix, documents, postings_per_segment, compound, arrays)
    commit_segments(ix, segments)
    return sum(segment.doc_count_all() for segment in segments)


def write_segments(
    ix: Any,
    documents: Iterable[dict[str, Any]],
    postings_per_segment: int,
    compound: bool = True,
    arrays: tuple[str, ...] = (),
    progress: Callable[[int], object] | None = None,
) -> list[Any]:
    """Write documents into new segments of `ix`, as `build_segments` does, but name none
    of them in its table of contents: a process that builds part of an index returns its
    segments to the one that commits them all (`commit_segments`). Nothing is locked: the
    index must be a new one that only its builders write to."""
    segments: list[Any] = []
    writer: BulkWriter | None = None
    count = 0
    try:
        for fields in documents:
            if writer is None:
                writer = BulkWriter(ix, compound=compound, arrays=arrays, _lk=False)
            writer.add_document(**fields)
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
            if writer.pool.count >= postings_per_segment:
                segments.append(_finished(writer))
                writer = None
        if writer is not None:
            segments.append(_finished(writer))
            writer = None
    finally:
        if writer is not None:
            writer.cancel()
    return segments


PROGRESS_EVERY = 500  # documents between two reports of a part's progress


def _finished(writer: BulkWriter) -> Any:
    segment = writer._finalize_segment()  # as Whoosh's own multi-process writer does
    # Not writer._finish(): it would remove the temporary folder every writer of the index
    # shares (Whoosh names it after the index), under another process's feet. Nothing is
    # locked; the folder goes when commit_segments finishes.
    writer.is_closed = True
    return segment


def commit_segments(ix: Any, segments: list[Any]) -> None:
    """Make these segments, in this order, the whole of the index (one new generation)."""
    writer = SegmentWriter(ix)
    try:
        writer._close_segment()  # the writer's own segment stays empty and is not named
        writer._commit_toc(segments)
    finally:
        writer._finish()
