"""Real mail servers for the delivery tests: aiosmtpd in this process, and two that misbehave.

`MailServer` is aiosmtpd (STARTTLS with a trustme certificate, a login, SMTPUTF8 when asked)
with a handler that records every message it accepts and counts connections; a test scripts
its answers per command (`answer("RCPT", "451 ...")`), makes it wait (`Hold`) or runs code at
a command (`Do`, say to kill the worker talking to it). `SilentServer` accepts connections
and never says a word. `RawServer` speaks just enough SMTP by hand to stop reading in the
middle of a message's text (which aiosmtpd never hands to a handler before the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOSTNAME = "mail.test"  # what the server calls itself (no DNS lookup of this machine)


@dataclass
class Certificates:
    """A test certificate authority, its PEM file, and a server certificate it signed."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_certificates(folder: Path) -> Certificates:
    ca = trustme.CA()
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return Certificates(ca_file, context)


@dataclass
class Received:
    """One message whose text the server was given whole."""

    mail_from: str
    mail_options: list[str]
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool
    over_tls: bool

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Hold:
    """Say nothing until `release` is set (or for `seconds`), then answer as otherwise."""

    release: threading.Event | None = None
    started: threading.Event | None = None  # set when the holding begins
    seconds: float = 3600.0


@dataclass
class Do:
    """Run `action` (in the server's thread) when the command arrives, then answer as otherwise."""

    action: Callable[[], None]


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def _scripted(self, stage: str) -> str | None:
        """Play the next scripted step for `stage`; return an answer, or None for the usual."""
        script = self.server.script.get(stage)
        while script:
            step = script.pop(0)
            self.server.seen.append(stage)
            if isinstance(step, str):
                return step
            if isinstance(step, Hold):
                if step.started is not None:
                    step.started.set()
                deadline = time.monotonic() + step.seconds
                while time.monotonic() < deadline and not (step.release and step.release.is_set()):
                    await asyncio.sleep(0.01)
                return None
            if isinstance(step, Do):
                step.action()
                return None
        self.server.seen.append(stage)
        return None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        answer = await self._scripted("MAIL")
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = await self._scripted("RCPT")
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        received = Received(
            mail_from=envelope.mail_from,
            mail_options=list(envelope.mail_options),
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content,
            smtputf8=envelope.smtp_utf8,
            over_tls=session.ssl is not None,
        )
        self.server.arrived.append(received)  # its final dot came: the server holds it
        answer = await self._scripted("DATA")
        if answer and not answer.startswith("250"):
            return answer
        self.server.received.append(received)
        return answer or "250 2.0.0 Message accepted for delivery"


class _CountingController(Controller):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connections = 0

    def factory(self):
        self.connections += 1
        return super().factory()


@dataclass
class MailServer:
    """aiosmtpd on a free port of 127.0.0.1, recording what it accepts."""

    certificates: Certificates | None = None
    login: tuple[str, str] | None = None
    smtputf8: bool = True
    received: list[Received] = field(default_factory=list)  # accepted (250)
    arrived: list[Received] = field(default_factory=list)  # whole, whatever the answer
    script: dict[str, list[str | Hold | Do]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # commands answered, in order
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user name, accepted)

    def start(self) -> MailServer:
        options: dict = {"server_hostname": HOSTNAME, "enable_SMTPUTF8": self.smtputf8}
        if self.certificates is not None:
            options.update(tls_context=self.certificates.server_context, require_starttls=True)
        if self.login is not None:
            options.update(authenticator=self._authenticate, auth_require_tls=True)
        self.port = free_port()
        self.controller = _CountingController(
            _Handler(self), hostname="127.0.0.1", port=self.port, **options
        )
        self.controller.start()
        self.controller.connections = 0  # not counting the controller's own check
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def connections(self) -> int:
        return self.controller.connections

    def answer(self, stage: str, *steps: str | Hold | Do) -> None:
        """Script the next answers to MAIL, RCPT or DATA (the end of a message's text)."""
        self.script.setdefault(stage, []).extend(steps)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.login is not None and (name, password) == self.login
        self.logins.append((name, ok))
        return AuthResult(success=ok, handled=False)

    def config(self, **more) -> dict:
        """The portal's settings for sending through this server."""
        settings = {
            "MAIL_BACKEND": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": self.port,
            "SMTP_STARTTLS": self.certificates is not None,
            "SMTP_CA_FILE": str(self.certificates.ca_file) if self.certificates else "",
            "SMTP_USERNAME": self.login[0] if self.login else "",
            "SMTP_PASSWORD": self.login[1] if self.login else "",
        }
        settings.update(more)
        return settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SilentServer:
    """A port that takes connections (the kernel completes them) and never says anything."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = int(self.socket.getsockname()[1])

    def close(self) -> None:
        self.socket.close()


class RawServer:
    """SMTP by hand, one connection at a time, in a thread.

    Each connection gets the usual answers. If `cut` is set when a connection reaches the
    text of a message, it reads `cut_after` bytes of it, calls `cut` (once), and stops
    reading: a sender with more to send is left blocked in the middle. Every other message
    is read to its final dot and accepted; `complete` counts those.
    """

    def __init__(
        self,
        cut: Callable[[], None] | None = None,
        cut_after: int = 65536,
        extensions: tuple[str, ...] = ("8BITMIME",),
    ) -> None:
        self.cut, self.cut_after = cut, cut_after
        self.extensions = extensions
        self.complete: list[bytes] = []
        self.commands: list[str] = []  # MAIL, RCPT... as sent
        self.socket = socket.socket()
        # A small receive buffer (before listen, so connections inherit it) keeps what a
        # stopped reader lets in small: the sender is blocked long before its last byte.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.port = int(self.socket.getsockname()[1])
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return  # closed
            self._open.append(connection)
            with contextlib.suppress(OSError):
                self._talk(connection)

    def _talk(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        connection.sendall(b"220 " + HOSTNAME.encode() + b" ESMTP raw\r\n")
        while line := reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                lines = [HOSTNAME, *self.extensions]
                answer = "".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n"
                connection.sendall(answer.encode())
            elif verb == b"DATA":
                connection.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                if self.cut is not None:
                    cut, self.cut = self.cut, None
                    got = 0
                    while got < self.cut_after:
                        got += len(reader.read1(self.cut_after - got))
                    cut()
                    return  # reads no more: the connection stays open, stuck
                text = bytearray()
                while (chunk := reader.readline()) != b".\r\n":
                    if not chunk:
                        return
                    text += chunk
                self.complete.append(bytes(text))
                connection.sendall(b"250 2.0.0 Accepted\r\n")
            elif verb == b"QUIT":
                connection.sendall(b"221 Bye\r\n")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                self.commands.append(line.decode(errors="replace").strip())
                connection.sendall(b"250 OK\r\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the thread waiting in accept()
        self.socket.close()
        for connection in self._open:
            connection.close()
        self._thread.join(timeout=5)
