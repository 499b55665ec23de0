"""blackbox_exporter on the bench's workload, driven as Prometheus would drive it.

The exporter runs as a child on a reserved port with a module per check type
(tcp_connect, http_2xx, icmp, dns). A small driver stands in for Prometheus: each
service of the workload is a target scraped once per interval at its own phase,
the phases spread evenly over the interval, every scrape a ``GET /probe`` on
kept-alive connections. A probe counts when its scrape was due in the window; its
lateness is how late the driver sent it, its duration the exporter's own
``probe_duration_seconds``. The driver's CPU is not the exporter's and is given apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness.options import BenchOptions
from benchmarks.harness.peers.child import Child, reserved_ports
from benchmarks.harness.peers.figures import PeerFigures, Sample
from benchmarks.harness.peers.window import Window, measure_window
from benchmarks.harness.preflight import find_program, icmp_unavailable
from benchmarks.harness.targets import DNS_ADDRESS
from benchmarks.harness.workload import DNS_QUERY, PING_HOST, Endpoints, Planned, plan

__all__ = ["BlackboxExporter"]

# How long the exporter may take to answer its health check after it starts.
START_TIMEOUT = 10.0
# After the window, how long scrapes that were due in it get to finish (beyond the timeout).
END_GRACE = 1.0

_MODULES = {"tcp": "tcp_connect", "http": "http_2xx", "ping": "icmp", "dns": "dns"}


def _modules(timeout: float) -> dict[str, Any]:
    """The exporter's module file (JSON is YAML): one module per check type."""
    t = f"{timeout:g}s"
    dns = {
        "query_name": DNS_QUERY,
        "query_type": "A",
        "transport_protocol": "udp",
        "preferred_ip_protocol": "ip4",
        "validate_answer_rrs": {"fail_if_none_matches_regexp": [f".*{DNS_ADDRESS}"]},
    }
    return {
        "modules": {
            "tcp_connect": {"prober": "tcp", "timeout": t},
            "http_2xx": {"prober": "http", "timeout": t},
            "icmp": {"prober": "icmp", "timeout": t, "icmp": {"preferred_ip_protocol": "ip4"}},
            "dns": {"prober": "dns", "timeout": t, "dns": dns},
        }
    }


def _target(service: Planned) -> str:
    """What the scrape asks the exporter to probe for ``service``."""
    if service.kind == "http":
        return f"http://127.0.0.1:{service.port}{service.path}"
    if service.kind == "ping":
        return PING_HOST
    return f"127.0.0.1:{service.port}"


def _probe_figures(body: str) -> tuple[bool, float]:
    """probe_success and probe_duration_seconds of a scrape's body."""
    values: dict[str, float] = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if name in ("probe_success", "probe_duration_seconds"):
            values[name] = float(value)
    return values.get("probe_success") == 1.0, values.get("probe_duration_seconds", 0.0)


# The driver's connections to the exporter at most (each an open file).
_CONNECTIONS = 2000


class _Driver:
    """The Prometheus stand-in: scrapes every target once per interval, phases spread."""

    def __init__(self, base: str, services: list[Planned], options: BenchOptions) -> None:
        self.urls = [
            f"{base}/probe?" + f"module={_MODULES[s.kind]}&target={_target(s)}" for s in services
        ]
        self.step = options.interval / len(services)
        self.timeout = options.effective_timeout
        self.done: list[tuple[float, Sample]] = []  # (due, sample)
        self._inflight: set[asyncio.Task[None]] = set()

    async def _scrape(self, session: aiohttp.ClientSession, url: str, due: float) -> None:
        sent = time.time()
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{self.timeout:g}"}
        try:
            async with session.get(url, headers=headers) as resp:
                body = await resp.text()
            ok, took = _probe_figures(body)
            ok = ok and resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok, took = False, time.time() - sent
        self.done.append((due, (sent - due, took, ok)))

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Scrape until cancelled; each scrape is due ``step`` after the one before."""
        origin, k, n = time.time(), 0, len(self.urls)
        while True:
            now = time.time()
            while origin + k * self.step <= now:
                task = asyncio.create_task(
                    self._scrape(session, self.urls[k % n], origin + k * self.step)
                )
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                k += 1
            await asyncio.sleep(origin + k * self.step - time.time())

    async def settle(self) -> None:
        """Let the scrapes in flight end (each is bounded by the probe's timeout)."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self.timeout + END_GRACE)


class BlackboxExporter:
    """The peer ``blackbox_exporter``: probes the workload, scraped by the driver."""

    name = "blackbox_exporter"

    def __init__(self) -> None:
        self.program = find_program(["prometheus-blackbox-exporter", "blackbox_exporter"])

    def unavailable(self, options: BenchOptions) -> str | None:
        """Why this peer cannot run the point, or None."""
        if self.program is None:
            return "blackbox_exporter not installed (Debian: prometheus-blackbox-exporter)"
        if options.kind == "plugin":
            return "blackbox_exporter has no prober that runs a program"
        if options.kind == "ping" and (reason := icmp_unavailable()) is not None:
            return reason
        return None

    async def measure(self, options: BenchOptions, endpoints: Endpoints, home: Path) -> PeerFigures:
        """Run the exporter and the driver in ``home``; its row over a window like pymon's."""
        assert self.program is not None
        config = home / "blackbox.yml"
        await asyncio.to_thread(home.mkdir)
        await asyncio.to_thread(config.write_text, json.dumps(_modules(options.effective_timeout)))
        with reserved_ports(1) as (port,):
            argv = [self.program, f"--config.file={config}"]
            argv += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
            child = await Child.start(argv, home / "out.log")
            try:
                return await self._drive(options, endpoints, child, f"http://127.0.0.1:{port}")
            finally:
                await child.stop()

    async def _drive(
        self, options: BenchOptions, endpoints: Endpoints, child: Child, base: str
    ) -> PeerFigures:
        driver = _Driver(base, plan(options, endpoints), options)
        # Prometheus keeps its connections to an exporter open, and gives up on a scrape
        # at its scrape timeout (the probe's timeout here): an exporter that falls
        # behind then fails scrapes instead of piling up connections without end (a
        # 2,000/s http point ran the driver out of file descriptors).
        connector = aiohttp.TCPConnector(limit=_CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=options.effective_timeout + END_GRACE)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await _healthy(session, base, child)
            scraping = asyncio.create_task(driver.run(session))
            try:
                window: Window = await measure_window(options, child.cpu)
            finally:
                scraping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scraping
            await driver.settle()
        samples = [sample for due, sample in driver.done if window.holds(due)]
        note = f"the exporter only (its driver, Prometheus' part, took {window.bench_cpu:.2f} s)"
        return PeerFigures.of(self.name, samples, window, options, note)


async def _healthy(session: aiohttp.ClientSession, base: str, child: Child) -> None:
    """Wait until the exporter answers; RuntimeError with its log when it does not."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and child.proc.returncode is None:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/-/healthy") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"blackbox_exporter did not start: {child.tail()}")
