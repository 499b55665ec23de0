"""``GET /metrics``: the daemon's state in Prometheus text format.

A custom collector reads the daemon at scrape time, so checks keep no metric
bookkeeping of their own: what a scrape shows is what the API shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
from pymon.model import Status
from pymon.web.auth import require_read

if TYPE_CHECKING:
    from pymon.engine.daemon import Daemon

__all__ = ["DaemonCollector", "router"]

router = APIRouter()

_STATUSES = tuple(s.value for s in Status)


class DaemonCollector(Collector):
    """Collects pymon's metrics from a :class:`Daemon` when scraped."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def collect(self) -> Iterator[Metric]:
        """Every metric family, read from the daemon now."""
        daemon = self._daemon
        yield from self._services(daemon)
        stats = daemon.scheduler.stats
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
            (("0.5", stats.percentile(50)), ("0.99", stats.percentile(99))),
        )
        outbox = daemon.notifier.outbox.stats
        yield from _counters(
            ("pymon_notices_sent", "Notice deliveries that succeeded.", outbox.sent),
            ("pymon_notice_failures", "Notice delivery attempts that failed.", outbox.failed),
            (
                "pymon_notices_given_up",
                "Notice deliveries given up after retrying.",
                outbox.gave_up,
            ),
        )
        acks = daemon.notifier.ack_server
        if acks is not None:
            yield _labelled(
                CounterMetricFamily,
                "pymon_acks",
                "Acknowledgements by e-mail, by result.",
                "result",
                (("accepted", acks.accepted), ("refused", acks.refused), ("failed", acks.failed)),
            )
        yield GaugeMetricFamily(
            "pymon_store_pending", "Writes waiting for the store.", value=daemon.writer.pending
        )
        yield CounterMetricFamily(
            "pymon_store_failures", "Store flushes that failed.", value=daemon.writer.failures
        )
        counts = getattr(daemon, "event_counts", None)
        if counts is not None:
            yield _labelled(
                CounterMetricFamily,
                "pymon_events",
                "Events published on the daemon's bus, by type.",
                "type",
                sorted(counts.counts.items()),
            )
        reload_ok = getattr(daemon, "reload_ok", None)
        if isinstance(reload_ok, bool):
            yield GaugeMetricFamily(
                "pymon_config_reload_ok",
                "1 when the last config reload succeeded.",
                value=int(reload_ok),
            )
        yield InfoMetricFamily(
            "pymon",
            "This pymon: version and instance name.",
            value={"version": __version__, "instance": daemon.config.instance.name},
        )

    def _services(self, daemon: Daemon) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "pymon_service_status",
            "1 for the service's current status, 0 for the others.",
            labels=["service", "type", "status"],
        )
        up = GaugeMetricFamily(
            "pymon_service_up", "1 when the service's status is ok.", labels=["service"]
        )
        duration = GaugeMetricFamily(
            "pymon_check_duration_seconds",
            "How long the service's last check took.",
            labels=["service"],
        )
        for name, service in daemon.services.items():
            state = daemon.states.get(name)
            if state is None:
                continue
            current = state.status.value
            for value in _STATUSES:
                status.add_metric([name, service.type, value], 1.0 if value == current else 0.0)
            up.add_metric([name], 1.0 if state.status is Status.OK else 0.0)
            if state.last_duration is not None:
                duration.add_metric([name], state.last_duration)
        yield status
        yield up
        yield duration


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


def _registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(request.app.state, "pymon_metrics", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DaemonCollector(request.app.state.daemon))
        request.app.state.pymon_metrics = registry
    return registry


@router.get("/metrics", dependencies=[Depends(require_read)], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format (behind read auth when ``web.auth.read`` is true)."""
    return Response(generate_latest(_registry(request)), media_type=CONTENT_TYPE_LATEST)
