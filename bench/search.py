"""Measure the library's search on generated case studies and print the figures.

Usage: python bench/search.py [--postgres URL] [N ...]   (default: 10000, embedded; --help)
For each N: import N realistic case studies (bench/import_bench.py's generator), build the
index, then time a fixed mix of 50 queries through the backend and through the web app
(the htmx fragment, signed in), half-typed words and plain-word questions, typing a word
letter by letter, a full reindex, and approval-to-searchable.

With --postgres postgresql+psycopg://user@host:port the same runs on PostgreSQL and its
full-text search, in a new database made for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scratch import database  # noqa: E402
from import_bench import generate  # noqa: E402

from portal import create_app  # noqa: E402
from portal.casestudies.importer import import_case_studies  # noqa: E402
from portal.cli import init_db  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.search import SearchQuery, get_backend  # noqa: E402
from portal.search.sync import apply_all, apply_pending, reindex  # noqa: E402

QUERIES = [
    # common single terms
    "officers", "women", "training", "community", "safety", "health", "culture", "partners",
    # rarer terms
    "pledge", "licensees", "rugby", "menopause", "volunteers", "university", "transport",
    # two and three terms
    "women safety", "health wellbeing", "leaders culture", "rugby team players",
    "mentoring menopause support", "night economy", "fire rescue service", "schools education",
    # phrases
    '"women allies"', '"fire rescue"', '"community safety"', '"team players"', '"role models"',
    # exclusion and OR
    "training -rugby", "pledge OR campaign", "mentoring OR menopause", "health -university",
    # filtered
    ("officers", {"theme": ("workplace-culture",)}), ("women", {"force": ("kent-police",)}),
    ("training", {"year": (2024,)}), ("safety", {"theme": ("night-time-economy",)}),
    ("culture", {"force": ("greater-manchester-police",), "theme": ("workplace-culture",)}),
    # misspelt
    "misogny", "menopuase", "volunteres", "rugbby", "trainig",
    # browse and newest
    "", ("", {"sort": "newest"}), ("officers", {"sort": "newest"}),
    # more mixes
    "bystander", "allyship", "outreach recruitment", "flexible working parents",
]  # fmt: skip

# Half-typed words, as the page sends them while a person types (the last word a prefix).
TYPING = [
    "mi", "misog", "wom", "train", "co", "comm", "safe", "rugby pl", "night econ", "menop",
    "volunt", "fire res", "women saf", "lead", "allys", "bysta", "mentoring men", "pa",
]  # fmt: skip

# Questions in plain words: common words, a word nothing holds, acronyms, compounds.
QUESTIONS = [
    "how did forces engage rugby players as allies",
    "what works to keep women safe at night",
    "violence against women and girls training for officers",
    "VAWG training for officers",
    "menopause support for staff and walruses",
    '"night-time economy" partners',
    "nighttime economy licensees",
    "how can we get more women into leadership roles",
    "mentoring scheme for new women officers zebrafish",
    "which forces worked with the fire and rescue service",
]

# Words typed letter by letter: one request per key (the most the page could ever send).
WORDS_TYPED = ["misogyny", "night-time economy", "violence against women", "menopause"]
KEY_INTERVAL = 0.150  # seconds between key presses at a normal typing speed


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def run(count: int, postgres: str | None = None) -> None:
    where = "PostgreSQL + its full-text search" if postgres else "SQLite + Whoosh"
    print(f"\n== {count:,} published case studies, {where} ==")
    with tempfile.TemporaryDirectory() as tmp, database(postgres) as url:
        source = Path(tmp) / "generated.jsonl"
        generate(source, count)
        settings = {"INSTANCE_PATH": str(Path(tmp) / "instance"), "TESTING": True,
                    "RATELIMIT_ENABLED": False}  # fmt: skip
        if url:
            settings.update(DATABASE_URL=url, SEARCH_BACKEND="postgres")
        app = create_app(settings)
        with app.app_context():
            init_db()
            started = time.perf_counter()
            import_case_studies(source)
            print(f"import                      {time.perf_counter() - started:7.1f} s")
            started = time.perf_counter()
            apply_all()
            took = time.perf_counter() - started
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"first index build           {took:7.1f} s  ({count / took:,.0f} docs/s)"
                f"   peak RSS so far {peak:,.0f} MB"
            )
            backend = get_backend()
            queries = [q if isinstance(q, tuple) else (q, {}) for q in QUERIES]
            for text, extra in queries:  # warm the per-process searcher and caches
                backend.query(SearchQuery(text=text, **extra))
            cold, raw, warm = [], [], []
            for _ in range(3):
                for text, extra in queries:
                    forget(backend, everything=True)  # a process that has just started
                    started = time.perf_counter()
                    backend.query(SearchQuery(text=text, **extra))
                    cold.append(time.perf_counter() - started)
            for text, extra in queries:  # the terms as warm as in a process serving users
                backend.query(SearchQuery(text=text, **extra))
            for _ in range(3):
                for text, extra in queries:
                    forget(backend)  # a query typed for the first time
                    started = time.perf_counter()
                    backend.query(SearchQuery(text=text, **extra))
                    raw.append(time.perf_counter() - started)
                    started = time.perf_counter()  # the same words again: a filter, a page, Back
                    backend.query(SearchQuery(text=text, page=2, **extra))
                    warm.append(time.perf_counter() - started)
            print(f"backend query, cold process {percentiles(cold)}")
            print(f"backend query, new words    {percentiles(raw)}")
            print(f"backend query, same words   {percentiles(warm)}")

            from portal.accounts import create_user
            from portal.models import Role

            create_user("bench@kent.police.uk", "Bench Reader", "Kent", Role.CONTRIBUTOR,
                        "a long bench password")  # fmt: skip
        client = app.test_client()
        token = _csrf(client.get("/auth/login").get_data(as_text=True))
        client.post("/auth/login", data={"email": "bench@kent.police.uk",
                    "password": "a long bench password", "csrf_token": token})  # fmt: skip
        web, web_warm = [], []
        for _ in range(3):
            for text, extra in queries:
                params = {
                    "q": text,
                    **{k: list(v) if isinstance(v, tuple) else v for k, v in extra.items()},
                }
                forget(backend)  # typed for the first time, as for the backend figure
                started = time.perf_counter()
                response = client.get(
                    "/library", query_string=params, headers={"HX-Request": "true"}
                )
                web.append(time.perf_counter() - started)
                assert response.status_code == 200
                started = time.perf_counter()  # a filter ticked, a page turned, Back
                response = client.get(
                    "/library", query_string={**params, "page": 2}, headers={"HX-Request": "true"}
                )
                web_warm.append(time.perf_counter() - started)
        print(f"web fragment, new words     {percentiles(web)}")
        print(f"web fragment, same words    {percentiles(web_warm)}")
        overhead = [w - r for w, r in zip(sorted(web), sorted(raw), strict=True)]
        print(f"web layer over backend      median {statistics.median(overhead) * 1000:6.1f} ms")
        typing_web, questions_web = [], []
        with app.app_context():
            typed_backend = []
            for _ in range(3):
                for text in TYPING:
                    forget(backend)
                    started = time.perf_counter()
                    backend.query(SearchQuery(text=text, partial=True))
                    typed_backend.append(time.perf_counter() - started)
            print(f"backend, half-typed words   {percentiles(typed_backend)}")
        for _ in range(3):
            for text in TYPING:
                forget(backend)
                started = time.perf_counter()
                response = client.get("/library", query_string={"q": text},
                                      headers={"HX-Request": "true", "Portal-Typing": "1"})  # fmt: skip
                typing_web.append(time.perf_counter() - started)
                assert response.status_code == 200
            for text in QUESTIONS:
                forget(backend)
                started = time.perf_counter()
                response = client.get("/library", query_string={"q": text},
                                      headers={"HX-Request": "true"})  # fmt: skip
                questions_web.append(time.perf_counter() - started)
                assert response.status_code == 200
        print(f"web fragment, half-typed    {percentiles(typing_web)}")
        print(f"web fragment, questions     {percentiles(questions_web)}")
        letters, slow = [], 0
        for word in WORDS_TYPED:
            forget(backend)
            for end in range(1, len(word) + 1):
                started = time.perf_counter()
                client.get("/library", query_string={"q": word[:end]},
                           headers={"HX-Request": "true", "Portal-Typing": "1"})  # fmt: skip
                took = time.perf_counter() - started
                letters.append(took)
                slow += took >= KEY_INTERVAL
        print(
            f"one request per key press   {percentiles(letters)}   max {max(letters) * 1000:6.1f} ms"
            f"   {slow} of {len(letters)} slower than a key press ({KEY_INTERVAL * 1000:.0f} ms)"
        )

        with app.app_context():
            from portal.models import Revision, RevisionState

            visible = []
            ids = db.session.scalars(select_published_ids()).all()[:20]
            for n, case_study_id in enumerate(ids):
                revision = db.session.scalars(
                    db.select(Revision).where(Revision.case_study_id == case_study_id)
                ).one()
                revision.title = f"Freshly approved zebracrossing{n}"
                revision.state = RevisionState.PUBLISHED
                from portal.search.sync import queue_change

                queue_change(case_study_id)
                db.session.commit()
                started = time.perf_counter()
                apply_pending()
                found = get_backend().query(SearchQuery(text=f"zebracrossing{n}")).total
                visible.append(time.perf_counter() - started)
                assert found == 1
            print(f"approval to searchable      {percentiles(visible)}")
            if count <= 50_000:  # above that, the first build (a full rebuild) is the figure
                started = time.perf_counter()
                rebuilt = reindex()
                took = time.perf_counter() - started
                print(f"full reindex                {took:7.1f} s  ({rebuilt:,} docs)")
            db.engine.dispose()


def forget(backend, everything: bool = False) -> None:
    """Forget cached query results (where a backend keeps them); with `everything`, also
    what the engine keeps about terms, as in a process that has just started."""
    if hasattr(backend, "forget"):
        backend.forget(everything)


def select_published_ids():
    from portal.models import Revision, RevisionState

    return db.select(Revision.case_study_id).where(Revision.state == RevisionState.PUBLISHED)


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Time the library's search on generated case studies and print the figures."
    )
    parser.add_argument(
        "sizes", nargs="*", type=int, default=[10_000], metavar="N",
        help="how many case studies to generate (default: 10000); one run per N",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", metavar="URL",
        help="run on PostgreSQL and its full-text search in a database made for the run, "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432",
    )  # fmt: skip
    arguments = parser.parse_args()
    for size in arguments.sizes:
        run(size, arguments.postgres)


if __name__ == "__main__":
    main()
