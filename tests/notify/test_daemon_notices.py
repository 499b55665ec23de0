"""Notices end to end through the real daemon: a real failing target, a real SMTP sink,
a real webhook receiver, replies by real SMTP clients to the acknowledgement server."""

from __future__ import annotations

import asyncio
import json
import shutil
import smtplib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from aiohttp import web

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.notify.webhook import verify
from tests.conftest import need
from tests.notify.helpers import daemon_config
from tests.support.mail import MailSink, ReceivedMail
from tests.support.servers import TcpListener, free_port, refused_port, reserved_port
from tests.support.waiting import wait_for

T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T]], within: float = 10.0) -> T:
    """Poll the async ``probe`` until it returns something truthy; return that."""
    async with asyncio.timeout(within):
        while not (value := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return value


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink() as s:
        yield s


@pytest.fixture
async def daemon_factory() -> AsyncIterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        await d.stop()


async def start(daemons: list[Daemon], text: str) -> Daemon:
    d = Daemon(load_config_text(text))
    await d.start()
    daemons.append(d)
    return d


def _notice_number(mail: ReceivedMail) -> int:
    """The number of a problem notice (its key ends ``:problem:N``)."""
    return int(mail.message["X-Pymon-Notice"].rsplit(":", 1)[1])


async def test_cutoff_renotify_threading_and_recovery_by_email(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    target = TcpListener()
    d = await start(daemon_factory, daemon_config(tmp_path, target.port, f"    {sink.channel()}"))
    # In the order pymon numbered them: the outbox sends several at once, so the
    # renotify can reach the sink before the first (the courier starting with it).
    first, second = sorted(await sink.await_for(2), key=_notice_number)
    await wait_for(lambda: d.runtime.states["web"].seq >= 20)  # six renotify periods later ...
    assert len(sink.messages) == 2  # ... still two: the cut-off holds
    await target.start()
    try:
        mails = await sink.await_for(3)
    finally:
        await target.stop()
    [recovery] = [m for m in mails if m.message["X-Pymon-Notice"].endswith(":recovery")]
    for mail in (first, second):
        assert mail.message["Subject"].startswith("[ACME Ops] FAILED: web - ")
        assert mail.message["X-Pymon-Status"] == "FAILED"
    assert recovery.message["Subject"].startswith("[ACME Ops] OK: web - recovered from failed")
    root = first.message["Message-ID"]
    assert first.message["In-Reply-To"] is None
    for mail in (second, recovery):
        assert mail.message["In-Reply-To"] == root
        assert root in mail.message["References"]
    incident = first.message["X-Pymon-Incident"]
    assert {m.message["X-Pymon-Incident"] for m in mails} == {incident}
    assert {m.message["X-Pymon-Service"] for m in mails} == {"pymon://lab/web"}
    assert len({m.message["Message-ID"] for m in mails}) == 3
    assert mails[0].rcpt_tos == ["ops@example.org"]


async def test_failed_deliveries_are_visible_and_retried(
    tmp_path: Path, daemon_factory: list[Daemon]
) -> None:
    down = MailSink()  # not started yet: its port refuses connections
    d = await start(
        daemon_factory, daemon_config(tmp_path, refused_port(), f"    {down.channel()}")
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.web_port}") as client:

        async def pending() -> list[dict[str, object]]:
            answer = (await client.get("/api/v1/notifications?state=pending")).json()
            return [row for row in answer["deliveries"] if row["attempts"]]

        rows = await until(pending)
        assert rows[0]["channel"] == "mail"
        assert "refused" in str(rows[0]["error"]).lower()
        with down:
            await down.await_for(1)

            async def delivered() -> list[dict[str, object]]:
                answer = (await client.get("/api/v1/notifications?state=delivered")).json()
                rows: list[dict[str, object]] = answer["deliveries"]
                return rows

            await until(delivered)
            assert await pending() == []
        health = (await client.get("/healthz")).json()
    assert health["notifications"]["sent"] >= 1
    assert health["notifications"]["failed_attempts"] >= 1


class FlakyReceiver:
    """A webhook receiver that answers 503 to the first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if len(self.requests) <= self.failures:
            return web.Response(status=503, text="busy")
        self.accepted.append((dict(request.headers), body))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_a_webhook_that_fails_twice_gets_the_notice_once_signed(
    tmp_path: Path, daemon_factory: list[Daemon]
) -> None:
    receiver = FlakyReceiver(failures=2)
    await receiver.start()
    try:
        hook = (
            f"    hook: {{type: webhook, url: 'http://127.0.0.1:{receiver.port}/hook',"
            " secret: s3cret}"
        )
        text = daemon_config(tmp_path, refused_port(), hook).replace("cutoff: 2", "cutoff: 1")
        d = await start(daemon_factory, text)
        await wait_for(lambda: len(receiver.accepted) == 1)
        await wait_for(lambda: d.runtime.states["web"].seq >= 15)  # time for any duplicate to show
    finally:
        await receiver.stop()
    assert len(receiver.requests) == 3
    assert len(receiver.accepted) == 1
    headers, body = receiver.accepted[0]
    assert verify("s3cret", body, headers["X-Pymon-Signature"])
    assert not verify("wrong", body, headers["X-Pymon-Signature"])
    ids = {h["X-Pymon-Delivery"] for h, _ in receiver.requests}
    assert len(ids) == 1  # the same idempotency key on every attempt
    payload = json.loads(body)
    assert (payload["service"], payload["status"], payload["kind"]) == ("web", "failed", "problem")


def ack_config(tmp_path: Path, sink: MailSink, ack_port: int, target: int) -> str:
    acks = f"""
acknowledgements:
  listen: "127.0.0.1:{ack_port}"
  address: ack@pymon.example.org
  authorized: [oncall@example.org, "@sre.example.org"]
"""
    return daemon_config(tmp_path, target, f"    {sink.channel()}", acks)


def reply_to(alert: ReceivedMail, sender: str, first_line: str) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = alert.message["Reply-To"]
    reply["Subject"] = "Re: " + alert.message["Subject"]
    reply["In-Reply-To"] = alert.message["Message-ID"]
    reply["References"] = alert.message["Message-ID"]
    reply.set_content(f"{first_line}\n\nOn Mon, pymon wrote:\n> {alert.message['Subject']}\n")
    return reply


def send(port: int, message: EmailMessage, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message, from_addr=sender)


async def test_a_reply_saying_ack_acknowledges_and_is_confirmed(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    ack_port = free_port()
    d = await start(daemon_factory, ack_config(tmp_path, sink, ack_port, refused_port()))
    [alert] = await sink.await_for(1)
    assert alert.message["Reply-To"].startswith("ack+")
    reply = reply_to(alert, "Oncall@Example.org", "ack rebooting the switch")
    await asyncio.to_thread(send, ack_port, reply, "oncall@example.org")
    incident = d.runtime.incidents["web"]
    assert incident.ack is not None
    assert incident.ack.author == "oncall@example.org"
    assert incident.ack.comment == "rebooting the switch"
    mails = await sink.await_for(2)
    confirmation = mails[1].message
    assert (
        confirmation["To"] == "Oncall@Example.org"
        or "oncall@example.org" in str(confirmation["To"]).lower()
    )
    assert confirmation["In-Reply-To"] == reply["Message-ID"] or confirmation["In-Reply-To"]
    # Acknowledged: the renotify (cut-off 2) never comes.
    await wait_for(lambda: d.runtime.states["web"].seq >= 15)
    assert [m.message["X-Pymon-Status"] for m in sink.messages].count("FAILED") == 1


async def test_replies_that_may_not_acknowledge_are_refused(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    ack_port = free_port()
    d = await start(daemon_factory, ack_config(tmp_path, sink, ack_port, refused_port()))
    [alert] = await sink.await_for(1)

    def refused(message: EmailMessage, sender: str) -> int:
        try:
            send(ack_port, message, sender)
        except smtplib.SMTPSenderRefused as exc:
            return exc.smtp_code
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code
        except smtplib.SMTPRecipientsRefused as exc:
            return next(iter(exc.recipients.values()))[0]
        raise AssertionError("accepted")

    stranger = reply_to(alert, "mallory@evil.example", "ack")
    assert await asyncio.to_thread(refused, stranger, "mallory@evil.example") >= 500
    no_token = reply_to(alert, "oncall@example.org", "ack")
    del no_token["To"], no_token["In-Reply-To"], no_token["References"]
    no_token["To"] = "ack@pymon.example.org"
    assert await asyncio.to_thread(refused, no_token, "oncall@example.org") >= 500
    wrong = reply_to(alert, "oncall@example.org", "ack")
    del wrong["To"], wrong["In-Reply-To"], wrong["References"]
    wrong["To"] = "ack+0123456789abcdef0123@pymon.example.org"
    assert await asyncio.to_thread(refused, wrong, "oncall@example.org") >= 500
    assert d.runtime.incidents["web"].ack is None


async def refused_reply(
    tmp_path: Path, sink: MailSink, daemons: list[Daemon], first_line: str
) -> tuple[Daemon, int, bytes | str]:
    """A daemon whose first alert got a reply saying ``first_line``, and the refusal
    (code, text) that reply met."""
    ack_port = reserved_port()
    d = await start(daemons, ack_config(tmp_path, sink, ack_port, refused_port()))
    await wait_for(lambda: "web" in d.runtime.incidents)
    # This daemon's alert, by its incident: the sink's port may have served an earlier
    # test, whose courier can still be finishing a conversation (it outlives its daemon).
    incident = d.runtime.incidents["web"].id
    await wait_for(lambda: any(m.message["X-Pymon-Incident"] == incident for m in sink.messages))
    alert = next(m for m in sink.messages if m.message["X-Pymon-Incident"] == incident)
    reply = reply_to(alert, "oncall@example.org", first_line)
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(send, ack_port, reply, "oncall@example.org")
    return d, info.value.smtp_code, info.value.smtp_error


async def test_unack_of_what_is_not_acknowledged_is_refused_as_the_api_refuses_it(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    d, code, text = await refused_reply(tmp_path, sink, daemon_factory, "unack")
    assert (code, text) == (550, b"5.7.0 web is not acknowledged")
    assert d.runtime.incidents["web"].ack is None


async def test_maint_for_longer_than_ten_years_is_refused_and_adds_no_window(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    d, code, text = await refused_reply(tmp_path, sink, daemon_factory, "maint 99999999d")
    assert code == 550
    assert b"longer than 3650d (ten years)" in text
    assert not d.runtime.adhoc_windows


async def test_a_reply_to_a_closed_incident_is_refused(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    ack_port = free_port()
    target = TcpListener()
    d = await start(daemon_factory, ack_config(tmp_path, sink, ack_port, target.port))
    [alert] = await sink.await_for(1)
    await target.start()
    try:
        await wait_for(lambda: "web" not in d.runtime.incidents)
    finally:
        await target.stop()
    reply = reply_to(alert, "oncall@example.org", "ack")
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(send, ack_port, reply, "oncall@example.org")
    assert info.value.smtp_code >= 500


async def test_swaks_can_acknowledge(
    tmp_path: Path, sink: MailSink, daemon_factory: list[Daemon]
) -> None:
    swaks = shutil.which("swaks")
    need(swaks is not None, "swaks (Debian package swaks) is not installed")
    assert swaks is not None
    ack_port = free_port()
    d = await start(daemon_factory, ack_config(tmp_path, sink, ack_port, refused_port()))
    [alert] = await sink.await_for(1)
    done = await asyncio.to_thread(
        subprocess.run,
        [
            swaks,
            "--server",
            f"127.0.0.1:{ack_port}",
            "--from",
            "someone@sre.example.org",
            "--to",
            alert.message["Reply-To"],
            "--header",
            f"In-Reply-To: {alert.message['Message-ID']}",
            "--body",
            "maint 2h\nswitch replacement",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    await wait_for(lambda: d.runtime.states["web"].maintenance)
    [window] = d.runtime.adhoc_windows.values()
    assert window.author == "someone@sre.example.org"
    assert window.end is not None and window.start is not None
    assert (window.end - window.start).total_seconds() == pytest.approx(7200, abs=1)
