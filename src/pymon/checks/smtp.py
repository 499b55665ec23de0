"""``smtp``: greet a mail server (EHLO), optionally over TLS; log in and send a test message."""

from __future__ import annotations

import asyncio
import email.policy
import socket
import ssl
from collections.abc import Awaitable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Annotated, Any, Literal, Self

import aiosmtplib
from aiosmtplib import SMTPResponse
from aiosmtplib.email import parse_address
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from pymon import __version__
from pymon.checks._dialogue import SHOWN_REPLY, Dialogue
from pymon.checks.base import CheckContext, Unreachable, connect_first, os_reason
from pymon.checks.tls import UNVERIFIED, TrustSpec, ssl_reason, verifying_context
from pymon.model import CheckResult, Status
from pymon.text import one_line

__all__ = ["SMTPS_PORT", "SMTP_PORT", "SmtpSpec", "check_smtp"]

SMTP_PORT = 25
SMTPS_PORT = 465

# aiosmtplib's words (with code -1) for a reply that is not SMTP.
_MALFORMED = "Malformed SMTP response line: "
_TOO_LONG = "Response too long"
_HELO = "one word of printable ASCII, such as a host name or an address literal like [192.0.2.1]"


def _as_list(value: object) -> object:
    # ``pymon check smtp --rcpt-to a@example.org`` gives one string.
    return [value] if isinstance(value, str) else value


def _address(address: str) -> str:
    if not address.isascii():
        raise ValueError(f"{address!r}: only ASCII mail addresses are supported")
    try:
        parse_address(address)
    except ValueError:
        raise ValueError(f"{address!r} cannot be sent in an SMTP command") from None
    return address


class SmtpSpec(TrustSpec):
    """Keys of an ``smtp`` service (``verify_tls`` and ``ca_file`` count with ``tls``)."""

    host: str = Field(min_length=1)
    port: int = Field(default=SMTP_PORT, ge=1, le=65535)
    tls: Literal["none", "starttls", "implicit"] = "none"
    helo: str | None = None
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    mail_from: str | None = None
    rcpt_to: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _implicit_tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tls") == "implicit" and "port" not in data:
            return {**data, "port": SMTPS_PORT}
        return data

    @field_validator("helo")
    @classmethod
    def _helo_is_one_word(cls, helo: str | None) -> str | None:
        if helo is not None and not (
            helo.isascii() and helo.isprintable() and helo.split() == [helo]
        ):
            raise ValueError(f"must be {_HELO}")
        return helo

    @field_validator("mail_from")
    @classmethod
    def _sender(cls, address: str | None) -> str | None:
        # An empty sender is the null reverse-path, MAIL FROM:<>.
        return None if address is None else _address(address)

    @field_validator("rcpt_to")
    @classmethod
    def _recipients(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not address.strip():
                raise ValueError("a recipient cannot be empty")
            _address(address)
        return addresses

    @model_validator(mode="after")
    def _pairs(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: AUTH needs both")
        if (self.mail_from is None) != (not self.rcpt_to):
            raise ValueError("mail_from and rcpt_to go together: give both to send a test message")
        return self


class _Lacking(Exception):
    """The server answered EHLO but does not offer an extension the check needs."""


async def _open_socket(address: str, port: int) -> socket.socket:
    """A TCP socket connected to ``address``; aiosmtplib speaks over it.

    pymon connects (rather than aiosmtplib) so that the daemon's resolver is used
    while TLS still verifies the name the operator wrote, not the address.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _address_literal(sock: socket.socket) -> str:
    # Needs no DNS and is always a valid EHLO argument (RFC 5321 4.1.3).
    local = str(sock.getsockname()[0])
    return f"[IPv6:{local}]" if ":" in local else f"[{local}]"


def _test_message(spec: SmtpSpec, helo: str) -> bytes:
    """A small message with the headers a mail system expects (Subject, Date, Message-ID)."""
    sender = parse_address(spec.mail_from or "")
    domain = sender.rpartition("@")[2] if "@" in sender else helo
    message = EmailMessage()
    message["From"] = spec.mail_from or f"pymon@{domain}"
    message["To"] = ", ".join(spec.rcpt_to)
    message["Subject"] = f"pymon test message for {spec.host}"
    message["Date"] = formatdate(localtime=True)
    # With a domain given, make_msgid does not look up this host's name (DNS).
    message["Message-ID"] = make_msgid("pymon", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["User-Agent"] = f"pymon/{__version__}"
    message.set_content(
        f"pymon sent this message to check that {spec.host} accepts mail.\n"
        "It needs no reply and can be deleted.\n"
    )
    return message.as_bytes(policy=email.policy.SMTP)


class _Session(Dialogue):
    """One SMTP session: the client and how far the dialogue got."""

    def __init__(self, client: aiosmtplib.SMTP, ctx: CheckContext, connecting_at: float) -> None:
        super().__init__(ctx, connecting_at)
        self.client = client

    async def send(
        self, command: str, call: Awaitable[SMTPResponse], stage: str | None = None
    ) -> SMTPResponse:
        """Await ``call``, the client sending ``command``; keep its reply code."""
        self.at(command, stage)
        reply = await call
        self.code = reply.code
        return reply

    async def ehlo(self, after: str = "") -> None:
        """EHLO, which learns the extensions the server offers."""
        await self.send(f"EHLO{after}", self.client.ehlo())

    async def auth(self, username: str, password: str) -> str:
        """AUTH with the first mechanism both sides know; a single try, so no lockout."""
        if not self.client.supports_extension("auth"):
            raise _Lacking("server does not offer AUTH")
        methods = {
            "cram-md5": self.client.auth_crammd5,
            "plain": self.client.auth_plain,
            "login": self.client.auth_login,
        }
        usable = [m for m in self.client.supported_auth_methods if m in methods]
        if not usable:
            offered = self.client.esmtp_extensions.get("auth", "")
            raise _Lacking(f"server offers no AUTH mechanism pymon knows ({offered})")
        command = f"AUTH {usable[0].upper()} as {username}"
        await self.send(command, methods[usable[0]](username, password))
        return command


async def _converse(spec: SmtpSpec, session: _Session, helo: str) -> list[str]:
    """Everything after the greeting; returns what was done, raises on the first problem."""
    client = session.client
    await session.ehlo()
    done = ["EHLO"]
    if spec.tls == "starttls":
        if not client.supports_extension("starttls"):
            raise _Lacking("server does not offer STARTTLS")
        await session.send(
            "STARTTLS", client.starttls(), "waiting for the reply to STARTTLS or the handshake"
        )
        # RFC 3207: what the server said before TLS no longer counts.
        await session.ehlo(" after STARTTLS")
        done += ["STARTTLS", "EHLO"]
    if spec.username is not None and spec.password is not None:
        done.append(await session.auth(spec.username, spec.password.get_secret_value()))
    if spec.mail_from is not None:
        message = _test_message(spec, helo)
        await session.send(
            f"MAIL FROM:<{parse_address(spec.mail_from)}>", client.mail(spec.mail_from)
        )
        for recipient in spec.rcpt_to:
            await session.send(f"RCPT TO:<{parse_address(recipient)}>", client.rcpt(recipient))
        reply = await session.send("DATA", client.data(message))
        count = len(spec.rcpt_to)
        to = spec.rcpt_to[0] if count == 1 else f"{count} recipients"
        done.append(
            f"test message to {to} accepted: {reply.code} {one_line(reply.message, SHOWN_REPLY)}"
        )
    return done


def _garbled(exc: aiosmtplib.SMTPResponseException, stage: str) -> str:
    """A reply aiosmtplib could not read as SMTP (its code is negative)."""
    if exc.message.startswith(_MALFORMED):
        said = one_line(exc.message[len(_MALFORMED) :], SHOWN_REPLY)
        return f"not an SMTP reply while {stage}: {said!r}"
    if exc.message == _TOO_LONG:
        return f"endless reply (over {MAX_RESPONSE_LENGTH // 1024} KiB) while {stage}"
    return f"{one_line(exc.message, SHOWN_REPLY)} while {stage}"


def _lost(exc: BaseException, stage: str) -> str:
    """Why the connection broke down: TLS, the peer hanging up, or another socket error."""
    if isinstance(exc, aiosmtplib.SMTPConnectError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or ssl_reason(exc)).rstrip(".")
        return f"TLS certificate verify failed: {reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {ssl_reason(exc)}"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionResetError):
        return f"connection closed while {stage}"
    if isinstance(exc, OSError):
        return f"{os_reason(exc)} while {stage}"
    return f"{exc} while {stage}"


def _hang_up(client: aiosmtplib.SMTP) -> None:
    """Drop the connection at once; after a goodbye it is already gone."""
    if isinstance(client.transport, asyncio.WriteTransport):
        # A graceful close would wait for a silent peer (30 s for a TLS close_notify).
        client.transport.abort()
    client.close()


async def _talk(spec: SmtpSpec, session: _Session, sock: socket.socket) -> tuple[Status, str, bool]:
    """The whole dialogue up to QUIT: its status, message, and whether a goodbye is in order."""
    helo = spec.helo or _address_literal(sock)
    stage = "waiting for the greeting"
    if spec.tls == "implicit":
        stage = f"doing the TLS handshake or {stage}"
    try:
        connecting = session.client.connect(sock=sock, local_hostname=helo)
        greeting = await session.send("greeting", connecting, stage)
        greeted_ms = session.greeted()
        done = await _converse(spec, session, helo)
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code < 0:
            return Status.FAILED, _garbled(exc, session.ctx.stage), False
        return session.refused(exc.code, exc.message)
    except _Lacking as exc:
        return Status.ERROR, str(exc), True
    except OSError as exc:
        return Status.FAILED, _lost(exc, session.ctx.stage), False
    summary = f"{greeting.code} {one_line(greeting.message, SHOWN_REPLY)}; {', '.join(done)}"
    return Status.OK, f"{summary}; greeting in {greeted_ms:.0f} ms", True


async def check_smtp(spec: SmtpSpec, ctx: CheckContext) -> CheckResult:
    """Greet a mail server (EHLO), optionally over TLS; log in and send a test message if asked."""
    started = ctx.clock.monotonic()
    tls_context: ssl.SSLContext | None = None
    if spec.tls != "none":
        tls_context = await verifying_context(spec.ca_file) if spec.verify_tls else UNVERIFIED
    client = aiosmtplib.SMTP(
        hostname=spec.host,
        use_tls=spec.tls == "implicit",
        start_tls=False,
        tls_context=tls_context,
        timeout=None,
    )
    try:
        sock, connecting_at = await connect_first(
            spec.host, spec.port, ctx, lambda address: _open_socket(address, spec.port)
        )
    except Unreachable as exc:
        return CheckResult(Status.FAILED, str(exc))
    session = _Session(client, ctx, connecting_at)
    try:
        status, message, polite = await _talk(spec, session, sock)
        if polite and client.is_connected:
            await session.goodbye(started, client.quit, (aiosmtplib.SMTPException,))
    finally:
        _hang_up(client)
    return session.result(status, message)
