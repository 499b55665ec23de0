"""The SMTP server that takes acknowledgements: operators reply to an alert e-mail.

Every e-mail notice carries the incident's token (see :mod:`pymon.notify.tokens`).
A reply that keeps it, from an authorized sender, acknowledges the incident; its
first own line may instead say ``unack`` or ``maint 2h``. The server runs aiosmtpd's
SMTP protocol on the daemon's own event loop; it is not a relay and takes mail for
one address (and its ``+token`` forms) only. Whatever arrives gets a clear SMTP
answer: a broken message is refused, never a crash. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import formatdate, make_msgid
from html.parser import HTMLParser
from typing import Literal, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from pymon.config.durations import parse_duration
from pymon.config.schema import AcknowledgementsConfig, split_host_port
from pymon.errors import PymonError
from pymon.model import Incident
from pymon.notify.tokens import TOKEN_LENGTH, AckTokens, tokens_in
from pymon.text import one_line

__all__ = ["AckRequest", "AckServer", "AckTarget", "Action", "authorized", "parse_command"]

log = logging.getLogger("pymon.notify")

Action = Literal["ack", "unack", "maint"]

_COMMENT_MAX = 500
_TEXT_MAX = 100_000  # characters of a reply worth reading for a one-line command
_MAX_MULTIPARTS = 50  # a real reply nests a handful; thousands stall the MIME parser
_MAX_PARTS = 200
_MAX_DEPTH = 20
_MAX_RCPTS = 10
_ATTRIBUTION_MAX = 400  # characters; longer lines are words, and cheaper not to scan
_MAX_CANDIDATES = 20  # tokens tried per message: each one is a lookup
_SESSION_LIMIT = 600.0  # seconds a connection may live, however busy it keeps us
_STOP_GRACE = 5.0
# A human's words on one line: only control characters (and lone surrogates) become
# spaces; format characters stay (the joiners inside emoji, right-to-left marks).
# A cut ends where it falls, without an ellipsis.
_one_line = functools.partial(one_line, ellipsis="", blank=frozenset({"Cc", "Cs"}))

_SECRET = re.compile(rf"(?<![0-9a-f])[0-9a-f]{{{TOKEN_LENGTH}}}(?![0-9a-f])", re.I)
_LEAD = ":;,.-\u2013\u2014 \t"  # what people put between "ack" and their words
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but \t \n \r
_MULTIPART = re.compile(rb"^content-type:\s*(multipart|message)/", re.I | re.M)
_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
_SENDER = re.compile(r"[!-?A-~]+@[!-?A-~]+")  # printable ASCII, no space, exactly one "@"
_ATTRIBUTION = re.compile(
    r"^(on|am|le|el|op)\s.*\b(wrote|schrieb|a\s+écrit|escribió|schreef)\b.*:$", re.I
)
_ORIGINAL = re.compile(
    r"^(-{2,}\s*original message\s*-{2,}|-{2,}\s*forwarded message\s*-{2,}|_{10,})$", re.I
)
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_QUOTED_HEADERS = ("in-reply-to", "references", "message-id", "x-pymon-incident", "x-pymon-token")
_DONE = {"ack": "acknowledged", "unack": "acknowledgement withdrawn", "maint": "maintenance"}


@dataclass(frozen=True, slots=True)
class AckRequest:
    """What an authorized reply asks for. ``sender`` is the From address, lowercase;
    ``duration`` is seconds, for ``maint`` only."""

    action: Action
    incident: str
    service: str
    sender: str
    comment: str
    duration: float | None


class AckTarget(Protocol):
    """Whoever carries acknowledgements out (the notifier, through the engine's port)."""

    async def incident_for_token(self, token: str) -> Incident | None:
        """The open incident with this token, else None."""
        ...

    async def act(self, request: AckRequest) -> str:
        """Carry ``request`` out and return a one-line summary; raise
        :class:`~pymon.errors.PymonError` with the reason to refuse it."""
        ...


def authorized(sender: str, patterns: Sequence[str]) -> bool:
    """Whether ``sender`` may acknowledge: a pattern is a full address (any case) or
    ``@domain`` / ``*@domain`` for every address of exactly that domain.

    Only plain printable-ASCII addresses with one ``@`` qualify, so a quoted local
    part (``"a@b"@evil``) or control characters can never match a domain pattern.
    """
    address = sender.strip().lower()
    if _SENDER.fullmatch(address) is None:
        return False
    domain = address.rpartition("@")[2]
    for raw in patterns:
        pattern = raw.strip().lower()
        if pattern.startswith("*@"):
            pattern = pattern[1:]
        if pattern.startswith("@"):
            if pattern[1:] and pattern[1:] == domain:
                return True
        elif pattern and pattern == address:
            return True
    return False


def parse_command(text: str) -> tuple[Action, float | None, str]:
    """The command of a reply's text: ``(action, duration, comment)``.

    The command line is the first non-empty line that is not quoted (``>``), not an
    attribution (``On ... wrote:``); nothing after a signature (``-- ``) or an
    original-message separator counts. ``unack`` and ``maint <duration>`` are
    commands; anything else acknowledges, with that line as the comment. The comment
    runs on over the following lines up to the first quote, attribution or
    signature, and is capped at 500 characters. Raises ValueError for ``maint``
    without a valid duration.
    """
    lines = _CONTROL.sub(" ", text).lstrip("\ufeff \t\r\n").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if _signature_or_original(lines, index):
            return "ack", None, ""
        if not line or line.startswith(">"):
            index += 1
        elif span := _attribution(lines, index):
            index += span
        else:
            break
    else:
        return "ack", None, ""
    line = lines[index].strip().lstrip("\ufeff")
    head, rest = [*line.split(None, 1), "", ""][:2]
    word = head.lower().rstrip(":,.!;")
    action: Action = "ack"
    duration: float | None = None
    if word == "unack":
        action = "unack"
    elif word == "maint":
        action = "maint"
        spec, rest = [*rest.split(None, 1), "", ""][:2]
        duration = _maint_duration(spec)
    comment = [rest.strip().lstrip(_LEAD) if word in ("ack", "unack", "maint") else line]
    for follow in range(index + 1, len(lines)):
        if sum(map(len, comment)) > _COMMENT_MAX or _ends_comment(lines, follow):
            break
        comment.append(lines[follow].strip())
    joined = " ".join(comment)[: _COMMENT_MAX * 4]
    return action, duration, _one_line(joined, _COMMENT_MAX)


def _maint_duration(spec: str) -> float:
    if not spec:
        raise ValueError("maint needs a duration, e.g. 'maint 2h'")
    try:
        seconds = parse_duration(spec)
    except ValueError as exc:
        raise ValueError(f"maint: {exc}") from None
    if seconds <= 0:
        raise ValueError("maint needs a duration above zero, e.g. 'maint 2h'")
    return seconds


def _attribution(lines: Sequence[str], index: int) -> int:
    """How many lines (0, 1 or 2) the attribution starting at ``index`` spans."""
    line = lines[index].strip()
    if len(line) > _ATTRIBUTION_MAX:
        return 0
    if _ATTRIBUTION.match(line):
        return 1
    if index + 1 >= len(lines):
        return 0
    # Clients wrap long attributions: "On Mon, 1 Jan 2024, Alice <alice@" / "x.org> wrote:".
    following = lines[index + 1].strip()[:_ATTRIBUTION_MAX]
    if _ATTRIBUTION.match(following) or not _ATTRIBUTION.match(f"{line} {following}"):
        return 0
    return 2


def _signature_or_original(lines: Sequence[str], index: int) -> bool:
    line = lines[index].strip()
    if line == "--" or _ORIGINAL.match(line):
        return True
    # Outlook quotes the original unmarked below a "From: ... / Sent: ..." block.
    return (
        line.lower().startswith("from:")
        and index + 1 < len(lines)
        and lines[index + 1].strip().lower().startswith(("sent:", "date:"))
    )


def _ends_comment(lines: Sequence[str], index: int) -> bool:
    return (
        lines[index].strip().startswith(">")
        or _attribution(lines, index) > 0
        or _signature_or_original(lines, index)
    )


def _smtp_text(text: str) -> str:
    """``text`` as an SMTP reply may carry it: one line of printable ASCII."""
    folded = unicodedata.normalize("NFKD", _one_line(text))
    ascii_text = "".join(
        c if " " <= c <= "~" else "?" for c in folded if not unicodedata.combining(c)
    )
    return ascii_text[:400] or "refused"


def _clean(text: str) -> str:
    """``text`` safe to log: one line, no lone surrogates, bounded."""
    return _one_line(text.encode("utf-8", "replace").decode("utf-8"), 200)


@dataclass(frozen=True, slots=True)
class _Reading:
    """What the server needs from a message, read off-loop in one go."""

    senders: tuple[str, ...]
    automatic: str | None
    headers: Mapping[str, tuple[str, ...]]
    subject: str
    text: str


def _read(raw: bytes) -> _Reading:
    """Parse ``raw`` (any shape, any damage) into a :class:`_Reading`.

    Raises ValueError for a message too complex to be a reply.
    """
    if len(_MULTIPART.findall(raw)) > _MAX_MULTIPARTS:
        raise ValueError("message too deeply nested")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.strip().lower(), []).append(str(value))
    return _Reading(
        senders=_from_addresses(msg),
        automatic=_automatic(headers),
        headers={k: tuple(headers.get(k, ())) for k in _QUOTED_HEADERS},
        subject=_subject(msg),
        text=_reply_text(msg),
    )


def _from_addresses(msg: Message) -> tuple[str, ...]:
    try:
        found = msg.get_all("From") or []
        return tuple(str(a.addr_spec) for h in found for a in getattr(h, "addresses", ()))
    except Exception:  # the header parser has corners that raise; unreadable = no sender
        return ()


def _subject(msg: Message) -> str:
    try:
        return _clean(str(msg.get("Subject", "")))
    except Exception:
        return ""


def _automatic(headers: Mapping[str, Sequence[str]]) -> str | None:
    """Which header marks the message as sent by a machine, or None."""
    for value in headers.get("auto-submitted", ()):
        if value.split("(")[0].strip().lower() != "no":
            return "Auto-Submitted"
    for value in headers.get("precedence", ()):
        if value.strip().lower() in _AUTOMATIC_PRECEDENCE:
            return "Precedence"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return name.title()
    return None


def _leaves(msg: Message) -> Iterator[Message]:
    """The non-multipart parts, depth first, bounded in depth and count."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        if part.get_content_maintype() == "message" and depth > 0:
            continue  # a forwarded message is someone else's words
        payload = part.get_payload()
        if isinstance(payload, list):
            if depth < _MAX_DEPTH:
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
        else:
            yield part


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):  # unknown or non-text codec
        return data.decode("utf-8", errors="replace")


def _reply_text(msg: Message) -> str:
    """The reply's own text: the first text/plain part, else the first HTML part as text."""
    plain: str | None = None
    markup: str | None = None
    try:
        for part in _leaves(msg):
            if part.get_content_disposition() == "attachment":
                continue
            kind = part.get_content_type()
            if kind == "text/plain":
                plain = _decoded(part)[:_TEXT_MAX]
                if plain.strip():
                    break
            elif kind == "text/html" and markup is None:
                markup = _decoded(part)[: _TEXT_MAX * 4]
    except Exception:  # damaged MIME: read what was found before the damage
        log.debug("unreadable MIME structure in an acknowledgement", exc_info=True)
    if plain is not None and plain.strip():
        return plain
    if markup is not None:
        return _html_text(markup)[:_TEXT_MAX]
    return ""


class _HtmlText(HTMLParser):
    """Text of an HTML mail, with each quoted original reduced to one ``>`` line."""

    _BLOCK = frozenset(
        {"br", "p", "div", "li", "tr", "table", "pre", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "blockquote":
            if not self._quoted:
                self.parts.append("\n>\n")
            self._quoted += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden and not self._quoted:
            self.parts.append(" ".join(data.splitlines()))


def _html_text(markup: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is lenient; keep whatever it read if it does give up
        log.debug("unreadable HTML in an acknowledgement", exc_info=True)
    return "".join(parser.parts)


def _human(seconds: float) -> str:
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or f"{seconds:g}s"


class _RedactTokens(logging.Filter):
    """Masks tokens in aiosmtpd's own session log (it logs RCPT addresses and, at
    DEBUG, message lines), so that no log holds a secret that acknowledges."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            return True
        if _SECRET.search(text):
            record.msg = _SECRET.sub("[token]", text)
            record.args = ()
        return True


class _Busy(asyncio.Protocol):
    """Answers a connection beyond the session limit and hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(b"421 4.3.2 too many connections, try again later\r\n")
        transport.close()


class _Session(SMTP):
    """One SMTP connection; the server knows its sessions to close them on stop."""

    def __init__(self, owner: AckServer, *, timeout: float) -> None:
        super().__init__(
            _Handler(owner),
            data_size_limit=owner._config.max_size,
            hostname=owner._hostname,
            ident="pymon",
            timeout=timeout,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            command_call_limit=20,
            loop=asyncio.get_running_loop(),
        )
        self._owner = owner
        self._cutoff: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._cutoff = self.loop.call_later(_SESSION_LIMIT, transport.close)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self._cutoff is not None:
                self._cutoff.cancel()
            self._owner._sessions.discard(self)
            if not self.closed.done():
                self.closed.set_result(None)


class _Handler:
    """aiosmtpd's hooks, handing each SMTP step to the server."""

    def __init__(self, owner: AckServer) -> None:
        self._owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not authorized(address, self._owner._config.authorized):
            return self._owner._refuse("550 5.7.1", address, "sender not authorized")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._owner._mailbox.fullmatch(address) is None:
            return "550 5.1.1 no such user"
        if len(envelope.rcpt_tos) >= _MAX_RCPTS:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._owner._message(envelope)

    async def handle_exception(self, error: Exception) -> str:
        log.error("acknowledgement session failed", exc_info=error)
        return "451 4.3.0 internal error"


class AckServer:
    """The acknowledgement SMTP server on the running event loop.

    ``accepted`` counts carried-out requests; ``refused`` counts refusals (an
    unauthorized envelope sender at MAIL FROM, and every message refused at DATA);
    ``failed`` counts messages answered 451 because something inside broke.
    ``confirm`` sends a confirmation e-mail (the daemon passes the reply channel's
    sender); it runs in the background and never delays the SMTP answer.
    """

    def __init__(
        self,
        config: AcknowledgementsConfig,
        tokens: AckTokens,
        target: AckTarget,
        *,
        hostname: str = "pymon",
        confirm: Callable[[EmailMessage], Awaitable[None]] | None = None,
        session_timeout: float = 60.0,
        max_sessions: int = 50,
    ) -> None:
        self._config = config
        self._tokens = tokens
        self._target = target
        self._hostname = hostname
        self._confirm = confirm
        self._session_timeout = session_timeout
        self._max_sessions = max_sessions
        local, _, domain = config.address.lower().rpartition("@")
        self._domain = domain or hostname
        self._mailbox = re.compile(
            rf"{re.escape(local.split('+', 1)[0])}(\+[A-Za-z0-9]{{1,64}})?@{re.escape(domain)}",
            re.I,
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._working: set[asyncio.Future[None]] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self.port: int | None = None
        self.accepted = 0
        self.refused = 0
        self.failed = 0

    async def start(self) -> int:
        """Listen on ``config.listen`` (port 0 picks one) and return the bound port."""
        if self._server is not None and self.port is not None:
            return self.port
        if self._config.listen is None:
            raise PymonError("acknowledgements.listen is not set")
        mail_log = logging.getLogger("mail.log")
        if not any(isinstance(f, _RedactTokens) for f in mail_log.filters):
            mail_log.addFilter(_RedactTokens())
        host, port = split_host_port(self._config.listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._protocol, host, port)
        except OSError as exc:
            raise PymonError(
                f"acknowledgements: cannot listen on {self._config.listen}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("acknowledgements by e-mail on %s:%d", host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening, let messages being answered finish (briefly), close every
        session and wait (briefly) for confirmations still being sent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._working:
            await asyncio.wait(set(self._working), timeout=_STOP_GRACE)
        sessions = set(self._sessions)
        for session in sessions:
            if session.transport is not None:
                session.transport.close()
        if sessions:
            _, stuck = await asyncio.wait({s.closed for s in sessions}, timeout=_STOP_GRACE)
            for session in sessions:
                if session.closed in stuck and isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()
        await server.wait_closed()
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=_STOP_GRACE)
            for task in late:
                log.warning("acknowledgement confirmation still unsent at shutdown; dropped")
                task.cancel()

    def _protocol(self) -> asyncio.BaseProtocol:
        if len(self._sessions) >= self._max_sessions:
            return _Busy()
        session = _Session(self, timeout=self._session_timeout)
        self._sessions.add(session)
        return session

    def _refuse(self, code: str, sender: str, reason: str) -> str:
        self.refused += 1
        log.warning("acknowledgement from %s refused: %s", _clean(sender) or "<none>", reason)
        return f"{code} {_smtp_text(reason)}"

    async def _message(self, envelope: Envelope) -> str:
        done = asyncio.get_running_loop().create_future()
        self._working.add(done)
        try:
            return await self._answer(envelope)
        except Exception:
            self.failed += 1
            log.exception("acknowledgement failed inside pymon")
            return "451 4.3.0 internal error"
        finally:
            done.set_result(None)
            self._working.discard(done)

    async def _answer(self, envelope: Envelope) -> str:
        envelope_sender = envelope.mail_from or ""
        raw = envelope.original_content or b""
        try:
            reading = await asyncio.to_thread(_read, raw)
        except Exception as exc:
            return self._refuse("554 5.6.0", envelope_sender, f"unreadable message ({exc})")
        if len(reading.senders) != 1:
            why = "no From address" if not reading.senders else "more than one From address"
            return self._refuse("550 5.7.1", envelope_sender, f"sender not authorized: {why}")
        sender = reading.senders[0].strip().lower()
        if not authorized(sender, self._config.authorized):
            return self._refuse("550 5.7.1", sender, "sender not authorized")
        if reading.automatic is not None:
            return self._refuse(
                "550 5.7.1", sender, f"automatic reply ({reading.automatic}) does not acknowledge"
            )
        found = await self._incident(reading, envelope.rcpt_tos)
        if isinstance(found, str):
            return self._refuse("550 5.7.0", sender, found)
        try:
            action, duration, comment = parse_command(reading.text)
        except ValueError as exc:
            return self._refuse("550 5.5.4", sender, str(exc))
        request = AckRequest(action, found.id, found.service, sender, comment, duration)
        try:
            summary = await self._target.act(request)
        except PymonError as exc:
            return self._refuse("550 5.7.0", sender, str(exc) or "refused")
        self.accepted += 1
        what = _DONE[action] + (f" for {_human(duration)}" if duration is not None else "")
        log.info("%s: %s by %s (incident %s)", found.service, what, sender, found.id)
        self._confirm_later(reading, request, summary)
        return f"250 2.0.0 {_smtp_text(summary)}"

    async def _incident(self, reading: _Reading, recipients: Sequence[str]) -> Incident | str:
        """The open incident the message answers, or why there is none."""
        candidates: list[str] = []
        for address in recipients:
            candidates += tokens_in(address)
        for name in ("in-reply-to", "references"):
            for value in reading.headers[name]:
                candidates += tokens_in(value)
        claimed = {v.strip() for v in reading.headers["x-pymon-incident"]}
        given = [v.strip() for v in reading.headers["x-pymon-token"]]
        if len(claimed) == 1 and len(given) == 1:
            (incident_id,) = claimed
            if self._tokens.valid(incident_id, given[0]):
                candidates.append(given[0].lower())
        if not candidates:
            return "no acknowledgement token found (reply to the alert e-mail)"
        for token in list(dict.fromkeys(candidates))[:_MAX_CANDIDATES]:
            incident = await self._target.incident_for_token(token)
            if incident is not None and incident.open:
                if claimed and claimed != {incident.id}:
                    return "X-Pymon-Incident does not match the incident of the token"
                return incident
        return "no open incident for this token (closed, expired or unknown)"

    def _confirm_later(self, reading: _Reading, request: AckRequest, summary: str) -> None:
        if not self._config.confirm or self._confirm is None:
            return
        try:
            message = self._confirmation(reading, request, summary)
        except Exception:
            log.warning("could not write the confirmation to %s", request.sender, exc_info=True)
            return
        task = asyncio.get_running_loop().create_task(self._send(message, request.sender))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, message: EmailMessage, sender: str) -> None:
        assert self._confirm is not None
        try:
            await self._confirm(message)
        except Exception as exc:
            log.warning("confirmation to %s not sent: %s", sender, _clean(str(exc)) or repr(exc))

    def _confirmation(self, reading: _Reading, request: AckRequest, summary: str) -> EmailMessage:
        """A reply in the sender's thread saying what was done."""
        message = EmailMessage()
        message["From"] = self._config.address
        message["To"] = request.sender
        subject = _one_line(reading.subject, 200) or f"{request.service}: {_DONE[request.action]}"
        if not re.match(r"re\s*:", subject, re.I):
            subject = f"Re: {subject}"
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid("pymon-ack", domain=self._domain)
        ids = [m for v in reading.headers["message-id"] for m in _MESSAGE_ID.findall(v)][:1]
        if ids:
            earlier = [m for v in reading.headers["references"] for m in _MESSAGE_ID.findall(v)]
            message["In-Reply-To"] = ids[0]
            message["References"] = " ".join([*earlier[-20:], ids[0]])
        message["Auto-Submitted"] = "auto-replied"
        message["X-Pymon-Service"] = _one_line(request.service)
        message["X-Pymon-Incident"] = _one_line(request.incident)
        done = _DONE[request.action]
        if request.duration is not None:
            done += f" for {_human(request.duration)}"
        lines = [
            _one_line(summary),
            "",
            f"Done:     {done}",
            f"Service:  {request.service}",
            f"Incident: {request.incident}",
            f"By:       {request.sender}",
        ]
        if request.comment:
            lines.append(f"Comment:  {request.comment}")
        message.set_content("\n".join(lines) + "\n")
        return message
