"""Time the job that makes the annual report's PDF, and its peak memory, for 200 and 2,000
case studies in the year.

    .venv/bin/python bench/report_pdf.py [--counts 200 2000] [--steps]

Each count runs in a fresh process (a process's peak memory only ever grows): generated case
studies (bench/import_bench.py's) are imported into a temporary SQLite instance and all
dated in last year, each with a submission and an approval, one in ten adopted by another
force, and a listed contact in each force. Then the PDF is asked for as the page asks
(services.ask_for) and the queued job is run in the process (portal.jobs.run_queued), as a
worker would. Printed: the job's seconds (and CPU seconds), the PDF's pages and size, the
process's peak memory (ru_maxrss) before and after the job, and the memory it still holds
once the job is over. --steps also times the job's steps one by one
(the data and HTML, the layout, writing the file) in a second run.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
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
from portal.jobs import run_queued  # noqa: E402
from portal.models import (  # noqa: E402
    Adoption,
    CaseStudy,
    Force,
    ModerationEvent,
    ReportFile,
    ReportFileState,
    Revision,
    Role,
    utcnow,
)
from portal.reports import annual, pdf, services  # noqa: E402

PASSWORD = "a long bench password 42"  # noqa: S105 - throwaway accounts


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mb() -> float:
    """Memory the process holds now (Linux), to see what is handed back after the job."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return float("nan")
    return pages * resource.getpagesize() / 2**20


def cpu_seconds() -> float:
    """This process's CPU time: steadier than the clock on a machine others use too."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def date_in(year: int) -> None:
    """Date every case study in `year`, with a moderation history; adopt one in ten."""
    forces = db.session.scalars(select(Force.id).order_by(Force.id)).all()
    rows = db.session.execute(
        select(Revision.id, Revision.case_study_id, CaseStudy.force_id).join(Revision.case_study)
    ).all()
    start = datetime(year, 1, 1, 9)
    step = timedelta(days=364) / max(1, len(rows))
    events, adoptions = [], []
    for i, (revision_id, case_study_id, own_force) in enumerate(rows):
        published = start + step * i
        db.session.execute(
            update(CaseStudy)
            .where(CaseStudy.id == case_study_id)
            .values(first_published_at=published)
        )
        db.session.execute(
            update(Revision).where(Revision.id == revision_id).values(published_at=published)
        )
        for action, at in (("submitted", published - timedelta(days=3)), ("approved", published)):
            events.append(
                {"case_study_id": case_study_id, "revision_id": revision_id, "action": action}
                | {"at": at}
            )
        adopter = forces[i % len(forces)]
        if i % 10 == 0 and adopter != own_force:
            adoptions.append(
                {"case_study_id": case_study_id, "force_id": adopter, "kind": "adapted"}
                | {"note": "", "created_at": published, "updated_at": published}
            )
    db.session.execute(insert(ModerationEvent), events)
    if adoptions:
        db.session.execute(insert(Adoption), adoptions)
    db.session.commit()


def list_contacts() -> None:
    for number, force in enumerate(db.session.scalars(select(Force).order_by(Force.id))):
        user = create_user(
            f"lead{number}@bench.police.uk",
            f"Lead {number}",
            force.name,
            Role.CONTRIBUTOR,
            PASSWORD,
        )
        user.listed_as_contact = True
        user.contact_role = "Force HeForShe lead"
    db.session.commit()


def one(count: int, steps: bool) -> None:
    """Set up `count` case studies in last year and time the PDF's job (in this process)."""
    year = utcnow().year - 1
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"INSTANCE_PATH": folder, "TESTING": True})
        with app.app_context():
            init_db()
            data = Path(folder) / "bench.jsonl"
            generate(data, count)
            started = time.perf_counter()
            import_case_studies(data)
            date_in(year)
            list_contacts()
            set_up = time.perf_counter() - started
            before = peak_mb()
            started, cpu = time.perf_counter(), cpu_seconds()
            asked = services.ask_for(year)
            assert asked.queued
            db.session.remove()
        assert run_queued(app) == 1
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        after, resident = peak_mb(), resident_mb()
        with app.app_context():
            file = db.session.get(ReportFile, asked.file.id)
            assert file is not None and file.state == ReportFileState.DONE, file and file.error
            pages, size = file.pages, file.size
            in_year = len(annual.published_in(year))
            print(
                f"{in_year:>6,} case studies  {seconds:6.1f} s ({cpu:5.1f} s of CPU)  "
                f"{pages:4} pages {size / 1e6:5.1f} MB  peak memory {before:5.0f} MB before "
                f"the job, {after:5.0f} MB after; {resident:5.0f} MB held after it  "
                f"(set up in {set_up:.0f} s)",
                flush=True,
            )
            if steps:
                time_steps(app, year)
            db.engine.dispose()


def time_steps(app, year: int) -> None:
    base = app.config["BASE_URL"] + "/"
    with app.test_request_context("/", base_url=base):
        started = time.perf_counter()
        report = annual.contents(year)
        loaded = time.perf_counter()
        html = annual.page(report)
        written = time.perf_counter()
    document = pdf.layout(html, base, Path(app.static_folder or "static"))
    laid_out = time.perf_counter()
    pdf.write(document)
    done = time.perf_counter()
    print(
        f"        steps: data {loaded - started:.2f} s, HTML {written - loaded:.2f} s "
        f"({len(html) / 1e6:.1f} MB), layout {laid_out - written:.1f} s, "
        f"writing the file {done - laid_out:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--steps", action="store_true", help="also time each step")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.steps)
        return
    if not pdf.available():
        sys.exit("WeasyPrint can't load Pango here (apt-get install libpangoft2-1.0-0)")
    for count in args.counts:
        command = [sys.executable, __file__, "--one", str(count)]
        subprocess.run(command + (["--steps"] if args.steps else []), check=True)


if __name__ == "__main__":
    main()
