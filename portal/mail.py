"""Send outbound mail through the configured backend: file (default), console or SMTP."""

from __future__ import annotations

import smtplib
import ssl
import sys
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from flask import current_app

from .core.text import one_line
from .models import utcnow

#: Subjects longer than this are cut (with an ellipsis): mail clients show less anyway.
SUBJECT_MAX = 150


def build_message(to: str, subject: str, body: str, reply_to: str | None = None) -> EmailMessage:
    """Return a plain-text message from the portal to one recipient.

    Every subject passes through one_line(): a title holding U+2028, a bidi control or a
    line break (whatever a form let through) can never stop a message from being built.
    """
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    if reply_to:  # replies go to a person, while the portal stays the sender
        message["Reply-To"] = reply_to
    # Header injection is impossible: EmailMessage refuses CR/LF in header values, and
    # one_line() leaves nothing it would refuse.
    message["Subject"] = one_line(subject, SUBJECT_MAX)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="heforshe.portal")
    message.set_content(body)
    return message


def send_mail(to: str, subject: str, body: str, *, reply_to: str | None = None) -> None:
    """Deliver one message now through the backend named by MAIL_BACKEND."""
    message = build_message(to, subject, body, reply_to)
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "file":
        _to_file(message, Path(current_app.config["OUTBOX_PATH"]))
    elif backend == "console":
        sys.stdout.write(message.as_string() + "\n")
    elif backend == "smtp":
        _to_smtp(message)
    else:
        raise RuntimeError(f"Unknown PORTAL_MAIL_BACKEND {backend!r}")


def _to_file(message: EmailMessage, outbox: Path) -> None:
    outbox.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
    partial = outbox / f".{name}.tmp"
    partial.write_bytes(bytes(message))
    partial.replace(outbox / name)  # readers never see a half-written message


def _to_smtp(message: EmailMessage) -> None:
    config = current_app.config
    with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=30) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
        smtp.send_message(message)
