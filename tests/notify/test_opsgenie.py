"""The opsgenie channel against a local stand-in for the Alert API (tests/notify/alert_fake.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest

from pymon.config.schema import OpsgenieChannel
from pymon.model import NoticeKind, Status
from pymon.notify.base import DeliveryError
from pymon.notify.opsgenie import OpsgenieSender
from pymon.notify.templates import Templates
from tests.notify.alert_fake import AlertService, Answer
from tests.notify.helpers import make_context, make_notice

API_KEY = "genie-key-0f1e2d3c4b5a"
ALIAS = "pymon:lab:inc-7"


@pytest.fixture
async def senders() -> AsyncIterator[list[OpsgenieSender]]:
    made: list[OpsgenieSender] = []
    yield made
    for sender in made:
        await sender.close()


def build(made: list[OpsgenieSender], url: str, **keys: Any) -> OpsgenieSender:
    config = OpsgenieChannel.model_validate(
        {"type": "opsgenie", "api_key": API_KEY, "api_url": url, **keys}
    )
    made.append(OpsgenieSender("genie", config, Templates()))
    return made[-1]


async def test_a_problem_creates_an_alert_with_the_incident_alias(
    service: AlertService, senders: list[OpsgenieSender]
) -> None:
    await build(senders, service.url).send(make_notice(), make_context())
    [request] = service.requests
    assert (request.method, request.path, request.query) == ("POST", "/v2/alerts", {})
    assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
    alert = request.body
    assert alert["alias"] == ALIAS
    assert alert["message"] == "[Example Org] FAILED: db - connection refused"
    assert alert["priority"] == "P1"
    assert alert["tags"] == ["prod"]
    assert alert["entity"] == "db"
    # The description is the e-mail's text body, from the same templates.
    assert "connection refused" in alert["description"]
    assert "http://127.0.0.1:8080/services/db" in alert["description"]
    assert alert["details"]["incident"] == "inc-7"
    assert json.loads(alert["details"]["metrics"]) == {"time": 1.5}
    assert all(isinstance(v, str) for v in alert["details"].values())


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (NoticeKind.ACKNOWLEDGED, "acknowledge"),
        (NoticeKind.UNACKNOWLEDGED, "unacknowledge"),
        (NoticeKind.RECOVERY, "close"),
    ],
)
async def test_later_steps_act_on_the_alert_by_its_alias(
    service: AlertService, senders: list[OpsgenieSender], kind: NoticeKind, action: str
) -> None:
    notice = make_notice(kind=kind, key=f"inc-7:{kind.value}", message="acknowledged by ann")
    await build(senders, service.url).send(notice, make_context())
    [request] = service.requests
    assert request.path == f"/v2/alerts/{ALIAS}/{action}"
    assert request.query == {"identifierType": "alias"}
    assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
    assert request.body == {"source": "pymon lab", "note": "acknowledged by ann"}


async def test_the_priority_map_overrides_the_defaults(
    service: AlertService, senders: list[OpsgenieSender]
) -> None:
    sender = build(senders, service.url + "/", priority={"warn": "P5"})
    await sender.send(make_notice(status=Status.WARN), make_context())
    await sender.send(make_notice(status=Status.ERROR), make_context())
    assert [r.body["priority"] for r in service.requests] == ["P5", "P2"]
    assert {r.path for r in service.requests} == {"/v2/alerts"}  # a trailing / is fine


async def test_a_flapping_notice_sends_nothing(
    service: AlertService, senders: list[OpsgenieSender]
) -> None:
    notice = make_notice(kind=NoticeKind.FLAPPING_STOPPED)
    await build(senders, service.url).send(notice, make_context())
    assert service.requests == []


async def test_throttling_honours_an_http_date_and_a_bad_key_is_permanent(
    service: AlertService, senders: list[OpsgenieSender]
) -> None:
    service.script = [
        # Two days from now, whatever the date: read as a day at most.
        Answer(429, "", {"Retry-After": formatdate(time.time() + 172800, usegmt=True)}),
        Answer(422, '{"message":"Key format is not valid!"}'),
    ]
    sender = build(senders, service.url)
    errors = []
    for _ in range(2):
        with pytest.raises(DeliveryError) as caught:
            async with asyncio.timeout(30):
                await sender.send(make_notice(), make_context())
        errors.append(caught.value)
    throttled, refused = errors
    assert not throttled.permanent
    assert throttled.retry_after == 86400.0
    assert refused.permanent
    assert "Key format is not valid" in str(refused)
    assert all(API_KEY not in str(e) for e in errors)
