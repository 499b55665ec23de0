"""The bench's workload: the config of ``options.services`` services against the targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness.options import BenchOptions
from pymon.checks import check_type
from pymon.checks.http import HttpSpec
from pymon.checks.tcp import TcpSpec
from pymon.config.schema import (
    ClusterConfig,
    Config,
    SchedulerConfig,
    ServiceConfig,
    StorageConfig,
    WebConfig,
)

__all__ = ["build_config"]


def build_config(
    options: BenchOptions,
    tcp_ports: Sequence[int],
    http_ports: Sequence[int],
    db: Path,
    cluster: ClusterConfig | None = None,
) -> Config:
    """The bench's config: ``options.services`` services of ``options.kind`` (mixed:
    half tcp, half http) spread over the target's ports; SQLite at ``db``; web off."""
    # The http type's default thresholds (status code table), as load.py would
    # merge them: the rules then do the work they do in production.
    http_thresholds = dict(check_type("http").thresholds)
    services: list[ServiceConfig] = []
    for i in range(options.services):
        # Each kind's services spread over its ports in turn.
        slot = i // 2 if options.kind == "mixed" else i
        if options.is_tcp(i):
            port = tcp_ports[slot % len(tcp_ports)]
            services.append(
                ServiceConfig(
                    name=f"tcp-{i:06d}",
                    type="tcp",
                    check=TcpSpec(host="127.0.0.1", port=port),
                    interval=options.interval,
                    timeout=options.effective_timeout,
                )
            )
        else:
            port = http_ports[slot % len(http_ports)]
            services.append(
                ServiceConfig(
                    name=f"http-{i:06d}",
                    type="http",
                    check=HttpSpec(url=f"http://127.0.0.1:{port}/health/{i}"),
                    interval=options.interval,
                    timeout=options.effective_timeout,
                    thresholds=http_thresholds,
                )
            )
    storage: dict[str, Any] = {"url": f"sqlite:///{db}"}
    if options.flush_interval is not None:
        storage["flush_interval"] = options.flush_interval
    scheduler = (
        SchedulerConfig()
        if options.concurrency is None
        else SchedulerConfig(concurrency=options.concurrency)
    )
    return Config(
        services=tuple(services),
        storage=StorageConfig(**storage),
        web=WebConfig(enabled=False),
        scheduler=scheduler,
        cluster=cluster or ClusterConfig(),
    )
