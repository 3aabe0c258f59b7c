"""What operators measure, in Prometheus's text format: /metrics (portal/health/views.py).

Two kinds of figures:

- Counted by the web processes as requests go: the time of each request (labelled by its
  Flask endpoint, never its raw path, so a scanner trying a million addresses adds no
  series; by method and status class) and the time of each search backend query. Under
  gunicorn every worker counts into files in one private folder (prometheus_client's
  multiprocess mode, set up by gunicorn.conf.py) and a scrape sums them all, whichever
  worker answers it; under the development server and in tests, one process counts in memory.
- Read at the moment of the scrape, by a collector: the job queue's depth, the emails by
  state and the age of the oldest waiting one, and the search outbox (how far the index is
  behind). These come from the database and the queue, which every host shares, so they are
  the same whichever host is scraped (sum them across hosts and they count double).
"""

from __future__ import annotations

import fcntl
import glob
import hmac
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import Flask, Response, current_app, request, request_finished
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, multiprocess
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from . import request_id

# The same series in both modes: multiprocess mode has no `_created` series.
disable_created_metrics()

#: Counted in this process (and, under gunicorn, in its file of the shared folder).
LOCAL = CollectorRegistry()

REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "Seconds to answer a request, by Flask endpoint, method and status class (2xx..5xx).",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=LOCAL,
)
SEARCH_SECONDS = Histogram(
    "portal_search_duration_seconds",
    "Seconds a search backend takes to answer one query, by backend.",
    ["backend"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=LOCAL,
)

#: Methods named as such; anything else a client makes up is counted as "other".
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
#: The endpoint label of a request that matched no route (a 404, or a 405).
UNMATCHED = "unmatched"


@contextmanager
def timed_search(backend: str) -> Iterator[None]:
    """Time the query run inside the block as one search on `backend`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        SEARCH_SECONDS.labels(backend).observe(time.perf_counter() - started)


def _observe(app: Flask, response: Response, **_extra: object) -> None:
    seconds = request_id.elapsed()
    if seconds is None:
        return
    rule = request.url_rule
    endpoint = rule.endpoint if rule is not None else UNMATCHED
    method = request.method if request.method in METHODS else "other"
    status = f"{response.status_code // 100}xx"
    REQUEST_SECONDS.labels(endpoint, method, status).observe(seconds)


def multiprocess_mode() -> bool:
    """Whether this process counts into the shared folder (PROMETHEUS_MULTIPROC_DIR was set
    before prometheus_client was first imported: gunicorn.conf.py does it)."""
    return bool(getattr(_values.ValueClass, "_multiprocess", False))


class _Counted:
    """This process's own figures (no shared folder)."""

    def collect(self) -> Iterable[Metric]:
        return LOCAL.collect()


class StateCollector:
    """Figures read from the database and the queue at each scrape (cheap queries: the
    mail_message table is counted through its (state, next_attempt_at) index, and the
    search outbox holds a handful of rows unless the index is falling behind)."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "portal_metrics_source_up",
            "1 when this scrape could read the source (database, queue), 0 when it could not.",
            labels=["source"],
        )
        try:
            found = list(self._database())
        except Exception as error:  # a scrape must answer even when the database cannot
            self._failed("database", error)
            found = []
        up.add_metric(["database"], 1 if found else 0)
        yield from found
        try:
            queued = list(self._queue())
        except Exception as error:
            self._failed("queue", error)
            queued = []
        up.add_metric(["queue"], 1 if queued else 0)
        yield from queued
        yield up

    @staticmethod
    def _failed(source: str, error: Exception) -> None:
        from ..extensions import db

        current_app.logger.warning("metrics: the %s did not answer: %s", source, error)
        db.session.rollback()

    @staticmethod
    def _database() -> Iterator[Metric]:
        from sqlalchemy import func, select

        from ..extensions import db
        from ..models import MailMessage, MailState, SearchOutbox, utcnow

        now = utcnow()
        counts = {
            MailState(state): count
            for state, count in db.session.execute(
                select(MailMessage.state, func.count()).group_by(MailMessage.state)
            )
        }
        mail = GaugeMetricFamily(
            "portal_mail_messages",
            "Emails recorded in the database, by state (the same figure on every host).",
            labels=["state"],
        )
        for state in MailState:
            mail.add_metric([state.value], counts.get(state, 0))
        yield mail
        oldest = db.session.scalar(
            select(func.min(MailMessage.created_at)).where(MailMessage.state == MailState.WAITING)
        )
        yield GaugeMetricFamily(
            "portal_mail_oldest_waiting_age_seconds",
            "Age of the oldest email still waiting to be delivered (0: none is waiting).",
            value=_age(now, oldest),
        )
        rows, first = db.session.execute(
            select(func.count(), func.min(SearchOutbox.queued_at)).select_from(SearchOutbox)
        ).one()
        yield GaugeMetricFamily(
            "portal_search_outbox_rows",
            "Case studies whose search-index entry waits to be brought up to date.",
            value=rows,
        )
        yield GaugeMetricFamily(
            "portal_search_index_lag_seconds",
            "Age of the oldest change not yet in the search index (0: the index is up to date).",
            value=_age(now, first),
        )

    @staticmethod
    def _queue() -> Iterator[Metric]:
        from .. import jobs

        yield GaugeMetricFamily(
            "portal_jobs_pending",
            "Jobs waiting in the queue (mail, digests, report PDFs), not counting scheduled ones.",
            value=jobs.pending(),
        )


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


class _Fixed:
    """Figures read already (from the shared folder)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


#: gunicorn's master leaves `stopped_<pid>` in the folder when a worker stops (child_exit in
#: gunicorn.conf.py): the next scrape folds that worker's files into the archive.
STOPPED = "stopped_"
#: Kinds of file a worker counts into that outlive it (gauges: none in the portal).
_KEPT = ("counter", "histogram", "summary")


@contextmanager
def _folder_lock(folder: str) -> Iterator[None]:
    """One scrape at a time reads and folds the shared folder (processes, not threads: the
    workers are sync workers), so none sees a stopped worker twice or not at all (a counter
    that dips looks like a restart to Prometheus)."""
    with open(os.path.join(folder, "fold.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has that number now
        return True
    return True


def fold_stopped(folder: str) -> int:
    """Fold the files of the stopped workers into one archive file per kind; return how many
    workers were folded.

    gunicorn recycles workers (max_requests), and each leaves its files: what it counted must
    stay in the sums, but a scrape reads every file, so hundreds of them would make each
    scrape slow (about 12 ms a file of 40 endpoints). Called with the folder locked.
    """
    markers = glob.glob(os.path.join(folder, STOPPED + "*"))
    stopped: list[int] = []
    for marker in markers:
        pid = os.path.basename(marker).removeprefix(STOPPED)
        # A number given to a new process since (maybe a new worker, counting on in the same
        # files) is a live one again: its files stay as they are.
        if pid.isdigit() and not _alive(int(pid)):
            stopped.append(int(pid))
    for kind in _KEPT:
        files = [os.path.join(folder, f"{kind}_{pid}.db") for pid in stopped]
        files = [path for path in files if os.path.exists(path)]
        if files:
            _fold(os.path.join(folder, f"{kind}_archive.db"), files)
    for marker in markers:
        os.unlink(marker)
    return len(stopped)


def _fold(archive: str, files: list[str]) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    sources = [archive, *files] if os.path.exists(archive) else files
    merged = multiprocess.MultiProcessCollector.merge(sources, accumulate=False)
    fresh = archive + ".new"  # not *.db: never read half-written
    if os.path.exists(fresh):
        os.unlink(fresh)  # left by a fold that was cut short
    out = MmapedDict(fresh)
    try:
        for metric in merged:
            for sample in metric.samples:
                key = mmap_key(
                    metric.name,
                    sample.name,
                    list(sample.labels),
                    list(sample.labels.values()),
                    metric.documentation,
                )
                out.write_value(key, sample.value, 0.0)
    finally:
        out.close()
    os.replace(fresh, archive)
    for path in files:
        os.unlink(path)


def exposition(accept: str | None) -> tuple[bytes, str]:
    """What a scrape gets (what every process counted, and the state read now) in the format
    its Accept header asks for (Prometheus's classic text format unless it asks for another),
    and that format's content type."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        with _folder_lock(folder):
            fold_stopped(folder)
            counted = list(multiprocess.MultiProcessCollector(None, path=folder).collect())
        registry.register(_Fixed(counted))
    else:
        registry.register(_Counted())
    registry.register(StateCollector())
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def authorised(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>` (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def register(app: Flask) -> None:
    """Time every request of `app`."""
    request_finished.connect(_observe, app)
