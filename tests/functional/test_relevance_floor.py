"""The library's relevance on the judged set in bench/relevance/ never falls.

The set's corpus is published in this pass's setup (embedded, or PostgreSQL), each query
typed into the library, and the first ten case studies shown are scored as
bench/relevance.py scores them. Each figure must be at least its floor in
bench/relevance/floor.json: a change that ranks worse fails here; one that ranks better
raises the floor (see docs/search.md, Relevance).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.backends import SEARCH

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench():
    spec = importlib.util.spec_from_file_location("relevance_bench", BENCH / "relevance.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _bench()


def test_the_judged_set_is_whole(bench):
    corpus, queries = bench.load_set()
    assert len(corpus) >= 80 and len(queries) >= 100
    assert {q.kind for q in queries} == set(bench.CLASSES)
    assert len({c["title"] for c in corpus}) == len(corpus)  # results are matched by title
    for query in queries:
        assert max(query.judgments.values()) >= 2, query.id


def test_the_scores_are_what_they_say(bench):
    judged = {"a": 3, "b": 2, "c": 1}
    assert bench.ndcg(["a", "b", "c"], judged) == pytest.approx(1.0)
    assert bench.ndcg(["x", "y"], judged) == 0.0
    assert 0 < bench.ndcg(["c", "b", "a"], judged) < 1
    assert bench.recall(["b", "x", "x", "x", "x", "a"], judged) == 0.5  # a is sixth
    assert bench.best_in_top(["x", "x", "a"], judged) == 1.0
    assert bench.best_in_top(["b", "c", "x", "a"], judged) == 0.0


def test_relevance_never_falls_below_its_floor(app, bench):
    corpus, queries = bench.load_set()
    figures = bench.score(queries, bench.rankings_in(app, corpus, queries))
    floor = json.loads((BENCH / "relevance" / "floor.json").read_text())[SEARCH]
    found = {
        kind: {"ndcg": round(f.ndcg, 3), "recall": round(f.recall, 3), "top3": round(f.top3, 3)}
        for kind, f in figures.items()
    }
    fallen = [
        f"{kind} {name}: {found[kind][name]} < {least}"
        for kind, wanted in floor.items()
        for name, least in wanted.items()
        if found[kind][name] < least
    ]
    assert not fallen, f"relevance fell: {fallen}; now {found}"
