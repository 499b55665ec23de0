"""The SMTP client for anything pymon mails: notices (in the courier process, see
``notify/courier.py``) and acknowledgement confirmations alike.

:func:`send_message` maps every failure to a :class:`DeliveryError` that says what
went wrong without the password, and that is ``permanent`` only when the server
refused with a 5xx reply.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, TypeVar

import aiosmtplib

from pymon.notify.base import DeliveryError
from pymon.text import one_line

__all__ = ["Server", "SmtpSettings", "mail_line", "send_message"]

log = logging.getLogger("pymon.notify")

_E = TypeVar("_E", bound=BaseException)

# Server replies end up in logs and the web UI; a hostile server can send a lot.
_REPLY_MAX = 200

# Text for a header or a log line: control and format characters (bidi overrides
# too) made spaces; private-use and newer characters (emoji Python's Unicode
# tables do not know yet) kept. Cut with one character of ellipsis.
mail_line = functools.partial(one_line, ellipsis="…", blank=frozenset({"Cc", "Cf"}))


class SmtpSettings(Protocol):
    """How to reach an SMTP server: an ``email`` channel's settings (its
    ``EmailChannel``) or a :class:`Server`."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls(self) -> str: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def timeout(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Server:
    """:class:`SmtpSettings` as plain values, for the courier process: it need not
    import the config's models to read them."""

    host: str
    port: int
    tls: str
    verify_tls: bool
    ca_file: str | None
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def of(cls, settings: SmtpSettings) -> Server:
        """The values of ``settings``."""
        return cls(
            settings.host,
            settings.port,
            settings.tls,
            settings.verify_tls,
            settings.ca_file,
            settings.username,
            settings.password,
            settings.timeout,
        )


async def send_message(
    config: SmtpSettings, message: EmailMessage, *, accepted: Callable[[], None] | None = None
) -> None:
    """Send ``message`` through the SMTP server of ``config`` to its To/Cc/Bcc recipients.

    Returns once the server accepted it for at least one recipient (a partial
    refusal is logged, not raised: retrying would send the others a duplicate).
    Raises :class:`DeliveryError` otherwise, within ``config.timeout``. ``accepted``
    is called as soon as the server said 250, before QUIT, in the thread this runs in.
    """
    where = f"smtp {config.host}:{config.port}"
    deadline = asyncio.get_running_loop().time() + config.timeout
    context = None
    if config.tls != "none":
        try:
            async with asyncio.timeout_at(deadline):
                # Reads the CA bundle from disk: off the event loop.
                context = await asyncio.to_thread(_tls_context, config)
        except TimeoutError as exc:
            raise DeliveryError(f"{where}: timed out after {config.timeout:g}s") from exc
        except (OSError, ValueError) as exc:
            what = config.ca_file or "the system CA bundle"
            raise DeliveryError(f"{where}: cannot load {what}: {exc}") from exc
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.tls == "tls",
        # None: upgrade when the server offers STARTTLS ("auto").
        start_tls={"starttls": True, "none": False, "tls": False}.get(config.tls),
        tls_context=context,
        username=config.username,
        password=config.password,
        timeout=config.timeout,
    )
    try:
        async with asyncio.timeout_at(deadline):
            await client.connect()
            refused, _ = await client.send_message(message)
    except Exception as exc:
        client.close()
        error = _delivery_error(where, config, exc)
        if config.password and config.password in _chain_text(exc):
            raise error from None
        raise error from exc
    if refused:
        log.warning(
            "%s: accepted the message but refused %s",
            where,
            "; ".join(f"{rcpt}: {_reply(r.code, r.message)}" for rcpt, r in refused.items()),
        )
    # Delivered: a QUIT that fails or hangs must not turn this into a retry (a
    # duplicate), nor take the send past its timeout.
    if accepted is not None:
        accepted()
    try:
        async with asyncio.timeout_at(deadline):
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        log.debug("%s: QUIT after delivery failed; message was accepted", where)
    finally:
        client.close()


def _tls_context(config: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _delivery_error(where: str, config: SmtpSettings, exc: BaseException) -> DeliveryError:
    """What went wrong, for an operator; permanent only for a 5xx refusal."""
    reason, permanent = _reason(config, exc)
    text = f"{where}: {reason}"
    if config.password:
        text = text.replace(config.password, "***")
    return DeliveryError(text, permanent=permanent)


def _reason(config: SmtpSettings, exc: BaseException) -> tuple[str, bool]:
    # Order matters: several aiosmtplib errors are also TimeoutError or ConnectionError.
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = "; ".join(_reply(r.code, r.message) for r in exc.recipients)
        return f"recipient refused: {replies}", all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"login failed: {_reply(exc.code, exc.message)}", exc.code >= 500
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return (
            f"sender {exc.sender} refused: {_reply(exc.code, exc.message)}",
            exc.code >= 500,
        )
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return f"message refused: {_reply(exc.code, exc.message)}", exc.code >= 500
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"server said {_reply(exc.code, exc.message)}", exc.code >= 500
    if isinstance(exc, TimeoutError):
        return f"timed out after {config.timeout:g}s", False
    certificate = _find(exc, ssl.SSLCertVerificationError)
    if certificate is not None:
        return f"TLS certificate not trusted: {mail_line(certificate.verify_message)}", False
    tls = _find(exc, ssl.SSLError)
    if tls is not None:
        reason = mail_line(tls.reason or str(tls), _REPLY_MAX)
        if reason == "WRONG_VERSION_NUMBER":
            reason += " (the server does not speak TLS here: tls is for port 465, starttls for 587)"
        return f"TLS handshake failed: {reason}", False
    if _find(exc, ConnectionRefusedError) is not None:
        return "connection refused", False
    unresolved = _find(exc, socket.gaierror)
    if unresolved is not None:
        return f"cannot resolve {config.host}: {unresolved.strerror or unresolved}", False
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"server closed the connection ({mail_line(exc.message, _REPLY_MAX)})", False
    if isinstance(exc, aiosmtplib.SMTPException):
        if "STARTTLS extension not supported" in exc.message:
            return "STARTTLS is required (tls: starttls) but the server does not offer it", False
        if "AUTH extension is not supported" in exc.message:
            hint = " without TLS (try tls: starttls)" if "TLS" in exc.message else ""
            return f"cannot log in: the server does not offer AUTH{hint}", False
        cause = _find_outside_smtp(exc)
        if cause is None:
            return mail_line(exc.message, _REPLY_MAX), False
        exc = cause
    if isinstance(exc, OSError):
        return mail_line(exc.strerror or str(exc), _REPLY_MAX), False
    return f"{type(exc).__name__}: {mail_line(str(exc), _REPLY_MAX)}", False


def _reply(code: int, message: str) -> str:
    return f"{code} {mail_line(message, _REPLY_MAX)}"


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """``exc`` or the first of its causes that is a ``kind``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _find_outside_smtp(exc: BaseException) -> BaseException | None:
    """The first cause of ``exc`` that aiosmtplib did not raise (the OS's own error)."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None and isinstance(seen, aiosmtplib.SMTPException):
        seen = seen.__cause__ or seen.__context__
    return seen


def _chain_text(exc: BaseException) -> str:
    parts = []
    seen: BaseException | None = exc
    while seen is not None:
        parts.append(repr(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)
