"""The bench's workload: the config of ``options.services`` services against the targets."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness.options import BenchOptions
from benchmarks.harness.targets import DNS_ADDRESS
from pymon.checks import check_type
from pymon.checks.dns import DnsSpec
from pymon.checks.http import HttpSpec
from pymon.checks.ping import PingSpec
from pymon.checks.plugin import PluginSpec
from pymon.checks.spec import CheckSpec
from pymon.checks.tcp import TcpSpec
from pymon.config.schema import (
    ClusterConfig,
    Config,
    SchedulerConfig,
    ServiceConfig,
    StorageConfig,
    WebConfig,
)

__all__ = [
    "DNS_QUERY",
    "PING_HOST",
    "Endpoints",
    "Planned",
    "build_config",
    "plan",
    "plugin_command",
]

# What the ping services ping, and the name the dns services ask the target for.
PING_HOST = "127.0.0.1"
DNS_QUERY = "bench.pymon.test"

# The plugin the plugin services run: the plugins' own no-op when installed (a small C
# program), else a shell script of the same output written into the run's directory.
_DUMMY_PLUGIN = Path("/usr/lib/nagios/plugins/check_dummy")
_SCRIPT = '#!/bin/sh\necho "OK - fine"\nexit 0\n'


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the services of a point go: the target's ports, and the plugin to run."""

    tcp_ports: Sequence[int]
    http_ports: Sequence[int]
    dns_port: int
    plugin: Sequence[str]


def plugin_command(workdir: Path) -> tuple[str, ...]:
    """The command line of the plugin services (see _DUMMY_PLUGIN)."""
    if os.access(_DUMMY_PLUGIN, os.X_OK):
        return (str(_DUMMY_PLUGIN), "0", "fine")
    script = workdir / "bench-plugin.sh"
    script.write_text(_SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return (str(script),)


@dataclass(frozen=True, slots=True)
class Planned:
    """One service of the workload, as every tool is given it: its name, type, and the
    target's port (tcp, http, dns; 0 for the others) and URL path (http)."""

    name: str
    kind: str
    port: int = 0
    path: str = ""


def plan(options: BenchOptions, endpoints: Endpoints) -> list[Planned]:
    """The workload's services in order; each kind's services take its ports in turn."""
    planned: list[Planned] = []
    for i in range(options.services):
        kind = options.type_of(i)
        slot = i // 2 if options.kind == "mixed" else i
        name = f"{kind}-{i:06d}"
        if kind == "tcp":
            planned.append(
                Planned(name, kind, endpoints.tcp_ports[slot % len(endpoints.tcp_ports)])
            )
        elif kind == "http":
            port = endpoints.http_ports[slot % len(endpoints.http_ports)]
            planned.append(Planned(name, kind, port, f"/health/{i}"))
        else:
            planned.append(Planned(name, kind, endpoints.dns_port if kind == "dns" else 0))
    return planned


def _spec(service: Planned, endpoints: Endpoints) -> CheckSpec:
    """pymon's check of ``service``."""
    if service.kind == "tcp":
        return TcpSpec(host="127.0.0.1", port=service.port)
    if service.kind == "http":
        return HttpSpec(url=f"http://127.0.0.1:{service.port}{service.path}")
    if service.kind == "ping":
        # One echo a check, as each peer's ping sends.
        return PingSpec(host=PING_HOST, count=1)
    if service.kind == "dns":
        return DnsSpec(query=DNS_QUERY, server="127.0.0.1", port=service.port, expect=[DNS_ADDRESS])
    return PluginSpec(command=list(endpoints.plugin))


def build_config(
    options: BenchOptions,
    endpoints: Endpoints,
    db: Path,
    cluster: ClusterConfig | None = None,
) -> Config:
    """The bench's config: ``options.services`` services of ``options.kind`` (mixed:
    half tcp, half http) against ``endpoints``; SQLite at ``db``; web off."""
    services = [
        ServiceConfig(
            name=service.name,
            type=service.kind,
            check=_spec(service, endpoints),
            interval=options.interval,
            timeout=options.effective_timeout,
            # The type's default thresholds (the http status code table...), as load.py
            # would merge them: the rules then do the work they do in production.
            thresholds=dict(check_type(service.kind).thresholds),
        )
        for service in plan(options, endpoints)
    ]
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
