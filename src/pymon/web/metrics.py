"""``GET /metrics``: pymon's state in Prometheus text format.

Each scrape reads the engine's port once and renders that snapshot, so checks
keep no metric bookkeeping of their own: what a scrape shows is what the API shows.
The exception is ``pymon_service_uptime_ratio`` (each service's uptime over 24 h, 7 d
and 30 d), read from the rollups at most once a minute (:mod:`pymon.web.gauges`).

In a cluster every node shows every service, each labelled with the ``node`` that
runs it (empty while nobody holds its shard), and one series per node of the
``pymon_node_*`` families; scraping one node is enough (scraping several gives the
same series from each, told apart by the scrape's own ``instance`` label).
``pymon_node_info`` labels each node with its ``location``.

A service with locations has its own series and, beside them, ``pymon_service_partial``
and one ``pymon_location_status`` per location (encoded as ``pymon_service_status``:
1 for the location's status, 0 for the others; all 0 before its first result). Its
location checks (``web@eu-west``) have no per-service series of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pymon import __version__
from pymon.locations import listed
from pymon.model import Status
from pymon.web.auth import require_read
from pymon.web.engine import port_of
from pymon.web.gauges import UptimeGauges, UptimeSample

if TYPE_CHECKING:
    from pymon.engine.ports import Health, NodeView, ServiceView

__all__ = ["Snapshot", "router"]

router = APIRouter()

_STATUSES = tuple(s.value for s in Status)


class Snapshot(Collector):
    """pymon's metrics as read through the port at one scrape."""

    def __init__(
        self,
        services: list[ServiceView],
        health: Health,
        instance: str,
        nodes: list[NodeView] | None = None,
        uptime: list[UptimeSample] | None = None,
    ) -> None:
        self._services = listed(services)
        self._health = health
        self._instance = instance
        self._nodes = nodes or []
        self._uptime = uptime or []

    def collect(self) -> Iterator[Metric]:
        """Every metric family of this scrape."""
        health = self._health
        yield from self._service_families()
        yield from self._location_families()
        yield from self._uptime_families()
        yield from self._node_families()
        stats = health.scheduler
        yield from _counters(
            ("pymon_scheduler_runs", "Checks started by the scheduler.", stats.runs),
            (
                "pymon_scheduler_skipped",
                "Runs skipped because the previous run of the service was still going.",
                stats.skipped,
            ),
        )
        yield _labelled(
            GaugeMetricFamily,
            "pymon_scheduler_lateness_seconds",
            "How long after its due time a check started (over recent runs).",
            "quantile",
            (("0.5", stats.lateness_p50), ("0.99", stats.lateness_p99)),
        )
        outbox = health.notifications
        yield from _counters(
            ("pymon_notices_sent", "Notice deliveries that succeeded.", outbox.sent),
            (
                "pymon_notice_failures",
                "Notice delivery attempts that failed.",
                outbox.failed_attempts,
            ),
            (
                "pymon_notices_given_up",
                "Notice deliveries given up after retrying.",
                outbox.gave_up,
            ),
        )
        acks = health.acks
        if acks is not None:
            yield _labelled(
                CounterMetricFamily,
                "pymon_acks",
                "Acknowledgements by e-mail, by result.",
                "result",
                (("accepted", acks.accepted), ("refused", acks.refused), ("failed", acks.failed)),
            )
        yield GaugeMetricFamily(
            "pymon_store_pending", "Writes waiting for the store.", value=health.store.pending
        )
        yield CounterMetricFamily(
            "pymon_store_failures", "Store flushes that failed.", value=health.store.failures
        )
        yield _labelled(
            CounterMetricFamily,
            "pymon_events",
            "Events published on the engine's bus, by type.",
            "type",
            sorted(health.events.items()),
        )
        if health.reload.ok is not None:
            yield GaugeMetricFamily(
                "pymon_config_reload_ok",
                "1 when the last config reload succeeded.",
                value=int(health.reload.ok),
            )
        yield InfoMetricFamily(
            "pymon",
            "This pymon: version and instance name.",
            value={"version": __version__, "instance": self._instance},
        )

    def _service_families(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "pymon_service_status",
            "1 for the service's current status, 0 for the others.",
            labels=["service", "type", "status", "node"],
        )
        up = GaugeMetricFamily(
            "pymon_service_up", "1 when the service's status is ok.", labels=["service", "node"]
        )
        duration = GaugeMetricFamily(
            "pymon_check_duration_seconds",
            "How long the service's last check took.",
            labels=["service", "node"],
        )
        for view in self._services:
            name, state, node = view.name, view.state, view.node or ""
            current = state.status.value
            for value in _STATUSES:
                status.add_metric(
                    [name, view.config.type, value, node], 1.0 if value == current else 0.0
                )
            up.add_metric([name, node], 1.0 if state.status is Status.OK else 0.0)
            if state.last_duration is not None:
                duration.add_metric([name, node], state.last_duration)
        yield status
        yield up
        yield duration

    def _location_families(self) -> Iterator[Metric]:
        partial = GaugeMetricFamily(
            "pymon_service_partial",
            "1 when some location sees a problem its quorum does not confirm.",
            labels=["service"],
        )
        where = GaugeMetricFamily(
            "pymon_location_status",
            "1 for the status a service's location sees, 0 for the others.",
            labels=["service", "location", "status"],
        )
        for view in self._services:
            if not view.config.locations:
                continue
            partial.add_metric([view.name], float(view.partial))
            for location in view.config.locations:
                result = view.locations.get(location)
                current = None if result is None or result.status is None else result.status.value
                for value in _STATUSES:
                    where.add_metric([view.name, location, value], float(value == current))
        yield partial
        yield where

    def _uptime_families(self) -> Iterator[Metric]:
        ratio = GaugeMetricFamily(
            "pymon_service_uptime_ratio",
            "Up time over up and down time in the window, by time, maintenance left out "
            "(computed from the rollups at most once a minute; absent without data).",
            labels=["service", "window"],
        )
        for sample in self._uptime:
            if sample.ratio is not None:
                ratio.add_metric([sample.service, sample.window], sample.ratio)
        target = GaugeMetricFamily(
            "pymon_service_sla_target_ratio",
            "The service's sla target as a ratio (sla: 99.9 is 0.999).",
            labels=["service"],
        )
        for view in self._services:
            if view.config.sla is not None:
                target.add_metric([view.name], view.config.sla / 100)
        yield ratio
        yield target

    def _node_families(self) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "pymon_node", "The cluster's node and where it checks from.", labels=["node"]
        )
        for node in self._nodes:
            info.add_metric([node.name], {"location": node.location})
        yield info
        for name, documentation, value in _NODE_FAMILIES:
            yield _labelled(
                GaugeMetricFamily,
                name,
                documentation,
                "node",
                ((node.name, value(node)) for node in self._nodes),
            )


#: The per-node gauges: name, documentation, and what of a node each shows.
_NODE_FAMILIES: tuple[tuple[str, str, Callable[[NodeView], float]], ...] = (
    (
        "pymon_node_up",
        "1 when the cluster's node beat within its lease and did not stop.",
        lambda node: float(node.alive),
    ),
    ("pymon_node_shards", "Shards the node holds a lease on.", lambda node: node.shards),
    (
        "pymon_node_heartbeat_age_seconds",
        "Seconds since the node's last heartbeat.",
        lambda node: node.heartbeat_age,
    ),
    (
        "pymon_node_checks_per_second",
        "Checks the node started per second over its last heartbeat.",
        lambda node: node.checks_per_s,
    ),
)


def _counters(*rows: tuple[str, str, float]) -> Iterator[Metric]:
    """One unlabelled counter per ``(name, documentation, value)``."""
    for name, documentation, value in rows:
        yield CounterMetricFamily(name, documentation, value=value)


def _labelled(
    family: type[CounterMetricFamily | GaugeMetricFamily],
    name: str,
    documentation: str,
    label: str,
    samples: Iterable[tuple[str, float]],
) -> Metric:
    """A family with one label, one sample per ``(label value, value)``."""
    metric = family(name, documentation, labels=[label])
    for key, value in samples:
        metric.add_metric([key], value)
    return metric


@router.get("/metrics", dependencies=[Depends(require_read)], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format (behind read auth when ``web.auth.read`` is true)."""
    port = port_of(request)
    registry = CollectorRegistry(auto_describe=False)
    gauges: UptimeGauges = request.app.state.uptime_gauges
    snapshot = Snapshot(
        await port.services(),
        port.health(),
        port.config.instance.name,
        await port.nodes(),
        await gauges.samples(port),
    )
    registry.register(snapshot)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
