"""Keep log lines honest: nothing a user typed can start a new line."""

import logging

from flask import Flask


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


def register(app: Flask) -> None:
    """Attach the filter to the app's logger and the libraries' loggers."""
    one_line = OneLineFilter()
    app.logger.addFilter(one_line)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineFilter) for f in logger.filters):
            logger.addFilter(one_line)
