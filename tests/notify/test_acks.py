"""The acknowledgement server: real SMTP sessions against an AckServer on 127.0.0.1.

The server runs in the test's event loop; the standard library's ``smtplib`` (in a
thread) and Debian's ``swaks`` talk to it. The incident keeper behind it is a small
fake at the ``AckTarget`` seam; tokens are real.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest

from pymon.config.schema import AcknowledgementsConfig
from pymon.errors import PymonError
from pymon.model import Incident, Status
from pymon.notify.acks import AckRequest, AckServer, authorized, parse_command
from pymon.notify.tokens import AckTokens, message_id, thread_root_key
from tests.conftest import need
from tests.notify.mail_corpus import NastyMail, corpus

TOKENS = AckTokens(b"0123456789abcdef-test-key")
OPEN = Incident(id="inc-1", service="web", opened_at=1.0, status=Status.ERROR, worst=Status.ERROR)
CLOSED = Incident(
    id="inc-2", service="db", opened_at=1.0, status=Status.ERROR, worst=Status.ERROR, closed_at=2.0
)
TOKEN = TOKENS.token(OPEN.id)
CLOSED_TOKEN = TOKENS.token(CLOSED.id)
NOTICE_ID = message_id(thread_root_key(OPEN.id), "mail", TOKEN, "pymon.example")
ACK_ADDRESS = "ack@pymon.example"
REPLY_ADDRESS = TOKENS.address(ACK_ADDRESS, OPEN.id)
ALICE = "alice@example.org"
HAVE_SWAKS = os.path.exists("/usr/bin/swaks")
CORPUS = corpus(b"In-Reply-To: " + NOTICE_ID.encode())


@dataclass
class FakeTarget:
    """Incidents by token, and every request carried out."""

    incidents: dict[str, Incident]
    requests: list[AckRequest] = field(default_factory=list)
    refusal: str | None = None

    async def incident_for_token(self, token: str) -> Incident | None:
        incident = self.incidents.get(token)
        return incident if incident is not None and incident.open else None

    async def act(self, request: AckRequest) -> str:
        if self.refusal is not None:
            raise PymonError(self.refusal)
        self.requests.append(request)
        return f"{request.service} {request.action} by {request.sender}"


@dataclass
class Running:
    """A started server and what it talks to."""

    server: AckServer
    port: int
    target: FakeTarget
    confirmations: list[EmailMessage]


Starter = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start() -> AsyncIterator[Starter]:
    """Starts AckServers (config keys and server options as keywords); stops them after."""
    servers: list[AckServer] = []

    async def starter(
        *, confirmer: Callable[[EmailMessage], Awaitable[None]] | None = None, **options: Any
    ) -> Running:
        keys = {"listen": "127.0.0.1:0", "address": ACK_ADDRESS}
        keys["authorized"] = options.pop("authorized", [ALICE, "@ops.example.org"])
        for name in ("max_size", "confirm"):
            if name in options:
                keys[name] = options.pop(name)
        target = FakeTarget({TOKEN: OPEN, CLOSED_TOKEN: CLOSED})
        confirmations: list[EmailMessage] = []

        async def capture(message: EmailMessage) -> None:
            confirmations.append(message)

        server = AckServer(
            AcknowledgementsConfig.model_validate(keys),
            TOKENS,
            target,
            hostname="acks.test",
            confirm=confirmer or capture,
            **options,
        )
        servers.append(server)
        return Running(server, await server.start(), target, confirmations)

    yield starter
    for server in servers:
        await server.stop()


def reply(
    body: str = "ack looking into it",
    *,
    sender: str = ALICE,
    headers: Sequence[str] = (),
    subject: str = "Re: [pymon] web ERROR",
    from_header: str | None = None,
) -> bytes:
    """A plain reply as a mail client would send it (``from_header``: the From
    header's value, else ``Alice <sender>``)."""
    lines = [
        f"From: {from_header or f'Alice <{sender}>'}",
        f"To: {REPLY_ADDRESS}",
        f"Subject: {subject}",
        "Message-ID: <reply-1@example.org>",
        *headers,
        "",
        *body.split("\n"),
    ]
    return "\r\n".join(lines).encode() + b"\r\n"


def _session(
    port: int, raw: bytes, mail_from: str, rcpt: Sequence[str], source: str
) -> tuple[str, int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as smtp:
        smtp.ehlo("client.test")
        code, text = smtp.mail(mail_from)
        if code != 250:
            return "MAIL", code, text
        for address in rcpt:
            code, text = smtp.rcpt(address)
            if code != 250:
                return "RCPT", code, text
        code, text = smtp.data(raw)
        return "DATA", code, text


async def send(
    port: int,
    raw: bytes,
    *,
    mail_from: str = ALICE,
    rcpt: Sequence[str] = (REPLY_ADDRESS,),
    source: str = "127.0.0.1",
) -> tuple[str, int, str]:
    """(the step that answered last, its code, its text) for one message over smtplib,
    from the loopback address ``source``."""
    step, code, text = await asyncio.to_thread(_session, port, raw, mail_from, rcpt, source)
    return step, code, text.decode("ascii", "replace")


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, failing after a generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- what gets acknowledged -------------------------------------------------------------


async def test_reply_to_token_address_acknowledges(start: Starter) -> None:
    run = await start()
    step, code, text = await send(run.port, reply("Ack - disk full, cleaning up"))
    assert (step, code) == ("DATA", 250)
    assert text.startswith("2.0.0 web ack by alice@example.org")
    assert run.target.requests == [
        AckRequest("ack", "inc-1", "web", ALICE, "disk full, cleaning up", None)
    ]
    assert (run.server.accepted, run.server.refused) == (1, 0)


async def test_sender_is_lowercased(start: Starter) -> None:
    run = await start()
    await send(run.port, reply(sender="Alice@Example.ORG"), mail_from="ALICE@example.org")
    assert run.target.requests[0].sender == ALICE


async def test_token_in_reply_to_only(start: Starter) -> None:
    run = await start()
    raw = reply(headers=[f"In-Reply-To: {NOTICE_ID}"])
    step, code, _ = await send(run.port, raw, rcpt=[ACK_ADDRESS])
    assert (step, code) == ("DATA", 250)
    assert run.target.requests[0].incident == "inc-1"


async def test_token_in_references_only(start: Starter) -> None:
    run = await start()
    raw = reply(headers=[f"References: <other@example.org>\r\n {NOTICE_ID}"])
    _, code, _ = await send(run.port, raw, rcpt=[ACK_ADDRESS])
    assert code == 250
    assert run.target.requests[0].incident == "inc-1"


async def test_token_in_pymon_headers(start: Starter) -> None:
    run = await start()
    raw = reply("ack from a script", headers=["X-Pymon-Incident: inc-1", f"X-Pymon-Token: {TOKEN}"])
    _, code, _ = await send(run.port, raw, rcpt=[ACK_ADDRESS])
    assert code == 250
    assert run.target.requests[0].comment == "from a script"


async def test_pymon_headers_with_a_token_of_another_incident_refused(start: Starter) -> None:
    run = await start()
    raw = reply(headers=["X-Pymon-Incident: inc-9", f"X-Pymon-Token: {TOKEN}"])
    _, code, text = await send(run.port, raw, rcpt=[ACK_ADDRESS])
    assert code == 550
    assert "no acknowledgement token found" in text


async def test_pymon_incident_disagreeing_with_token_refused(start: Starter) -> None:
    run = await start()
    _, code, text = await send(run.port, reply(headers=["X-Pymon-Incident: inc-9"]))
    assert code == 550
    assert "X-Pymon-Incident does not match" in text
    assert run.target.requests == []


async def test_unack(start: Starter) -> None:
    run = await start()
    await send(run.port, reply("UNACK wrong incident"))
    assert run.target.requests == [
        AckRequest("unack", "inc-1", "web", ALICE, "wrong incident", None)
    ]


async def test_maint_with_duration(start: Starter) -> None:
    run = await start()
    await send(run.port, reply("maint 2h upgrading the kernel"))
    assert run.target.requests == [
        AckRequest("maint", "inc-1", "web", ALICE, "upgrading the kernel", 7200.0)
    ]


async def test_maint_with_bad_duration_refused(start: Starter) -> None:
    run = await start()
    _, code, text = await send(run.port, reply("maint soon"))
    assert code == 550
    assert "'soon' is not a duration" in text
    assert run.target.requests == []


async def test_maint_longer_than_ten_years_refused(start: Starter) -> None:
    run = await start()
    _, code, text = await send(run.port, reply("maint 99999999d forever"))
    assert (code, text) == (
        550,
        "5.5.4 maint: '99999999d' is longer than 3650d (ten years), the longest duration taken",
    )
    assert run.target.requests == []


async def test_comment_stops_at_attribution_and_quote(start: Starter) -> None:
    run = await start()
    body = (
        "\ufeff\n  \nrestarting the pool\nback in 5\n\n"
        "On Mon, 1 Jan 2024 at 10:00, pymon <ack@pymon.example> wrote:\n"
        "> web ERROR: connection refused\n> unack\n"
    )
    await send(run.port, reply(body))
    request = run.target.requests[0]
    assert (request.action, request.comment) == ("ack", "restarting the pool back in 5")


async def test_bottom_posted_reply_below_the_quote(start: Starter) -> None:
    run = await start()
    body = "On Mon, pymon wrote:\n> web ERROR\n\nunack false alarm\n-- \nAlice, ops"
    await send(run.port, reply(body))
    request = run.target.requests[0]
    assert (request.action, request.comment) == ("unack", "false alarm")


# --- who may ------------------------------------------------------------------------------


async def test_unknown_envelope_sender_refused_at_mail(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    run = await start()
    with caplog.at_level(logging.WARNING, logger="pymon.notify"):
        step, code, text = await send(run.port, reply(), mail_from="mallory@evil.example")
    assert (step, code, text) == ("MAIL", 550, "5.7.1 sender not authorized")
    assert "mallory@evil.example" in caplog.text
    assert run.server.refused == 1


async def test_authorized_envelope_but_foreign_from_refused(start: Starter) -> None:
    run = await start()
    step, code, text = await send(run.port, reply(sender="mallory@evil.example"))
    assert (step, code) == ("DATA", 550)
    assert "sender not authorized" in text
    assert run.target.requests == []


@pytest.mark.parametrize(
    "from_header",
    [
        f"{ALICE} <mallory@evil.example>",
        f'"{ALICE}" <mallory@evil.example>',
        "=?utf-8?q?alice=40example=2Eorg?= <mallory@evil.example>",
        f"Alice <{ALICE}> (mallory@evil.example)",
        f'"Alice (mallory@evil.example)" <{ALICE}>',
    ],
)
async def test_from_with_another_address_in_its_display_name_refused(
    start: Starter, from_header: str
) -> None:
    run = await start()
    step, code, text = await send(run.port, reply(from_header=from_header))
    assert (step, code) == ("DATA", 550), text
    assert "sender not authorized: the From header shows another address" in text
    assert run.target.requests == []


@pytest.mark.parametrize(
    "from_header",
    [f'"Alice ({ALICE})" <{ALICE}>', f"ALICE@Example.org <{ALICE}>", ALICE, f"<{ALICE}>"],
)
async def test_from_naming_its_own_address_twice_acknowledges(
    start: Starter, from_header: str
) -> None:
    run = await start()
    _, code, text = await send(run.port, reply(from_header=from_header))
    assert code == 250, text
    assert run.target.requests[0].sender == ALICE


async def test_domain_pattern_authorizes_the_whole_domain(start: Starter) -> None:
    run = await start()
    bob = "bob@ops.example.org"
    _, code, _ = await send(run.port, reply(sender=bob), mail_from=bob)
    assert code == 250
    assert run.target.requests[0].sender == bob


async def test_domain_pattern_does_not_cover_subdomains(start: Starter) -> None:
    run = await start()
    eve = "eve@evil.ops.example.org"
    step, code, _ = await send(run.port, reply(sender=eve), mail_from=eve)
    assert (step, code) == ("MAIL", 550)


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated (vacation)",
        "Precedence: bulk",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
    ],
)
async def test_automatic_reply_refused(start: Starter, header: str) -> None:
    run = await start()
    _, code, text = await send(run.port, reply("I am out of office until Monday", headers=[header]))
    assert code == 550
    assert "automatic reply" in text
    assert run.target.requests == []


async def test_auto_submitted_no_is_a_person(start: Starter) -> None:
    run = await start()
    _, code, _ = await send(run.port, reply(headers=["Auto-Submitted: no"]))
    assert code == 250


# --- which incident -----------------------------------------------------------------------


async def test_missing_token_refused(start: Starter, caplog: pytest.LogCaptureFixture) -> None:
    run = await start()
    with caplog.at_level(logging.WARNING, logger="pymon.notify"):
        _, code, text = await send(run.port, reply(), rcpt=[ACK_ADDRESS])
    assert code == 550
    assert "no acknowledgement token found" in text
    assert "no acknowledgement token found" in caplog.text
    assert run.server.refused == 1


async def test_wrong_token_refused(start: Starter) -> None:
    run = await start()
    _, code, text = await send(run.port, reply(), rcpt=["ack+0123456789abcdef0123@pymon.example"])
    assert code == 550
    assert "no open incident for this token (closed, expired or unknown)" in text


async def test_token_of_closed_incident_refused(start: Starter) -> None:
    run = await start()
    rcpt = [TOKENS.address(ACK_ADDRESS, CLOSED.id)]
    _, code, text = await send(run.port, reply(), rcpt=rcpt)
    assert code == 550
    assert "no open incident for this token" in text
    assert run.target.requests == []


async def test_first_token_of_an_open_incident_wins(start: Starter) -> None:
    run = await start()
    stale = message_id("inc-2:problem:1", "mail", CLOSED_TOKEN, "pymon.example")
    raw = reply(headers=[f"References: {stale} {NOTICE_ID}"])
    _, code, _ = await send(run.port, raw, rcpt=[ACK_ADDRESS])
    assert code == 250
    assert run.target.requests[0].incident == "inc-1"


# --- the SMTP side ------------------------------------------------------------------------


async def test_foreign_recipient_refused_at_rcpt(start: Starter) -> None:
    run = await start()
    for address in ("root@pymon.example", "ack@elsewhere.example", "ack+x@pymon.example.evil"):
        step, code, text = await send(run.port, reply(), rcpt=[address])
        assert (step, code, text) == ("RCPT", 550, "5.1.1 no such user")


async def test_recipient_matches_any_case(start: Starter) -> None:
    run = await start()
    _, code, _ = await send(run.port, reply(), rcpt=[REPLY_ADDRESS.upper()])
    assert code == 250


async def test_oversize_message_refused_with_552(start: Starter) -> None:
    run = await start(max_size=2048)
    step, code, _ = await send(run.port, reply("ack\n" + "x" * 80 + ("\ny" * 2000)))
    assert (step, code) == ("DATA", 552)
    assert run.target.requests == []


async def test_target_refusal_is_550_with_its_reason(start: Starter) -> None:
    run = await start()
    run.target.refusal = "web is not in trouble any more"
    _, code, text = await send(run.port, reply())
    assert (code, text) == (550, "5.7.0 web is not in trouble any more")
    assert run.server.refused == 1


async def test_target_crash_is_451_and_server_keeps_serving(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    run = await start()

    async def broken(request: AckRequest) -> str:
        raise RuntimeError("database gone")

    run.target.act = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="pymon.notify"):
        _, code, text = await send(run.port, reply())
    assert (code, text) == (451, "4.3.0 internal error")
    assert "database gone" in caplog.text
    run.target.act = FakeTarget.act.__get__(run.target)  # type: ignore[method-assign]
    _, code, _ = await send(run.port, reply())
    assert code == 250


async def test_banner_names_the_host_and_offers_no_auth(start: Starter) -> None:
    run = await start()

    def talk() -> tuple[bytes, bool, int]:
        with smtplib.SMTP("127.0.0.1", run.port, timeout=30) as smtp:
            smtp.ehlo("client.test")
            code, _ = smtp.docmd("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==")
            return smtp.ehlo_resp or b"", smtp.has_extn("auth"), code

    ehlo, has_auth, auth_code = await asyncio.to_thread(talk)
    assert ehlo.startswith(b"acks.test")
    assert not has_auth
    assert 500 <= auth_code < 600


async def test_idle_session_is_closed(start: Starter) -> None:
    run = await start(session_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
    banner = await reader.readline()
    assert banner.startswith(b"220 acks.test")
    assert await asyncio.wait_for(reader.read(), timeout=30) == b""  # hung up on
    writer.close()


async def test_connections_beyond_the_limit_get_421(start: Starter) -> None:
    run = await start(max_sessions=1)
    first_reader, first_writer = await asyncio.open_connection("127.0.0.1", run.port)
    assert (await first_reader.readline()).startswith(b"220")
    second_reader, second_writer = await asyncio.open_connection("127.0.0.1", run.port)
    assert (await second_reader.readline()).startswith(b"421 4.3.2")
    for writer in (first_writer, second_writer):
        writer.close()


async def test_connections_beyond_the_limit_per_address_get_421_and_others_get_in(
    start: Starter,
) -> None:
    run = await start(max_sessions_per_address=2)
    idle = [await asyncio.open_connection("127.0.0.1", run.port) for _ in range(2)]
    for reader, _ in idle:
        assert (await reader.readline()).startswith(b"220")
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
    assert await reader.readline() == b"421 4.3.2 too many connections from your address\r\n"
    assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    step, code, _ = await send(run.port, reply(), source="127.0.0.2")
    assert (step, code) == ("DATA", 250)
    for _, w in [*idle, (reader, writer)]:
        w.close()


async def test_fifty_idle_sessions_from_one_address_block_no_acknowledgement(
    start: Starter,
) -> None:
    run = await start()
    idle = [await asyncio.open_connection("127.0.0.1", run.port) for _ in range(50)]
    banners = [await reader.readline() for reader, _ in idle]
    assert all(b.startswith((b"220", b"421 4.3.2")) for b in banners)
    step, code, _ = await send(run.port, reply(), source="127.0.0.2")
    assert (step, code) == ("DATA", 250)
    for _, writer in idle:
        writer.close()


@pytest.mark.parametrize(
    ("commands", "answer"),
    [
        (b"EHLO client.test\r\n", b"250 HELP"),
        # A refused sender does not count: a stranger cannot keep a session by trying.
        (
            b"EHLO client.test\r\nMAIL FROM:<mallory@evil.example>\r\n",
            b"550 5.7.1 sender not authorized",
        ),
    ],
    ids=["ehlo-only", "refused-mail-from"],
)
async def test_a_session_without_an_accepted_mail_is_closed_with_421(
    start: Starter, commands: bytes, answer: bytes
) -> None:
    run = await start(mail_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
    assert (await reader.readline()).startswith(b"220 acks.test")
    writer.write(commands)
    lines = (await asyncio.wait_for(reader.read(), timeout=30)).splitlines()
    assert answer in lines
    assert lines[-1] == b"421 4.4.2 acks.test no MAIL in time, closing"
    writer.close()


async def test_stop_closes_the_port(start: Starter) -> None:
    run = await start()
    await run.server.stop()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", run.port)


async def test_stop_hangs_up_on_idle_clients(start: Starter) -> None:
    run = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port)
    assert (await reader.readline()).startswith(b"220")
    await run.server.stop()
    assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    writer.close()


async def test_token_is_never_logged(start: Starter, caplog: pytest.LogCaptureFixture) -> None:
    run = await start()
    caplog.set_level(logging.DEBUG)
    raw = reply(headers=[f"References: {NOTICE_ID}", f"X-Pymon-Token: {TOKEN}"])
    await send(run.port, raw)
    await send(run.port, reply(), rcpt=["ack+0123456789abcdef0123@pymon.example"])
    assert "alice@example.org" in caplog.text
    assert TOKEN not in caplog.text
    assert "0123456789abcdef0123" not in caplog.text


async def test_swaks_acknowledges(start: Starter) -> None:
    need(HAVE_SWAKS, "swaks (Debian package swaks) is not installed")
    run = await start()
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/swaks",
        "--server", "127.0.0.1",
        "--port", str(run.port),
        "--helo", "client.test",
        "--from", ALICE,
        "--to", REPLY_ADDRESS,
        "--header", "Subject: Re: [pymon] web ERROR",
        "--body", "unack wrong service",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode(errors="replace")
    assert run.target.requests == [
        AckRequest("unack", "inc-1", "web", ALICE, "wrong service", None)
    ]


# --- hostile mail -------------------------------------------------------------------------


@pytest.mark.parametrize("mail", CORPUS, ids=[m.name for m in CORPUS])
async def test_malformed_mail_gets_an_answer(start: Starter, mail: NastyMail) -> None:
    run = await start()
    _, code, text = await send(run.port, mail.raw, rcpt=[ACK_ADDRESS])
    assert 200 <= code < 300 or 500 <= code < 600, text
    if mail.expect == "refused":
        assert 500 <= code < 600, text
    elif mail.expect is not None:
        assert code == 250, text
        assert [r.action for r in run.target.requests] == [mail.expect]
    _, code, _ = await send(run.port, reply())
    assert code == 250


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 12


# --- confirmations ------------------------------------------------------------------------


async def test_confirmation_is_threaded_under_the_reply(start: Starter) -> None:
    run = await start()
    raw = reply("maint 90m", headers=[f"In-Reply-To: {NOTICE_ID}", f"References: {NOTICE_ID}"])
    await send(run.port, raw)
    await eventually(lambda: len(run.confirmations) == 1)
    message = run.confirmations[0]
    assert message["To"] == ALICE
    assert message["From"] == ACK_ADDRESS
    assert message["Subject"] == "Re: [pymon] web ERROR"
    assert message["In-Reply-To"] == "<reply-1@example.org>"
    assert message["References"] == f"{NOTICE_ID} <reply-1@example.org>"
    assert message["Auto-Submitted"] == "auto-replied"
    body = message.get_content()
    assert "maintenance for 1h30m" in body
    assert "Service:  web" in body
    assert "Incident: inc-1" in body


async def test_confirmation_subject_gets_re_prefix_once(start: Starter) -> None:
    run = await start()
    await send(run.port, reply(subject="[pymon] web ERROR"))
    await eventually(lambda: len(run.confirmations) == 1)
    assert run.confirmations[0]["Subject"] == "Re: [pymon] web ERROR"


async def test_no_confirmation_when_disabled(start: Starter) -> None:
    run = await start(confirm=False)
    _, code, _ = await send(run.port, reply())
    assert code == 250
    await run.server.stop()
    assert run.confirmations == []


async def test_no_confirmation_for_a_refusal(start: Starter) -> None:
    run = await start()
    await send(run.port, reply(), rcpt=[ACK_ADDRESS])
    await run.server.stop()
    assert run.confirmations == []


async def test_slow_confirmation_delays_neither_reply_and_stop_waits_for_it(
    start: Starter,
) -> None:
    release = asyncio.Event()
    sent: list[EmailMessage] = []

    async def slow(message: EmailMessage) -> None:
        await release.wait()
        sent.append(message)

    run = await start(confirmer=slow)
    _, code, _ = await send(run.port, reply())
    assert code == 250
    assert sent == []
    release.set()
    await run.server.stop()
    assert len(sent) == 1


async def test_failed_confirmation_is_logged(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing(message: EmailMessage) -> None:
        raise ConnectionRefusedError("smarthost down")

    run = await start(confirmer=failing)
    with caplog.at_level(logging.WARNING, logger="pymon.notify"):
        _, code, _ = await send(run.port, reply())
        await run.server.stop()
    assert code == 250
    assert "smarthost down" in caplog.text


# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ack", ("ack", None, "")),
        ("ACK: on it", ("ack", None, "on it")),
        ("ack - on it", ("ack", None, "on it")),
        ("looking into it", ("ack", None, "looking into it")),
        ("unack", ("unack", None, "")),
        ("Unack, wrong one", ("unack", None, "wrong one")),
        ("maint 30m", ("maint", 1800.0, "")),
        ("maint 2h kernel update", ("maint", 7200.0, "kernel update")),
        ("maint 1d", ("maint", 86400.0, "")),
        ("maint 90s", ("maint", 90.0, "")),
        ("maint 366d", ("maint", 366 * 86400.0, "")),
        ("", ("ack", None, "")),
        ("\ufeff  \n\n  unack  \n", ("unack", None, "")),
        ("> quoted\n> unack\n", ("ack", None, "")),
        ("on it\nsecond line\n> quoted", ("ack", None, "on it second line")),
        ("on it\nOn Tue, Bob <bob@x.org> wrote:\n> x", ("ack", None, "on it")),
        ("on it\nOn Tue, 2 Jan 2024, Bob <bob@\nx.org> wrote:\n> x", ("ack", None, "on it")),
        ("on it\nAm Di., 2. Jan. schrieb Bob:\n> x", ("ack", None, "on it")),
        ("on it\nAm 02.01.2024 um 10:00 schrieb Bob <b@x>:\n> x", ("ack", None, "on it")),
        ("ok\nLe lun. 1 janv. 2024, Bob <b@x> a écrit :\n> x", ("ack", None, "ok")),
        ("On Tue, 2 Jan 2024, Bob <bob@\nx.org> wrote:\n> x\n\nunack", ("unack", None, "")),
        ("unack\u00a0my bad", ("unack", None, "my bad")),
        ("maint\t2h\u00a0patching", ("maint", 7200.0, "patching")),
        ("on it\n-- \nAlice\nunack", ("ack", None, "on it")),
        ("-- \nunack", ("ack", None, "")),
        ("On Mon, X wrote:\n> alert\n\nunack done", ("unack", None, "done")),
        ("ok\n-----Original Message-----\nunack", ("ack", None, "ok")),
        ("ok\n________________________________\nFrom: pymon\nunack", ("ack", None, "ok")),
        ("ok\nFrom: pymon <ack@x>\nSent: Monday\nunack", ("ack", None, "ok")),
        ("ack tab\there\x00and\x07bell", ("ack", None, "tab here and bell")),
        ("ack " + "x" * 600, ("ack", None, "x" * 500)),
    ],
)
def test_parse_command(text: str, expected: tuple[str, float | None, str]) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("maint", "maint needs a duration"),
        ("maint later", "'later' is not a duration"),
        ("maint 0s", "above zero"),
        ("maint -5m", "is not a duration"),
        ("maint inf", "not a finite duration"),
        ("maint 99999999d", "'99999999d' is longer than 3650d"),
        ("maint 366d1s", "^maint: must be at most 366 days$"),
    ],
)
def test_parse_command_refuses_bad_durations(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_command(text)


PATTERNS = ["alice@example.org", "@ops.example.org", "*@staff.example.net", "  Bob@Example.ORG "]


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("alice@example.org", True),
        ("ALICE@EXAMPLE.ORG", True),
        (" alice@example.org ", True),
        ("bob@example.org", True),
        ("carol@example.org", False),
        ("alice+x@example.org", False),
        ("anyone@ops.example.org", True),
        ("anyone@OPS.example.org", True),
        ("anyone@sub.ops.example.org", False),
        ("anyone@evilops.example.org", False),
        ("x@staff.example.net", True),
        ('"a@b"@ops.example.org', False),
        ("alice@example.org@evil.example", False),
        ("@ops.example.org", False),
        ("", False),
        ("alice@example.org\x00", False),
        ("al ice@example.org", False),
        ("jörg@ops.example.org", False),
        ("ops.example.org", False),
    ],
)
def test_authorized(sender: str, expected: bool) -> None:
    assert authorized(sender, PATTERNS) is expected


@pytest.mark.parametrize("patterns", [[], [""], ["@"], ["*@"], ["*"]])
def test_authorized_with_empty_patterns_admits_nobody(patterns: list[str]) -> None:
    assert not authorized("alice@example.org", patterns)


def test_the_package_keeps_its_public_names() -> None:
    import pymon.notify.acks

    assert sorted(pymon.notify.acks.__all__) == [
        "AckRequest",
        "AckServer",
        "AckTarget",
        "Action",
        "authorized",
        "parse_command",
    ]
    assert all(hasattr(pymon.notify.acks, name) for name in pymon.notify.acks.__all__)
