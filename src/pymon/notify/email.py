"""The e-mail channel: one message per notice, threaded per incident, sent over SMTP.

Every message of an incident replies to the incident's first problem notice
(``In-Reply-To``/``References``), so a mail client shows an incident as one
thread. ``Message-ID``, ``Reply-To`` (``ack+<token>@...``) and ``X-Pymon-Token``
carry the incident's acknowledgement token, so a reply finds its incident (see
:mod:`pymon.notify.tokens`). ``Auto-Submitted: auto-generated`` (RFC 3834) keeps
vacation responders from answering.

:func:`send_message` is the SMTP client for anything pymon mails (notices and
acknowledgement confirmations alike). It maps every failure to a
:class:`DeliveryError` that says what went wrong without the password, and that
is ``permanent`` only when the server refused with a 5xx reply.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Callable
from email.headerregistry import BaseHeader, HeaderRegistry, UniqueUnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import formatdate
from typing import TypeVar

import aiosmtplib

from pymon.config.schema import EmailChannel
from pymon.model import Notice
from pymon.notify import tokens
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.courier import deliver
from pymon.notify.templates import Templates
from pymon.text import one_line

__all__ = ["SUBJECT_MAX", "EmailSender", "send_message"]

log = logging.getLogger("pymon.notify")

_E = TypeVar("_E", bound=BaseException)

#: Longest subject in characters (before encoding); longer ones end in an ellipsis.
SUBJECT_MAX = 200
# Our own X- headers hold operator- or target-controlled text; bound them well
# below the 998-byte line limit even after RFC 2047 encoding.
_HEADER_VALUE_MAX = 300
# Server replies end up in logs and the web UI; a hostile server can send a lot.
_REPLY_MAX = 200


# BaseHeader is the base the registry adds at run time; typeshed's max_count of the
# two differs in width only.
class _Subject(UniqueUnstructuredHeader, BaseHeader):  # type: ignore[misc]
    """The Subject header, folded after its first words, never right after ``Subject:``.

    The standard library moves a value that does not fit beside ``Subject: `` but
    would fit on a line of its own (70 to 77 characters) whole onto the next line:
    ``Subject:\\r\\n [ACME] FAILED: ...``, which some readers show with a leading
    space. This header splits such a value at its last space that fits instead.
    The header object travels with the message, so the fold holds whatever policy
    flattens it (aiosmtplib's own, SMTPUTF8 included).
    """

    def fold(self, *, policy: Policy) -> str:
        """The header as ``Subject: value`` lines, each ending in ``policy.linesep``."""
        folded = super().fold(policy=policy)
        end = policy.linesep
        value = str(self)
        if folded != f"{self.name}:{end} {value}{end}":
            return folded  # folded well already, or encoded: not text to split here
        room = (policy.max_line_length or len(folded)) - len(f"{self.name}: ")
        cut = value.rfind(" ", 0, room + 1)
        if cut <= 0:
            return folded  # its first word alone is too long to go beside the name
        return f"{self.name}: {value[:cut]}{end} {value[cut + 1 :]}{end}"


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("subject", _Subject)
# CRLF line ends, and bodies in quoted-printable or base64 rather than raw 8-bit:
# a relay that does not offer 8BITMIME must still carry them intact.
_POLICY = SMTP.clone(cte_type="7bit", header_factory=_HEADERS)
# Text for a header or a log line: control and format characters (bidi overrides
# too) made spaces; private-use and newer characters (emoji Python's Unicode
# tables do not know yet) kept. Cut with one character of ellipsis.
_one_line = functools.partial(one_line, ellipsis="…", blank=frozenset({"Cc", "Cf"}))


class EmailSender:
    """The ``email`` channel named ``name``: composes a notice and hands it to SMTP."""

    def __init__(self, name: str, config: EmailChannel, templates: Templates) -> None:
        self.name = name
        self.config = config
        self.templates = templates
        self._domain = config.from_.rpartition("@")[2]

    def compose(self, notice: Notice, ctx: NoticeContext) -> EmailMessage:
        """The message for ``notice``, ready to send. No I/O beyond reading templates;
        the same notice and context give the same headers and text (only the MIME
        boundary differs), so a retry is the same e-mail to its reader.

        Raises :class:`DeliveryError` (permanent) when a template is broken.
        """
        text = self.templates.render("email", "txt", notice=notice, ctx=ctx)
        html = self.templates.render("email", "html", notice=notice, ctx=ctx)
        status = notice.status.value.upper()
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = self._subject(notice, ctx)
        message["From"] = self.config.from_
        message["To"] = ", ".join(self.config.to)
        # The notice's time, not the send time: a retry carries the same Date, and
        # the body gives the same time.
        message["Date"] = formatdate(notice.at, usegmt=True)
        message["Message-ID"] = self._message_id(notice.key, ctx)
        if notice.incident is not None:
            root = tokens.thread_root_key(notice.incident)
            if notice.key != root:
                root_id = self._message_id(root, ctx)
                message["In-Reply-To"] = root_id
                message["References"] = root_id
        if ctx.ack_address:
            message["Reply-To"] = ctx.ack_address
        message["Auto-Submitted"] = "auto-generated"
        # Exchange ignores Auto-Submitted; this keeps its out-of-office replies away.
        message["X-Auto-Response-Suppress"] = "All"
        message["X-Pymon-Service"] = _one_line(ctx.service_uri, _HEADER_VALUE_MAX)
        message["X-Pymon-Status"] = status
        if notice.incident is not None:
            message["X-Pymon-Incident"] = _one_line(notice.incident, _HEADER_VALUE_MAX)
        if ctx.ack_token:
            message["X-Pymon-Token"] = ctx.ack_token
        message["X-Pymon-Notice"] = _one_line(notice.key, _HEADER_VALUE_MAX)
        message.set_content(text, subtype="plain", charset="utf-8")
        message.add_alternative(html, subtype="html", charset="utf-8")
        return message

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Compose ``notice`` and hand it to the SMTP server; DeliveryError when it fails."""
        # Rendering may read template files and takes a while for big ones: off the loop.
        message = await asyncio.to_thread(self.compose, notice, ctx)
        # On the courier's own loop: the 250 is read, and the outbox told, without
        # waiting for whatever the daemon's loop is busy with.
        await deliver(send_message(self.config, message, accepted=ctx.accepted))
        log.debug("e-mail %s: sent %s to %s", self.name, notice.key, ", ".join(self.config.to))

    async def close(self) -> None:
        """Nothing to release: each send opens and closes its own SMTP session."""

    def _subject(self, notice: Notice, ctx: NoticeContext) -> str:
        origin = _one_line(ctx.organization or ctx.host, 60)
        status = notice.status.value.upper()
        subject = f"[{origin}] {status}: {_one_line(notice.service)} - {_one_line(notice.message)}"
        return _one_line(subject, SUBJECT_MAX)

    def _message_id(self, key: str, ctx: NoticeContext) -> str:
        return tokens.message_id(key, self.name, ctx.ack_token, self._domain)


async def send_message(
    config: EmailChannel, message: EmailMessage, *, accepted: Callable[[], None] | None = None
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


def _tls_context(config: EmailChannel) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _delivery_error(where: str, config: EmailChannel, exc: BaseException) -> DeliveryError:
    """What went wrong, for an operator; permanent only for a 5xx refusal."""
    reason, permanent = _reason(config, exc)
    text = f"{where}: {reason}"
    if config.password:
        text = text.replace(config.password, "***")
    return DeliveryError(text, permanent=permanent)


def _reason(config: EmailChannel, exc: BaseException) -> tuple[str, bool]:
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
        return f"TLS certificate not trusted: {_one_line(certificate.verify_message)}", False
    tls = _find(exc, ssl.SSLError)
    if tls is not None:
        reason = _one_line(tls.reason or str(tls), _REPLY_MAX)
        if reason == "WRONG_VERSION_NUMBER":
            reason += " (the server does not speak TLS here: tls is for port 465, starttls for 587)"
        return f"TLS handshake failed: {reason}", False
    if _find(exc, ConnectionRefusedError) is not None:
        return "connection refused", False
    unresolved = _find(exc, socket.gaierror)
    if unresolved is not None:
        return f"cannot resolve {config.host}: {unresolved.strerror or unresolved}", False
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"server closed the connection ({_one_line(exc.message, _REPLY_MAX)})", False
    if isinstance(exc, aiosmtplib.SMTPException):
        if "STARTTLS extension not supported" in exc.message:
            return "STARTTLS is required (tls: starttls) but the server does not offer it", False
        if "AUTH extension is not supported" in exc.message:
            hint = " without TLS (try tls: starttls)" if "TLS" in exc.message else ""
            return f"cannot log in: the server does not offer AUTH{hint}", False
        cause = _find_outside_smtp(exc)
        if cause is None:
            return _one_line(exc.message, _REPLY_MAX), False
        exc = cause
    if isinstance(exc, OSError):
        return _one_line(exc.strerror or str(exc), _REPLY_MAX), False
    return f"{type(exc).__name__}: {_one_line(str(exc), _REPLY_MAX)}", False


def _reply(code: int, message: str) -> str:
    return f"{code} {_one_line(message, _REPLY_MAX)}"


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
