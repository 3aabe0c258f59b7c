"""Production app server settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Each value can be changed with a PORTAL_GUNICORN_* variable; see README, Deployment.
"""

import multiprocessing
import os

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
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("PORTAL_GUNICORN_LOGLEVEL", "info")
# Not preloaded: each worker opens its own connections after the fork.
preload_app = False
