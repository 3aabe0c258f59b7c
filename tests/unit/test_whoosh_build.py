"""The fast index build writes exactly what Whoosh's own writer writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh import index

from portal.search.contract import SearchDocument
from portal.search.documents import markdown_plain_text, plain_text
from portal.search.whoosh_backend import _fields, build_schema
from portal.search.whoosh_build import build_segments

# Text that exercises every step of the analysis chain: stop words first and between,
# compounds (a stop word inside one too), accents, American spellings, repeats, digits.
TRICKY = [
    "The night-time economy: the night-time economy, and NIGHT-TIME again.",
    "A well-being-led organization organizes programs; the-end of it all.",
    "Café naïve rôle Ørsted façade — straße! 2024 1st 3-2 x-ray",
    "and the of a an to in",  # only stop words
    "",
    "ǅemal ʹ-b a-ʹ Œuvre œuvre ﬁsh",
    "Rugby players rugby player's allies ally allying; mentoring mentors mentored.",
]


def _document(n: int, text: str) -> SearchDocument:
    return SearchDocument(
        case_study_id=n + 1,
        revision_id=n + 100,
        title=text[:40] or "Untitled",
        summary=f"Summary {n}: {text[::-1]}",
        body=" ".join([text] * (n % 3 + 1)),
        themes=("workplace-culture", "night-time-economy")[: n % 3],
        theme_names=("Workplace culture", "Night-time economy")[: n % 3],
        partners=("Fire and Rescue", "Café Network")[: n % 2 + 1],
        force="kent-police",
        force_names=("Kent Police", "Kent"),
        outcomes=f"outcome {n} {text}",
        lessons="lessons learned by officers",
        year=2020 + n % 5,
        published_at=datetime(2024, 1, 1 + n % 28, tzinfo=UTC),
    )


def _documents(count: int) -> list[SearchDocument]:
    return [_document(n, TRICKY[n % len(TRICKY)] + f" word{n % 17}") for n in range(count)]


def _files(folder: Path) -> dict[str, bytes]:
    # The segment's random name differs; its files must not.
    return {
        re.sub(r"_[a-z0-9]{16}", "_SEGMENT", path.name): path.read_bytes()
        for path in folder.iterdir()
        if not path.name.endswith(".toc")
    }


def test_a_bulk_build_writes_the_very_files_whoosh_writes(tmp_path):
    documents = _documents(300)  # more than a block (128 postings) for common words
    by_whoosh, by_bulk = tmp_path / "whoosh", tmp_path / "bulk"
    by_whoosh.mkdir()
    by_bulk.mkdir()
    writer = index.create_in(str(by_whoosh), build_schema()).writer(compound=False)
    for document in documents:
        writer.add_document(**_fields(document))
    writer.commit()
    fresh = index.create_in(str(by_bulk), build_schema())
    assert build_segments(fresh, map(_fields, documents), 10**9, compound=False) == 300

    expected, written = _files(by_whoosh), _files(by_bulk)
    assert sorted(written) == sorted(expected)
    assert any(name.endswith(".pst") for name in written)
    for name, content in expected.items():
        assert written[name] == content, name


def _answers(folder: Path) -> dict[tuple[str, bytes], list[tuple[str, list[int]]]]:
    """Every term's postings by case study: (case study, positions or weight)."""
    ix = index.open_dir(str(folder))
    found: dict[tuple[str, bytes], list[tuple[str, list[int]]]] = {}
    with ix.searcher() as searcher:
        reader = searcher.reader()
        for field, term in reader.all_terms():
            if field not in ("title", "content", "words", "themes"):
                continue
            postings = reader.postings(field, term)
            rows = []
            for docnum in postings.all_ids():
                case_study = searcher.stored_fields(docnum)["case_study_id"]
                rows.append((case_study, docnum))
            matcher = reader.postings(field, term)
            values = []
            while matcher.is_active():
                if field == "themes":
                    values.append([int(matcher.weight())])
                else:
                    values.append(matcher.value_as("positions"))
                matcher.next()
            found[(field, term)] = sorted(
                (case, value) for (case, _), value in zip(rows, values, strict=True)
            )
    return found


def test_a_build_in_several_segments_holds_the_same_postings(tmp_path):
    documents = _documents(120)
    one, several = tmp_path / "one", tmp_path / "several"
    one.mkdir()
    several.mkdir()
    build_segments(index.create_in(str(one), build_schema()), map(_fields, documents), 10**9)
    split = index.create_in(str(several), build_schema())
    build_segments(split, map(_fields, documents), 2_000)
    assert len(index.open_dir(str(several))._segments()) > 2
    assert len(index.open_dir(str(one))._segments()) == 1
    assert _answers(several) == _answers(one)


def test_a_build_of_nothing_is_an_empty_index(tmp_path):
    ix = index.create_in(str(tmp_path), build_schema())
    assert build_segments(ix, [], 10**9) == 0
    assert index.open_dir(str(tmp_path)).doc_count() == 0


_PIECES = list("abXYé09 \n\t,.;:'\"?()/%£$@*_#>-+=[]<&\\`!|~") + ["1. ", "\n\n", "    "]
_PROSE = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(_PROSE)
def test_plain_text_without_parsing_is_what_parsing_gives(text):
    assert plain_text(text) == markdown_plain_text(text)


def test_markup_is_still_parsed_away():
    assert plain_text("# Heading\n\n* one\n* **two**\n\n1. three") == "Heading one two three"
    assert plain_text("2024. A year") == "A year"  # a numbered list item, not a date
    assert plain_text(" plain   words,\n  (kept) ") == "plain words, (kept)"


def test_the_arrays_file_holds_every_posting_and_position_as_whoosh_reads_them(tmp_path):
    from portal.search.whoosh_build import ARRAYS_EXT
    from portal.search.whoosh_matching import (
        SegmentArrays,
        _positions,
        _read_postings,
        _read_values,
    )

    ix = index.create_in(str(tmp_path), build_schema())
    build_segments(ix, map(_fields, _documents(300)), 10**9, arrays=("title", "content"))
    with index.open_dir(str(tmp_path)).searcher() as searcher:
        ((reader, _),) = searcher.reader().leaf_readers()
        arrays = SegmentArrays.open(tmp_path / f"{reader.segment().segment_id()}.{ARRAYS_EXT}")
        assert arrays is not None and arrays.fields == {"title", "content"}
        compared = 0
        for field, term in reader.all_terms():
            if field not in arrays.fields:
                continue
            docs, weights = arrays.postings(field, term)
            expected_docs, expected_weights = _read_postings(reader, field, term)
            assert docs.tolist() == expected_docs.tolist()
            assert weights.tolist() == expected_weights.tolist()
            starts, flat = arrays.positions(field, term)
            counts, expected_flat = _positions(_read_values(reader, field, term))
            assert (starts[1:] - starts[:-1]).tolist() == counts.tolist()
            assert flat.tolist() == expected_flat.tolist()
            compared += 1
        assert compared > 100
        assert arrays.postings("content", b"no-such-term")[0].size == 0
