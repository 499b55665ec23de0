"""GET /metrics: Prometheus text read from the daemon at scrape time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pymon import __version__
from pymon.daemon import Daemon
from tests.support.servers import refused_port
from tests.support.waiting import wait_for
from tests.web.helpers import client_for, running


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    text = f"""
instance: {{name: "edge \\"1\\""}}
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1}}}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
  - {{name: "<script>alert(1)</script>", type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
"""
    async with running(text) as d:
        await wait_for(lambda: "down" in d.runtime.incidents and d.runtime.scheduler.stats.runs > 0)
        yield d


async def scrape(d: Daemon) -> dict[str, list[Sample]]:
    async with client_for(d) as c:
        answer = await c.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(answer.text)}


async def test_service_status_is_one_for_the_current_status(daemon: Daemon) -> None:
    families = await scrape(daemon)
    current = {
        (s.labels["service"], s.labels["status"]): s.value
        for s in families["pymon_service_status"]
        if s.value == 1
    }
    assert current == {("down", "failed"): 1, ("<script>alert(1)</script>", "disabled"): 1}
    assert {s.labels["type"] for s in families["pymon_service_status"]} == {"tcp"}
    assert len(families["pymon_service_status"]) == 2 * 6


async def test_up_and_duration_per_service(daemon: Daemon) -> None:
    families = await scrape(daemon)
    assert {s.labels["service"]: s.value for s in families["pymon_service_up"]}["down"] == 0
    durations = {s.labels["service"]: s.value for s in families["pymon_check_duration_seconds"]}
    assert durations["down"] >= 0


async def test_scheduler_notices_store_and_info(daemon: Daemon) -> None:
    families = await scrape(daemon)
    assert families["pymon_scheduler_runs"][0].name == "pymon_scheduler_runs_total"
    assert families["pymon_scheduler_runs"][0].value >= 1
    assert families["pymon_scheduler_skipped"][0].value >= 0
    assert {s.labels["quantile"] for s in families["pymon_scheduler_lateness_seconds"]} == {
        "0.5",
        "0.99",
    }
    for name in ("pymon_notices_sent", "pymon_notice_failures", "pymon_notices_given_up"):
        assert families[name][0].name == f"{name}_total"
    assert families["pymon_store_pending"][0].value >= 0
    assert families["pymon_store_failures"][0].value == 0
    (info,) = families["pymon_info"]  # the text format carries an info as a gauge
    assert info.name == "pymon_info"
    assert info.labels == {"version": __version__, "instance": 'edge "1"'}
    assert "pymon_acks" not in families  # no acknowledgement server configured
    assert "pymon_config_reload_ok" not in families
