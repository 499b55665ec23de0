"""The web server at 10,000 services: page and API server time, SSE fan-out, bus cost.

From the repository root::

    .venv/bin/python -m benchmarks.web [--services 10000] [--requests 50]
        [--clients 100] [--rounds 20] [--changes 100] [--json PATH]

What it measures (no checks run: the daemon is built with its store open and
its states injected, and its web app is served by uvicorn on 127.0.0.1 as the
daemon serves it; nothing else competes for the loop):

``requests``
    ``GET {base}/`` (overview), ``GET {base}/services`` (the page) and ``GET
    /api/v1/services?limit=N``, one at a time, ``--requests`` each: the **server
    time** (an ASGI wrapper's clock from the request's arrival to the last body
    byte handed to the server) and the time the client saw, p50/p99, and the size.
``fan-out``
    ``--clients`` stream clients in a **separate process** (so their parsing does
    not cost the server's CPU) read ``/api/v1/stream``; the benchmark then changes
    ``--changes`` services per round (new state + ``StateChanged`` on the bus, as
    ``Daemon._apply`` does), ``--rounds`` rounds half a second apart. Delivery
    latency = arrival at a client minus the change (wall clock, same machine), p50/p99;
    it includes the stream's 200 ms coalescing window by design. The server's
    CPU over the rounds (user + system, all threads) per change and per frame sent.
``bus``
    ``Bus.publish(StateChanged(name))`` with 0 and with 100 subscribers, ns per
    publish (the 100 are drained between batches, so none is dropped).

Ratios are printed beside the figures; there are no thresholds (a timing belongs
here, never in a pass/fail test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from benchmarks.harness import machine_info
from benchmarks.harness.engine import Daemon
from pymon.config.load import load_config_text
from pymon.config.schema import Config
from pymon.engine.bus import Bus
from pymon.events import BusItem, StateChanged
from pymon.model import ServiceState, Status
from pymon.web.app import create_app

# The mix of statuses injected (per 100 services): mostly ok, as in real life.
MIX = [Status.OK] * 90 + [Status.WARN] * 4 + [Status.FAILED] * 3 + [Status.ERROR] * 2
MIX += [Status.UNKNOWN]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile_ms(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``samples`` (seconds), in milliseconds."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))] * 1000


SAMPLES_PATH = "/__bench/samples"
"""Where a :class:`ServerTimer` answers its samples (and forgets them): how a benchmark
in another process reads them."""


class ServerTimer:
    """ASGI wrapper: how long the app took per request, until its last body byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == SAMPLES_PATH:
            body = json.dumps(self.samples).encode()
            self.samples.clear()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or scope["path"].endswith("/stream"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.samples.append(time.perf_counter() - start)

        await self.app(scope, receive, timed_send)


def build_config(services: int, workdir: Path) -> Config:
    # JSON is YAML: the loader flattens each service's check keys as a config file's.
    return load_config_text(
        json.dumps(
            {
                "storage": {"url": f"sqlite:///{workdir}/bench.db"},
                "web": {"listen": "127.0.0.1:0"},
                "services": [
                    {
                        "name": f"svc-{i:05d}",
                        "type": "tcp",
                        "host": "127.0.0.1",
                        "port": 9,
                        "tags": [f"rack-{i % 20}", "bench"],
                    }
                    for i in range(services)
                ],
            }
        )
    )


def inject_states(daemon: Daemon) -> None:
    now = time.time()
    for i, name in enumerate(daemon.runtime.configs):
        status = MIX[i % len(MIX)]
        daemon.runtime.states[name] = ServiceState(
            name,
            status=status,
            confirmed_status=status,
            confirmed=True,
            count=3,
            message=f"connected in {i % 50 + 1} ms" if status is Status.OK else "refused",
            metrics={"connect_ms": float(i % 50 + 1)},
            last_check=now - i % 60,
            last_change=now - 3600 - i,
            seq=100 + i,
        )


async def serve(daemon: Daemon) -> tuple[uvicorn.Server, asyncio.Task[None], int, ServerTimer]:
    timer = ServerTimer(create_app(daemon.runtime))
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    server = uvicorn.Server(
        uvicorn.Config(timer, log_level="warning", access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return server, task, sock.getsockname()[1], timer


async def time_requests(
    base: str, paths: dict[str, str], count: int, timer: ServerTimer
) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for label, path in paths.items():
            first = await client.get(path)  # warm caches (templates, routes)
            if first.status_code != 200:
                figures[label] = {"path": path, "status": first.status_code}
                continue
            timer.samples.clear()
            seen: list[float] = []
            for _ in range(count):
                start = time.perf_counter()
                answer = await client.get(path)
                seen.append(time.perf_counter() - start)
            figures[label] = {
                "path": path,
                "status": answer.status_code,
                "bytes": len(answer.content),
                "server_p50_ms": round(percentile_ms(timer.samples, 50), 2),
                "server_p99_ms": round(percentile_ms(timer.samples, 99), 2),
                "client_p50_ms": round(percentile_ms(seen, 50), 2),
                "client_p99_ms": round(percentile_ms(seen, 99), 2),
            }
    return figures


async def fan_out(
    daemon: Daemon, url: str, clients: int, rounds: int, changes: int
) -> dict[str, Any]:
    expected = rounds * changes
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.web",
        "--stream-clients",
        url,
        "--clients",
        str(clients),
        "--expect",
        str(expected),
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    ready = await asyncio.wait_for(child.stdout.readline(), 60)
    if ready.strip() != b"ready":
        raise RuntimeError(f"stream clients did not start: {ready!r}")
    names = list(daemon.runtime.configs)
    cpu0, wall0 = _cpu(), time.perf_counter()
    for r in range(rounds):
        for k in range(changes):
            name = names[(r * changes + k) % len(names)]
            state = daemon.runtime.states[name]
            daemon.runtime.states[name] = replace(
                state, seq=state.seq + 1, message=f"t={time.time():.6f}", last_check=time.time()
            )
            daemon.bus.publish(StateChanged(name))
        await asyncio.sleep(0.5)
    out, _ = await asyncio.wait_for(child.communicate(), 120)
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    result = json.loads(out)
    latencies: list[float] = result.pop("latencies")
    frames = result["frames"]
    return {
        "clients": clients,
        "changes": expected,
        "frames_received": frames,
        "frames_expected": expected * clients,
        "dropped_clients": result["ended_early"],
        "latency_p50_ms": round(percentile_ms(latencies, 50), 1),
        "latency_p99_ms": round(percentile_ms(latencies, 99), 1),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_share": round(cpu / wall, 3),
        "server_cpu_per_change_us": round(cpu / expected * 1e6, 1),
        "server_cpu_per_frame_us": round(cpu / max(1, frames) * 1e6, 2),
    }


async def stream_clients(url: str, clients: int, expect: int) -> None:
    """The child process: ``clients`` streams; prints 'ready', then a JSON summary."""
    latencies: list[float] = []
    counts = [0] * clients
    ended_early = 0
    connected = 0
    all_connected = asyncio.Event()

    async def one(i: int, client: httpx.AsyncClient) -> None:
        nonlocal connected, ended_early
        async with client.stream("GET", url) as response:
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "hello":
                    connected += 1
                    if connected == clients:
                        all_connected.set()
                elif line.startswith("data:") and kind == "state":
                    now = time.time()
                    message = json.loads(line[5:])["message"]
                    if message.startswith("t="):
                        latencies.append(now - float(message[2:]))
                        counts[i] += 1
                        if counts[i] >= expect:
                            return
        ended_early += 1

    limits = httpx.Limits(max_connections=clients + 10)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(one(i, client)) for i in range(clients)]
        await asyncio.wait_for(all_connected.wait(), 60)
        print("ready", flush=True)
        _, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
    print(json.dumps({"latencies": latencies, "frames": sum(counts), "ended_early": ended_early}))


def bus_cost(subscribers: int, publishes: int) -> float:
    """ns per ``publish(StateChanged(name))`` with ``subscribers`` listening."""
    bus: Bus[BusItem] = Bus()
    subs = [bus.subscribe(maxsize=2000) for _ in range(subscribers)]
    batch = 1000
    best = math.inf
    for _ in range(5):
        elapsed = 0.0
        for _ in range(publishes // batch):
            start = time.perf_counter()
            for _ in range(batch):
                bus.publish(StateChanged("svc-00001"))
            elapsed += time.perf_counter() - start
            for sub in subs:
                sub._items.clear()  # drain outside the clock, as a reader would
        best = min(best, elapsed / publishes * 1e9)
    assert not any(s.dropped for s in subs)
    return best


async def main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine_info(), "services": args.services}
    with tempfile.TemporaryDirectory(prefix="pymon-web-bench-") as tmp:
        daemon = Daemon(build_config(args.services, Path(tmp)))
        await daemon.store.open()
        inject_states(daemon)
        server, task, port, timer = await serve(daemon)
        base = f"http://127.0.0.1:{port}"
        try:
            paths = {
                "overview page": "/",
                "services page": "/services",
                "services API": f"/api/v1/services?limit={args.services}",
            }
            report["requests"] = await time_requests(base, paths, args.requests, timer)
            report["fan_out"] = await fan_out(
                daemon, f"{base}/api/v1/stream", args.clients, args.rounds, args.changes
            )
        finally:
            server.should_exit = True
            await task
            await daemon.store.close()
    zero = bus_cost(0, 1_000_000)
    hundred = bus_cost(100, 100_000)
    report["bus"] = {
        "publish_0_subscribers_ns": round(zero, 1),
        "publish_100_subscribers_ns": round(hundred, 1),
        "core_share_at_2000_per_s_0_subs": round(zero * 2000 / 1e9, 6),
        "core_share_at_2000_per_s_100_subs": round(hundred * 2000 / 1e9, 6),
    }
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"## Web at {report['services']:,} services", ""]
    lines += ["| request | server p50 | server p99 | client p50 | client p99 | bytes |"]
    lines += ["|---|---|---|---|---|---|"]
    api = report["requests"].get("services API", {}).get("server_p50_ms")
    for label, r in report["requests"].items():
        if "server_p50_ms" not in r:
            lines.append(f"| {label} `{r['path']}` | HTTP {r['status']} | | | | |")
            continue
        ratio = f" ({r['server_p50_ms'] / api:.2f}x API)" if api else ""
        lines.append(
            f"| {label} `{r['path']}` | {r['server_p50_ms']} ms{ratio} | {r['server_p99_ms']} ms"
            f" | {r['client_p50_ms']} ms | {r['client_p99_ms']} ms | {r['bytes']:,} |"
        )
    f = report["fan_out"]
    lines += [
        "",
        f"SSE fan-out: {f['clients']} clients, {f['changes']:,} state changes: "
        f"{f['frames_received']:,}/{f['frames_expected']:,} frames delivered, "
        f"{f['dropped_clients']} clients dropped; latency p50 {f['latency_p50_ms']} ms, "
        f"p99 {f['latency_p99_ms']} ms (200 ms coalescing included); server CPU "
        f"{f['server_cpu_s']} s ({f['server_cpu_share']:.0%} of a core), "
        f"{f['server_cpu_per_change_us']} µs per change, {f['server_cpu_per_frame_us']} µs "
        "per frame sent.",
    ]
    b = report["bus"]
    ratio = b["publish_100_subscribers_ns"] / b["publish_0_subscribers_ns"]
    lines += [
        "",
        f"Bus publish: {b['publish_0_subscribers_ns']} ns with 0 subscribers, "
        f"{b['publish_100_subscribers_ns']} ns with 100 ({ratio:.0f}x); at 2,000 results/s "
        f"that is {b['core_share_at_2000_per_s_0_subs']:.4%} and "
        f"{b['core_share_at_2000_per_s_100_subs']:.2%} of a core.",
    ]
    return "\n".join(lines)


def cli() -> None:
    """Parse arguments; run the benchmark (or, with --stream-clients, the client process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50, help="requests per URL")
    parser.add_argument("--clients", type=int, default=100, help="stream clients")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of state changes")
    parser.add_argument("--changes", type=int, default=100, help="services changed per round")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--stream-clients", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream_clients:
        asyncio.run(stream_clients(args.stream_clients, args.clients, args.expect))
        return
    report = asyncio.run(main(args))
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    cli()
