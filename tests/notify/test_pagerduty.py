"""The pagerduty channel against a local stand-in for the Events API v2 (alert_fake.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from pymon.config.schema import PagerDutyChannel
from pymon.model import NoticeKind, Status
from pymon.notify.base import DeliveryError
from pymon.notify.pagerduty import PagerDutySender
from tests.notify.alert_fake import AlertService, Answer
from tests.notify.helpers import make_context, make_notice

KEY = "R0UT1NGKEYzyxwvutsrqponmlkjihgfe"
KEY_OF_INC_7 = "pymon:lab:inc-7"


@pytest.fixture
async def senders() -> AsyncIterator[list[PagerDutySender]]:
    made: list[PagerDutySender] = []
    yield made
    for sender in made:
        await sender.close()


def build(made: list[PagerDutySender], url: str, **keys: Any) -> PagerDutySender:
    config = PagerDutyChannel.model_validate(
        {"type": "pagerduty", "routing_key": KEY, "api_url": f"{url}/v2/enqueue", **keys}
    )
    made.append(PagerDutySender("pager", config))
    return made[-1]


async def failure(sender: PagerDutySender) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        async with asyncio.timeout(30):
            await sender.send(make_notice(), make_context())
    return caught.value


async def test_a_problem_triggers_with_the_incident_dedup_key_and_a_payload(
    service: AlertService, senders: list[PagerDutySender]
) -> None:
    await build(senders, service.url).send(make_notice(), make_context())
    [request] = service.requests
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    assert request.headers["Content-Type"] == "application/json"
    event = request.body
    assert event["routing_key"] == KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == KEY_OF_INC_7
    payload = event["payload"]
    assert payload["summary"] == "[Example Org] FAILED: db - connection refused"
    assert payload["severity"] == "critical"
    assert payload["source"] == "lab"
    assert payload["component"] == "db"
    assert payload["timestamp"].startswith("2023-11-14T22:13:20.5")
    details = payload["custom_details"]
    assert (details["incident"], details["status"], details["kind"]) == (
        "inc-7",
        "failed",
        "problem",
    )
    assert event["links"] == [{"href": "http://127.0.0.1:8080/services/db", "text": "db in pymon"}]
    assert "0123456789abcdef0123" not in str(event)  # the ack token stays out


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (NoticeKind.ESCALATION, "trigger"),
        (NoticeKind.ACKNOWLEDGED, "acknowledge"),
        (NoticeKind.UNACKNOWLEDGED, "trigger"),
        (NoticeKind.RECOVERY, "resolve"),
    ],
)
async def test_each_step_of_the_incident_keeps_its_dedup_key(
    service: AlertService, senders: list[PagerDutySender], kind: NoticeKind, action: str
) -> None:
    notice = make_notice(kind=kind, key=f"inc-7:{kind.value}", status=Status.OK)
    await build(senders, service.url).send(notice, make_context())
    [request] = service.requests
    assert (request.body["event_action"], request.body["dedup_key"]) == (action, KEY_OF_INC_7)
    assert ("payload" in request.body) == (action == "trigger")


@pytest.mark.parametrize(
    "notice_changes", [{"kind": NoticeKind.FLAPPING_STARTED}, {"incident": None}]
)
async def test_flapping_and_incidentless_notices_send_nothing(
    service: AlertService, senders: list[PagerDutySender], notice_changes: dict[str, Any]
) -> None:
    await build(senders, service.url).send(make_notice(**notice_changes), make_context())
    assert service.requests == []


async def test_the_severity_map_overrides_the_defaults(
    service: AlertService, senders: list[PagerDutySender]
) -> None:
    sender = build(senders, service.url, severity={"failed": "error", "warn": "info"})
    await sender.send(make_notice(), make_context())
    await sender.send(replace(make_notice(), status=Status.ERROR), make_context())
    await sender.send(replace(make_notice(), status=Status.WARN), make_context())
    severities = [r.body["payload"]["severity"] for r in service.requests]
    assert severities == ["error", "error", "info"]


async def test_throttling_is_retried_after_the_asked_seconds(
    service: AlertService, senders: list[PagerDutySender]
) -> None:
    service.script = [Answer(429, "slow down", {"Retry-After": "17"})]
    error = await failure(build(senders, service.url))
    assert not error.permanent
    assert error.retry_after == 17.0
    assert "HTTP 429: slow down" in str(error)


async def test_server_trouble_is_retried_and_a_bad_key_is_permanent(
    service: AlertService, senders: list[PagerDutySender]
) -> None:
    service.script = [Answer(502, "bad gateway"), Answer(400, '{"status":"invalid event"}')]
    sender = build(senders, service.url)
    retried = await failure(sender)
    assert (retried.permanent, retried.retry_after) == (False, None)
    refused = await failure(sender)
    assert refused.permanent
    for error in (retried, refused):
        assert KEY not in str(error)
        assert str(error).startswith(f"pagerduty {service.url}/v2/enqueue: HTTP ")
