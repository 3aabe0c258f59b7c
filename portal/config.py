"""Read the configuration once: defaults, PORTAL_* variables, then instance/config.py."""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

#: Every setting the portal reads, with its default. Environment variables are PORTAL_<NAME>.
DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,
    "DATABASE_URL": None,  # SQLite in the instance folder
    "SEARCH_BACKEND": "whoosh",
    "MAIL_BACKEND": "file",
    "ALLOWED_EMAIL_DOMAINS": "police.uk",
    "PUBLIC_LIBRARY": False,
    "RATELIMIT_STORAGE_URL": "memory://",
    "SITE_NAME": "HeForShe Practice Library",
    # `production` (default) sends cookies only over HTTPS with the __Host- prefix;
    # `development` (what `make run` uses) allows plain HTTP on your own machine.
    "ENV": "production",
    # The address people reach the portal at; links in emails are built from it, never
    # from the request's Host header (which an attacker controls).
    "BASE_URL": "http://127.0.0.1:5000",
    "MAIL_FROM": "HeForShe Practice Library <no-reply@heforshe.invalid>",
    "SMTP_HOST": "localhost",
    "SMTP_PORT": 587,
    "SMTP_STARTTLS": True,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_MAX_HOURS": 12,
    # How many reverse proxies in front of the app set X-Forwarded-For (0: none).
    "TRUSTED_PROXIES": 0,
    "ATTACHMENT_MAX_BYTES": 20 * 1024 * 1024,
    "ATTACHMENT_MAX_COUNT": 5,
    # How many days the admins' search insights keep each search (0: record none).
    "SEARCH_INSIGHTS_DAYS": 90,
    # How many days the audit log keeps each event (0: for ever); 730 days is 2 years.
    "AUDIT_RETENTION_DAYS": 730,
    # How many days a sent email is kept (it may hold a reset link or a private message).
    "MAIL_RETENTION_DAYS": 30,
    # How many days a registration nobody confirmed is kept (its name, email and force).
    "UNCONFIRMED_DAYS": 7,
    # The job queue (mail delivery, digests, report PDFs, repairs): empty for SQLite in the
    # instance folder (instance/jobs.db), or redis://host:port/db when scaling out.
    "QUEUE_URL": "",
    "QUEUE_NAME": "portal",  # one name per portal sharing a Redis server
    # PostgreSQL search: redis://host:port/db to share search results between workers and
    # hosts for two minutes, keyed by the index's generation (empty: no shared cache).
    "SEARCH_CACHE_URL": "",
    # Seconds the portal waits for each answer of the mail server before trying again later.
    "SMTP_TIMEOUT": 20,
    "SMTP_CA_FILE": "",  # certificate authorities for STARTTLS (empty: the system's)
    # Seconds a worker may hold a message before the sweep takes it back (0: 6 × SMTP_TIMEOUT
    # + 30, long enough for the server's answers to time out; shorter only in tests).
    "MAIL_LEASE_SECONDS": 0,
    # When the weekly digests go: a day (mon..sun) and an hour of UK time.
    "DIGEST_DAY": "mon",
    "DIGEST_HOUR": 7,
    # /metrics answers only a request with "Authorization: Bearer <this>" (empty: 404).
    "METRICS_TOKEN": "",
    # Log lines as `text` (for people) or `json` (one object per line, for log collectors).
    "LOG_FORMAT": "text",
    # Who runs this deployment, and how people reach them: the accessibility statement,
    # the privacy notice and the cookies page name them (empty contacts: the page says to
    # ask the portal's admins).
    "ORGANISATION": "the HeForShe Practice Library team",
    "CONTACT_EMAIL": "",
    "DPO_CONTACT": "",  # the data protection officer: an email address or a line of text
    # The lawful basis for processing people's data (UK GDPR Article 6(1)).
    "LAWFUL_BASIS": "public_task",
    # When the accessibility statement was last reviewed (YYYY-MM-DD).
    "ACCESSIBILITY_REVIEWED": "2026-12-05",
}

_BOOLEAN = {"PUBLIC_LIBRARY", "SMTP_STARTTLS"}
_INTEGER = {
    "SMTP_PORT",
    "SESSION_IDLE_MINUTES",
    "SESSION_MAX_HOURS",
    "TRUSTED_PROXIES",
    "ATTACHMENT_MAX_BYTES",
    "ATTACHMENT_MAX_COUNT",
    "SEARCH_INSIGHTS_DAYS",
    "AUDIT_RETENTION_DAYS",
    "MAIL_RETENTION_DAYS",
    "UNCONFIRMED_DAYS",
    "SMTP_TIMEOUT",
    "MAIL_LEASE_SECONDS",
    "DIGEST_HOUR",
}


def instance_path_from_env() -> str:
    """Return the absolute instance folder: PORTAL_INSTANCE_PATH or ./instance."""
    return str(Path(os.environ.get("PORTAL_INSTANCE_PATH", "instance")).resolve())


def _parse_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, Any]:
    """Return the settings given as PORTAL_* environment variables."""
    found: dict[str, Any] = {}
    for name in DEFAULTS:
        raw = environ.get(f"PORTAL_{name}")
        if raw is None:
            continue
        if name in _BOOLEAN:
            found[name] = _parse_bool(raw)
        elif name in _INTEGER:
            found[name] = int(raw)
        else:
            found[name] = raw
    return found


class ConfigError(RuntimeError):
    """A setting has a value the portal cannot work with; the message names it."""


CHOICES = {
    "SEARCH_BACKEND": ("whoosh", "postgres"),
    "MAIL_BACKEND": ("file", "console", "smtp"),
    "ENV": ("production", "development"),
    "DIGEST_DAY": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
    "LOG_FORMAT": ("text", "json"),
    "LAWFUL_BASIS": ("public_task", "legitimate_interests"),
}


def make_private(instance_path: Path) -> list[str]:
    """Make the instance folder 0700 and what it holds 0600 (folders 0700); say what changed.

    It holds TOTP secrets and password hashes (portal.db), the signing key, reset links
    (outbox/) and uploads: nobody else on the machine may read them. Only the folder and
    its direct contents are checked (a private folder shuts everything below it), so a
    start stays quick however many files the index and outbox hold.
    """
    notes = []
    for path in (instance_path, *sorted(instance_path.iterdir())):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        wanted = 0o700 if path.is_dir() else 0o600
        if mode & 0o077 == 0:
            continue
        try:
            path.chmod(mode & wanted)
        except OSError as error:
            notes.append(
                f"{path} can be read by other users and could not be made private: {error}"
            )
        else:
            notes.append(
                f"{path} could be read by other users: made private ({oct(mode & wanted)})"
            )
    return notes


def ensure_secret_key(instance_path: Path) -> str:
    """Return the key stored in the instance folder, generating it the first time."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        # Written whole to a private temporary file, then linked into place: when two
        # workers start at once, one key wins and nobody ever reads a half-written file.
        fd, temporary = tempfile.mkstemp(dir=instance_path, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            os.link(temporary, key_file)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    key = key_file.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{key_file} holds no usable key: delete it to generate a new one")
    return key


def finalise(config: dict[str, Any], instance_path: Path) -> dict[str, Any]:
    """Derive the Flask and extension settings from the portal's own."""
    for name, allowed in CHOICES.items():
        if config.get(name) not in allowed:
            raise ConfigError(
                f"PORTAL_{name}={config.get(name)!r} is not supported; use one of: "
                + ", ".join(allowed)
            )
    if not 0 <= int(config.get("SEARCH_INSIGHTS_DAYS", 90)) <= 3650:
        raise ConfigError(
            f"PORTAL_SEARCH_INSIGHTS_DAYS={config.get('SEARCH_INSIGHTS_DAYS')!r} is not "
            "supported; use a number of days from 0 (record no searches) to 3650"
        )
    audit_days = int(config.get("AUDIT_RETENTION_DAYS", 730))
    if audit_days != 0 and not 30 <= audit_days <= 36500:
        raise ConfigError(
            f"PORTAL_AUDIT_RETENTION_DAYS={config.get('AUDIT_RETENTION_DAYS')!r} is not "
            "supported; use 0 (keep every event) or a number of days from 30 to 36500"
        )
    if not 1 <= int(config.get("MAIL_RETENTION_DAYS", 30)) <= 3650:
        raise ConfigError(
            f"PORTAL_MAIL_RETENTION_DAYS={config.get('MAIL_RETENTION_DAYS')!r} is not "
            "supported; use a number of days from 1 to 3650"
        )
    if not 2 <= int(config.get("UNCONFIRMED_DAYS", 7)) <= 365:
        raise ConfigError(
            f"PORTAL_UNCONFIRMED_DAYS={config.get('UNCONFIRMED_DAYS')!r} is not supported; use "
            "a number of days from 2 (a confirmation link lasts 48 hours) to 365"
        )
    try:
        date.fromisoformat(str(config.get("ACCESSIBILITY_REVIEWED", "2026-12-05")))
    except ValueError:
        raise ConfigError(
            f"PORTAL_ACCESSIBILITY_REVIEWED={config.get('ACCESSIBILITY_REVIEWED')!r} is not a "
            "date: write it as YYYY-MM-DD"
        ) from None
    derived: dict[str, Any] = {}
    if not config.get("SECRET_KEY"):
        derived["SECRET_KEY"] = ensure_secret_key(instance_path)
    url = config.get("DATABASE_URL") or f"sqlite:///{instance_path / 'portal.db'}"
    if config.get("SEARCH_BACKEND") == "postgres" and not url.startswith("postgresql"):
        raise ConfigError(
            "PORTAL_SEARCH_BACKEND=postgres searches the portal's own database: set "
            "PORTAL_DATABASE_URL=postgresql+psycopg://... too"
        )
    derived["DATABASE_URL"] = url
    derived["SQLALCHEMY_DATABASE_URI"] = url
    derived["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **(
            {"connect_args": {"timeout": 15}}
            if url.startswith("sqlite")
            else {"pool_pre_ping": True}
        ),
        # A failed statement's error never carries its values into the log: an email's text
        # (a reset link), a password hash, what someone typed.
        "hide_parameters": True,
    }
    derived["SEARCH_INDEX_PATH"] = str(instance_path / "search")
    derived["OUTBOX_PATH"] = str(instance_path / "outbox")
    derived["UPLOADS_PATH"] = str(instance_path / "uploads")
    queue = str(config.get("QUEUE_URL") or "")
    if queue and not queue.startswith(("redis://", "rediss://", "unix://", "sqlite:///")):
        raise ConfigError(
            f"PORTAL_QUEUE_URL={queue!r} is not supported: leave it empty for SQLite in the "
            "instance folder, or give redis://host:port/db"
        )
    derived["QUEUE_URL"] = queue or f"sqlite:///{instance_path / 'jobs.db'}"
    if not 0 <= int(config.get("DIGEST_HOUR", 7)) <= 23:
        raise ConfigError(
            f"PORTAL_DIGEST_HOUR={config.get('DIGEST_HOUR')!r} is not supported: "
            "use an hour from 0 to 23"
        )
    derived["RATELIMIT_STORAGE_URI"] = config.get("RATELIMIT_STORAGE_URL") or "memory://"
    derived["RATELIMIT_HEADERS_ENABLED"] = True
    # Always explicit: Flask-Limiter would otherwise take the last app's setting as default.
    derived["RATELIMIT_ENABLED"] = bool(config.get("RATELIMIT_ENABLED", True))
    derived["RATELIMIT_STRATEGY"] = "moving-window"  # no double allowance at a window's edge
    # Fail closed when the storage (Redis) is down: its errors come out as limits'
    # StorageError, answered with a 503 (portal/web/errors.py), never swallowed (no limit at
    # all) nor counted in each process's memory instead (a limit per process, not per portal).
    derived["RATELIMIT_SWALLOW_ERRORS"] = False
    derived["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = False
    # Bounded waits: a Redis that is down or hangs costs a request at most a couple of seconds.
    derived["RATELIMIT_STORAGE_OPTIONS"] = {
        "wrap_exceptions": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
    }
    production = config.get("ENV", "production") == "production" and not config.get("TESTING")
    derived["SESSION_COOKIE_SECURE"] = production
    derived["SESSION_COOKIE_NAME"] = "__Host-session" if production else "session"
    derived["SESSION_COOKIE_HTTPONLY"] = True
    derived["SESSION_COOKIE_SAMESITE"] = "Lax"
    derived["SESSION_COOKIE_DOMAIN"] = None  # required by the __Host- prefix
    derived["SESSION_REFRESH_EACH_REQUEST"] = True
    derived["BASE_URL"] = str(config.get("BASE_URL") or "").rstrip("/")
    # One request carries at most a form and the allowed attachments; more is a 413.
    derived["MAX_CONTENT_LENGTH"] = (
        int(config["ATTACHMENT_MAX_BYTES"]) * int(config["ATTACHMENT_MAX_COUNT"]) + 1024 * 1024
    )
    derived["MAX_FORM_MEMORY_SIZE"] = 2 * 1024 * 1024
    domains = config.get("ALLOWED_EMAIL_DOMAINS") or ""
    if isinstance(domains, str):
        derived["ALLOWED_EMAIL_DOMAINS"] = tuple(
            d.strip().lower().lstrip(".") for d in domains.split(",") if d.strip()
        )
    return derived


def production_warnings(config: dict[str, Any]) -> list[str]:
    """Return what looks unfinished in a production configuration."""
    if config.get("ENV") != "production" or config.get("TESTING"):
        return []
    warnings = []
    if config["BASE_URL"].startswith(("http://127.0.0.1", "http://localhost")):
        warnings.append("PORTAL_BASE_URL is not set: links in emails will point at this machine")
    if config["MAIL_BACKEND"] == "file":
        warnings.append("PORTAL_MAIL_BACKEND is 'file': mail goes to instance/outbox, not people")
    return warnings
