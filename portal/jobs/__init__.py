"""The job queue: Huey on SQLite in the instance folder, or on Redis when scaling out.

Work that is slow or may fail (mail, digests, report PDFs, repairs) is a job. A module
declares its jobs with `@job` or `@periodic`; `init_app` binds every declared job to the
app's own queue, each run inside an app context. `portal worker` consumes the queue;
`run_queued` runs what is waiting in this process (the same code path, for tests and the CLI).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import Flask, current_app, g
from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper

log = logging.getLogger(__name__)

#: A function of the app's configuration returning Huey's schedule test (e.g. a crontab).
Schedule = Callable[[dict[str, Any]], Callable[[datetime], bool]]


@dataclass(frozen=True)
class Declared:
    function: Callable[..., Any]
    name: str
    schedule: Schedule | None = None
    retries: int = 0
    retry_delay: int = 0


_DECLARED: dict[str, Declared] = {}


def job(
    name: str, *, retries: int = 0, retry_delay: int = 0
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a function as a job called `name`; queue it with `enqueue(name, ...)`.

    A job that raises is run again up to `retries` times, `retry_delay` seconds apart.
    """

    def declare(function: Callable[..., Any]) -> Callable[..., Any]:
        _DECLARED[name] = Declared(function, name, retries=retries, retry_delay=retry_delay)
        return function

    return declare


def periodic(name: str, schedule: Schedule) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Declare a function the worker's scheduler runs whenever `schedule` says so."""

    def declare(function: Callable[[], Any]) -> Callable[[], Any]:
        _DECLARED[name] = Declared(function, name, schedule)
        return function

    return declare


@dataclass
class Queue:
    """One app's queue and the jobs bound to it."""

    huey: Huey
    tasks: dict[str, TaskWrapper] = field(default_factory=dict)


def make_huey(config: dict[str, Any]) -> Huey:
    """Return Huey on the storage QUEUE_URL names: sqlite:///path or redis://..."""
    url = config["QUEUE_URL"]
    name = config["QUEUE_NAME"]
    if url.startswith("sqlite:///"):
        # Results are never read (the database records what a job did): none are kept.
        return SqliteHuey(name, filename=urlsplit(url).path, results=False, utc=True, timeout=15)
    # Bounded waits (above the 1 s a worker's blocking read waits): a Redis that is down or
    # hung costs a request at most 2 seconds (the mail row is kept, and the sweep queues it
    # later), never a hung worker.
    pool = redis.ConnectionPool.from_url(
        url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30
    )
    return RedisHuey(name, connection_pool=pool, results=False, utc=True, read_timeout=1)


def init_app(app: Flask) -> None:
    """Bind every declared job to this app's queue."""
    from . import mail  # noqa: F401 - declares the mail jobs

    huey = make_huey(app.config)
    queue = Queue(huey)
    for declared in _DECLARED.values():
        run = _in_app_context(app, declared.function)
        if declared.schedule is None:
            queue.tasks[declared.name] = huey.task(
                name=declared.name, retries=declared.retries, retry_delay=declared.retry_delay
            )(run)
        else:
            test = declared.schedule(app.config)
            if hasattr(test, "latest"):  # a time of day: checked each minute, run once a slot
                run = _in_app_context(app, _once_per_slot(declared.name, test, declared.function))
                test = _every_check
            queue.tasks[declared.name] = huey.periodic_task(test, name=declared.name)(run)
    app.extensions["portal.jobs"] = queue
    mail.register(app)


def _every_check(now: datetime) -> bool:
    return True


def _once_per_slot(name: str, schedule: Any, function: Callable[[], Any]) -> Callable[[], Any]:
    from ..models import utcnow
    from .schedules import run_once_per_slot

    @functools.wraps(function)
    def run() -> Any:
        def work(previous: datetime) -> Any:
            g.previous_slot = previous  # when this job last ran (the digests' window)
            return function()

        return run_once_per_slot(name, schedule.latest(utcnow()), work)

    return run


def _in_app_context(app: Flask, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        # A context of its own, so its own database session, even when run in a request.
        with app.app_context():
            return function(*args, **kwargs)

    return run


def queue_of(app: Flask | None = None) -> Queue:
    queue: Queue = (app or current_app).extensions["portal.jobs"]
    return queue


def enqueue(name: str, *args: Any, eta: datetime | None = None) -> None:
    """Queue the job `name` with these arguments (now, or at the UTC time `eta`)."""
    task = queue_of().tasks[name]
    if eta is None:
        task(*args)
    else:
        task.schedule(args, eta=eta)


def run_queued(app: Flask | None = None, limit: int = 10_000) -> int:
    """Run the jobs waiting in the queue, in this process, as a worker would; return how many."""
    huey = queue_of(app).huey
    done = 0
    # Asking first: on Redis, taking from an empty queue blocks for a second.
    while done < limit and huey.pending_count():
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
        done += 1
    return done


def run_periodic(name: str, app: Flask | None = None) -> Any:
    """Run one periodic job now, in this process (a manual run, or a test)."""
    declared = _DECLARED[name]
    target = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return _in_app_context(target, declared.function)()


def pending(app: Flask | None = None) -> int:
    """Return how many jobs wait in the queue (not counting those scheduled for later)."""
    return int(queue_of(app).huey.pending_count())
