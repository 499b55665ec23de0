"""The apprise channel: apprise's ``json://`` posting to local aiohttp sinks on 127.0.0.1,
alone and through the daemon's outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from pymon.config.load import load_config_text
from pymon.config.schema import AppriseChannel
from pymon.daemon import Daemon
from pymon.model import NoticeKind, Status
from pymon.notify.apprise import AppriseSender, display
from pymon.notify.base import DeliveryError
from pymon.notify.email import subject
from pymon.notify.templates import Templates
from tests.notify.alert_fake import AlertService, Answer
from tests.notify.helpers import daemon_config, make_context, make_notice
from tests.support.servers import refused_port, reserved_port
from tests.support.waiting import wait_for

SECRET_PATH = "t0ken-in-the-path-9f8e7d"


def build(*urls: str, timeout: str = "10s") -> AppriseSender:
    config = AppriseChannel.model_validate({"type": "apprise", "urls": urls, "timeout": timeout})
    return AppriseSender("chat", config, Templates())


def json_url(service: AlertService, path: str = "notify") -> str:
    return f"json://127.0.0.1:{service.port}/{path}"


async def failure(sender: AppriseSender, **changes: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        async with asyncio.timeout(30):
            await sender.send(make_notice(**changes), make_context())
    return caught.value


async def test_title_and_body_come_from_the_email_templates(service: AlertService) -> None:
    notice, ctx = make_notice(), make_context()
    await build(json_url(service)).send(notice, ctx)
    [request] = service.requests
    assert (request.method, request.path) == ("POST", "/notify")
    assert request.body["title"] == subject(notice, ctx)
    assert request.body["title"] == "[Example Org] FAILED: db - connection refused"
    body = Templates().render("email", "txt", notice=notice, ctx=ctx)
    assert request.body["message"] == body.rstrip()  # apprise drops the final newline
    assert request.body["type"] == "failure"


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"kind": NoticeKind.RECOVERY, "status": Status.OK}, "success"),
        ({"status": Status.WARN}, "warning"),
        ({"kind": NoticeKind.ACKNOWLEDGED}, "info"),
    ],
)
async def test_the_notice_sets_apprise_s_type(
    service: AlertService, changes: dict[str, Any], kind: str
) -> None:
    await build(json_url(service)).send(make_notice(**changes), make_context())
    assert service.requests[0].body["type"] == kind


async def test_a_failing_url_gives_apprise_s_reason_without_the_token(
    service: AlertService,
) -> None:
    service.script = [Answer(500, "broken")]
    error = await failure(build(json_url(service, SECRET_PATH)))
    assert not error.permanent
    text = str(error)
    assert text.startswith(f"apprise json://127.0.0.1:{service.port}: ")
    assert "500" in text
    assert SECRET_PATH not in text


async def test_a_refused_connection_is_a_reason_too() -> None:
    error = await failure(build(f"json://127.0.0.1:{refused_port()}/{SECRET_PATH}"))
    assert "connection" in str(error).lower()
    assert SECRET_PATH not in str(error)


async def test_a_retry_goes_only_to_the_urls_that_failed(service: AlertService) -> None:
    broken = await AlertService(Answer(503, "busy")).start()
    try:
        sender = build(json_url(service, "a"), json_url(broken, "b"))
        error = await failure(sender)
        assert f"json://127.0.0.1:{broken.port}: " in str(error)
        assert "1 of 2 URLs took it" in str(error)
        await sender.send(make_notice(), make_context())
    finally:
        await broken.stop()
    assert [r.path for r in service.requests] == ["/a"]  # once, not again on the retry
    assert [r.status for r in broken.requests] == [503, 202]


async def test_a_sink_that_never_answers_is_cut_off_at_the_channel_timeout() -> None:
    hung = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await hung.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/slow", hang)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    port = reserved_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        error = await failure(build(f"json://127.0.0.1:{port}/slow", timeout="1s"))
    finally:
        hung.set()
        await runner.cleanup()
    assert str(error).startswith(f"apprise json://127.0.0.1:{port}: ")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://user:pw@127.0.0.1:8080/x?token=1", "json://127.0.0.1:8080"),
        ("ntfy://ntfy.example.org/alerts", "ntfy://ntfy.example.org"),
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123", "tgram://..."),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", "slack://..."),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://..."),
        ("no scheme", "<URL without scheme>"),
    ],
)
def test_a_url_is_shown_as_scheme_and_host_only(url: str, shown: str) -> None:
    assert display(url) == shown


async def test_the_daemon_retries_a_failing_sink_and_shows_why(tmp_path: Path) -> None:
    service = await AlertService(Answer(500, "broken"), Answer(500, "broken")).start()
    channel = f'    chat: {{type: apprise, urls: ["{json_url(service, SECRET_PATH)}"]}}'
    text = daemon_config(tmp_path, refused_port(), channel).replace("cutoff: 2", "cutoff: 1")
    daemon = Daemon(load_config_text(text))
    await daemon.start()
    try:
        await wait_for(lambda: len(service.accepted) == 1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
            answer = (await client.get("/api/v1/notifications")).json()
    finally:
        await daemon.stop()
        await service.stop()
    [row] = answer["deliveries"]
    assert (row["channel"], row["state"], row["attempts"]) == ("chat", "delivered", 3)
    assert [r.status for r in service.requests] == [500, 500, 202]
    assert service.accepted[0].body["title"].startswith("[ACME Ops] FAILED: web - ")
    assert SECRET_PATH not in str(answer)
