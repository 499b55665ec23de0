"""The ftp check against pyftpdlib (passive and active mode) and hostile servers."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from pymon.checks.ftp import FtpSpec
from pymon.model import Status
from tests.checks.ftp_servers import BANNER, USER, FtpServer, ftp_home, ftp_server
from tests.checks.line_servers import (
    Peer,
    client_sockets,
    drip,
    endless_reply,
    hang_up_after,
    scripted,
    silent_after,
)
from tests.checks.targets import FakeResolver, RawServer, RunCheck
from tests.support.servers import free_port

LOCAL = "127.0.0.1"

# A connection a check forgot would be closed by the garbage collector with a warning.
pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def ftpd(tmp_path: Path) -> Iterator[FtpServer]:
    """pyftpdlib serving a home with ``/pub`` (three files) and ``/empty``."""
    with ftp_server(ftp_home(tmp_path)) as server:
        yield server


async def test_anonymous_login_is_ok(check: RunCheck, ftpd: FtpServer) -> None:
    result = await check("ftp", {"host": LOCAL, "port": ftpd.port})
    assert not await client_sockets(ftpd.port)
    assert result.status is Status.OK, result.message
    assert result.message.startswith(f"220 {BANNER}; logged in as anonymous; greeting in ")
    assert result.metrics["reply_code"] == 230
    assert result.metrics["response_time_ms"] >= 0
    assert ftpd.commands == ["USER", "PASS", "QUIT"]


async def test_user_lists_a_directory_in_passive_mode(check: RunCheck, ftpd: FtpServer) -> None:
    spec = {"host": LOCAL, "port": ftpd.port, "username": USER[0], "password": USER[1]}
    result = await check("ftp", {**spec, "path": "/pub"})
    assert not await client_sockets(ftpd.port)
    assert result.status is Status.OK, result.message
    assert "; logged in as alice; LIST /pub: 3 entries (226 Transfer complete.); " in result.message
    assert result.metrics["entries"] == 3
    assert result.metrics["reply_code"] == 226
    assert "EPSV" in ftpd.commands


async def test_listing_in_active_mode(check: RunCheck, ftpd: FtpServer) -> None:
    result = await check(
        "ftp", {"host": LOCAL, "port": ftpd.port, "path": "/pub", "passive": False}
    )
    assert not await client_sockets(ftpd.port)
    assert result.status is Status.OK, result.message
    assert result.metrics["entries"] == 3
    assert "PORT" in ftpd.commands
    assert "EPSV" not in ftpd.commands


async def _port_server_with_intruder(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """An active-mode server; when told PORT, a stranger (127.0.0.2) connects there first."""
    writer.write(b"220 ready\r\n")
    port = 0
    async for line in reader:
        verb, _, arg = line.decode().strip().partition(" ")
        if verb == "PORT":
            numbers = [int(n) for n in arg.split(",")]
            port = numbers[4] << 8 | numbers[5]
            _, stranger = await asyncio.open_connection(LOCAL, port, local_addr=("127.0.0.2", 0))
            stranger.write(b"fake entry 1\r\nfake entry 2\r\nfake entry 3\r\n")
            stranger.close()
        if verb == "LIST":
            writer.write(b"150 here it comes\r\n")
            _, data = await asyncio.open_connection(LOCAL, port)
            data.write(b"-rw-r--r-- 1 ftp ftp 5 Jan 01 00:00 real.txt\r\n")
            data.close()
            await data.wait_closed()
        replies = {"USER": b"230 in", "TYPE": b"200 ok", "PORT": b"200 ok", "LIST": b"226 done"}
        writer.write(replies.get(verb, b"221 bye") + b"\r\n")
        await writer.drain()


async def test_active_mode_takes_the_listing_only_from_the_server(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(_port_server_with_intruder) as port:
        spec = {"host": LOCAL, "port": port, "path": "/", "passive": False}
        result = await check("ftp", spec)
        assert not await client_sockets(port)
    assert result.status is Status.OK, result.message
    assert result.metrics["entries"] == 1


async def test_empty_directory_has_no_entries(check: RunCheck, ftpd: FtpServer) -> None:
    result = await check("ftp", {"host": LOCAL, "port": ftpd.port, "path": "/empty"})
    assert result.status is Status.OK, result.message
    assert result.metrics["entries"] == 0


async def test_bad_password_is_error_without_the_password(
    check: RunCheck, ftpd: FtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = {"host": LOCAL, "port": ftpd.port, "username": "alice", "password": "Wr0ng-pw"}
    result = await check("ftp", spec)
    assert result.status is Status.ERROR
    assert result.message == "login as alice refused: 530 Authentication failed."
    assert result.metrics["reply_code"] == 530
    assert "Wr0ng-pw" not in caplog.text
    assert ftpd.commands[-1] == "QUIT"


@pytest.mark.parametrize("passive", [True, False])
async def test_listing_a_missing_path_is_error(
    check: RunCheck, ftpd: FtpServer, passive: bool
) -> None:
    spec = {"host": LOCAL, "port": ftpd.port, "path": "/missing", "passive": passive}
    result = await check("ftp", spec)
    assert not await client_sockets(ftpd.port)
    assert result.status is Status.ERROR
    assert result.message == "LIST /missing refused: 550 No such file or directory."
    assert result.metrics["reply_code"] == 550


async def test_closed_port_fails(check: RunCheck) -> None:
    port = free_port()
    result = await check("ftp", {"host": LOCAL, "port": port})
    assert result.status is Status.FAILED
    assert result.message == f"connection refused (127.0.0.1 port {port})"


async def test_name_is_resolved_through_the_resolver(check: RunCheck, ftpd: FtpServer) -> None:
    resolver = FakeResolver({"files.test": [LOCAL]})
    result = await check("ftp", {"host": "files.test", "port": ftpd.port}, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert resolver.asked == ["files.test"]


async def test_refusing_greeting_is_error(check: RunCheck, raw_server: RawServer) -> None:
    greeting = b"421 Too many connections, try later.\r\n"
    async with raw_server(scripted(Peer(), greeting, {})) as port:
        result = await check("ftp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.ERROR
    assert result.message == "greeting refused: 421 Too many connections, try later."
    assert result.metrics["reply_code"] == 421


async def test_unusable_passive_reply_fails(check: RunCheck, raw_server: RawServer) -> None:
    replies = {
        b"USER": b"230 welcome\r\n",
        b"TYPE": b"200 binary\r\n",
        b"EPSV": b"500 unknown command\r\n",
        b"PASV": b"227 Entering Passive Mode (somewhere)\r\n",
        b"QUIT": b"221 bye\r\n",
    }
    async with raw_server(scripted(Peer(), b"220 odd ftpd\r\n", replies)) as port:
        result = await check("ftp", {"host": LOCAL, "port": port, "path": "/"})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == ("no usable port in the EPSV/PASV reply while setting up passive mode")


async def test_garbage_greeting_fails(check: RunCheck, raw_server: RawServer) -> None:
    garbage = b"SSH-2.0-OpenSSH_9.6\r\n"
    async with raw_server(scripted(Peer(), garbage, {})) as port:
        result = await check("ftp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert (
        result.message == "not an FTP reply: 'SSH-2.0-OpenSSH_9.6' while waiting for the greeting"
    )


async def test_close_right_after_greeting_fails(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(hang_up_after(b"220 going away\r\n")) as port:
        result = await check("ftp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "connection closed while waiting for the reply to login as anonymous"
    assert result.metrics["reply_code"] == 220


async def test_silence_after_greeting_times_out_and_closes(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(silent_after(b"220 mute ftpd\r\n")) as port:
        result = await check("ftp", {"host": LOCAL, "port": port}, within=0.5)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert (
        result.message == "timed out after 0.5s while waiting for the reply to login as anonymous"
    )


async def test_endless_multiline_greeting_fails(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(endless_reply(b"220-welcome, and more\r\n")) as port:
        result = await check("ftp", {"host": LOCAL, "port": port}, within=2.0)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "reply longer than 64 KiB while waiting for the greeting"


async def test_dripping_greeting_times_out(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(drip(b"220 slow ftpd\r\n")) as port:
        result = await check("ftp", {"host": LOCAL, "port": port}, within=1.0)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 1s while waiting for the greeting"
    assert result.duration < 3.0


@pytest.mark.parametrize("key", ["username", "password", "path"])
def test_line_breaks_are_config_errors(key: str) -> None:
    with pytest.raises(ValidationError, match="cannot contain line breaks"):
        FtpSpec.model_validate({"host": "files", key: "x\r\nDELE important"})


def test_anonymous_by_default_and_password_hidden() -> None:
    spec = FtpSpec(host="files")
    assert (spec.port, spec.username, spec.passive) == (21, "anonymous", True)
    assert "anon@" not in repr(spec)


def _pymon_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pymon", "check", "ftp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_cli_ad_hoc_check(tmp_path: Path) -> None:
    with ftp_server(ftp_home(tmp_path)) as server:
        good = _pymon_check("--host", LOCAL, "--port", str(server.port), "--path", "/pub")
        bad = _pymon_check(
            "--host", LOCAL, "--port", str(server.port), "--username", "alice", "--password", "x"
        )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith(f"OK - 220 {BANNER}; logged in as anonymous; LIST /pub: ")
    assert "entries=3" in good.stdout
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert bad.stdout.startswith("ERROR - login as alice refused: 530")
