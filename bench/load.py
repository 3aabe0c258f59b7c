"""Load test: gunicorn with 4 workers on loopback, 20 concurrent users for 60 seconds.

Usage: python bench/load.py [embedded|postgres ...] [--docs N] [--users N] [--seconds N]
(default: both setups, one after the other on the same machine, 10,000 published case
studies, 20 users, 60 seconds; then the two side by side and the scale-out's ratio).

- embedded: SQLite + Whoosh in a temporary instance folder, rate limits in memory;
- postgres: a fresh PostgreSQL database (PostgreSQL search) on 127.0.0.1:5432, rate
  limits and the shared search-result cache in Redis on 127.0.0.1:6379, database 1
  (emptied of an earlier run's counts and lists first).

Traffic per user, chosen at random: 80% library searches and filter changes (the htmx
fragment), 15% case-study pages, 5% writes (two of the users are moderators who approve
what is waiting; the others submit new case studies). Then it checks that every
submission exists, every approved case study is published and searchable, and the index
has nothing missing, stale or queued. Prints throughput, p50/p95/p99 per kind and errors,
and the load average before and after each run (other work on the machine skews figures).
"""

from __future__ import annotations

import argparse
import html
import http.client
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_bench import generate  # noqa: E402
from search import QUERIES  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/1"  # not the tests' database (0): this run clears its keys
PASSWORD = "load test password 2026"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SEEN = re.compile(r'name="seen" value="([^"]+)"')
THEMES = ["workplace-culture", "night-time-economy", "menopause-support", "allyship-and-bystander-action"]  # fmt: skip
FORCES = ["kent-police", "greater-manchester-police", "metropolitan-police-service", "west-midlands-police"]  # fmt: skip


class Browser:
    """One user's keep-alive connection with its cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, data: dict | None = None, headers=None):
        body = urlencode(data, doseq=True) if data is not None else None
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=sent)
                response = self.conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                break
            except (TimeoutError, http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        return response.status, response.headers, text

    def token(self, path: str) -> str:
        status, _, page = self.request("GET", path)
        found = TOKEN.search(page)
        if not found:
            raise RuntimeError(f"no form on {path} ({status})")
        return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(setup: str, folder: Path, docs: int, users: int) -> dict:
    """Make the instance: schema, reference data, N published case studies, accounts."""
    env = {"PORTAL_INSTANCE_PATH": str(folder / "instance"), "PORTAL_ENV": "development"}
    if setup == "postgres":
        from sqlalchemy import create_engine, text

        name = f"portal_load_{uuid.uuid4().hex[:8]}"
        engine = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        # Nothing carried over from an earlier run: its rate-limit counts (the same users
        # submitted then, so fewer writes would get through now) and shared ranked lists.
        import redis

        kept = redis.Redis.from_url(REDIS)
        for pattern in ("LIMITS*", "portal:search*"):
            for key in kept.scan_iter(pattern):
                kept.delete(key)
        kept.close()
        env.update(
            PORTAL_DATABASE_URL=f"{POSTGRES}/{name}",
            PORTAL_SEARCH_BACKEND="postgres",
            PORTAL_RATELIMIT_STORAGE_URL=REDIS,
            PORTAL_SEARCH_CACHE_URL=REDIS,
        )
    os.environ.update(env)
    source = folder / "generated.jsonl"
    generate(source, docs)
    from portal import create_app
    from portal.accounts import create_user
    from portal.auth import services
    from portal.casestudies.importer import import_case_studies
    from portal.cli import init_db
    from portal.extensions import db
    from portal.models import CaseStudy, Revision, RevisionState, Role, Theme, User
    from portal.search.sync import apply_all

    app = create_app()
    accounts = []
    with app.app_context():
        init_db()
        started = time.perf_counter()
        import_case_studies(source)
        apply_all()
        print(
            f"  {docs:,} case studies imported and indexed in {time.perf_counter() - started:.0f} s"
        )
        import pyotp

        for n in range(users):
            role = Role.MODERATOR if n < 2 else Role.CONTRIBUTOR
            email = f"load{n}@{'npcc' if n < 2 else 'kent'}.police.uk"
            user = create_user(email, f"Load User {n}", "Kent", role, PASSWORD)
            secret = None
            if role == Role.MODERATOR:
                secret = pyotp.random_base32()
                user.totp_pending_secret = secret
                services.enable_mfa(user, PASSWORD, pyotp.TOTP(secret).now())
                db.session.execute(
                    db.update(User).where(User.id == user.id).values(totp_last_step=None)
                )
                db.session.commit()
            accounts.append((email, role.value, secret))
        published = [
            f"/case-studies/{cid}/{slug}"
            for cid, slug in db.session.execute(
                db.select(CaseStudy.id, CaseStudy.slug)
                .join(Revision)
                .where(Revision.state == RevisionState.PUBLISHED)
            )
        ]
        themes = db.session.scalars(db.select(Theme.id)).all()
        db.session.remove()
        db.engine.dispose()
    return {"env": env, "accounts": accounts, "published": published, "themes": themes}


class Run:
    def __init__(self, port: int, published: list[str], themes: list[int]) -> None:
        self.port, self.published, self.themes = port, published, themes
        self.samples: list[tuple[str, float, bool]] = []
        self.errors: list[str] = []
        self.submitted: list[str] = []
        self.approved: list[tuple[int, str]] = []
        self.conflicts = 0
        self.limited = 0  # submissions the portal's rate limit refused (a 429 page): not errors
        self.lock = threading.Lock()

    def record(self, kind: str, started: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.samples.append((kind, time.perf_counter() - started, ok))
            if not ok:
                self.errors.append(f"{kind}: {detail}")

    def user(self, email: str, role: str, secret: str | None, until: float, seed: int) -> None:
        rng = random.Random(seed)
        browser = Browser(self.port)
        token = browser.token("/auth/login")
        status, headers, _ = browser.request(
            "POST", "/auth/login", {"email": email, "password": PASSWORD, "csrf_token": token}
        )
        if secret:
            import pyotp

            token = browser.token("/auth/two-factor")
            status, headers, _ = browser.request(
                "POST", "/auth/two-factor", {"code": pyotp.TOTP(secret).now(), "csrf_token": token}
            )
        if status != 303:
            self.errors.append(f"sign-in {email}: {status}")
            return
        while time.perf_counter() < until:
            dice = rng.random()
            try:
                if dice < 0.80:
                    self.search(browser, rng)
                elif dice < 0.95:
                    self.page(browser, rng)
                elif role == "moderator":
                    self.approve(browser, rng)
                else:
                    self.submit(browser, rng)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                with self.lock:
                    self.errors.append(f"{type(error).__name__}: {error}")

    def search(self, browser: Browser, rng: random.Random) -> None:
        query = rng.choice(QUERIES)
        text, extra = query if isinstance(query, tuple) else (query, {})
        params = {
            "q": text,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in extra.items()},
        }
        if rng.random() < 0.5:  # a filter ticked
            params[rng.choice(["theme", "force"])] = rng.choice(THEMES + FORCES)
        started = time.perf_counter()
        status, _, _ = browser.request(
            "GET", "/library?" + urlencode(params, doseq=True), headers={"HX-Request": "true"}
        )
        self.record("library search", started, status == 200, str(status))

    def page(self, browser: Browser, rng: random.Random) -> None:
        started = time.perf_counter()
        status, _, _ = browser.request("GET", rng.choice(self.published))
        self.record("case study page", started, status == 200, str(status))

    def submit(self, browser: Browser, rng: random.Random) -> None:
        marker = f"loadmark{uuid.uuid4().hex[:10]}"
        token = browser.token("/case-studies/new")
        data = {
            "title": f"Load test scheme {marker}",
            "summary": "Officers and partners met to share what works for women's safety.",
            "body": f"## What we did\n\nWe met, we listened, we changed things. {marker}",
            "themes": [rng.choice(self.themes)],
            "partners-0": "Street Pastors",
            "event_day": "1", "event_month": "10", "event_year": "2026",
            "outcomes": "Forty people joined.", "lessons": "Start early.",
            "evidence": "worked", "contact_name": "Sergeant Load",
            "contact_email": "load@kent.police.uk", "no_personal_data": "y",
            "not_sensitive": "y", "permission": "y", "action": "submit", "csrf_token": token,
        }  # fmt: skip
        started = time.perf_counter()
        status, _, body = browser.request("POST", "/case-studies/new", data)
        if status == 429:  # one person submitting this fast is told to wait: as it should be
            with self.lock:
                self.limited += 1
            return
        ok = status == 303
        self.record("submission", started, ok, f"{status} {body[:200]}")
        if ok:
            with self.lock:
                self.submitted.append(marker)

    def approve(self, browser: Browser, rng: random.Random) -> None:
        status, _, queue = browser.request("GET", "/moderation")
        waiting = sorted(set(re.findall(r'/moderation/(\d+)"', queue)))
        if not waiting:
            return
        revision = rng.choice(waiting)
        # As a moderator does: the review page, then the approval's check page confirmed.
        _, _, review = browser.request("GET", f"/moderation/{revision}")
        token, seen = TOKEN.search(review), SEEN.search(review)
        if not seen:
            return  # decided while the queue was read
        started = time.perf_counter()
        status, _, body = browser.request(
            "POST",
            f"/moderation/{revision}/approve",
            {"csrf_token": token.group(1), "seen": html.unescape(seen.group(1))},
        )
        if status == 400 and "already" in body.lower():
            with self.lock:
                self.conflicts += 1  # the other moderator was first: told so, not an error
            return
        ok = status == 303
        self.record("approval", started, ok, str(status))
        if ok:
            marker = re.search(r"loadmark[0-9a-f]{10}", body)
            with self.lock:
                self.approved.append((int(revision), marker.group(0) if marker else ""))


def verify(run: Run) -> list[str]:
    """Every submission exists; every approval is published and searchable; nothing queued."""
    from portal import create_app
    from portal.extensions import db
    from portal.models import Revision, RevisionState
    from portal.search import SearchQuery, get_backend
    from portal.search.sync import check, pending_count

    problems = []
    app = create_app()
    with app.app_context():
        for marker in run.submitted:
            if not db.session.scalar(
                db.select(db.func.count())
                .select_from(Revision)
                .where(Revision.body.contains(marker))
            ):
                problems.append(f"lost submission {marker}")
        backend = get_backend()
        for revision_id, _ in run.approved:
            revision = db.session.get(Revision, revision_id)
            if revision is None or revision.state != RevisionState.PUBLISHED:
                problems.append(f"approved revision {revision_id} is not published")
                continue
            marker = re.search(r"loadmark[0-9a-f]{10}", revision.title).group(0)
            if backend.query(SearchQuery(text=marker)).total != 1:
                problems.append(f"approved {marker} is not searchable")
        drift = check()
        if not drift.clean:
            problems.append(f"index drift: {drift}")
        if pending_count():
            problems.append(f"{pending_count()} index changes still queued")
        db.engine.dispose()
    return problems


def load(setup: str, docs: int, users: int, seconds: int) -> dict:
    """Run one setup under load; return its figures."""
    print(f"\n== {setup}: {docs:,} published case studies, {users} users, {seconds} s ==")
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ready = prepare(setup, folder, docs, users)
        port = free_port()
        server = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
             "--workers", "4", "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
             "wsgi:app"],
            cwd=ROOT, env={**os.environ, **ready["env"]}, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(200):
                try:
                    if Browser(port).request("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            run = Run(port, ready["published"], ready["themes"])
            load_before = loadavg()
            started = time.perf_counter()
            until = started + seconds
            threads = [
                threading.Thread(target=run.user, args=(email, role, secret, until, n))
                for n, (email, role, secret) in enumerate(ready["accounts"])
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            load_after = loadavg()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        figures = report(run, elapsed)
        figures.update(setup=setup, load=f"{load_before} → {load_after}")
        print(f"  load average (1 min) {figures['load']}")
        problems = verify(run)
        figures["problems"] = len(problems) + len(run.errors)
        print(f"  submissions {len(run.submitted)}, approvals {len(run.approved)}, "
              f"moderator races told 'already decided' {run.conflicts}, "
              f"submissions refused by the rate limit {run.limited}")  # fmt: skip
        print("  checks: " + ("every submission exists, every approval is published and "
              "searchable, the index matches" if not problems else "; ".join(problems[:10])))  # fmt: skip
        if setup == "postgres":
            from sqlalchemy import create_engine, text

            name = ready["env"]["PORTAL_DATABASE_URL"].rsplit("/", 1)[1]
            engine = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()
    os.environ.clear()
    os.environ.update(saved)
    return figures


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def report(run: Run, elapsed: float) -> dict:
    """Print the run's figures; return throughput and the library search's p95."""
    total = len(run.samples)
    figures: dict = {"rate": total / elapsed, "search_p95": float("nan")}
    print(f"  {total:,} requests in {elapsed:.1f} s: {total / elapsed:,.1f} per second; "
          f"errors {len(run.errors)}")  # fmt: skip
    for kind in ("library search", "case study page", "submission", "approval"):
        times = sorted(t for k, t, _ in run.samples if k == kind)
        if not times:
            continue

        def at(q: float, times=times) -> float:
            return times[min(len(times) - 1, int(round(q * (len(times) - 1))))] * 1000

        print(f"  {kind:<16} {len(times):>6,}  p50 {statistics.median(times) * 1000:7.1f} ms  "
              f"p95 {at(0.95):7.1f} ms  p99 {at(0.99):7.1f} ms")  # fmt: skip
        if kind == "library search":
            figures["search_p95"] = at(0.95)
    for error in run.errors[:10]:
        print(f"    error: {error}")
    return figures


def compare(results: list[dict]) -> None:
    """The setups side by side; the scale-out's throughput as a share of the embedded one's."""
    print("\n== side by side (same run, same machine) ==")
    for r in results:
        print(f"  {r['setup']:<9} {r['rate']:7.1f} requests/s   library search p95 "
              f"{r['search_p95']:6.0f} ms   load average {r['load']}   "
              f"errors and failed checks {r['problems']}")  # fmt: skip
    by = {r["setup"]: r for r in results}
    if "embedded" in by and "postgres" in by:
        ratio = by["postgres"]["rate"] / by["embedded"]["rate"]
        p95 = by["postgres"]["search_p95"]
        print(f"  scale-out / embedded throughput: {ratio:.2f} (target ≥ 0.80: "
              f"{'met' if ratio >= 0.8 else 'missed'}); scale-out search p95 {p95:.0f} ms "
              f"(target ≤ 250 ms: {'met' if p95 <= 250 else 'missed'})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "setups", nargs="*", default=["embedded", "postgres"], metavar="embedded|postgres"
    )
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    if unknown := set(args.setups) - {"embedded", "postgres"}:
        parser.error(f"unknown setup {', '.join(sorted(unknown))}: use embedded or postgres")
    compare([load(setup, args.docs, args.users, args.seconds) for setup in args.setups])
