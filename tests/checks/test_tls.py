"""The tls check against real TLS and SMTP servers on 127.0.0.1, certificates from trustme."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from pymon.checks import REGISTRY
from pymon.checks.tls import TlsSpec
from pymon.engine.rules import evaluate
from pymon.model import Status
from tests.checks.targets import FakeResolver, Handler, RawServer, RunCheck, until_eof
from tests.checks.tls_targets import leaf_context, self_signed_context, serve_smtp, tls_handler
from tests.support.servers import free_port

ISSUER = "OU=Testing CA #"


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The test CA as a PEM file, for the ``ca_file`` key."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _date(days: float, now: datetime.datetime) -> str:
    """The UTC date ``days`` after ``now``: that of a certificate made at ``now``."""
    return (now + datetime.timedelta(days=days)).strftime("%Y-%m-%d")


def watched(handler: Handler) -> tuple[Handler, asyncio.Event]:
    """``handler``, then wait for the client to go; the event is set once it has."""
    closed = asyncio.Event()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
            await reader.read()
        except OSError:
            pass
        finally:
            closed.set()

    return run, closed


async def released(closed: asyncio.Event) -> bool:
    """Whether the server saw the check's connection closed within a moment."""
    try:
        await asyncio.wait_for(closed.wait(), 2.0)
    except TimeoutError:
        return False
    return True


def replies(*lines: bytes, hang_up: bool = False) -> Handler:
    """An SMTP-ish server: send ``lines[0]``, then each next one after every line read.

    With ``hang_up`` it closes the connection after the last one.
    """

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i, line in enumerate(lines):
            if i:
                await reader.readline()
            writer.write(line)
            await writer.drain()
        if hang_up:
            writer.close()

    return talk


# -- direct TLS --------------------------------------------------------------------


async def test_valid_certificate_names_subject_issuer_and_expiry(
    check: RunCheck, raw_server: RawServer, ca: trustme.CA, ca_file: str
) -> None:
    now = _now()
    async with raw_server(tls_handler(leaf_context(ca, days=90, now=now))) as port:
        spec = {"host": "127.0.0.1", "port": port, "server_name": "localhost", "ca_file": ca_file}
        result = await check("tls", spec)
    assert result.status is Status.OK, result.message
    assert result.message.startswith(f"CN=localhost, issued by {ISSUER}")
    assert f", expires {_date(90, now)} (89.9" in result.message
    assert result.message.endswith(" days left); TLSv1.3")
    assert 89.98 <= result.metrics["cert_days_left"] < 90
    assert result.metrics["handshake_ms"] >= 0


async def test_server_name_defaults_to_host(
    check: RunCheck, raw_server: RawServer, ca: trustme.CA, ca_file: str
) -> None:
    resolver = FakeResolver({"mail.pymon.test": ["127.0.0.1"]})
    async with raw_server(tls_handler(leaf_context(ca, "mail.pymon.test"))) as port:
        spec = {"host": "mail.pymon.test", "port": port, "ca_file": ca_file}
        result = await check("tls", spec, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("CN=mail.pymon.test, ")


async def test_ip_address_checked_against_the_certificate(
    check: RunCheck, raw_server: RawServer, ca: trustme.CA, ca_file: str
) -> None:
    async with raw_server(tls_handler(leaf_context(ca, "127.0.0.1"))) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port, "ca_file": ca_file})
    assert result.status is Status.OK, result.message


@pytest.mark.parametrize(
    ("days", "status"),
    [(90, Status.OK), (10, Status.WARN), (2, Status.ERROR)],
)
async def test_default_thresholds_judge_days_left(
    check: RunCheck,
    raw_server: RawServer,
    ca: trustme.CA,
    ca_file: str,
    days: float,
    status: Status,
) -> None:
    async with raw_server(tls_handler(leaf_context(ca, days=days))) as port:
        spec = {"host": "127.0.0.1", "port": port, "server_name": "localhost", "ca_file": ca_file}
        result = await check("tls", spec)
    assert result.status is Status.OK, result.message
    assert days - 0.02 <= result.metrics["cert_days_left"] < days
    assert evaluate(result, REGISTRY["tls"].thresholds)[0] is status


@pytest.mark.parametrize(
    ("server", "why", "subject", "expiry"),
    [
        (
            lambda ca, now: leaf_context(ca, days=-2, now=now),
            "certificate has expired",
            "CN=localhost",
            lambda now: f"expired {_date(-2, now)} (2.0",
        ),
        (
            lambda ca, now: leaf_context(ca, "elsewhere.example", now=now),
            "Hostname mismatch, certificate is not valid for 'localhost'",
            "CN=elsewhere.example",
            lambda now: f"expires {_date(90, now)} (89.9",
        ),
        (
            lambda ca, now: self_signed_context(),
            "self-signed certificate",
            "OU=Testing CA #",
            lambda now: "expires 3000-01-01 (",
        ),
        (
            lambda ca, now: leaf_context(trustme.CA(), now=now),
            "unable to get local issuer certificate",
            "CN=localhost",
            lambda now: f"expires {_date(90, now)} (89.9",
        ),
    ],
    ids=["expired", "wrong-host", "self-signed", "unknown-ca"],
)
async def test_untrusted_certificate_fails_and_is_still_described(
    check: RunCheck,
    raw_server: RawServer,
    ca: trustme.CA,
    ca_file: str,
    server: Callable[[trustme.CA, datetime.datetime], ssl.SSLContext],
    why: str,
    subject: str,
    expiry: Callable[[datetime.datetime], str],
) -> None:
    now = _now()
    context = server(ca, now)
    # Two connections: the verifying one, then one that reads the certificate anyway.
    async with raw_server(tls_handler(context)) as port:
        spec = {"host": "127.0.0.1", "port": port, "server_name": "localhost", "ca_file": ca_file}
        result = await check("tls", spec)
    assert result.status is Status.FAILED
    assert result.message.startswith(f"certificate verify failed: {why} ({subject}")
    assert ", issued by " in result.message
    # Dates are computed when the certificate is made, not when the tests were collected.
    assert expiry(now) in result.message
    assert "cert_days_left" in result.metrics


async def test_expired_certificate_reports_negative_days(
    check: RunCheck, raw_server: RawServer, ca: trustme.CA, ca_file: str
) -> None:
    async with raw_server(tls_handler(leaf_context(ca, days=-2))) as port:
        spec = {"host": "127.0.0.1", "port": port, "server_name": "localhost", "ca_file": ca_file}
        result = await check("tls", spec)
    assert -2.02 <= result.metrics["cert_days_left"] < -2


async def test_system_store_does_not_know_the_test_ca(
    check: RunCheck, raw_server: RawServer, ca: trustme.CA
) -> None:
    async with raw_server(tls_handler(leaf_context(ca))) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port, "server_name": "localhost"})
    assert result.status is Status.FAILED
    assert result.message.startswith(
        "certificate verify failed: unable to get local issuer certificate (CN=localhost, "
    )


async def test_unverified_reads_a_self_signed_certificate(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(tls_handler(self_signed_context())) as port:
        spec = {"host": "127.0.0.1", "port": port, "verify_tls": False}
        result = await check("tls", spec)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("OU=Testing CA #")
    assert ",O=stranger, issued by OU=Testing CA #" in result.message


async def test_unverified_expired_certificate_is_left_to_the_thresholds(
    check: RunCheck, raw_server: RawServer, ca: trustme.CA
) -> None:
    async with raw_server(tls_handler(leaf_context(ca, days=-2))) as port:
        spec = {"host": "127.0.0.1", "port": port, "verify_tls": False}
        result = await check("tls", spec)
    assert result.status is Status.OK, result.message
    status, message = evaluate(result, REGISTRY["tls"].thresholds)
    assert status is Status.ERROR
    assert message.startswith("cert_days_left -2.01 is error (-1000000-2.99) - CN=localhost")


async def test_plain_tcp_service_is_not_tls(check: RunCheck, raw_server: RawServer) -> None:
    handler, closed = watched(replies(b"SSH-2.0-OpenSSH_9.6\r\n"))
    async with raw_server(handler) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port})
        assert await released(closed)
    assert result.status is Status.FAILED
    assert (
        result.message == "TLS handshake failed: [SSL: WRONG_VERSION_NUMBER] wrong version number"
    )


async def test_server_hanging_up_during_handshake(check: RunCheck, raw_server: RawServer) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)

    async with raw_server(hang_up) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port})
    assert result.status is Status.FAILED
    assert result.message.startswith("connection closed during the TLS handshake")


async def test_silent_server_times_out_in_handshake(check: RunCheck, raw_server: RawServer) -> None:
    handler, closed = watched(until_eof)
    async with raw_server(handler) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port}, within=0.5)
        assert await released(closed)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while doing the TLS handshake"
    assert result.duration < 2.5


async def test_refused(check: RunCheck) -> None:
    port = free_port()
    result = await check("tls", {"host": "127.0.0.1", "port": port})
    assert result.status is Status.FAILED
    assert result.message == f"connection refused (127.0.0.1 port {port})"


async def test_name_that_does_not_resolve(check: RunCheck) -> None:
    result = await check("tls", {"host": "nowhere.pymon.test"}, resolver=FakeResolver())
    assert result.status is Status.FAILED
    assert result.message.startswith("cannot resolve nowhere.pymon.test: ")


async def test_missing_ca_file_cannot_run(check: RunCheck, tmp_path: Path) -> None:
    spec = {"host": "127.0.0.1", "port": free_port(), "ca_file": str(tmp_path / "none.pem")}
    result = await check("tls", spec)
    assert result.status is Status.UNKNOWN
    assert result.message == (
        f"cannot run tls check: cannot read ca_file {tmp_path / 'none.pem'}: "
        "No such file or directory"
    )


async def test_ca_file_without_certificates_cannot_run(check: RunCheck, tmp_path: Path) -> None:
    path = tmp_path / "empty.pem"
    path.write_text("not a certificate\n")
    result = await check("tls", {"host": "127.0.0.1", "port": free_port(), "ca_file": str(path)})
    assert result.status is Status.UNKNOWN
    assert result.message.startswith(f"cannot run tls check: ca_file {path} holds no usable CA: ")


def test_ca_file_without_verification_is_a_config_error() -> None:
    with pytest.raises(ValidationError) as info:
        TlsSpec.model_validate({"host": "x", "ca_file": "/ca.pem", "verify_tls": False})
    assert "ca_file is only used to verify" in str(info.value)


def test_unknown_starttls_protocol_is_a_config_error() -> None:
    with pytest.raises(ValidationError) as info:
        TlsSpec.model_validate({"host": "x", "starttls": "imap"})
    (error,) = info.value.errors()
    assert error["loc"] == ("starttls",)


def test_port_defaults_to_443() -> None:
    assert TlsSpec.model_validate({"host": "x"}).port == 443


# -- SMTP STARTTLS -----------------------------------------------------------------


async def test_starttls_with_aiosmtpd(check: RunCheck, ca: trustme.CA, ca_file: str) -> None:
    async with serve_smtp(leaf_context(ca)) as port:
        spec = {
            "host": "127.0.0.1",
            "port": port,
            "server_name": "localhost",
            "ca_file": ca_file,
            "starttls": "smtp",
        }
        result = await check("tls", spec)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("CN=localhost, issued by ")
    assert result.message.endswith("; TLSv1.3 after STARTTLS")


async def test_starttls_untrusted_certificate_is_described(check: RunCheck, ca_file: str) -> None:
    async with serve_smtp(self_signed_context()) as port:
        spec = {"host": "127.0.0.1", "port": port, "ca_file": ca_file, "starttls": "smtp"}
        result = await check("tls", spec)
    assert result.status is Status.FAILED
    assert result.message.startswith("certificate verify failed: self-signed certificate (OU=")


async def test_smtp_server_without_starttls(check: RunCheck) -> None:
    async with serve_smtp(None) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port, "starttls": "smtp"})
    assert result.status is Status.FAILED
    assert result.message == "SMTP server does not offer STARTTLS (it offers SIZE, 8BITMIME, HELP)"


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            replies(b"SSH-2.0-OpenSSH_9.6\r\n"),
            "not an SMTP greeting: b'SSH-2.0-OpenSSH_9.6\\r\\n'",
        ),
        (
            replies(b"554 mx.test no service for you\r\n"),
            "SMTP server refuses the session: 554 mx.test no service for you",
        ),
        (
            replies(
                b"220-mx.test\r\n220 ESMTP\r\n", b"250-mx.test\r\n250 STARTTLS\r\n", b"454 no\r\n"
            ),
            "STARTTLS refused: 454 no",
        ),
        (
            replies(b"220-mx.test\r\n220 ESMTP\r\n", b"500 what?\r\n"),
            "EHLO refused: 500 what?",
        ),
        (
            replies(b"220-mx.test\r\n250 mixed codes\r\n"),
            "not an SMTP greeting: b'250 mixed codes\\r\\n'",
        ),
        (
            replies(b"220 mx.test\r\n", b"", hang_up=True),
            "server closed the connection instead of the SMTP EHLO reply",
        ),
        (
            replies(b"220 mx.test\r\n", b"250-mx.test\r\n250-SIZE", hang_up=True),
            "server closed the connection in the middle of the SMTP EHLO reply (b'250-SIZE')",
        ),
    ],
    ids=["garbage", "refused", "starttls-refused", "ehlo-refused", "mixed", "closed", "cut"],
)
async def test_broken_smtp_dialogue_fails_with_reason(
    check: RunCheck, raw_server: RawServer, server: Handler, message: str
) -> None:
    handler, closed = watched(server)
    async with raw_server(handler) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port, "starttls": "smtp"})
        assert await released(closed)
    assert result.status is Status.FAILED
    assert result.message == message


async def test_endless_multiline_greeting(check: RunCheck, raw_server: RawServer) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b"220-still greeting you\r\n")
            await writer.drain()
            await asyncio.sleep(0)  # share the loop with the check under test

    handler, closed = watched(endless)
    async with raw_server(handler) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port, "starttls": "smtp"})
        assert await released(closed)
    assert result.status is Status.FAILED
    assert result.message == "SMTP greeting longer than 100 lines"


async def test_endless_greeting_line(check: RunCheck, raw_server: RawServer) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b"220" * 4096)
            await writer.drain()
            await asyncio.sleep(0)  # share the loop with the check under test

    handler, closed = watched(endless)
    async with raw_server(handler) as port:
        result = await check("tls", {"host": "127.0.0.1", "port": port, "starttls": "smtp"})
        assert await released(closed)
    assert result.status is Status.FAILED
    assert result.message == "SMTP greeting has a line longer than 64 KiB"


async def test_dripping_greeting_times_out(check: RunCheck, raw_server: RawServer) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in b"220 mx.test ESMTP at a snail's pace\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.2)

    handler, closed = watched(drip)
    async with raw_server(handler) as port:
        spec = {"host": "127.0.0.1", "port": port, "starttls": "smtp"}
        result = await check("tls", spec, within=0.5)
        assert await released(closed)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while waiting for the SMTP greeting"
    assert result.duration < 2.5


# -- the command line --------------------------------------------------------------


@pytest.mark.slow
async def test_pymon_check_tls_command(raw_server: RawServer, ca: trustme.CA, ca_file: str) -> None:
    async with raw_server(tls_handler(leaf_context(ca))) as port:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pymon",
            "check",
            "tls",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ca-file",
            ca_file,
            "--server-name",
            "localhost",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith(f"OK - CN=localhost, issued by {ISSUER}")
    assert " cert_days_left=89.99\n" in out.decode()
