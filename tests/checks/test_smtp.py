"""The smtp check against aiosmtpd (plain, STARTTLS, implicit TLS) and hostile servers."""

from __future__ import annotations

import logging
import subprocess
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from pymon.checks.smtp import SmtpSpec
from pymon.model import Status
from tests.checks.line_servers import (
    Peer,
    client_sockets,
    drip,
    endless_reply,
    hang_up_after,
    scripted,
    silent_after,
)
from tests.checks.mail_servers import USER, Inbox, RejectRecipients, server_context, smtp_server
from tests.checks.targets import FakeResolver, RawServer, RunCheck
from tests.support.servers import free_port

LOCAL = "127.0.0.1"

# A connection a check forgot would be closed by the garbage collector with a warning.
pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The test CA's certificate as a file, for ``ca_file``."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_banner_and_ehlo_are_ok(check: RunCheck) -> None:
    with smtp_server() as port:
        result = await check("smtp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("220 mx.pymon.test ")
    assert "; EHLO; greeting in " in result.message
    assert result.metrics["reply_code"] == 250
    assert result.metrics["response_time_ms"] >= 0


async def test_closed_port_fails(check: RunCheck) -> None:
    port = free_port()
    result = await check("smtp", {"host": LOCAL, "port": port})
    assert result.status is Status.FAILED
    assert result.message == f"connection refused (127.0.0.1 port {port})"
    assert not result.metrics


async def test_unknown_name_fails(check: RunCheck) -> None:
    result = await check("smtp", {"host": "mx.test"}, resolver=FakeResolver())
    assert result.status is Status.FAILED
    assert result.message == "cannot resolve mx.test: fake resolver: mx.test is not known"


async def test_starttls_with_private_ca(check: RunCheck, ca: trustme.CA, ca_file: str) -> None:
    with smtp_server(starttls=server_context(ca)) as port:
        spec = {"host": LOCAL, "port": port, "tls": "starttls", "ca_file": ca_file}
        result = await check("smtp", spec)
    assert result.status is Status.OK, result.message
    assert "; EHLO, STARTTLS, EHLO; " in result.message


async def test_starttls_with_untrusted_certificate_fails(check: RunCheck, ca: trustme.CA) -> None:
    with smtp_server(starttls=server_context(ca)) as port:
        result = await check("smtp", {"host": LOCAL, "port": port, "tls": "starttls"})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "TLS certificate verify failed: unable to get local issuer certificate"


async def test_starttls_without_verification_accepts_any_certificate(
    check: RunCheck, ca: trustme.CA
) -> None:
    with smtp_server(starttls=server_context(ca)) as port:
        spec = {"host": LOCAL, "port": port, "tls": "starttls", "verify_tls": False}
        result = await check("smtp", spec)
    assert result.status is Status.OK, result.message


async def test_starttls_not_offered_is_error(check: RunCheck) -> None:
    with smtp_server() as port:
        result = await check("smtp", {"host": LOCAL, "port": port, "tls": "starttls"})
    assert result.status is Status.ERROR
    assert result.message == "server does not offer STARTTLS"
    assert result.metrics["reply_code"] == 250


async def test_unreadable_ca_file_is_unknown(check: RunCheck, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    result = await check("smtp", {"host": LOCAL, "tls": "starttls", "ca_file": str(missing)})
    assert result.status is Status.UNKNOWN
    assert result.message.startswith(f"cannot run smtp check: cannot read ca_file {missing}")


async def test_implicit_tls_with_private_ca(check: RunCheck, ca: trustme.CA, ca_file: str) -> None:
    with smtp_server(implicit=server_context(ca)) as port:
        spec = {"host": LOCAL, "port": port, "tls": "implicit", "ca_file": ca_file}
        result = await check("smtp", spec)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("220 mx.pymon.test ")


async def test_implicit_tls_verifies_the_name_not_the_address(
    check: RunCheck, ca: trustme.CA, ca_file: str
) -> None:
    resolver = FakeResolver({"mx.pymon.test": [LOCAL]})
    with smtp_server(implicit=server_context(ca, "mx.pymon.test")) as port:
        spec = {"host": "mx.pymon.test", "port": port, "tls": "implicit", "ca_file": ca_file}
        result = await check("smtp", spec, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert resolver.asked == ["mx.pymon.test"]


async def test_implicit_tls_with_certificate_for_another_name_fails(
    check: RunCheck, ca: trustme.CA, ca_file: str
) -> None:
    resolver = FakeResolver({"mx.pymon.test": [LOCAL]})
    with smtp_server(implicit=server_context(ca, "elsewhere.test")) as port:
        spec = {"host": "mx.pymon.test", "port": port, "tls": "implicit", "ca_file": ca_file}
        result = await check("smtp", spec, resolver=resolver)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == (
        "TLS certificate verify failed: Hostname mismatch, certificate is not valid for "
        "'mx.pymon.test'"
    )


async def test_implicit_tls_to_plain_server_fails(check: RunCheck) -> None:
    with smtp_server() as port:
        result = await check("smtp", {"host": LOCAL, "port": port, "tls": "implicit"})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message.startswith("TLS handshake failed: "), result.message


async def test_plain_client_to_implicit_tls_server_times_out(
    check: RunCheck, ca: trustme.CA
) -> None:
    with smtp_server(implicit=server_context(ca)) as port:
        result = await check("smtp", {"host": LOCAL, "port": port}, within=0.5)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while waiting for the greeting"


async def test_auth_with_good_credentials(check: RunCheck) -> None:
    with smtp_server(auth=True) as port:
        spec = {"host": LOCAL, "port": port, "username": USER[0], "password": USER[1]}
        result = await check("smtp", spec)
    assert result.status is Status.OK, result.message
    assert "; EHLO, AUTH PLAIN as alice; " in result.message
    assert result.metrics["reply_code"] == 235


async def test_auth_refused_is_error_without_the_password(
    check: RunCheck, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(auth=True) as port:
        spec = {"host": LOCAL, "port": port, "username": "alice", "password": "Wr0ng-pw"}
        result = await check("smtp", spec)
    assert result.status is Status.ERROR
    assert result.message == (
        "AUTH PLAIN as alice refused: 535 5.7.8 Authentication credentials invalid"
    )
    assert result.metrics["reply_code"] == 535
    assert "Wr0ng-pw" not in caplog.text


async def test_auth_not_offered_is_error(check: RunCheck) -> None:
    with smtp_server() as port:
        spec = {"host": LOCAL, "port": port, "username": USER[0], "password": USER[1]}
        result = await check("smtp", spec)
    assert result.status is Status.ERROR
    assert result.message == "server does not offer AUTH"


async def test_test_message_arrives_with_its_headers(check: RunCheck) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        spec = {
            "host": LOCAL,
            "port": port,
            "mail_from": "pymon@monitor.test",
            "rcpt_to": ["postmaster@mx.test", "ops@mx.test"],
        }
        result = await check("smtp", spec)
    assert result.status is Status.OK, result.message
    assert "test message to 2 recipients accepted: 250 2.0.0 Message accepted" in result.message
    [(envelope, message)] = inbox.messages
    assert envelope.mail_from == "pymon@monitor.test"
    assert envelope.rcpt_tos == ["postmaster@mx.test", "ops@mx.test"]
    assert message["Subject"] == "pymon test message for 127.0.0.1"
    assert message["From"] == "pymon@monitor.test"
    assert message["To"] == "postmaster@mx.test, ops@mx.test"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"].endswith("@monitor.test>")
    assert message["Auto-Submitted"] == "auto-generated"


async def test_refused_recipient_is_error_naming_it(check: RunCheck) -> None:
    with smtp_server(RejectRecipients()) as port:
        spec = {"host": LOCAL, "port": port, "mail_from": "", "rcpt_to": "nobody@mx.test"}
        result = await check("smtp", spec)
    assert result.status is Status.ERROR
    assert result.message == (
        "RCPT TO:<nobody@mx.test> refused: 550 5.1.1 <nobody@mx.test>: "
        "Recipient address rejected: User unknown"
    )
    assert result.metrics["reply_code"] == 550


async def test_refusing_greeting_is_error(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(scripted(Peer(), b"554 5.3.2 no service for you\r\n", {})) as port:
        result = await check("smtp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.ERROR
    assert result.message == "greeting refused: 554 5.3.2 no service for you"
    assert result.metrics["reply_code"] == 554
    assert "response_time_ms" in result.metrics


async def test_refused_ehlo_is_error_and_the_client_says_quit(
    check: RunCheck, raw_server: RawServer
) -> None:
    peer = Peer()
    replies = {b"EHLO": b"502 5.5.1 EHLO not implemented\r\n", b"QUIT": b"221 bye\r\n"}
    async with raw_server(scripted(peer, b"220 old.test SMTP\r\n", replies)) as port:
        result = await check("smtp", {"host": LOCAL, "port": port, "helo": "probe.test"})
        assert not await client_sockets(port)
    assert result.status is Status.ERROR
    assert result.message == "EHLO refused: 502 5.5.1 EHLO not implemented"
    assert peer.lines == [b"EHLO probe.test\r\n", b"QUIT\r\n"]


async def test_unexpected_greeting_code_fails(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(scripted(Peer(), b"250 hello?\r\n", {})) as port:
        result = await check("smtp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "unexpected reply to greeting: 250 hello?"


async def test_garbage_greeting_fails(check: RunCheck, raw_server: RawServer) -> None:
    garbage = b"HTTP/1.1 400 Bad Request\r\n\r\n"
    async with raw_server(scripted(Peer(), garbage, {})) as port:
        result = await check("smtp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == (
        "not an SMTP reply while waiting for the greeting: 'HTTP/1.1 400 Bad Request'"
    )


async def test_close_right_after_greeting_fails(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(hang_up_after(b"220 going away\r\n")) as port:
        result = await check("smtp", {"host": LOCAL, "port": port})
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "connection closed while waiting for the reply to EHLO"
    assert result.metrics["reply_code"] == 220


async def test_silence_after_greeting_times_out_and_closes(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(silent_after(b"220 mute.test ESMTP\r\n")) as port:
        result = await check("smtp", {"host": LOCAL, "port": port}, within=0.5)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while waiting for the reply to EHLO"


async def test_endless_multiline_greeting_fails(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(endless_reply(b"220-welcome, and more\r\n")) as port:
        result = await check("smtp", {"host": LOCAL, "port": port}, within=2.0)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "endless reply (over 32 KiB) while waiting for the greeting"


async def test_dripping_greeting_times_out(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(drip(b"220 slow.test ESMTP\r\n")) as port:
        result = await check("smtp", {"host": LOCAL, "port": port}, within=1.0)
        assert not await client_sockets(port)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 1s while waiting for the greeting"
    assert result.duration < 3.0


def test_port_follows_tls_mode() -> None:
    assert SmtpSpec(host="mx").port == 25
    assert SmtpSpec.model_validate({"host": "mx", "tls": "implicit"}).port == 465
    assert SmtpSpec.model_validate({"host": "mx", "tls": "implicit", "port": 2465}).port == 2465


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"username": "alice"}, "username and password go together"),
        ({"mail_from": "a@b.test"}, "mail_from and rcpt_to go together"),
        ({"rcpt_to": ["a@b.test"]}, "mail_from and rcpt_to go together"),
        ({"mail_from": "a@b.test", "rcpt_to": "x y@b.test"}, "cannot be sent in an SMTP command"),
        ({"mail_from": "ö@b.test", "rcpt_to": "a@b.test"}, "only ASCII mail addresses"),
        ({"helo": "two words"}, "must be one word of printable ASCII"),
    ],
)
def test_bad_keys_are_config_errors(keys: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        SmtpSpec.model_validate({"host": "mx", **keys})


def test_password_is_hidden_in_the_spec() -> None:
    spec = SmtpSpec.model_validate({"host": "mx", "username": "alice", "password": "s3cret"})
    assert "s3cret" not in repr(spec)


def _pymon_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pymon", "check", "smtp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_cli_ad_hoc_check() -> None:
    with smtp_server() as port:
        good = _pymon_check("--host", LOCAL, "--port", str(port))
    bad = _pymon_check("--host", LOCAL, "--port", str(free_port()))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("OK - 220 mx.pymon.test ")
    assert "reply_code=250" in good.stdout
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert bad.stdout.startswith("FAILED - connection refused")
