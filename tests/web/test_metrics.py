"""GET /metrics: Prometheus text rendered from what the engine's port says at scrape time."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pymon import __version__
from pymon.engine.ports import (
    AckFigures,
    Health,
    OutboxFigures,
    ReloadStatus,
    SchedulerFigures,
    StoreFigures,
)
from pymon.model import Status
from tests.support.port import SOME_TIME, FakePort, fake_port
from tests.web.helpers import app_client

CONFIG = """
instance: {name: "edge \\"1\\""}
defaults: {flap_guard: {failed: 1}}
services:
  - {name: down, type: tcp, host: 127.0.0.1, port: 9}
  - {name: "<script>alert(1)</script>", type: tcp, host: 127.0.0.1, port: 1, enabled: false}
"""
FIGURES = Health(
    started_at=SOME_TIME - 60,
    services=2,
    scheduler=SchedulerFigures(runs=7, skipped=1, in_flight=1, lateness_p50=0.01, lateness_p99=0.2),
    store=StoreFigures(pending=3, flushes=9, failures=2),
    notifications=OutboxFigures(sent=4, failed_attempts=5, gave_up=1, in_flight=0),
    events={"check_completed": 7, "incident_opened": 1},
)


@pytest.fixture
def port() -> FakePort:
    port = fake_port(CONFIG, figures=FIGURES)
    port.check("down", Status.FAILED, "connection refused", duration=0.25)
    return port


async def scrape(port: FakePort) -> dict[str, list[Sample]]:
    async with app_client(port) as c:
        answer = await c.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(answer.text)}


def values(samples: list[Sample], label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples}


async def test_service_status_is_one_for_the_current_status(port: FakePort) -> None:
    families = await scrape(port)
    current = {
        (s.labels["service"], s.labels["status"]): s.value
        for s in families["pymon_service_status"]
        if s.value == 1
    }
    assert current == {("down", "failed"): 1, ("<script>alert(1)</script>", "disabled"): 1}
    assert {s.labels["type"] for s in families["pymon_service_status"]} == {"tcp"}
    assert len(families["pymon_service_status"]) == 2 * 6


async def test_up_and_duration_per_service(port: FakePort) -> None:
    families = await scrape(port)
    assert values(families["pymon_service_up"], "service")["down"] == 0
    assert values(families["pymon_check_duration_seconds"], "service")["down"] == 0.25
    port.check("down", Status.OK, "connected", duration=0.5)
    families = await scrape(port)
    assert values(families["pymon_service_up"], "service")["down"] == 1
    assert values(families["pymon_check_duration_seconds"], "service")["down"] == 0.5


async def test_scheduler_notices_store_and_info(port: FakePort) -> None:
    families = await scrape(port)
    assert families["pymon_scheduler_runs"][0].name == "pymon_scheduler_runs_total"
    assert families["pymon_scheduler_runs"][0].value == 7
    assert families["pymon_scheduler_skipped"][0].value == 1
    assert values(families["pymon_scheduler_lateness_seconds"], "quantile") == {
        "0.5": 0.01,
        "0.99": 0.2,
    }
    for name, value in [
        ("pymon_notices_sent", 4),
        ("pymon_notice_failures", 5),
        ("pymon_notices_given_up", 1),
    ]:
        (sample,) = families[name]
        assert (sample.name, sample.value) == (f"{name}_total", value)
    assert families["pymon_store_pending"][0].value == 3
    assert families["pymon_store_failures"][0].value == 2
    assert values(families["pymon_events"], "type") == {"check_completed": 7, "incident_opened": 1}
    (info,) = families["pymon_info"]  # the text format carries an info as a gauge
    assert info.name == "pymon_info"
    assert info.labels == {"version": __version__, "instance": 'edge "1"'}
    assert "pymon_acks" not in families  # no acknowledgement server configured
    assert "pymon_config_reload_ok" not in families  # no reload yet


async def test_acks_and_the_last_reload_when_there_are_some(port: FakePort) -> None:
    port.figures = Health(
        started_at=SOME_TIME,
        services=2,
        acks=AckFigures(port=2525, accepted=3, refused=2, failed=1),
        reload=ReloadStatus(ok=False, at=SOME_TIME, source="api", error="bad"),
    )
    families = await scrape(port)
    assert values(families["pymon_acks"], "result") == {"accepted": 3, "refused": 2, "failed": 1}
    assert families["pymon_config_reload_ok"][0].value == 0
