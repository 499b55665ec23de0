"""The acknowledgement SMTP server: aiosmtpd's protocol on the daemon's own event
loop, taking mail for one address (and its ``+token`` forms) only, never relaying.

Its limits: the envelope sender is checked at MAIL FROM, recipients are capped, a
session lives at most ten minutes, idles at most ``session_timeout`` and must reach
an accepted MAIL FROM within ``mail_timeout``; sessions beyond ``max_sessions``, or
beyond ``max_sessions_per_address`` from one peer address, are answered 421 and
closed, so idle connections from one place never lock everyone else out; a message
is at most ``max_size``. Each message is read (:mod:`~pymon.notify.acks.message`), its sender
authorized and its command parsed (:mod:`~pymon.notify.acks.request`), the incident
found by its tokens, the request carried out by the :class:`AckTarget`, and a
confirmation (:mod:`~pymon.notify.acks.confirm`) sent in the background. Every
outcome is one clear SMTP answer; tokens are masked in aiosmtpd's own log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session

from pymon.config.schema import AcknowledgementsConfig, split_host_port
from pymon.errors import PymonError
from pymon.model import Incident
from pymon.notify.acks.confirm import confirmation
from pymon.notify.acks.message import Reading, read
from pymon.notify.acks.request import (
    AckRequest,
    AckTarget,
    authorized,
    done_text,
    parse_command,
)
from pymon.notify.acks.text import human_line, loggable
from pymon.notify.tokens import TOKEN_LENGTH, AckTokens

__all__ = ["AckServer"]

log = logging.getLogger("pymon.notify")

_MAX_RCPTS = 10
_SESSION_LIMIT = 600.0  # seconds a connection may live, however busy it keeps us
_STOP_GRACE = 5.0
_SECRET = re.compile(rf"(?<![0-9a-f])[0-9a-f]{{{TOKEN_LENGTH}}}(?![0-9a-f])", re.I)


def _smtp_text(text: str) -> str:
    """``text`` as an SMTP reply may carry it: one line of printable ASCII."""
    folded = unicodedata.normalize("NFKD", human_line(text))
    ascii_text = "".join(
        c if " " <= c <= "~" else "?" for c in folded if not unicodedata.combining(c)
    )
    return ascii_text[:400] or "refused"


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
    """One SMTP connection; the server knows its sessions to close them on stop.

    A connection its peer address may not open is answered 421 before aiosmtpd sees
    it; one that has not had a MAIL FROM accepted within ``mail_timeout`` is
    answered 421 and closed.
    """

    def __init__(self, owner: AckServer, *, timeout: float, mail_timeout: float) -> None:
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
        self._mail_timeout = mail_timeout
        self._cutoff: asyncio.TimerHandle | None = None
        self._no_mail: asyncio.TimerHandle | None = None
        self._address: str | None = None  # the peer address, once admitted
        self.closed: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._owner._admit(address):
            # aiosmtpd never sees this connection: nothing of its session to tear down.
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(b"421 4.3.2 too many connections from your address\r\n")
            transport.close()
            return
        self._address = address
        super().connection_made(transport)
        self._cutoff = self.loop.call_later(_SESSION_LIMIT, transport.close)
        self._no_mail = self.loop.call_later(self._mail_timeout, self._idle_before_mail)

    def mail_accepted(self) -> None:
        """A MAIL FROM was accepted: the session is at work, not waiting for one."""
        if self._no_mail is not None:
            self._no_mail.cancel()
            self._no_mail = None

    def _idle_before_mail(self) -> None:
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            host = self._owner._hostname.encode("ascii", "replace")
            transport.write(b"421 4.4.2 " + host + b" no MAIL in time, closing\r\n")
            transport.close()

    def eof_received(self) -> bool | None:
        if self._address is None:
            return False
        return super().eof_received()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            if self._address is not None:
                super().connection_lost(error)
        finally:
            for timer in (self._cutoff, self._no_mail):
                if timer is not None:
                    timer.cancel()
            if self._address is not None:
                self._owner._release(self._address)
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
        if isinstance(server, _Session):
            server.mail_accepted()
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
        mail_timeout: float = 10.0,
        max_sessions: int = 50,
        max_sessions_per_address: int = 10,
    ) -> None:
        self._config = config
        self._tokens = tokens
        self._target = target
        self._hostname = hostname
        self._confirm = confirm
        self._session_timeout = session_timeout
        self._mail_timeout = mail_timeout
        self._max_sessions = max_sessions
        self._max_per_address = max_sessions_per_address
        self._per_address: dict[str, int] = {}
        self._crowding: set[str] = set()
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
        # Admitted sessions count; one refused per address is already on its way out.
        if sum(self._per_address.values()) >= self._max_sessions:
            return _Busy()
        session = _Session(self, timeout=self._session_timeout, mail_timeout=self._mail_timeout)
        self._sessions.add(session)
        return session

    def _admit(self, address: str) -> bool:
        """Count a session from ``address`` in, unless it already holds its share."""
        held = self._per_address.get(address, 0)
        if held >= self._max_per_address:
            if address not in self._crowding:  # once per crowding, not once per connection
                self._crowding.add(address)
                log.warning("acknowledgements: %s holds %d sessions; refusing more", address, held)
            return False
        self._per_address[address] = held + 1
        return True

    def _release(self, address: str) -> None:
        held = self._per_address.get(address, 0) - 1
        self._crowding.discard(address)
        if held > 0:
            self._per_address[address] = held
        else:
            self._per_address.pop(address, None)

    def _refuse(self, code: str, sender: str, reason: str) -> str:
        self.refused += 1
        log.warning("acknowledgement from %s refused: %s", loggable(sender) or "<none>", reason)
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
            reading = await asyncio.to_thread(read, raw)
        except Exception as exc:
            return self._refuse("554 5.6.0", envelope_sender, f"unreadable message ({exc})")
        if len(reading.senders) != 1:
            why = "no From address" if not reading.senders else "more than one From address"
            return self._refuse("550 5.7.1", envelope_sender, f"sender not authorized: {why}")
        sender = reading.senders[0].strip().lower()
        if reading.disguise is not None:
            return self._refuse("550 5.7.1", sender, f"sender not authorized: {reading.disguise}")
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
        log.info("%s: %s by %s (incident %s)", found.service, done_text(request), sender, found.id)
        self._confirm_later(reading, request, summary)
        return f"250 2.0.0 {_smtp_text(summary)}"

    async def _incident(self, reading: Reading, recipients: Sequence[str]) -> Incident | str:
        """The open incident the message answers, or why there is none."""
        candidates = reading.tokens(recipients, self._tokens)
        if not candidates:
            return "no acknowledgement token found (reply to the alert e-mail)"
        claimed = reading.claimed
        for token in candidates:
            incident = await self._target.incident_for_token(token)
            if incident is not None and incident.open:
                if claimed and claimed != {incident.id}:
                    return "X-Pymon-Incident does not match the incident of the token"
                return incident
        return "no open incident for this token (closed, expired or unknown)"

    def _confirm_later(self, reading: Reading, request: AckRequest, summary: str) -> None:
        if not self._config.confirm or self._confirm is None:
            return
        try:
            message = confirmation(
                reading, request, summary, sender=self._config.address, domain=self._domain
            )
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
            log.warning("confirmation to %s not sent: %s", sender, loggable(str(exc)) or repr(exc))
