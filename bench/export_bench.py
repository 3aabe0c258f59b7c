"""Time the streamed exports of a large library and print their memory use.

Usage: python bench/export_bench.py [COUNT] [--postgres SERVER_URL] [--query QUERY_STRING]

Generates COUNT case studies (as bench/import_bench.py does), imports and indexes them in a
temporary instance, then, in a fresh process so that the figures hold the export alone,
signs in as a moderator (contact emails included: the widest export) and downloads
/reports/export.csv and /reports/export.jsonl through the app (the Flask test client, the
response read chunk by chunk as a browser would). It prints the time to the first byte,
the total time, rows and megabytes, the process's memory before the export and its peak
during it (VmHWM, reset just before), and checks the JSON Lines with the importer's
validation. With --postgres (e.g. postgresql+psycopg://postgres@127.0.0.1:5432) a fresh
database is made on that server and dropped at the end, and PostgreSQL search is used.
Nothing of yours is touched.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._scratch import database  # noqa: E402

PASSWORD = "a long bench password"
EMAIL = "bench.moderator@npcc.police.uk"


def _config(instance: Path, database_url: str | None) -> dict:
    config = {"INSTANCE_PATH": str(instance), "TESTING": True, "RATELIMIT_ENABLED": False}
    if database_url:
        config.update(DATABASE_URL=database_url, SEARCH_BACKEND="postgres")
    return config


def prepare(count: int, folder: Path, database_url: str | None) -> None:
    """Generate, import and index COUNT case studies; add a moderator with a second factor."""
    import pyotp

    from bench.import_bench import generate
    from portal import create_app
    from portal.accounts import create_user
    from portal.auth import services
    from portal.casestudies.importer import import_case_studies
    from portal.cli import init_db
    from portal.extensions import db
    from portal.models import Role, User
    from portal.search.sync import apply_all

    source = folder / "generated.jsonl"
    generate(source, count)
    app = create_app(_config(folder / "instance", database_url))
    with app.app_context():
        init_db()
        started = time.perf_counter()
        import_case_studies(source)
        print(f"import                     {time.perf_counter() - started:8.1f} s")
        started = time.perf_counter()
        apply_all()
        print(f"first index build          {time.perf_counter() - started:8.1f} s")
        user = create_user(EMAIL, "Bench Moderator", "Kent", Role.MODERATOR, PASSWORD)
        secret = pyotp.random_base32()
        user.totp_pending_secret = secret
        services.enable_mfa(user, PASSWORD, pyotp.TOTP(secret).now())
        db.session.execute(db.update(User).where(User.id == user.id).values(totp_last_step=None))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    (folder / "secret").write_text(secret)


def _rss_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def measure(folder: Path, database_url: str | None, query: str) -> None:
    """Sign in and download both exports; runs in a process of its own."""
    import pyotp

    from portal import create_app
    from portal.casestudies.importer import validate

    app = create_app(_config(folder / "instance", database_url))
    client = app.test_client()

    def csrf(path: str) -> str:
        html = client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    client.post(
        "/auth/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf("/auth/login")},
    )
    code = pyotp.TOTP((folder / "secret").read_text()).now()
    client.post("/auth/two-factor", data={"code": code, "csrf_token": csrf("/auth/two-factor")})
    library = client.get(f"/library?{query}")  # warm: the app, the searcher, the caches
    assert library.status_code == 200, library.status_code
    assert b"/reports/export.csv" in library.data, "not signed in, or nothing matched"

    for kind in ("csv", "jsonl"):
        target = folder / f"export.{kind}"
        before = _rss_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak, to now
        started = time.perf_counter()
        response = client.get(f"/reports/export.{kind}?{query}", buffered=False)
        first = None
        size = 0
        with target.open("wb") as out:
            for chunk in response.response:
                if first is None:
                    first = time.perf_counter() - started
                out.write(chunk)
                size += len(chunk)
        response.close()
        took = time.perf_counter() - started
        peak = _rss_kb("VmHWM")
        with target.open(encoding="utf-8-sig", newline="") as written:
            if kind == "csv":  # rows, less the header (a cell may hold line breaks)
                lines = sum(1 for _ in csv.reader(written)) - 1
            else:
                lines = sum(1 for _ in written)
        print(
            f"export.{kind:<5} {lines:>9,} rows {size / 1e6:7.1f} MB   first byte "
            f"{first * 1000:6.0f} ms   all {took:6.1f} s ({lines / took:,.0f} rows/s)   "
            f"memory before {before / 1024:4.0f} MB, peak {peak / 1024:4.0f} MB "
            f"(+{(peak - before) / 1024:.0f} MB)"
        )
    with app.app_context():
        started = time.perf_counter()
        count = validate(folder / "export.jsonl")
        print(
            f"the JSON Lines pass the importer's validation ({count:,} case studies, "
            f"{time.perf_counter() - started:.1f} s)"
        )
        with (folder / "export.jsonl").open() as handle:
            assert "contact_email" in json.loads(handle.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made)")
    parser.add_argument("--query", default="", help="the library's query string, e.g. q=women")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the folder, in the child
    parser.add_argument("--database-url", help=argparse.SUPPRESS)  # in the child
    args = parser.parse_args()

    if args.measure:
        measure(Path(args.measure), args.database_url, args.query)
        return

    setup = "PostgreSQL + its search" if args.postgres else "SQLite + Whoosh"
    print(f"== {args.count:,} published case studies, {setup}, query '{args.query}' ==")
    with database(args.postgres) as database_url, tempfile.TemporaryDirectory() as tmp:
        prepare(args.count, Path(tmp), database_url)
        command = [sys.executable, __file__, "--measure", tmp, "--query", args.query]
        if database_url:
            command += ["--database-url", database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        subprocess.run(command, check=True, env=env)


if __name__ == "__main__":
    main()
