"""Real SMTP servers for the smtp check tests: aiosmtpd on 127.0.0.1, plain or TLS.

aiosmtpd's Controller runs each server in a thread of its own with its own event
loop, so the check under test (on the test's loop) and the CLI subprocess tests
talk to it exactly as to a remote server.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.mail import tls_server_context as server_context
from tests.support.servers import free_port

__all__ = ["USER", "Inbox", "RejectRecipients", "server_context", "smtp_server"]

USER = ("alice", "s3cret-Pa55")


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[tuple[Envelope, Message]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Accept the message and keep it with its envelope."""
        content = envelope.content
        assert isinstance(content, bytes)
        self.messages.append((envelope, message_from_bytes(content)))
        return "250 2.0.0 Message accepted for delivery"


class RejectRecipients(Inbox):
    """Refuses every recipient, as a server does for an unknown mailbox."""

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse ``address``."""
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    assert isinstance(auth_data, LoginPassword)
    login = (auth_data.login.decode(), auth_data.password.decode())
    # handled=False: aiosmtpd then answers a failure itself (535).
    return AuthResult(success=login == USER, handled=False)


@contextlib.contextmanager
def smtp_server(
    handler: Inbox | None = None,
    *,
    starttls: ssl.SSLContext | None = None,
    implicit: ssl.SSLContext | None = None,
    auth: bool = False,
) -> Iterator[int]:
    """Run aiosmtpd on 127.0.0.1 and yield its port; stop it (and its connections) after.

    ``starttls`` offers STARTTLS with that context, ``implicit`` speaks TLS from the
    first byte, ``auth`` offers AUTH PLAIN/LOGIN (also without TLS) for :data:`USER`.
    """
    kwargs: dict[str, Any] = {}
    if starttls is not None:
        kwargs["tls_context"] = starttls
    if auth:
        kwargs.update(authenticator=_authenticate, auth_require_tls=False)
    controller = Controller(
        handler or Inbox(),
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=implicit,
        server_hostname="mx.pymon.test",
        **kwargs,
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
