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


def register(app: Flask) -> None:
    """Attach the filter to the app's logger."""
    app.logger.addFilter(OneLineFilter())
