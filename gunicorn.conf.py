"""Production app server settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Each value can be changed with a PORTAL_GUNICORN_* variable; see README, Deployment.
"""

import glob
import multiprocessing
import os
import shutil
import tempfile

# Behind the reverse proxy on the same host; the proxy terminates TLS.
bind = os.environ.get("PORTAL_GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: each request is one thread of one process, and every process keeps its own
# database pool and search reader. Two per core plus one is gunicorn's advice.
workers = int(os.environ.get("PORTAL_GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = int(os.environ.get("PORTAL_GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so that no slow leak grows for ever.
max_requests = 2000
max_requests_jitter = 200
# Headers from the proxy are trusted by the app itself (PORTAL_TRUSTED_PROXIES, ProxyFix),
# not by gunicorn.
forwarded_allow_ips = "127.0.0.1"
limit_request_line = 8190
limit_request_fields = 100
# PORTAL_LOG_FORMAT=json (set it in the environment, not only in instance/config.py): the app
# writes each request's access line itself, as JSON with its request id and without the query
# string, so gunicorn's own access log is off and its other lines are JSON too. In text mode
# gunicorn's access line ends with the request id (the X-Request-ID response header).
JSON_LOGS = os.environ.get("PORTAL_LOG_FORMAT", "text") == "json"
accesslog = None if JSON_LOGS else "-"
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
)
errorlog = "-"
loglevel = os.environ.get("PORTAL_GUNICORN_LOGLEVEL", "info")
# Not preloaded: each worker opens its own connections after the fork.
preload_app = False

# /metrics across the workers: each worker counts into its own files in one private folder,
# and a scrape sums them all (prometheus_client's multiprocess mode). The folder must be
# named before any worker imports prometheus_client, so it is chosen here, when the master
# reads this file (again on a reload: the same folder is kept). Set PROMETHEUS_MULTIPROC_DIR
# to use a folder of your own (emptied of the portal's files at each start).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-metrics-")
    os.environ["PORTAL_GUNICORN_METRICS_TMPDIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
os.makedirs(METRICS_DIR, mode=0o700, exist_ok=True)

# The master never imports the portal's own code: with preload_app off, a reload (HUP) after
# a deploy must give the new workers the new code, not modules the master kept.
from prometheus_client import multiprocess  # noqa: E402 - only once the folder is named


def _forget_counts() -> None:
    for pattern in ("*.db", "*.db.new", "stopped_*"):
        for path in glob.glob(os.path.join(METRICS_DIR, pattern)):
            os.unlink(path)


def on_starting(server) -> None:
    """The master, once, before its first worker: counting starts from zero."""
    _forget_counts()


def child_exit(server, worker) -> None:
    """A worker has stopped (recycled or crashed). What it counted stays in the sums; the
    next scrape folds its files into one archive file (portal/web/metrics.py), so scrapes do
    not slow down as workers come and go. Runs in the master's signal handler: files only."""
    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)
    with open(os.path.join(METRICS_DIR, f"stopped_{worker.pid}"), "w"):
        pass


def on_exit(server) -> None:
    created = os.environ.get("PORTAL_GUNICORN_METRICS_TMPDIR")
    if created and created == METRICS_DIR:
        shutil.rmtree(created, ignore_errors=True)
    else:
        _forget_counts()


if JSON_LOGS:
    import json
    import logging
    from datetime import UTC, datetime

    from gunicorn.glogging import Logger

    class GunicornJsonFormatter(logging.Formatter):
        """gunicorn's own lines with the fields of the portal's (portal/web/logs.py), which
        the master does not import."""

        def format(self, record: logging.LogRecord) -> str:
            entry = {
                "time": datetime.fromtimestamp(record.created, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return json.dumps(entry, ensure_ascii=True, default=str)

    class JsonLogger(Logger):
        def setup(self, cfg) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(GunicornJsonFormatter())

    logger_class = JsonLogger

    def post_fork(server, worker) -> None:
        """In each new worker, before the app is loaded: the lines it writes while it starts
        (before it sets up its own logging) are JSON too."""
        from portal.web.logs import JsonHandler

        root = logging.getLogger()
        if not any(isinstance(h, JsonHandler) for h in root.handlers):
            root.addHandler(JsonHandler())
