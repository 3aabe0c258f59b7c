"""Build outbound mail, record it in the caller's transaction, and hand it to a mail server.

Nothing here is sent inside a request: `queue_mail` adds a row to the session, the commit
keeps it (a rollback takes it away), and a job (portal/jobs/mail.py) delivers it through
the backend named by MAIL_BACKEND: file (default), console or SMTP.
"""

from __future__ import annotations

import email.errors
import email.policy
import hashlib
import re
import smtplib
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


#: Called with a row once the server holds all of it but its final dot: the caller records
#: that, so a crash from here on never sends the message a second time. Raising stops the
#: message: the final dot is never sent, and a server keeps nothing without it.
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


def _built(row: MailMessage) -> EmailMessage:
    """build_message(), or a permanent DeliveryError: what cannot be built never will be."""
    try:
        return build_message(row)
    except (ValueError, TypeError, email.errors.MessageError) as error:
        raise DeliveryError(f"the message could not be built: {error}", permanent=True) from error


def _international(message: EmailMessage, row: MailMessage) -> str:
    """The first address (not a name: names are encoded) with characters beyond ASCII, or ""."""
    addresses = [row.to, parseaddr(str(message["From"]))[1]]
    if row.reply_to:
        addresses.append(parseaddr(row.reply_to)[1])
    return next((address for address in addresses if not address.isascii()), "")


def _to_file(row: MailMessage, handed_over: HandOver) -> None:
    # One name per message: writing it again (a retry after a crash) replaces, never adds.
    message = _built(row)
    policy = email.policy.default.clone(utf8=bool(_international(message, row)))
    outbox = Path(current_app.config["OUTBOX_PATH"])
    outbox.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(row.message_id.encode()).hexdigest()[:8]
    name = f"{row.created_at:%Y%m%dT%H%M%S%f}-{row.id:09d}-{tag}.eml"
    partial = outbox / f".{name}.tmp"
    partial.write_bytes(message.as_bytes(policy=policy))
    partial.replace(outbox / name)  # readers never see a half-written message


def _to_console(row: MailMessage, handed_over: HandOver) -> None:
    sys.stdout.write(_built(row).as_string() + "\n")


_LEADING_DOT = re.compile(rb"(?m)^\.")
#: The message's text for a server without 8BITMIME: anything beyond ASCII in base64.
_SEVEN_BIT = email.policy.SMTP.clone(cte_type="7bit")


class _SMTPTransport:
    """One connection for a batch of messages, opened when first needed, reopened after errors.

    A connection that cannot be opened (no answer, a refused login, an untrusted
    certificate) is not tried again for the rest of the batch: every message in it waits,
    and the job ends after one timeout, not one per message.
    """

    def __init__(self) -> None:
        self.config = current_app.config
        self.timeout = float(self.config["SMTP_TIMEOUT"])
        self.smtp: smtplib.SMTP | None = None
        self.unavailable: str | None = None  # why no connection could be opened

    def __enter__(self) -> Callable[[MailMessage, HandOver], None]:
        return self.send

    def __exit__(self, *exc_info: object) -> None:
        if self.smtp is not None:
            with suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            self._drop()

    def _drop(self) -> None:
        """Close the connection without a word: never a QUIT in the middle of a message."""
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def _said(self, error: BaseException) -> str:
        """What went wrong, in words: a timeout (however smtplib wraps it) says so."""
        seen: BaseException | None = error
        while seen is not None:
            if isinstance(seen, TimeoutError):
                return f"it did not answer within {self.timeout:g} s"
            seen = seen.__cause__ or seen.__context__
        return one_line(str(error), 300) or type(error).__name__

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        where = f"{config['SMTP_HOST']}:{config['SMTP_PORT']}"
        try:
            smtp = smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=self.timeout)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(
                f"could not reach the mail server at {where}: {self._said(error)}"
            ) from error
        try:
            smtp.ehlo()
            if config["SMTP_STARTTLS"]:
                context = ssl.create_default_context(cafile=config.get("SMTP_CA_FILE") or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if config["SMTP_USERNAME"]:
                _login(smtp, config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
        except (smtplib.SMTPException, OSError) as error:
            smtp.close()
            # Trouble here is the portal's settings or the server, never this message's.
            raise DeliveryError(self._setup_problem(error)) from error
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _setup_problem(self, error: BaseException) -> str:
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                f"the mail server's certificate could not be verified ({error.verify_message}): "
                "check PORTAL_SMTP_HOST and PORTAL_SMTP_CA_FILE"
            )
        if isinstance(error, ssl.SSLError):
            return f"TLS with the mail server failed ({self._said(error)}): check its certificate"
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return _reason("the portal's login", error.smtp_code, error.smtp_error) + (
                ": check PORTAL_SMTP_USERNAME and PORTAL_SMTP_PASSWORD"
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return (
                f"the mail server does not offer what the settings ask for ({error}): check "
                "PORTAL_SMTP_STARTTLS and PORTAL_SMTP_USERNAME"
            )
        if isinstance(error, smtplib.SMTPResponseException):
            return _reason("the connection", error.smtp_code, error.smtp_error)
        return f"the mail server stopped answering: {self._said(error)}"

    def send(self, row: MailMessage, handed_over: HandOver) -> None:
        if self.unavailable is not None:
            raise DeliveryError(self.unavailable)
        if self.smtp is None:
            try:
                self.smtp = self._connect()
            except DeliveryError as error:
                self.unavailable = error.reason
                raise
        try:
            self._conversation(self.smtp, row, handed_over)
        except DeliveryError:
            self._reset()
            raise
        except AnswerLost:
            self._drop()
            raise
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            raise DeliveryError(
                f"the mail server stopped answering: {self._said(error)}"
            ) from error
        except BaseException:
            self._drop()  # anything else (say the hand-over refused): the final dot never goes
            raise

    def _reset(self) -> None:
        try:
            assert self.smtp is not None
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _conversation(self, smtp: smtplib.SMTP, row: MailMessage, handed_over: HandOver) -> None:
        """MAIL, RCPT, DATA by hand, to record the hand-over between the text and its final dot."""
        message = _built(row)
        sender = parseaddr(str(message["From"]))[1]
        options = []
        beyond_ascii = _international(message, row)
        if beyond_ascii:
            if not smtp.has_extn("smtputf8"):
                raise DeliveryError(
                    f"the address {one_line(beyond_ascii, 320)} has characters beyond ASCII, "
                    "which the mail server does not take (it does not offer SMTPUTF8)",
                    permanent=True,
                )
            options.append("SMTPUTF8")
            data = message.as_bytes(policy=email.policy.SMTPUTF8)
        else:
            data = message.as_bytes(policy=email.policy.SMTP)
        if not data.isascii():
            if smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            elif "SMTPUTF8" not in options:
                data = message.as_bytes(policy=_SEVEN_BIT)
        code, text = smtp.mail(sender, options)
        if code != 250:
            # The sender is the portal's own (the same for every message): a refusal is a
            # matter of its settings or the server's, so the message waits, whatever the code.
            raise DeliveryError(
                _reason("the sender", code, text) + ": check PORTAL_MAIL_FROM and the login"
            )
        code, text = smtp.rcpt(row.to)
        if code not in (250, 251):
            raise DeliveryError(_reason("the recipient", code, text), permanent=code >= 500)
        code, text = smtp.docmd("DATA")
        if code != 354:
            raise DeliveryError(_reason("the message", code, text), permanent=code >= 500)
        data = _LEADING_DOT.sub(b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        smtp.send(data)  # all of it but the final dot: without that, a server keeps nothing
        handed_over(row)
        try:
            smtp.send(b".\r\n")
            code, text = smtp.getreply()
        except (smtplib.SMTPException, OSError) as error:
            raise AnswerLost(self._said(error)) from error
        if code != 250:
            raise DeliveryError(_reason("the message", code, text), permanent=code >= 500)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """Log in once, with the best mechanism the server offers. (smtplib's login() tries each
    offered mechanism in turn: a wrong password would count twice against a server's
    lockout, on every try of every batch.)"""
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    for mechanism in ("CRAM-MD5", "PLAIN", "LOGIN"):
        if mechanism in offered:
            smtp.user, smtp.password = user, password
            smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))
            return
    smtp.login(user, password)  # says what is missing: no AUTH, or no mechanism it knows


def _reason(what: str, code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"the mail server refused {what}: {code} {one_line(said, 300)}"
