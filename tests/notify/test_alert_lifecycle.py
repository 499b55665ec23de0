"""One incident's alert at PagerDuty and Opsgenie through the real daemon: a real failing
target, a real SQLite store, stand-ins for both APIs that throttle and fail first, an
acknowledgement through the API, a restart, and the recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from tests.notify.alert_fake import AlertService, Answer, Request
from tests.notify.helpers import daemon_config
from tests.support.servers import TcpListener
from tests.support.waiting import wait_for

ROUTING_KEY = "pd-routing-key-for-the-test"
API_KEY = "genie-key-for-the-test"


def config(
    tmp_path: Path, target: int, pager: AlertService, genie: AlertService, hook: AlertService
) -> str:
    channels = f"""
    pager: {{type: pagerduty, routing_key: {ROUTING_KEY}, api_url: "{pager.url}/v2/enqueue"}}
    genie: {{type: opsgenie, api_key: {API_KEY}, api_url: "{genie.url}"}}
    hook: {{type: webhook, url: "{hook.url}/hook"}}"""
    # One problem notice: a renotify racing the acknowledgement would blur the order.
    return daemon_config(tmp_path, target, channels).replace("cutoff: 2", "cutoff: 1")


Services = tuple[AlertService, AlertService, AlertService]


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    """PagerDuty and Opsgenie, each throttling then failing first, and a webhook receiver."""
    throttled = [Answer(429, "slow down", {"Retry-After": "1"}), Answer(500, "oops")]
    started = (
        await AlertService(*throttled).start(),
        await AlertService(*throttled).start(),
        await AlertService().start(),
    )
    yield started
    for service in started:
        await service.stop()


def events(pager: AlertService) -> list[Request]:
    return [r for r in pager.requests if r.path == "/v2/enqueue"]


def hooks(hook: AlertService) -> list[Request]:
    return hook.accepted


def accepted_actions(pager: AlertService) -> list[str]:
    return [r.body["event_action"] for r in events(pager) if r.status == 202]


def genie_steps(genie: AlertService) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in genie.accepted]


async def test_trigger_acknowledge_resolve_one_alert_across_retries_and_a_restart(
    tmp_path: Path, services: Services
) -> None:
    pager, genie, hook = services
    target = TcpListener()  # not listening yet: the service fails
    text = config(tmp_path, target.port, pager, genie, hook)
    first = Daemon(load_config_text(text))
    await first.start()
    try:
        await wait_for(lambda: accepted_actions(pager) == ["trigger"])
        await wait_for(lambda: genie_steps(genie) == ["alerts"])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{first.web_port}") as client:
            answer = await client.post("/api/v1/services/web/ack", json={"comment": "on it"})
            assert answer.status_code == 200, answer.text
        await wait_for(lambda: accepted_actions(pager) == ["trigger", "acknowledge"])
        await wait_for(lambda: genie_steps(genie) == ["alerts", "acknowledge"])
        incident = first.runtime.incidents["web"].id
    finally:
        await first.stop()
    second = Daemon(load_config_text(text))
    await second.start()
    try:
        await target.start()
        await wait_for(lambda: accepted_actions(pager) == ["trigger", "acknowledge", "resolve"])
        await wait_for(lambda: genie_steps(genie) == ["alerts", "acknowledge", "close"])
        await wait_for(lambda: len(hooks(hook)) == 2)
    finally:
        await second.stop()
        await target.stop()

    key = f"pymon:lab:{incident}"
    # Two refusals (429, then 500) and the trigger: one key on every request, the
    # retries included, and the same after the restart.
    assert [r.status for r in events(pager)][:3] == [429, 500, 202]
    assert {r.body["dedup_key"] for r in events(pager)} == {key}
    assert {r.body["routing_key"] for r in events(pager)} == {ROUTING_KEY}
    [trigger] = [r for r in events(pager) if r.body["event_action"] == "trigger"][-1:]
    assert trigger.body["payload"]["summary"].startswith("[ACME Ops] FAILED: web - ")
    [ack] = [r.body for r in events(pager) if r.body["event_action"] == "acknowledge"]
    assert set(ack) == {"routing_key", "event_action", "dedup_key"}

    assert [r.status for r in genie.requests][:3] == [429, 500, 202]
    creates = [r for r in genie.requests if r.path == "/v2/alerts"]
    assert {r.body["alias"] for r in creates} == {key}
    assert len([r for r in creates if r.status == 202]) == 1  # exactly one alert
    later = [r for r in genie.accepted if r.path != "/v2/alerts"]
    assert [r.path for r in later] == [f"/v2/alerts/{key}/acknowledge", f"/v2/alerts/{key}/close"]
    assert all(r.query == {"identifierType": "alias"} for r in later)
    assert {r.headers["Authorization"] for r in genie.requests} == {f"GenieKey {API_KEY}"}
    assert "acknowledged by" in later[0].body["note"]

    # A channel that does not ask for acknowledgements hears the problem and the
    # recovery only.
    assert [r.body["kind"] for r in hooks(hook)] == ["problem", "recovery"]
