"""``ftp``: log in to an FTP server (aioftp); optionally list a directory."""

from __future__ import annotations

import asyncio
import contextlib
import re

import aioftp
from pydantic import Field, SecretStr, field_validator

from pymon.checks._dialogue import SHOWN_REPLY, Dialogue
from pymon.checks.base import CheckContext, Unreachable, connect_first, os_reason
from pymon.checks.spec import CheckSpec
from pymon.model import CheckResult, Status
from pymon.text import one_line

__all__ = ["FTP_PORT", "MAX_REPLY", "FtpSpec", "check_ftp"]

FTP_PORT = 21

# A reply, all its lines together, is short; a server sending more than this in one
# reply (say an endless "220-" greeting) is not one pymon can talk to.
MAX_REPLY = 64 * 1024

_REPLY = re.compile(r"(\d{3})([ -]|$)")
_TOTAL = re.compile(rb"total \d+\s*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FtpSpec(CheckSpec):
    """Keys of an ``ftp`` service."""

    host: str = Field(min_length=1)
    port: int = Field(default=FTP_PORT, ge=1, le=65535)
    username: str = Field(default=aioftp.DEFAULT_USER, min_length=1)
    # The anonymous convention: any password, by custom an e-mail-like one.
    password: SecretStr = SecretStr(aioftp.DEFAULT_PASSWORD)
    passive: bool = True
    path: str | None = Field(default=None, min_length=1)

    @field_validator("username", "password", "path")
    @classmethod
    def _one_line(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and _CONTROL.search(text):
            raise ValueError("cannot contain line breaks or other control characters")
        return value


class _Garbled(Exception):
    """The server sent something that is not an FTP reply; the text says what."""


class _Client(aioftp.Client):
    """aioftp's client, reading replies within bounds.

    aioftp waits for more lines after one without a reply code and keeps every line
    of a reply; this client refuses a first line without a code (not FTP) and a
    reply over MAX_REPLY, so a hostile server gets a verdict, not a hang or all
    the memory it asks for.
    """

    async def parse_response(self) -> tuple[aioftp.Code, list[str]]:
        """One reply: its code and its lines' texts (after the code, when a line has it)."""
        first = await self._line()
        match = _REPLY.match(first)
        if match is None:
            raise _Garbled(f"not an FTP reply: {first[:80]!r}")
        code = match[1]
        info = [first[4:]]
        size = len(first)
        if match[2] == "-":
            while True:
                line = await self._line()
                size += len(line)
                if size > MAX_REPLY:
                    raise _Garbled(f"reply longer than {MAX_REPLY // 1024} KiB")
                last = line.startswith(f"{code} ") or line == code
                info.append(line[4:] if last or line.startswith(f"{code}-") else line)
                if last:
                    break
        return aioftp.Code(code), info

    async def _line(self) -> str:
        try:
            line = await self.stream.readline()
        except ValueError:  # the stream's line limit (64 KiB) ran out
            raise _Garbled("reply line longer than 64 KiB") from None
        if not line.endswith(b"\n"):
            raise ConnectionResetError("connection closed")
        return line.decode(self.encoding, errors="replace").rstrip("\r\n")


def _abort(writer: asyncio.StreamWriter) -> None:
    # A graceful close would wait for a peer that stopped reading.
    writer.transport.abort()


class _Session(Dialogue):
    """One FTP session: the client and how far the dialogue got."""

    def __init__(self, client: _Client, ctx: CheckContext, connecting_at: float) -> None:
        super().__init__(ctx, connecting_at)
        self.client = client

    async def reply(
        self, line: str | None, expected: str, waiting: str = ""
    ) -> tuple[aioftp.Code, list[str]]:
        """Send ``line`` (None: nothing) and read replies until one is not ``waiting``."""
        code, info = await self.client.command(line, expected, waiting or ())
        self.code = int(code)
        return code, info

    async def quit(self) -> None:
        """QUIT, expecting a 2xx goodbye."""
        await self.client.command("QUIT", "2xx")


class _DataChannel:
    """The data connection of one listing: passive (pymon connects) or active (the server does)."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.streams: Streams | None = None
        self.peer = ""
        self.server: asyncio.Server | None = None
        self.accepted: asyncio.Future[Streams] | None = None

    async def open_passive(self) -> None:
        """TYPE, then EPSV (PASV if refused), then connect where the server said.

        aioftp connects to the address the control connection goes to, whatever
        address a PASV reply names (which behind NAT is often a private one).
        """
        self.session.at("passive mode", "setting up passive mode")
        try:
            self.streams = await self.session.client.get_passive_connection()
        except (ValueError, IndexError):
            # aioftp found no port in the reply.
            raise _Garbled("no usable port in the EPSV/PASV reply") from None

    async def open_active(self) -> None:
        """Listen on the control connection's local address, TYPE, then PORT (EPRT for IPv6)."""
        session = self.session
        writer = session.client.stream.writer
        self.peer = str(writer.get_extra_info("peername")[0])
        local = str(writer.get_extra_info("sockname")[0])
        self.accepted = asyncio.get_running_loop().create_future()
        self.server = await asyncio.start_server(self._accept, local, 0)
        port = int(self.server.sockets[0].getsockname()[1])
        session.at("TYPE I")
        await session.reply("TYPE I", "200")
        if ":" in local:
            command = f"EPRT |2|{local}|{port}|"
        else:
            command = f"PORT {local.replace('.', ',')},{port >> 8},{port & 0xFF}"
        session.at(command.split()[0])
        await session.reply(command, "200")

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Only the server may send the listing, and only once.
        peer = str(writer.get_extra_info("peername")[0])
        if self.accepted is None or self.accepted.done() or peer != self.peer:
            _abort(writer)
        else:
            self.accepted.set_result((reader, writer))

    async def reader(self) -> asyncio.StreamReader:
        """The stream to read the listing from (in active mode: once the server connected)."""
        if self.streams is None and self.accepted is not None:
            self.session.ctx.stage = "waiting for the server to open the data connection"
            self.streams = await self.accepted
        assert self.streams is not None
        return self.streams[0]

    def close(self) -> None:
        """Drop the data connection and stop listening, whatever state they are in."""
        if self.streams is not None:
            _abort(self.streams[1])
        if self.accepted is not None:
            if self.accepted.done() and not self.accepted.cancelled():
                _abort(self.accepted.result()[1])
            self.accepted.cancel()
        if self.server is not None:
            self.server.close()


async def _count_entries(reader: asyncio.StreamReader) -> int:
    """Lines of a listing, without ``.``, ``..`` and an ``ls``-style ``total N`` line."""
    entries = 0
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # the stream's line limit (64 KiB) ran out
            raise _Garbled("listing line longer than 64 KiB") from None
        if not line:
            return entries
        fields = line.split()
        if fields and fields[-1] not in (b".", b"..") and not _TOTAL.match(line):
            entries += 1


async def _list(spec: FtpSpec, session: _Session, path: str) -> tuple[int, str]:
    """LIST ``path``: the number of entries and the closing reply."""
    channel = _DataChannel(session)
    try:
        await (channel.open_passive() if spec.passive else channel.open_active())
        session.at(f"LIST {path}")
        await session.reply(f"LIST {path}", "1xx")
        reader = await channel.reader()
        session.ctx.stage = f"reading the listing of {path}"
        entries = await _count_entries(reader)
        session.ctx.stage = f"waiting for the end of the listing of {path}"
        code, info = await session.reply(None, "2xx", "1xx")
    finally:
        channel.close()
    return entries, f"{code} {one_line(' '.join(info), SHOWN_REPLY)}"


async def _talk(spec: FtpSpec, session: _Session) -> tuple[Status, str, bool]:
    """The whole dialogue up to QUIT: its status, message, and whether a goodbye is in order."""
    session.at("greeting", "waiting for the greeting")
    try:
        code, info = await session.reply(None, "220", "120")
        greeted_ms = session.greeted()
        summary = f"{code} {one_line(' '.join(info), SHOWN_REPLY)}"
        session.at(f"login as {spec.username}")
        await session.client.login(spec.username, spec.password.get_secret_value())
        session.code = 230
        summary += f"; logged in as {spec.username}"
        if spec.path is not None:
            entries, end = await _list(spec, session, spec.path)
            session.metrics["entries"] = entries
            noun = "entry" if entries == 1 else "entries"
            summary += f"; LIST {spec.path}: {entries} {noun} ({end})"
    except aioftp.StatusCodeError as exc:
        return session.refused(int(exc.received_codes[-1]), " ".join(exc.info))
    except _Garbled as exc:
        return Status.FAILED, f"{exc} while {session.ctx.stage}", False
    except OSError as exc:
        why = "connection closed" if isinstance(exc, ConnectionResetError) else os_reason(exc)
        return Status.FAILED, f"{why} while {session.ctx.stage}", False
    return Status.OK, f"{summary}; greeting in {greeted_ms:.0f} ms", True


def _hang_up(client: _Client) -> None:
    """Drop the control connection, if there is one."""
    with contextlib.suppress(ConnectionError):  # never connected
        _abort(client.stream.writer)


async def check_ftp(spec: FtpSpec, ctx: CheckContext) -> CheckResult:
    """Log in to an FTP server; optionally LIST ``path`` (passive or active mode)."""
    started = ctx.clock.monotonic()
    client = _Client()

    async def connect(address: str) -> None:
        # The socket only: the greeting is read below, so that a server hanging up
        # on it is reported as such, not taken for an unreachable address.
        await aioftp.BaseClient.connect(client, address, spec.port)

    try:
        try:
            _, connecting_at = await connect_first(spec.host, spec.port, ctx, connect)
        except Unreachable as exc:
            return CheckResult(Status.FAILED, str(exc))
        session = _Session(client, ctx, connecting_at)
        status, message, polite = await _talk(spec, session)
        if polite:
            await session.goodbye(started, session.quit, (aioftp.AIOFTPException, _Garbled))
    finally:
        _hang_up(client)
    return session.result(status, message)
