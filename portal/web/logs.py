"""Keep log lines honest (nothing a user typed can start a new line), tie each to its request,
and write them as text for people or, with PORTAL_LOG_FORMAT=json, one JSON object per line
for log collectors.

The JSON lines are made by a logging.Formatter subclass of twenty lines: the standard
library does it, so no dependency (python-json-logger) is needed.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, has_request_context, request, request_finished
from flask.logging import default_handler

from . import request_id


class OneLineFilter(logging.Filter):
    """Escape CR and LF in every message so user input cannot forge log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\n" in message or "\r" in message:
            record.msg = message.replace("\r", "\\r").replace("\n", "\\n")
            record.args = None
        return True


#: Loggers that may carry what a visitor typed (paths, rate-limit keys).
LOGGERS = ("werkzeug", "flask-limiter", "flask_limiter", "sqlalchemy", "alembic")


class RequestFields(logging.Filter):
    """Add the request's id, method and path to each line written during a request.

    The path is never the query string: a library search puts what people search for there.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # Only a request being answered has an id: a bare context (work run after the
        # response, a command) names no request.
        if has_request_context() and (current := request_id.current()):
            for name, value in (
                ("request_id", current),
                ("method", request.method),
                ("path", request.path),
            ):
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


#: What a JSON line carries beyond time, level, logger and message, when it is known.
FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "bytes",
    "remote_addr",
    "user_agent",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line. ASCII only: no character of a message (a line break, or
    U+2028, which some readers split on) can end the line early."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


class JsonHandler(logging.StreamHandler):
    """JSON lines to standard error, whichever stream that is when the line is written."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestFields())

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # a test's captured stream, or the server's
        super().emit(record)


#: The text lines of the app's own logger: Flask's, with the request id added.
TEXT_FORMAT = "[%(asctime)s] %(levelname)s in %(module)s [%(request_id)s]: %(message)s"

#: The access line of each request, written by the app itself in JSON mode (gunicorn's own
#: access log is off then, see gunicorn.conf.py; in text mode gunicorn or the development
#: server writes it).
access_log = logging.getLogger("portal.access")


def _access_line(app: Flask, response: Response, **_extra) -> None:
    seconds = request_id.elapsed()
    user_agent = request.user_agent.string[:300] or None
    access_log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "status": response.status_code,
            "duration_ms": None if seconds is None else round(seconds * 1000, 1),
            "bytes": response.content_length,
            "remote_addr": request.remote_addr,
            "user_agent": user_agent,
        },
    )


def _use_json(app: Flask) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, JsonHandler) for h in root.handlers):
        root.addHandler(JsonHandler())
    # Everything reaches the one JSON handler on the root logger: the app's lines too.
    app.logger.removeHandler(default_handler)
    access_log.setLevel(logging.INFO)
    request_finished.connect(_access_line, app)


def _use_text() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonHandler)]:
        root.removeHandler(handler)  # a JSON app made earlier in this process (tests)
    default_handler.setFormatter(logging.Formatter(TEXT_FORMAT, defaults={"request_id": "-"}))
    if not any(isinstance(f, RequestFields) for f in default_handler.filters):
        default_handler.addFilter(RequestFields())


def register(app: Flask) -> None:
    """Attach the one-line filter to the app's and the libraries' loggers; choose the format.

    Logging is the process's: the format of the last app made in a process holds for all.
    """
    one_line = OneLineFilter()
    app.logger.addFilter(one_line)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineFilter) for f in logger.filters):
            logger.addFilter(one_line)
    if app.config["LOG_FORMAT"] == "json":
        _use_json(app)
    else:
        _use_text()
