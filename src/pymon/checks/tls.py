"""``tls``: a TLS handshake (directly or after SMTP STARTTLS), the certificate verified and read.

Also the certificate helpers the ``http`` check shares: :data:`CERT_DAYS_LEFT`,
:func:`read_certificate`, :func:`verifying_context` and :func:`ssl_reason`.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import math
import re
import ssl
from dataclasses import dataclass
from typing import Literal, Self

from cryptography import x509
from cryptography.x509.oid import NameOID
from pydantic import Field, model_validator

from pymon.checks._dialogue import SHOWN_REPLY
from pymon.checks.base import CheckContext, Unreachable, connect_first, os_reason
from pymon.checks.spec import CheckSpec, MetricThresholds
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status
from pymon.ranges import parse_ranges
from pymon.text import one_line

__all__ = [
    "CERT_DAYS_LEFT",
    "UNVERIFIED",
    "Certificate",
    "TlsSpec",
    "TrustSpec",
    "check_tls",
    "read_certificate",
    "ssl_reason",
    "verifying_context",
]

# Whole range of X.509 dates (year 1 is about -740,000 days away), so every value a
# certificate can give lands in a range; the metric has 2 decimals, so 13.99 and
# 2.99 leave no gap.
CERT_DAYS_LEFT = MetricThresholds(
    ok=parse_ranges("14+"),
    warn=parse_ranges("3-13.99"),
    error=parse_ranges("-1000000-2.99"),
)

# An SMTP reply longer than this is not a server we can talk to.
MAX_REPLY_LINES = 100

_CLOSE_GRACE = 1.0
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")
_SMTP_LINE = re.compile(rb"(\d{3})([ -])(.*?)\r?\n")


class TrustSpec(CheckSpec):
    """Keys of the check types that verify certificates: what to trust, or not to verify."""

    verify_tls: bool = True
    ca_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _ca_file_needs_verification(self) -> Self:
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file is only used to verify; drop it or set verify_tls: true")
        return self


class TlsSpec(TrustSpec):
    """Keys of a ``tls`` service."""

    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, min_length=1)
    starttls: Literal["none", "smtp"] = "none"


@dataclass(frozen=True, slots=True)
class Certificate:
    """What an operator wants to know of a peer certificate."""

    subject: str
    issuer: str
    not_after: datetime.datetime

    def days_left(self, now: float) -> float:
        """Days from ``now`` (epoch seconds) to ``not_after``, floored to 2 decimals.

        Floored, so a certificate with 2.999 days left is under 3 days; negative once
        it has expired.
        """
        return math.floor((self.not_after.timestamp() - now) / 864) / 100

    def describe(self, now: float) -> str:
        """``CN=host, issued by CN=ca, expires 2027-02-22 (89.99 days left)``."""
        days = self.days_left(now)
        # 2 decimals at most, as the metric has; never 1e+05.
        count = f"{abs(days):.2f}".rstrip("0").rstrip(".")
        date = self.not_after.strftime("%Y-%m-%d")
        expiry = (
            f"expires {date} ({count} days left)"
            if days >= 0
            else f"expired {date} ({count} days ago)"
        )
        return f"{self.subject}, issued by {self.issuer}, {expiry}"


def _name(name: x509.Name) -> str:
    """``CN=...`` when the name has a common name, else the whole name (RFC 4514)."""
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common:
        value = common[0].value
        return f"CN={value.decode(errors='replace') if isinstance(value, bytes) else value}"
    return name.rfc4514_string() or "an empty name"


def read_certificate(der: bytes) -> Certificate:
    """The subject, issuer and expiry of a DER certificate; ValueError if it does not parse."""
    cert = x509.load_der_x509_certificate(der)
    return Certificate(_name(cert.subject), _name(cert.issuer), cert.not_valid_after_utc)


def ssl_reason(exc: OSError) -> str:
    """An SSL error as an operator reads it: without the ``(_ssl.c:1000)`` source tag."""
    return _SSL_SOURCE.sub("", str(exc))


@functools.cache
def _system_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _file_context(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError as exc:
        raise CheckSetupError(f"ca_file {ca_file} holds no usable CA: {ssl_reason(exc)}") from None
    except OSError as exc:
        raise CheckSetupError(f"cannot read ca_file {ca_file}: {os_reason(exc)}") from None


async def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """A context that verifies chain and host name against ``ca_file``, else the system CAs.

    Loading CA files reads the disk, so it runs in a thread; the system one is built
    once. ``ca_file`` is read on every call, so a replaced file takes effect at once.
    Raises CheckSetupError when ``ca_file`` cannot be read or holds no certificate.
    """
    if ca_file is None:
        return await asyncio.to_thread(_system_context)
    return await asyncio.to_thread(_file_context, ca_file)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# For reading a certificate whatever its flaws, and for verify_tls: false; never to trust.
UNVERIFIED = _unverified_context()


class _NoTls(Exception):
    """The target could not be brought to complete a TLS handshake; the text says why."""


class _Untrusted(Exception):
    """The handshake got as far as the certificate, and the certificate failed verification."""

    def __init__(self, reason: str, address: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


@dataclass(frozen=True, slots=True)
class _Peer:
    """What one completed handshake showed."""

    cert: bytes
    version: str
    handshake_ms: float


def _preview(data: bytes, limit: int = 60) -> str:
    return repr(data[:limit]) + ("..." if len(data) > limit else "")


async def _smtp_reply(reader: asyncio.StreamReader, what: str) -> tuple[int, str]:
    """One (possibly multi-line) SMTP reply: its code and its lines joined by newlines."""
    code: bytes | None = None
    lines: list[str] = []
    while len(lines) < MAX_REPLY_LINES:
        try:
            line = await reader.readline()
        except ValueError:  # the stream's line limit (64 KiB) ran out
            raise _NoTls(f"SMTP {what} has a line longer than 64 KiB") from None
        if not line.endswith(b"\n"):
            if not line and not lines:
                raise _NoTls(f"server closed the connection instead of the SMTP {what}")
            got = _preview(line) if line else repr(lines[-1])
            raise _NoTls(f"server closed the connection in the middle of the SMTP {what} ({got})")
        m = _SMTP_LINE.fullmatch(line)
        if m is None or (code is not None and m[1] != code):
            raise _NoTls(f"not an SMTP {what}: {_preview(line)}")
        code = m[1]
        lines.append(m[3].decode(errors="replace"))
        if m[2] == b" ":
            return int(code), "\n".join(lines)
    raise _NoTls(f"SMTP {what} longer than {MAX_REPLY_LINES} lines")


async def _command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str, ctx: CheckContext
) -> tuple[int, str]:
    what = f"{command.split()[0]} reply"
    ctx.stage = f"waiting for the {what}"
    writer.write(f"{command}\r\n".encode())
    await writer.drain()
    return await _smtp_reply(reader, what)


async def _smtp_starttls(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: CheckContext
) -> None:
    """Greeting, EHLO, STARTTLS: leave the connection ready for the handshake, or raise _NoTls."""
    ctx.stage = "waiting for the SMTP greeting"
    code, text = await _smtp_reply(reader, "greeting")
    if code != 220:
        raise _NoTls(f"SMTP server refuses the session: {code} {one_line(text, SHOWN_REPLY)}")
    # An address literal needs no DNS and is always a valid EHLO argument (RFC 5321).
    local = writer.get_extra_info("sockname")[0]
    literal = f"[IPv6:{local}]" if ":" in local else f"[{local}]"
    code, text = await _command(reader, writer, f"EHLO {literal}", ctx)
    if code != 250:
        raise _NoTls(f"EHLO refused: {code} {one_line(text, SHOWN_REPLY)}")
    extensions = [line.split(" ", 1)[0].upper() for line in text.split("\n")[1:]]
    if "STARTTLS" not in extensions:
        offered = one_line(", ".join(extensions), SHOWN_REPLY) or "no extensions"
        raise _NoTls(f"SMTP server does not offer STARTTLS (it offers {offered})")
    code, text = await _command(reader, writer, "STARTTLS", ctx)
    if code != 220:
        raise _NoTls(f"STARTTLS refused: {code} {one_line(text, SHOWN_REPLY)}")


def _closed(exc: OSError, when: str) -> _NoTls:
    """The connection broke (or the peer closed it) ``when``; the OS's reason if it gave one."""
    reason = f" ({exc.strerror})" if exc.strerror else ""
    return _NoTls(f"connection closed {when}{reason}")


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close politely (a TLS close_notify) but wait for the peer at most a moment."""
    try:
        writer.close()
        async with asyncio.timeout(_CLOSE_GRACE):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass
    finally:
        # An SSL transport would otherwise wait 30 s for a silent peer's close_notify.
        writer.transport.abort()


_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter, str]


async def _open(address: str, port: int) -> _Streams:
    reader, writer = await asyncio.open_connection(address, port)
    return reader, writer, address


async def _probe(
    spec: TlsSpec, streams: _Streams, context: ssl.SSLContext, ctx: CheckContext
) -> _Peer:
    """Speak STARTTLS if asked, do the handshake with ``context``; then close.

    Raises _NoTls with the reason when there was no handshake, and _Untrusted when
    there was one but the certificate failed verification.
    """
    reader, writer, address = streams
    try:
        if spec.starttls == "smtp":
            await _smtp_starttls(reader, writer, ctx)
        ctx.stage = "doing the TLS handshake"
        t0 = ctx.clock.monotonic()
        try:
            await writer.start_tls(context, server_hostname=spec.server_name or spec.host)
        except ssl.SSLCertVerificationError as exc:
            raise _Untrusted((exc.verify_message or ssl_reason(exc)).rstrip("."), address) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError) as exc:
            raise _closed(exc, "during the TLS handshake") from None
        except ssl.SSLError as exc:
            raise _NoTls(f"TLS handshake failed: {ssl_reason(exc)}") from None
        handshake_ms = (ctx.clock.monotonic() - t0) * 1000
        ssl_object: ssl.SSLObject = writer.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert(binary_form=True)
        if cert is None:  # only an anonymous cipher suite could get this far without one
            raise _NoTls("the server sent no certificate")
        peer = _Peer(cert, ssl_object.version() or "TLS", handshake_ms)
        if spec.starttls == "smtp":
            writer.write(b"QUIT\r\n")
    except OSError as exc:
        writer.transport.abort()
        raise _closed(exc, f"while {ctx.stage}") from None
    except BaseException:
        # A broken dialogue or the timeout: no goodbyes.
        writer.transport.abort()
        raise
    await _close(writer)
    return peer


async def _certificate_anyway(
    spec: TlsSpec, address: str, budget: float, ctx: CheckContext
) -> Certificate | None:
    """The certificate of a peer that failed verification, read without verifying.

    Within ``budget`` seconds (so the verdict already known comes before the check's
    timeout); None when it cannot be had.
    """
    try:
        async with asyncio.timeout(budget):
            ctx.stage = f"connecting to {address} port {spec.port} again"
            streams = await _open(address, spec.port)
            peer = await _probe(spec, streams, UNVERIFIED, ctx)
        return read_certificate(peer.cert)
    except (OSError, _NoTls, ValueError, TimeoutError):
        return None


async def check_tls(spec: TlsSpec, ctx: CheckContext) -> CheckResult:
    """TLS handshake (optionally after SMTP STARTTLS); verify the certificate, report its expiry."""
    deadline = ctx.clock.monotonic() + ctx.timeout
    context = await verifying_context(spec.ca_file) if spec.verify_tls else UNVERIFIED
    try:
        streams, _ = await connect_first(
            spec.host, spec.port, ctx, lambda address: _open(address, spec.port)
        )
        peer = await _probe(spec, streams, context, ctx)
    except (Unreachable, _NoTls) as exc:
        return CheckResult(Status.FAILED, str(exc))
    except _Untrusted as exc:
        message = f"certificate verify failed: {exc.reason}"
        budget = (deadline - ctx.clock.monotonic()) / 2
        cert = await _certificate_anyway(spec, exc.address, budget, ctx)
        if cert is None:
            return CheckResult(Status.FAILED, message)
        now = ctx.clock.time()
        metrics = {"cert_days_left": cert.days_left(now)}
        return CheckResult(Status.FAILED, f"{message} ({cert.describe(now)})", metrics)
    via = " after STARTTLS" if spec.starttls == "smtp" else ""
    metrics = {"handshake_ms": round(peer.handshake_ms, 3)}
    try:
        cert = read_certificate(peer.cert)
    except ValueError as exc:
        return CheckResult(Status.ERROR, f"certificate does not parse: {exc}", metrics)
    now = ctx.clock.time()
    metrics["cert_days_left"] = cert.days_left(now)
    return CheckResult(Status.OK, f"{cert.describe(now)}; {peer.version}{via}", metrics)
