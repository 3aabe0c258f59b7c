"""Time `import-case-studies` on generated case studies and print the figures.

Usage: python bench/import_bench.py [COUNT] [--database-url URL]
A fresh instance folder in a temporary directory is used; nothing of yours is touched.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal import create_app  # noqa: E402
from portal.casestudies.importer import import_case_studies, validate  # noqa: E402
from portal.cli import init_db  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.reference import THEMES, load_forces  # noqa: E402

WORDS = (
    "officers staff women men allies event scheme force partners community safety "
    "night misogyny bystander training mentoring menopause support rugby team "
    "players health wellbeing survey results feedback leaders culture workplace "
    "respect challenge report victims confidence trust education schools young "
    "people licensees venues transport outreach recruitment retention flexible "
    "working parents leave role models network conversation campaign pledge launch "
    "volunteers council university fire rescue service "
).split()


def _vocabulary(size: int = 6000) -> list[str]:
    """The domain words first (the commonest), then made-up words: a realistic long tail."""
    rng = random.Random(11)
    syllables = ["ka", "lo", "mi", "ter", "an", "sol", "ve", "ri", "pon", "dar", "el", "us",
                 "ben", "cor", "ith", "ma", "no", "pre", "qui", "sta"]  # fmt: skip
    made_up = set()
    while len(made_up) < size:
        made_up.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return WORDS + sorted(made_up)


VOCABULARY = _vocabulary()
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # Zipf


def zipf_words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(VOCABULARY, weights=WEIGHTS, k=count))


def generate(path: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    forces = [f["name"] for f in load_forces()]
    with path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            paragraphs = [zipf_words(rng, rng.randint(60, 250)) for _ in range(rng.randint(3, 6))]
            record = {
                "title": f"{zipf_words(rng, 5).capitalize()} {n}",
                "summary": zipf_words(rng, 30)[:300],
                "body": "## What we did\n\n" + "\n\n".join(paragraphs),
                "force": rng.choice(forces),
                "themes": rng.sample(THEMES, rng.randint(1, 3)),
                "partners": rng.sample(
                    [
                        "Fire and Rescue Service",
                        "Local university",
                        "Business Improvement District",
                        "Movember",
                        "Rugby Foundation",
                    ],
                    rng.randint(0, 2),
                ),
                "event_date": f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}",
                "outcomes": zipf_words(rng, 40),
                "lessons": zipf_words(rng, 30),
                "evidence": rng.choice(["worked", "promising", "untested", "did_not_work"]),
                "contact_name": "Inspector Sam Example",
                "contact_email": "sam.example@example.police.uk",
            }
            handle.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "generated.jsonl"
        started = time.perf_counter()
        generate(source, args.count)
        size_mb = source.stat().st_size / 1e6
        print(
            f"generated {args.count:,} case studies ({size_mb:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )

        config = {"INSTANCE_PATH": str(Path(tmp) / "instance")}
        if args.database_url:
            config["DATABASE_URL"] = args.database_url
        app = create_app(config)
        with app.app_context():
            init_db()
            started = time.perf_counter()
            validate(source)
            validated = time.perf_counter() - started
            started = time.perf_counter()
            imported = import_case_studies(source)
            total = time.perf_counter() - started
            db.engine.dispose()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"database: {app.config['DATABASE_URL'].split('://')[0]}")
        print(f"validate only: {validated:.2f} s ({args.count / validated:,.0f} lines/s)")
        print(
            f"import (validate + write, one transaction): {total:.2f} s "
            f"({imported / total:,.0f} case studies/s)"
        )
        print(f"peak memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
