"""Measure how well the library ranks the right case study, on a judged set of its own.

Usage: python bench/relevance.py [--postgres URL] [--baseline-only] [--per-query] [--json FILE]

The set is in bench/relevance/: corpus.jsonl holds realistic case studies written for it,
queries.jsonl holds officers' searches (plain questions, paraphrases, acronyms both ways,
everyday words, typos, short and long), each with graded judgments (3 the best answer, 2
highly relevant, 1 partly; unjudged is not relevant).

For each setup the corpus is imported and published in a fresh instance, and each query is
typed into the library as a person would (the web fragment, signed in, Enter pressed); the
first ten case studies shown are scored. Printed for each setup, overall and per class of
query:

- nDCG@10: graded gain 2^grade - 1, discounted by log2 of the place, over the ideal order;
- recall@5: of the highly relevant (grade 2 or 3), the share in the first five (out of at
  most five);
- best in top 3: the share of queries with a best-graded case study in the first three.

Beside them, in the same run, a plain baseline: BM25 over every text field with OR-matching
(Whoosh's defaults and its stemming analyser, no glossary, spelling or all-words rule).

--postgres postgresql+psycopg://user@host:port also measures PostgreSQL and its full-text
search (in a database made for the run and dropped after it); --per-query prints each
query's nDCG@10 and what was shown; --json writes the figures to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
SET = HERE / "relevance"
CLASSES = ("keyword", "question", "paraphrase", "acronym", "expansion", "everyday", "typo", "long")
SHOWN = 10
_LINK = re.compile(r'href="/case-studies/(\d+)/')


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    kind: str
    judgments: dict[str, int]


def load_set(folder: Path = SET) -> tuple[list[dict], list[Query]]:
    """The corpus and the judged queries (checked: every judgment names a case study)."""
    corpus = [
        json.loads(line) for line in (folder / "corpus.jsonl").read_text("utf-8").splitlines()
    ]
    ids = {c["id"] for c in corpus}
    queries = []
    for line in (folder / "queries.jsonl").read_text("utf-8").splitlines():
        raw = json.loads(line)
        unknown = set(raw["judgments"]) - ids
        if unknown:
            raise ValueError(f"{raw['id']} judges case studies not in the corpus: {unknown}")
        queries.append(Query(raw["id"], raw["query"], raw["class"], dict(raw["judgments"])))
    return corpus, queries


# Scoring


def ndcg(shown: list[str], judgments: dict[str, int], k: int = SHOWN) -> float:
    def dcg(grades: Iterable[int]) -> float:
        return sum((2**g - 1) / math.log2(n + 2) for n, g in enumerate(grades))

    ideal = dcg(sorted(judgments.values(), reverse=True)[:k])
    return dcg(judgments.get(i, 0) for i in shown[:k]) / ideal if ideal else 0.0


def recall(shown: list[str], judgments: dict[str, int], k: int = 5) -> float:
    wanted = {i for i, g in judgments.items() if g >= 2}
    return len(wanted & set(shown[:k])) / min(k, len(wanted)) if wanted else 0.0


def best_in_top(shown: list[str], judgments: dict[str, int], k: int = 3) -> float:
    best = max(judgments.values(), default=0)
    return float(any(judgments.get(i, 0) == best for i in shown[:k])) if best else 0.0


@dataclass
class Figures:
    ndcg: float
    recall: float
    top3: float
    count: int


def score(queries: list[Query], ranked: dict[str, list[str]]) -> dict[str, Figures]:
    """Mean figures overall ("all") and per class of query."""
    groups: dict[str, list[Query]] = defaultdict(list)
    for query in queries:
        groups["all"].append(query)
        groups[query.kind].append(query)
    figures = {}
    for name, members in groups.items():
        n = len(members)
        figures[name] = Figures(
            sum(ndcg(ranked[q.id], q.judgments) for q in members) / n,
            sum(recall(ranked[q.id], q.judgments) for q in members) / n,
            sum(best_in_top(ranked[q.id], q.judgments) for q in members) / n,
            n,
        )
    return figures


# The setups


def portal_rankings(
    corpus: list[dict], queries: list[Query], settings: dict[str, object]
) -> dict[str, list[str]]:
    """Each query's first ten case studies as the library of a new instance shows them."""
    from portal import create_app
    from portal.cli import init_db
    from portal.extensions import db

    app = create_app(settings)
    with app.app_context():
        init_db()
    try:
        return rankings_in(app, corpus, queries)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def rankings_in(app, corpus: list[dict], queries: list[Query]) -> dict[str, list[str]]:
    """Publish the corpus in `app` (its database set up and empty), then type each query
    into its library: the first ten case studies shown, by corpus id."""
    from portal.accounts import create_user
    from portal.casestudies.importer import import_case_studies
    from portal.extensions import db
    from portal.models import Revision, RevisionState, Role
    from portal.reference import load_forces
    from portal.search.sync import apply_all

    names = {f["slug"]: f["name"] for f in load_forces()}
    with app.app_context():
        import_case_studies([json.dumps(_record(c, names)) for c in corpus])
        apply_all()
        create_user("reader@kent.police.uk", "Reader", "Kent", Role.CONTRIBUTOR, PASSWORD)
        db.session.commit()
        by_title = {c["title"]: c["id"] for c in corpus}
        corpus_id = {
            case_study_id: by_title[title]
            for case_study_id, title in db.session.execute(
                db.select(Revision.case_study_id, Revision.title).where(
                    Revision.state == RevisionState.PUBLISHED
                )
            )
        }
        db.session.remove()
    client = app.test_client()
    sign_in(client)
    ranked = {}
    for query in queries:
        page = client.get(
            "/library?" + urlencode({"q": query.text}),
            headers={"HX-Request": "true", "Portal-New-Search": "1"},
        )
        if page.status_code != 200:
            raise RuntimeError(f"{query.id}: the library answered {page.status_code}")
        shown = list(dict.fromkeys(int(i) for i in _LINK.findall(page.get_data(as_text=True))))
        ranked[query.id] = [corpus_id[i] for i in shown[:SHOWN]]
    return ranked


PASSWORD = "relevance bench password 2026"


def sign_in(client) -> None:
    form = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    data = {"email": "reader@kent.police.uk", "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    done = client.post("/auth/login", data=data)
    if done.status_code != 303:
        raise RuntimeError(f"could not sign in: {done.status_code}")


def _record(case_study: dict, names: dict[str, str]) -> dict:
    """A corpus entry as the importer takes it (published)."""
    return {
        "title": case_study["title"],
        "summary": case_study["summary"],
        "body": case_study["body"],
        "force": names[case_study["force"]],
        "themes": case_study["themes"],
        "partners": case_study.get("partners", []),
        "event_date": f"{case_study['year']}-06-15",
        "outcomes": case_study.get("outcomes", ""),
        "lessons": case_study.get("lessons", ""),
        "evidence": "promising",
        "contact_name": "Inspector Sam Example",
        "contact_email": "sam.example@example.police.uk",
    }


def baseline_rankings(corpus: list[dict], queries: list[Query]) -> dict[str, list[str]]:
    """Plain BM25 (Whoosh's BM25F defaults) over all the text, any word matching."""
    from whoosh import fields, qparser
    from whoosh.analysis import StemmingAnalyzer
    from whoosh.filedb.filestore import RamStorage

    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        content=fields.TEXT(analyzer=StemmingAnalyzer()),
    )
    index = RamStorage().create_index(schema)
    with index.writer() as writer:
        for c in corpus:
            text = " ".join(
                [c["title"], c["summary"], c["body"], c.get("outcomes", ""), c.get("lessons", ""),
                 " ".join(c["themes"]), " ".join(c.get("partners", []))]
            )  # fmt: skip
            writer.add_document(id=c["id"], content=text)
    parser = qparser.QueryParser("content", schema, group=qparser.OrGroup)
    ranked = {}
    with index.searcher() as searcher:
        for query in queries:
            hits = searcher.search(parser.parse(query.text), limit=SHOWN)
            ranked[query.id] = [hit["id"] for hit in hits]
    return ranked


# Printing


def table(results: dict[str, dict[str, Figures]]) -> str:
    setups = list(results)
    head = f"{'class':<11} {'n':>3}  " + "  ".join(f"{s:^23}" for s in setups)
    sub = f"{'':<11} {'':>3}  " + "  ".join(f"{'nDCG@10 R@5   top3':^23}" for _ in setups)
    lines = [head, sub]
    for name in ("all", *CLASSES):
        row = [results[s].get(name) for s in setups]
        count = next((f.count for f in row if f), 0)
        if not count:
            continue
        cells = "  ".join(
            f"{f.ndcg:7.3f} {f.recall:5.2f} {f.top3:6.2f}   " if f else f"{'':23}" for f in row
        )
        lines.append(f"{name:<11} {count:>3}  {cells}")
    return "\n".join(lines)


def measure(
    postgres: str | None = None, baseline_only: bool = False, on_query: Callable | None = None
) -> dict[str, dict[str, Figures]]:
    """The figures of each setup (the baseline, embedded, and PostgreSQL when given)."""
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    corpus, queries = load_set()
    runs: dict[str, dict[str, list[str]]] = {"BM25 OR baseline": baseline_rankings(corpus, queries)}
    if not baseline_only:
        from _scratch import database

        for name, server in (("embedded", None), ("PostgreSQL", postgres)):
            if name == "PostgreSQL" and not postgres:
                continue
            with tempfile.TemporaryDirectory() as tmp, database(server) as url:
                settings: dict[str, object] = {
                    "INSTANCE_PATH": str(Path(tmp) / "instance"),
                    "TESTING": True,
                    "RATELIMIT_ENABLED": False,
                }
                if url:
                    settings.update(DATABASE_URL=url, SEARCH_BACKEND="postgres")
                runs[name] = portal_rankings(corpus, queries, settings)
    if on_query:
        for query in queries:
            on_query(query, {name: ranked[query.id] for name, ranked in runs.items()})
    return {name: score(queries, ranked) for name, ranked in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", help="also measure PostgreSQL search")
    parser.add_argument("--baseline-only", action="store_true", help="only the BM25 baseline")
    parser.add_argument("--per-query", action="store_true", help="print each query's figures")
    parser.add_argument("--json", metavar="FILE", help="write the figures to FILE")
    args = parser.parse_args()

    def show(query: Query, shown: dict[str, list[str]]) -> None:
        print(f"\n{query.id} [{query.kind}] {query.text!r}")
        for name, ids in shown.items():
            print(f"  {name:<17} nDCG {ndcg(ids, query.judgments):.2f}  "
                  + " ".join(f"{i}({query.judgments.get(i, 0)})" for i in ids[:5]))  # fmt: skip

    results = measure(args.postgres, args.baseline_only, show if args.per_query else None)
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {s: {k: vars(f) for k, f in r.items()} for s, r in results.items()}, indent=2
            )
        )


if __name__ == "__main__":
    main()
