"""What the Whoosh index's speed-ups must never change: the answers.

Updates leave small segments that no approval waits to merge; the repair job merges them;
a large build is written in several segments. Each way, the index answers exactly as one
built in one go, with no duplicates and no stale text.
"""

from __future__ import annotations

import dataclasses

import pytest
from whoosh import index

from portal.search import SearchQuery, whoosh_backend
from portal.search.whoosh_backend import MERGE_AFTER_SEGMENTS, WhooshBackend

from ..contract.test_search_backend import _answers, _generated


def _segments(backend: WhooshBackend) -> int:
    return len(index.open_dir(str(backend.current))._segments())


def test_updates_are_not_merged_while_waited_for_and_the_repair_merges_them(tmp_path):
    backend = WhooshBackend(str(tmp_path / "search"))
    documents = {d.case_study_id: d for d in _generated(40, seed=3)}
    backend.rebuild(iter(documents.values()))
    assert _segments(backend) == 1
    for n, case_study_id in enumerate(list(documents)[: MERGE_AFTER_SEGMENTS + 3]):
        edited = dataclasses.replace(
            documents[case_study_id], title=f"Edited zebrafish{n}", revision_id=9000 + n
        )
        documents[case_study_id] = edited
        backend.apply([edited], [])
        backend.query(SearchQuery(text="women"))  # a searcher open on every version
    backend.apply([], [list(documents)[-1]])
    documents.pop(list(documents)[-1])
    unmerged = _segments(backend)
    assert unmerged == 1 + MERGE_AFTER_SEGMENTS + 3  # one per update: none merged yet
    pieces = _answers(backend)
    assert pieces[0][0] == len(documents) == 39  # no duplicate of an updated case study
    assert backend.query(SearchQuery(text="zebrafish0")).total == 1

    assert backend.merge_segments()
    assert _segments(backend) < unmerged
    assert not backend.merge_segments()  # nothing left worth merging
    assert _answers(backend) == pieces
    versions = {d.case_study_id: d.revision_id for d in documents.values()}
    assert backend.indexed_versions() == versions

    backend.rebuild(iter(documents.values()))
    assert _answers(backend) == pieces


def test_a_build_in_several_segments_answers_as_one_segment(tmp_path, monkeypatch):
    documents = _generated(80, seed=4)
    whole = WhooshBackend(str(tmp_path / "whole"))
    whole.rebuild(iter(documents))
    monkeypatch.setattr(whoosh_backend, "BUILD_SEGMENT_POSTINGS", 300)
    split = WhooshBackend(str(tmp_path / "split"))
    split.rebuild(iter(documents))
    assert _segments(whole) == 1 and _segments(split) > 3
    assert _answers(split) == _answers(whole)


def test_updates_merge_by_themselves_when_no_repair_job_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(whoosh_backend, "MERGE_IN_APPLY_AFTER", 3)
    backend = WhooshBackend(str(tmp_path / "search"))
    documents = {d.case_study_id: d for d in _generated(30, seed=5)}
    backend.rebuild(iter(list(documents.values())[:10]))
    for start in range(10, 30, 4):  # new case studies and edits, a few at a time
        batch = list(documents.values())[start : start + 4]
        edited = dataclasses.replace(documents[100 + start - 10], title=f"Renamed okapi{start}")
        documents[edited.case_study_id] = edited
        backend.apply([*batch, edited], [])
        assert _segments(backend) <= 1 + 3  # the build's, and at most three small ones
    assert _segments(backend) < 1 + 5  # five updates, some merged
    pieces = _answers(backend)
    assert pieces[0][0] == 30
    assert backend.query(SearchQuery(text="okapi10")).total == 1
    backend.rebuild(iter(documents.values()))
    assert _answers(backend) == pieces


class _Failing:
    """A part whose reading fails in the process that builds it (it pickles)."""

    def __iter__(self):
        yield from _generated(3, seed=9)
        raise RuntimeError("the database went away")


def _order(backend: WhooshBackend) -> list[list[int]]:
    texts = ["", "women", "safety OR health", "rugby -pledge", '"night economy"']
    return [
        [h.case_study_id for h in backend.query(SearchQuery(text=t, per_page=500)).hits]
        for t in texts
    ]


def test_a_build_in_several_processes_answers_as_one_built_in_one_go(tmp_path):
    documents = _generated(90, seed=6)
    whole = WhooshBackend(str(tmp_path / "whole"))
    whole.rebuild(iter(documents))
    parts = WhooshBackend(str(tmp_path / "parts"))
    seen: list[int] = []
    assert (
        parts.rebuild_parts([documents[:30], documents[30:75], documents[75:]], seen.append) == 90
    )
    assert _segments(parts) == 3  # a part's segments, in the order of the parts
    assert _answers(parts) == _answers(whole)
    assert _order(parts) == _order(whole)  # even ties in the same order: documents in order
    assert parts.indexed_versions() == whole.indexed_versions()
    for typo in ("womn", "rugbby safty", "mentorng helth"):  # "Did you mean" over segments
        suggested = parts.query(SearchQuery(text=typo)).suggestion
        assert suggested is not None and suggested == whole.query(SearchQuery(text=typo)).suggestion
    assert seen == []  # progress is told a thousand at a time
    # Approvals after a parallel build go on as after any other.
    edited = dataclasses.replace(documents[40], title="Edited narwhal", revision_id=7777)
    parts.apply([edited], [documents[80].case_study_id])
    assert parts.query(SearchQuery(text="narwhal")).total == 1
    assert documents[80].case_study_id not in parts.indexed_versions()


def test_a_part_that_fails_keeps_the_index_that_was_there(tmp_path):
    documents = _generated(20, seed=7)
    backend = WhooshBackend(str(tmp_path / "search"))
    backend.rebuild(iter(documents))
    before = _answers(backend)
    folders = sorted(p.name for p in (tmp_path / "search").iterdir())
    with pytest.raises(RuntimeError, match="part 2 failed[\\s\\S]*the database went away"):
        backend.rebuild_parts([documents[:10], _Failing()])
    assert _answers(backend) == before
    assert sorted(p.name for p in (tmp_path / "search").iterdir()) == folders  # nothing left
