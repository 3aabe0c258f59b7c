"""Time the dashboard, the force pages and the annual report's page on a big library.

    .venv/bin/python bench/reports_bench.py [--count 10000] [--years 5]

Generates COUNT published case studies spread evenly over the last YEARS years, each with a
submission and a decision (a quarter sent back once first) and one adoption in ten, then
prints the median time of each page over a few requests. (The report's PDF is made by a
job: bench/report_pdf.py times it.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from import_bench import generate  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402

from portal import create_app  # noqa: E402
from portal.accounts import create_user  # noqa: E402
from portal.casestudies.importer import import_case_studies  # noqa: E402
from portal.cli import init_db  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import (  # noqa: E402
    Adoption,
    CaseStudy,
    Force,
    ModerationEvent,
    Revision,
    Role,
    utcnow,
)

PASSWORD = "a long bench password 42"  # noqa: S105 - a throwaway account


def spread(count: int, years: int) -> None:
    """Date the case studies over the years, with moderation histories and adoptions."""
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


def timed(client, path: str, runs: int = 5) -> tuple[float, int]:
    samples, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
        size = len(response.data)
    return statistics.median(samples), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "INSTANCE_PATH": folder,
                "TESTING": True,
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        with app.app_context():
            init_db()
            data = Path(folder) / "bench.jsonl"
            generate(data, args.count)
            start = time.perf_counter()
            import_case_studies(data)
            spread(args.count, args.years)
            print(
                f"{args.count} case studies over {args.years} years, set up in "
                f"{time.perf_counter() - start:.1f} s"
            )
            create_user(
                "bench@kent.police.uk", "Bench Mark", "Kent Police", Role.CONTRIBUTOR, PASSWORD
            ).listed_as_contact = True
            db.session.commit()
        client = app.test_client()
        signed_in = client.post(
            "/auth/login", data={"email": "bench@kent.police.uk", "password": PASSWORD}
        )
        assert signed_in.status_code == 303, signed_in.status_code
        year = utcnow().year - 1
        for label, path in [
            ("dashboard", "/reports"),
            ("force directory", "/forces"),
            ("force page", "/forces/kent-police"),
            (f"annual report {year} (page)", f"/reports/annual/{year}"),
        ]:
            seconds, size = timed(client, path)
            print(f"{label:32} {seconds * 1000:8.1f} ms  {size / 1024:8.0f} KB")
        # The PDF is made by a job, not a page: bench/report_pdf.py times it.
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
