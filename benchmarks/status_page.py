"""A public status page of 200 components under load: requests/s and the daemon's CPU.

From the repository root (``wrk`` from Debian: ``apt-get install wrk``)::

    .venv/bin/python -m benchmarks.status_page [--components 200] [--duration 15]
        [--connections 50] [--threads 2] [--json PATH]

It writes a config of ``--components`` tcp services (checked every 5 s against the
benchmark's target process on 127.0.0.1) and two status pages showing every one of
them in groups of 20: ``cached`` (the default ``cache: 10s``) and ``uncached``
(``cache: 0s``: every request renders the page). It starts a real ``pymon run``
with that config, waits until every service has a verdict, then for each page and
form (HTML, JSON) runs::

    wrk -t THREADS -c CONNECTIONS -d DURATION --latency -H 'Accept-Encoding: gzip' URL

and reads the daemon's CPU (user + system, from ``/proc/PID/stat``) before and
after. The daemon's CPU over an idle stretch of the same length (checks only) is
measured first, so each row's **request CPU** is what serving the requests added:
reported per 1,000 requests, and as the share of one core that 1,000 requests/s
would take. ``wrk`` runs on the same machine and takes its own CPU; the
requests/s it reaches is bounded by that too. There are no thresholds: a timing
belongs here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.servers import reserved_port

from benchmarks.harness import machine_info
from benchmarks.harness.targets import TargetProcess

ROOT = Path(__file__).resolve().parents[1]
GROUP_SIZE = 20
FORMS = ("cached", "cached.json", "uncached", "uncached.json")


def config(components: int, tcp_ports: list[int], web_port: int, workdir: Path) -> str:
    """The daemon's config: ``components`` tcp services and the two pages (JSON is YAML)."""
    names = [f"svc-{k:04d}" for k in range(components)]
    groups = [
        {
            "name": f"Group {g + 1}",
            "components": [
                {"name": f"Component {k}", "service": names[k]}
                for k in range(g * GROUP_SIZE, min((g + 1) * GROUP_SIZE, components))
            ],
        }
        for g in range((components + GROUP_SIZE - 1) // GROUP_SIZE)
    ]
    doc = {
        "storage": {"url": f"sqlite:///{workdir}/pymon.db"},
        "web": {"listen": f"127.0.0.1:{web_port}"},
        "log": {"level": "warning"},
        "defaults": {"interval": "5s", "timeout": "2s"},
        "services": [
            {
                "name": name,
                "type": "tcp",
                "host": "127.0.0.1",
                "port": tcp_ports[k % len(tcp_ports)],
            }
            for k, name in enumerate(names)
        ],
        "status_pages": [
            {"slug": "cached", "title": "Cached", "groups": groups},
            {"slug": "uncached", "title": "Uncached", "cache": "0s", "groups": groups},
        ],
    }
    return json.dumps(doc, indent=1)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def until_ready(url: str, components: int, within: float = 120.0) -> None:
    """Until the daemon answers and every service has a verdict."""
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                answer = await client.get(f"{url}/api/v1/services")
                rows = answer.json().get("services", []) if answer.is_success else []
                if len(rows) == components and all(r["status"] != "unknown" for r in rows):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("pymon never got ready")


def run_wrk(url: str, threads: int, connections: int, duration: int) -> dict[str, Any]:
    """One wrk run: its command, requests, requests/s, latency p50/p99 (ms), errors."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-H",
        "Accept-Encoding: gzip",
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "command": " ".join(command[:-3]) + f" -H 'Accept-Encoding: gzip' {url}",
        "requests": requests,
        "requests_per_s": rate,
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _latency(out: str, percent: str) -> float:
    found = re.search(rf"^\s+{re.escape(percent)}\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
    if found is None:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return round(float(found.group(1)) * scale, 2)


def start_daemon(path: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """``pymon run -c PATH`` of this checkout, its log in ``workdir``."""
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.Popen(
        [sys.executable, "-m", "pymon", "run", "-c", str(path)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "pymon.log").open("wb"),
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    target = await TargetProcess.start(4)
    workdir = Path(tempfile.mkdtemp(prefix="pymon-status-bench-"))
    web_port = reserved_port()
    path = workdir / "pymon.yaml"
    path.write_text(config(args.components, target.tcp_ports, web_port, workdir))
    daemon = start_daemon(path, workdir)
    url = f"http://127.0.0.1:{web_port}"
    rows: list[dict[str, Any]] = []
    try:
        await until_ready(url, args.components)
        async with httpx.AsyncClient() as client:
            sizes: dict[str, tuple[int, int]] = {}
            for form in FORMS:
                plain = await client.get(f"{url}/status/{form}")
                gzip = {"accept-encoding": "gzip"}
                zipped = await client.get(f"{url}/status/{form}", headers=gzip)
                sizes[form] = (len(plain.content), int(zipped.headers["content-length"]))
        before = process_cpu(daemon.pid)
        await asyncio.sleep(args.duration)
        idle = (process_cpu(daemon.pid) - before) / args.duration
        for form in FORMS:
            before = process_cpu(daemon.pid)
            started = time.monotonic()
            result = await asyncio.to_thread(
                run_wrk, f"{url}/status/{form}", args.threads, args.connections, args.duration
            )
            elapsed = time.monotonic() - started
            cpu = process_cpu(daemon.pid) - before
            # What serving added over the checks: CPU ms a request, which is also the
            # share of one core 1,000 requests a second take (x ms * 1,000/s = x s/s).
            per_request_ms = max(cpu - idle * elapsed, 0.0) / max(result["requests"], 1) * 1000
            size, size_gzip = sizes[form]
            rows.append(
                {
                    "page": form,
                    **result,
                    "bytes": size,
                    "bytes_gzip": size_gzip,
                    "daemon_cpu_s": round(cpu, 2),
                    "daemon_cpu_share": round(cpu / elapsed, 3),
                    "cpu_ms_per_request": round(per_request_ms, 3),
                }
            )
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        await target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "components": args.components,
        "duration_s": args.duration,
        "idle_daemon_cpu_share": round(idle, 4),
        "rows": rows,
        "machine": machine_info(),
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['components']} components; daemon idle (checks only): "
        f"{report['idle_daemon_cpu_share'] * 100:.1f} % of a core",
        "",
        "| page | requests/s | p50 ms | p99 ms | body (gzip) | daemon CPU | "
        "CPU ms / request | core share at 1,000 req/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['page']} | {row['requests_per_s']:,.0f} | {row['p50_ms']} | {row['p99_ms']} "
            f"| {row['bytes'] / 1024:,.0f} kB ({row['bytes_gzip'] / 1024:,.1f} kB) "
            f"| {row['daemon_cpu_share'] * 100:.0f} % | {row['cpu_ms_per_request']:.3f} "
            f"| {row['cpu_ms_per_request'] * 100:.1f} % |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--components", type=int, default=200)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    report = asyncio.run(measure(args))
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
