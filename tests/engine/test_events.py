"""The event system: typed events for real transitions of a running daemon, synchronous
listeners that run in order and never drop, subscriptions that do."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pymon.config.load import load_config, load_config_text
from pymon.config.windows import one_off
from pymon.daemon import Daemon
from pymon.engine.bus import Bus
from pymon.events import (
    Acknowledged,
    BusItem,
    CheckCompleted,
    ConfigReloaded,
    IncidentClosed,
    IncidentEscalated,
    IncidentOpened,
    MaintenanceEnded,
    MaintenanceStarted,
    NoticeFailed,
    NoticeQueued,
    NoticeSent,
    ReloadFailed,
    StateChanged,
    StatusChanged,
    Transition,
    Unacknowledged,
    from_transition,
)
from pymon.model import Event, EventKind, Incident, Status
from tests.support.servers import TcpListener
from tests.support.waiting import wait_for


def config(tmp_path: Path, port: int, channel: str = "{type: log}", extra: str = "") -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
notifications:
  channels: {{ops: {channel}}}
  escalate_after: 200ms
  escalation: [ops]
  {extra}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {port}}}
"""


class Heard:
    """Everything a synchronous listener heard, in order."""

    def __init__(self) -> None:
        self.items: list[BusItem] = []

    def __call__(self, item: BusItem) -> None:
        self.items.append(item)

    def of(self, kind: type[BusItem]) -> list[BusItem]:
        return [item for item in self.items if isinstance(item, kind)]


@pytest.fixture
async def running(tmp_path: Path, listener: TcpListener) -> AsyncIterator[tuple[Daemon, Heard]]:
    daemon = Daemon(load_config_text(config(tmp_path, listener.port)))
    heard = Heard()
    daemon.bus.listen(heard)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.runtime.states["web"].status is Status.OK)
        yield daemon, heard
    finally:
        await daemon.stop()


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def test_a_check_publishes_check_completed_with_its_record(
    running: tuple[Daemon, Heard],
) -> None:
    _, heard = running
    completed = heard.of(CheckCompleted)
    assert completed
    first = completed[0]
    assert isinstance(first, CheckCompleted)
    assert first.service == "web" and first.record.seq == first.state.seq


async def test_an_outage_and_recovery_publish_the_incident_events(
    running: tuple[Daemon, Heard], listener: TcpListener
) -> None:
    _, heard = running
    await listener.stop()
    await wait_for(lambda: bool(heard.of(IncidentEscalated)))
    await listener.start()
    await wait_for(lambda: bool(heard.of(IncidentClosed)))
    opened, escalated, closed = (
        heard.of(IncidentOpened)[0],
        heard.of(IncidentEscalated)[0],
        heard.of(IncidentClosed)[0],
    )
    assert isinstance(opened, IncidentOpened) and isinstance(closed, IncidentClosed)
    assert isinstance(escalated, IncidentEscalated)
    assert opened.incident.id == escalated.incident.id == closed.incident.id
    assert closed.incident.closed_at is not None
    statuses = [i.event.status for i in heard.of(StatusChanged) if isinstance(i, StatusChanged)]
    assert Status.FAILED in statuses and statuses[-1] is Status.OK


async def test_notices_are_queued_then_sent(
    running: tuple[Daemon, Heard], listener: TcpListener
) -> None:
    _, heard = running
    await listener.stop()
    await wait_for(lambda: bool(heard.of(NoticeSent)))
    queued, sent = heard.of(NoticeQueued)[0], heard.of(NoticeSent)[0]
    assert isinstance(queued, NoticeQueued) and isinstance(sent, NoticeSent)
    assert sent.notice.key == queued.notice.key
    assert (sent.channel, sent.attempt) == ("ops", 1)
    assert heard.items.index(queued) < heard.items.index(sent)


async def test_acknowledge_and_unacknowledge_publish_their_events(
    running: tuple[Daemon, Heard], listener: TcpListener
) -> None:
    daemon, heard = running
    await listener.stop()
    await wait_for(lambda: "web" in daemon.runtime.incidents)
    incident = await daemon.runtime.acknowledge("web", "ann", "on it")
    await daemon.runtime.unacknowledge("web", "ann")
    (acked,) = heard.of(Acknowledged)
    assert isinstance(acked, Acknowledged)
    assert acked.incident == incident and acked.incident.ack is not None
    unacked = heard.of(Unacknowledged)[-1]
    assert isinstance(unacked, Unacknowledged) and unacked.incident.ack is None


async def test_a_maintenance_window_publishes_started_and_ended(
    running: tuple[Daemon, Heard],
) -> None:
    daemon, heard = running
    now = time.time()
    window = await daemon.runtime.add_maintenance(
        one_off(start=at(now - 1), end=at(now + 3600), services=["web"], author="ann")
    )
    assert window.id is not None
    await daemon.runtime.remove_maintenance(window.id)
    assert [
        type(i) for i in heard.items if isinstance(i, MaintenanceStarted | MaintenanceEnded)
    ] == [
        MaintenanceStarted,
        MaintenanceEnded,
    ]


async def test_a_final_delivery_failure_publishes_notice_failed(
    tmp_path: Path, listener: TcpListener
) -> None:
    text = config(
        tmp_path,
        listener.port,
        channel="{type: command, command: [/bin/false]}",
        extra="delivery: {give_up_after: 1ms}",
    )
    daemon = Daemon(load_config_text(text))
    heard = Heard()
    daemon.bus.listen(heard)
    await daemon.start()
    try:
        await listener.stop()
        await wait_for(lambda: bool(heard.of(NoticeFailed)))
    finally:
        await daemon.stop()
    failed = heard.of(NoticeFailed)[0]
    assert isinstance(failed, NoticeFailed)
    assert failed.channel == "ops" and failed.final and failed.error


async def test_reloads_publish_reloaded_then_failed(tmp_path: Path, listener: TcpListener) -> None:
    path = tmp_path / "pymon.yaml"
    path.write_text(config(tmp_path, listener.port))
    daemon = Daemon(load_config(path))
    heard = Heard()
    daemon.bus.listen(heard)
    await daemon.start()
    try:
        await daemon.reload("test")
        path.write_text("services: [{name: web, type: tcp}]\n")
        await daemon.reload("test")
    finally:
        await daemon.stop()
    reloaded, failed = heard.of(ConfigReloaded), heard.of(ReloadFailed)
    assert len(reloaded) == 1 and len(failed) == 1
    assert isinstance(failed[0], ReloadFailed) and failed[0].result.errors


async def test_each_decision_reaches_the_writer_whole_before_its_events(
    running: tuple[Daemon, Heard], listener: TcpListener
) -> None:
    daemon, _ = running
    queued: list[bool] = []

    def at_opening(item: BusItem) -> None:
        # The writer already holds the transition (one transaction with its incident).
        if isinstance(item, IncidentOpened):
            queued.append(item.event in daemon.writer.unwritten_events())

    daemon.bus.listen(at_opening, IncidentOpened)
    await listener.stop()
    await wait_for(lambda: bool(queued))
    assert queued == [True]
    await daemon.writer.flush()
    stored = await daemon.store.events(service="web")
    assert EventKind.INCIDENT_OPENED in {e.kind for e in stored}
    assert daemon.runtime.incidents["web"].open


async def test_metrics_count_events_by_type(running: tuple[Daemon, Heard]) -> None:
    daemon, _ = running
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
        text = (await client.get("/metrics")).text
    assert 'pymon_events_total{type="check_completed"}' in text
    assert 'pymon_events_total{type="reload_failed"} 0.0' in text
    assert daemon.runtime.health().events["check_completed"] >= 1


def transition(kind: EventKind) -> Event:
    return Event("db", kind, 1.0, Status.FAILED, Status.OK, "refused")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (EventKind.CHANGED, StatusChanged),
        (EventKind.CONFIRMED, StatusChanged),
        (EventKind.INCIDENT_OPENED, IncidentOpened),
        (EventKind.INCIDENT_WORSE, IncidentEscalated),
        (EventKind.ESCALATED, IncidentEscalated),
        (EventKind.INCIDENT_CLOSED, IncidentClosed),
        (EventKind.ACKNOWLEDGED, Acknowledged),
        (EventKind.UNACKNOWLEDGED, Unacknowledged),
        (EventKind.MAINTENANCE_STARTED, MaintenanceStarted),
        (EventKind.MAINTENANCE_ENDED, MaintenanceEnded),
        (EventKind.FLAPPING_STARTED, Transition),
        (EventKind.UNREACHABLE, Transition),
    ],
)
def test_each_event_kind_maps_to_its_type(kind: EventKind, expected: type[BusItem]) -> None:
    incident = Incident("i1", "db", 1.0, Status.FAILED, Status.FAILED)
    assert type(from_transition(transition(kind), incident)) is expected


def test_an_incident_kind_without_its_incident_travels_as_a_transition() -> None:
    assert type(from_transition(transition(EventKind.INCIDENT_OPENED), None)) is Transition


def test_listeners_run_in_the_order_they_were_added() -> None:
    bus: Bus[int] = Bus()
    calls: list[tuple[str, int]] = []
    bus.listen(lambda n: calls.append(("first", n)))
    bus.listen(lambda n: calls.append(("second", n)))
    bus.publish(1)
    bus.publish(2)
    assert calls == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]


def test_a_listener_never_drops_an_item() -> None:
    bus: Bus[int] = Bus()
    seen: list[int] = []
    bus.listen(seen.append)
    for n in range(100_000):
        bus.publish(n)
    assert seen == list(range(100_000))


def test_a_raising_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus: Bus[int] = Bus()
    seen: list[int] = []

    def broken(n: int) -> None:
        raise RuntimeError(f"cannot take {n}")

    bus.listen(broken)
    bus.listen(seen.append)
    sub = bus.subscribe()
    bus.publish(1)
    bus.publish(2)
    assert seen == [1, 2]
    assert len(sub) == 2
    assert "a listener failed" in caplog.text


def test_a_removed_listener_hears_nothing_more() -> None:
    bus: Bus[int] = Bus()
    seen: list[int] = []
    remove = bus.listen(seen.append)
    bus.publish(1)
    remove()
    remove()
    bus.publish(2)
    assert seen == [1] and bus.listeners == 0


async def test_a_full_subscription_is_dropped_while_listeners_get_everything() -> None:
    bus: Bus[BusItem] = Bus()
    heard = Heard()
    bus.listen(heard)
    sub = bus.subscribe(maxsize=10)
    for n in range(1000):
        bus.publish(StateChanged(f"s{n}"))
    assert sub.dropped and sub.closed
    assert len(heard.items) == 1000
    assert await sub.batch() == []
