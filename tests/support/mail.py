"""A real SMTP server that keeps what it receives, for the notification tests.

:class:`MailSink` runs aiosmtpd on 127.0.0.1 in a thread of its own (aiosmtpd's
Controller gives it its own event loop), so a test's own loop and a pymon
subprocess both reach it as they would a remote mail server. It can also
misbehave on request: refuse recipients, answer 451 to the first messages,
demand a login, speak STARTTLS or TLS with a trustme certificate.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal, cast

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.servers import free_port

__all__ = ["MailSink", "ReceivedMail", "tls_server_context"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted, with its envelope and how it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    tls: bool
    login: str | None


def tls_server_context(ca: trustme.CA, name: str = "127.0.0.1") -> ssl.SSLContext:
    """A server-side TLS context with a certificate for ``name`` issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._sink.require_auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._sink.reply_to_rcpt is not None:
            return self._sink.reply_to_rcpt
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._sink._receive(server, session, envelope)

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._sink._lock:
            self._sink.quits += 1
        if not self._sink.quit_open.is_set():
            await asyncio.to_thread(self._sink.quit_open.wait)
        return "221 Bye"


class MailSink:
    """An aiosmtpd server on ``host`` (127.0.0.1 unless said) that records every
    message it accepts.

    ``reply_to_rcpt`` (e.g. ``"550 5.1.1 no such user"``) answers every RCPT TO
    with that reply; ``fail_first=N`` answers ``451`` to the first N messages
    (at DATA); ``require_auth=(user, password)`` refuses mail without that login;
    ``starttls=ca`` offers STARTTLS and ``implicit_tls=ca`` speaks TLS from the
    first byte, both with a certificate for 127.0.0.1 from the trustme ``ca``.
    """

    def __init__(
        self,
        *,
        reply_to_rcpt: str | None = None,
        fail_first: int = 0,
        require_auth: tuple[str, str] | None = None,
        starttls: trustme.CA | None = None,
        implicit_tls: trustme.CA | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.reply_to_rcpt = reply_to_rcpt
        self.fail_first = fail_first
        #: While cleared, the answer to QUIT waits (a server slow to say goodbye).
        self.quit_open = threading.Event()
        self.quit_open.set()
        #: QUIT commands received: a client says it once it has read the 250 before.
        self.quits = 0
        #: Called in the sink's thread with each message kept, before its 250 goes out.
        self.on_message: Callable[[ReceivedMail], None] | None = None
        self.require_auth = require_auth
        self.host = host
        self.port = free_port(host)
        self._failed = 0
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs["tls_context"] = tls_server_context(starttls)
        if require_auth is not None:
            # auth_required=True would make aiosmtpd warn about AUTH without TLS;
            # handle_MAIL demands the login instead.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = Controller(
            _Handler(self),
            hostname=host,
            port=self.port,
            ssl_context=None if implicit_tls is None else tls_server_context(implicit_tls),
            server_hostname="sink.pymon.test",
            **kwargs,
        )
        self._running = False

    def start(self) -> MailSink:
        """Start serving (returns self)."""
        self._controller.start()
        self._running = True
        return self

    def channel(self, name: str = "mail") -> str:
        """A config's e-mail channel to this sink, as one YAML line (``name: {...}``),
        for a test's ``notifications.channels``."""
        return (
            f"{name}: {{type: email, host: {self.host}, port: {self.port}, tls: none,"
            " from: pymon@example.org, to: [ops@example.org]}"
        )

    def stop(self) -> None:
        """Stop serving and drop open connections."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self.stop()
        return False

    @property
    def messages(self) -> list[ReceivedMail]:
        """A copy of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.messages
            if len(received) >= count:
                return received
            if self._late(deadline):
                raise AssertionError(self._timeout_text(count, timeout))
            time.sleep(0.01)

    # Same signature as wait_for on purpose, so tests switch between them freely.
    async def await_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:  # noqa: ASYNC109
        """Like :meth:`wait_for`, but yields to the event loop while it waits."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.messages
            if len(received) >= count:
                return received
            if self._late(deadline):
                raise AssertionError(self._timeout_text(count, timeout))
            await asyncio.sleep(0.01)

    @staticmethod
    def _late(deadline: float) -> bool:
        return time.monotonic() >= deadline

    def _timeout_text(self, count: int, timeout: float) -> str:
        return f"expected {count} messages within {timeout}s, got {len(self.messages)}"

    def _receive(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self._failed < self.fail_first:
                self._failed += 1
                return "451 4.3.0 Try again later"
            raw = cast(bytes, envelope.original_content or envelope.content)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            auth = session.auth_data
            login = auth.login.decode() if isinstance(auth, LoginPassword) else None
            kept = ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
            self._messages.append(kept)
        if self.on_message is not None:
            self.on_message(kept)
        return "250 2.0.0 OK: queued"

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = (auth_data.login.decode(), auth_data.password.decode())
        # handled=False: aiosmtpd then answers 535 itself on failure.
        return AuthResult(success=login == self.require_auth, handled=False, auth_data=auth_data)
