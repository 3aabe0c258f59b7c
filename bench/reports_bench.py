"""Time the dashboard and the annual report's page on a big library, before and after.

    .venv/bin/python bench/reports_bench.py [--count 10000] [--years 5] [--runs 5]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432] [--baseline ba8b63b]

Generates COUNT published case studies spread evenly over the last YEARS years (so a year
holds COUNT / YEARS), each with a submission and a decision (a quarter sent back once
first) and one adoption in ten; with --postgres, in a fresh database on that server (dropped
after) searched by PostgreSQL, else in SQLite with Whoosh. Then the same pages are timed on
the same data twice, each in a process of its own: by the portal's code as it is in the
BASELINE commit (taken out of git into a temporary folder) and as it is now. It prints the
median over RUNS requests of:

- the dashboard as people get it (after the first load);
- the dashboard's first load after a change (its figures worked out);
- the annual report's page for last year: the first byte and the whole page, and its size;
  and the same on its first load after a change;
- the force directory and a force page (these share the figures' code).

The pages are asked for through Flask's test client, so the times are the server's own,
without a network. (The report's PDF is made by a job: bench/report_pdf.py times it.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _scratch import database  # bench/, the script's own folder

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
#: The portal's code before the dashboard was kept and the report streamed (issue 17).
BASELINE = "ba8b63b"
PASSWORD = "a long bench password 42"  # noqa: S105 - a throwaway account
EMAIL = "bench@kent.police.uk"


def _code(path: Path) -> None:
    """Import the portal from this folder (the bench's own folder gives import_bench)."""
    sys.path[:0] = [str(BENCH), str(path)]


def _config(folder: Path, database_url: str | None) -> dict:
    config = {
        "INSTANCE_PATH": str(folder),
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
    }
    if database_url:
        config.update(DATABASE_URL=database_url, SEARCH_BACKEND="postgres")
    return config


def spread(count: int, years: int) -> None:
    """Date the case studies over the years, with moderation histories and adoptions."""
    from sqlalchemy import insert, select, update

    from portal.extensions import db
    from portal.models import Adoption, CaseStudy, Force, ModerationEvent, Revision, utcnow

    now = utcnow()
    forces = db.session.scalars(select(Force.id)).all()
    rows = db.session.execute(select(Revision.id, Revision.case_study_id)).all()
    events, adoptions = [], []
    for i, (revision_id, case_study_id) in enumerate(rows):
        published = now - timedelta(days=(i * 365 * years) // max(1, len(rows)) + 1)
        db.session.execute(
            update(CaseStudy)
            .where(CaseStudy.id == case_study_id)
            .values(first_published_at=published)
        )
        db.session.execute(
            update(Revision).where(Revision.id == revision_id).values(published_at=published)
        )
        steps = [("submitted", published - timedelta(days=1 + i % 9))]
        if i % 4 == 0:
            steps = [
                ("submitted", published - timedelta(days=20)),
                ("changes_requested", published - timedelta(days=15)),
                ("submitted", published - timedelta(days=3)),
            ]
        steps.append(("approved", published))
        events += [
            {"case_study_id": case_study_id, "revision_id": revision_id, "action": a, "at": at}
            for a, at in steps
        ]
        if i % 10 == 0:
            adoptions.append(
                {
                    "case_study_id": case_study_id,
                    "force_id": forces[i % len(forces)],
                    "kind": "adapted",
                    "note": "",
                    "created_at": published,
                    "updated_at": published,
                }
            )
    db.session.execute(insert(ModerationEvent), events)
    # One adoption per case study per force; skip the case study's own force.
    own = dict(db.session.execute(select(CaseStudy.id, CaseStudy.force_id)).all())
    adoptions = [a for a in adoptions if own[a["case_study_id"]] != a["force_id"]]
    if adoptions:
        db.session.execute(insert(Adoption), adoptions)
    db.session.commit()


def prepare(folder: Path, database_url: str | None, count: int, years: int) -> None:
    """Make the library: case studies, their histories, a signed-up reader; index caught up."""
    _code(ROOT)
    from import_bench import generate

    from portal import create_app
    from portal.accounts import create_user
    from portal.casestudies.importer import import_case_studies
    from portal.cli import init_db
    from portal.extensions import db
    from portal.models import Role
    from portal.search import sync

    app = create_app(_config(folder, database_url))
    with app.app_context():
        init_db()
        data = folder / "bench.jsonl"
        generate(data, count)
        start = time.perf_counter()
        import_case_studies(data)
        spread(count, years)
        reader = create_user(EMAIL, "Bench Mark", "Kent Police", Role.CONTRIBUTOR, PASSWORD)
        reader.listed_as_contact = True  # the report lists its force's contacts
        db.session.commit()
        while sync.apply_pending():  # the search index caught up: no page pays for it
            pass
        print(f"set up in {time.perf_counter() - start:.0f} s", flush=True)
        db.engine.dispose()


def _timed(client, path: str) -> tuple[float, float, int]:
    """Return the seconds to the first byte and to the last, and the bytes of one page."""
    start = time.perf_counter()
    response = client.get(path, buffered=False)
    assert response.status_code == 200, (path, response.status_code)
    pieces = iter(response.response)
    size = len(next(pieces, b""))
    first = time.perf_counter() - start
    size += sum(len(piece) for piece in pieces)
    whole = time.perf_counter() - start
    response.close()
    return first, whole, size


def measure(folder: Path, database_url: str | None, runs: int) -> dict:
    """Time the pages with whichever portal code is imported; return the medians."""
    from portal import create_app
    from portal.models import utcnow

    app = create_app(_config(folder, database_url))
    client = app.test_client()
    signed_in = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 303, signed_in.status_code
    year = utcnow().year - 1
    figures: dict = {}

    def median(path: str, before=None) -> tuple[float, float, int]:
        _timed(client, path)  # a first load (the cache, the database's pages, the templates)
        samples = []
        for _ in range(runs):
            if before:
                before()
            samples.append(_timed(client, path))
        return (
            statistics.median(s[0] for s in samples),
            statistics.median(s[1] for s in samples),
            samples[-1][2],
        )

    # What the pages keep (portal/reports/kept.py, since it exists): forgotten before each
    # load, as the first load after any change of the data finds it.
    def forget() -> None:
        app.extensions.pop("reports_kept", None)

    _, figures["dashboard"], figures["dashboard bytes"] = median("/reports")
    _, figures["dashboard, first load after a change"], _ = median("/reports", forget)
    path = f"/reports/annual/{year}"
    first, whole, size = median(path)
    figures["annual page, first byte"], figures["annual page, whole"] = first, whole
    figures["annual page bytes"] = size
    first, whole, _ = median(path, forget)
    figures["annual page after a change, first byte"] = first
    figures["annual page after a change, whole"] = whole
    _, figures["force directory"], _ = median("/forces")
    _, figures["force page"], _ = median("/forces/kent-police")
    figures["year"] = year
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()
    return figures


ROWS = [
    ("dashboard", "dashboard (as people get it)", 150),
    ("dashboard, first load after a change", "dashboard, first load after a change", None),
    ("annual page, first byte", "annual report page: first byte", 150),
    ("annual page, whole", "annual report page: whole page", 600),
    ("annual page after a change, first byte", "  first load after a change: first byte", None),
    ("annual page after a change, whole", "  first load after a change: whole page", None),
    ("force directory", "force directory", None),
    ("force page", "force page (Kent Police)", None),
]


def report(before: dict | None, now: dict, baseline: str) -> None:
    head = f"{'':40} {'before (' + baseline + ')':>18} {'now':>10} {'target':>8}"
    print(head)
    for key, label, target in ROWS:
        old = f"{before[key] * 1000:8.1f} ms" if before else ""
        goal = f"≤ {target} ms" if target else ""
        print(f"{label:40} {old:>18} {now[key] * 1000:7.1f} ms {goal:>8}")
    for key, label in (
        ("annual page bytes", f"annual report page {now['year']}: HTML"),
        ("dashboard bytes", "dashboard: HTML"),
    ):
        old = f"{before[key] / 1024:8.0f} KB" if before else ""
        print(f"{label:40} {old:>18} {now[key] / 1024:7.0f} KB")


def _baseline_code(commit: str, folder: Path) -> Path:
    """Take the portal's code at `commit` out of git into a folder of its own."""
    target = folder / f"code-{commit}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "portal", "templates", "static"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _measure_in_child(code: Path, folder: Path, database_url: str | None, runs: int) -> dict:
    command = [sys.executable, __file__, "--measure", str(folder), "--code", str(code)]
    command += ["--runs", str(runs)]
    if database_url:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    out = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].strip().splitlines()[0],
        epilog="Example: .venv/bin/python bench/reports_bench.py --count 2000 --runs 3",
    )
    parser.add_argument("--count", type=int, default=10_000, help="case studies (10,000)")
    parser.add_argument("--years", type=int, default=5, help="years they span (5)")
    parser.add_argument("--runs", type=int, default=5, help="requests per figure (5)")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made)")
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        help=f"the commit to compare with (default {BASELINE}); 'none' to skip it",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the folder, in a child
    parser.add_argument("--code", help=argparse.SUPPRESS)  # the portal's code, in a child
    parser.add_argument("--database-url", help=argparse.SUPPRESS)  # in a child
    args = parser.parse_args()

    if args.measure:
        _code(Path(args.code))
        print(json.dumps(measure(Path(args.measure), args.database_url, args.runs)))
        return

    setup = "PostgreSQL + its search" if args.postgres else "SQLite + Whoosh"
    print(f"== {args.count:,} case studies over {args.years} years, {setup} ==", flush=True)
    with database(args.postgres) as database_url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "instance"
        folder.mkdir()
        # The data is made in a child too: this process imports no portal code.
        command = [sys.executable, __file__, "--prepare", str(folder)]
        prepare_child = [*command, "--count", str(args.count), "--years", str(args.years)]
        if database_url:
            prepare_child += ["--database-url", database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        subprocess.run(prepare_child, check=True, env=env)
        before = None
        if args.baseline != "none":
            old = _baseline_code(args.baseline, Path(tmp))
            before = _measure_in_child(old, folder, database_url, args.runs)
        now = _measure_in_child(ROOT, folder, database_url, args.runs)
        print(f"load average {Path('/proc/loadavg').read_text().split()[0]}")
        report(before, now, args.baseline)


if __name__ == "__main__":
    if "--prepare" in sys.argv:  # the child that makes the data
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--prepare")
        parser.add_argument("--count", type=int)
        parser.add_argument("--years", type=int)
        parser.add_argument("--database-url")
        known = parser.parse_args()
        prepare(Path(known.prepare), known.database_url, known.count, known.years)
    else:
        main()
