"""Build outbound mail, record it in the caller's transaction, and hand it to a mail server.

Nothing here is sent inside a request: `queue_mail` adds a row to the session, the commit
keeps it (a rollback takes it away), and a job (portal/jobs/mail.py) delivers it through
the backend named by MAIL_BACKEND: file (default), console or SMTP.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
import smtplib
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from flask import current_app

from .core.text import one_line
from .extensions import db
from .models import MailMessage, MailState, utcnow

#: Subjects longer than this are cut (with an ellipsis): mail clients show less anyway.
SUBJECT_MAX = 150


def queue_mail(to: str, subject: str, body: str, *, reply_to: str | None = None) -> MailMessage:
    """Record one plain-text message from the portal in the caller's transaction.

    Every subject passes through one_line(): a title holding U+2028, a bidi control or a
    line break (whatever a form let through) can never stop a message from being built.
    """
    row = MailMessage(
        message_id=make_msgid(domain="heforshe.portal"),
        to=to,
        reply_to=reply_to or None,
        subject=one_line(subject, SUBJECT_MAX),
        body=body,
        state=MailState.WAITING,
        attempts=0,
        next_attempt_at=utcnow(),
        last_error="",
    )
    db.session.add(row)
    return row


def build_message(row: MailMessage) -> EmailMessage:
    """Return the message a row records; the same headers however often it is built."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = row.to
    if row.reply_to:  # replies go to a person, while the portal stays the sender
        message["Reply-To"] = row.reply_to
    # Header injection is impossible: EmailMessage refuses CR/LF in header values, and
    # one_line() leaves nothing it would refuse.
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at.replace(tzinfo=UTC))
    message["Message-ID"] = row.message_id
    message.set_content(row.body)
    return message


class DeliveryError(Exception):
    """The message was not accepted. `permanent` says whether trying again could help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


class AnswerLost(Exception):
    """The server was given the whole message, and its answer never came."""


#: Called with a row once the server holds all of it but has not answered: the caller
#: records that, so a crash from here on never sends the message a second time.
HandOver = Callable[[MailMessage], None]


@contextmanager
def transport() -> Iterator[Callable[[MailMessage, HandOver], None]]:
    """Yield a function that delivers one row; an SMTP connection is shared between rows."""
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "smtp":
        with _SMTPTransport() as send:
            yield send
    elif backend == "file":
        yield _to_file
    elif backend == "console":
        yield _to_console
    else:
        raise RuntimeError(f"Unknown PORTAL_MAIL_BACKEND {backend!r}")


def _to_file(row: MailMessage, handed_over: HandOver) -> None:
    # One name per message: writing it again (a retry after a crash) replaces, never adds.
    outbox = Path(current_app.config["OUTBOX_PATH"])
    outbox.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(row.message_id.encode()).hexdigest()[:8]
    name = f"{row.created_at:%Y%m%dT%H%M%S%f}-{row.id:09d}-{tag}.eml"
    partial = outbox / f".{name}.tmp"
    partial.write_bytes(bytes(build_message(row)))
    partial.replace(outbox / name)  # readers never see a half-written message


def _to_console(row: MailMessage, handed_over: HandOver) -> None:
    sys.stdout.write(build_message(row).as_string() + "\n")


_LEADING_DOT = re.compile(rb"(?m)^\.")


class _SMTPTransport:
    """One connection for a batch of messages, opened when first needed, reopened after errors."""

    def __init__(self) -> None:
        self.config = current_app.config
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Callable[[MailMessage, HandOver], None]:
        return self.send

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        timeout = float(config["SMTP_TIMEOUT"])
        try:
            smtp = smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=timeout)
            try:
                smtp.ehlo()
                if config["SMTP_STARTTLS"]:
                    context = ssl.create_default_context(cafile=config.get("SMTP_CA_FILE") or None)
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if config["SMTP_USERNAME"]:
                    smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            except BaseException:
                smtp.close()
                raise
        # Trouble with the connection is not about this message: it is tried again later.
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(_reason("connecting", error.smtp_code, error.smtp_error)) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"could not reach the mail server: {error}") from error
        return smtp

    def send(self, row: MailMessage, handed_over: HandOver) -> None:
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            self._conversation(self.smtp, row, handed_over)
        except AnswerLost:
            self._close()
            raise
        except DeliveryError:
            self._reset()
            raise
        except (smtplib.SMTPException, OSError) as error:
            self._close()
            raise DeliveryError(f"the mail server stopped answering: {error}") from error

    def _reset(self) -> None:
        try:
            assert self.smtp is not None
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._close()

    def _conversation(self, smtp: smtplib.SMTP, row: MailMessage, handed_over: HandOver) -> None:
        """MAIL, RCPT, DATA by hand, to record the hand-over between the data and the answer."""
        message = build_message(row)
        sender = parseaddr(str(message["From"]))[1]
        code, text = smtp.mail(sender)
        if code != 250:
            raise DeliveryError(_reason("the sender", code, text), permanent=code >= 500)
        code, text = smtp.rcpt(row.to)
        if code not in (250, 251):
            raise DeliveryError(_reason("the recipient", code, text), permanent=code >= 500)
        code, text = smtp.docmd("DATA")
        if code != 354:
            raise DeliveryError(_reason("the message", code, text), permanent=code >= 500)
        data = _LEADING_DOT.sub(b"..", message.as_bytes(policy=email.policy.SMTP))
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        handed_over(row)
        try:
            smtp.send(data + b".\r\n")
            code, text = smtp.getreply()
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            raise AnswerLost(str(error)) from error
        if code != 250:
            raise DeliveryError(_reason("the message", code, text), permanent=code >= 500)


def _reason(what: str, code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"the mail server refused {what}: {code} {one_line(said, 300)}"
