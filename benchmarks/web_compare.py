"""The web at 10,000 services, source trees side by side: the API's listing and the
services page in a real browser.

From the repository root, with the tree to compare against beside it::

    mkdir /tmp/before && git archive <commit> src | tar -x -C /tmp/before
    .venv/bin/python -m benchmarks.web_compare --trees before=/tmp/before,after=. \\
        [--services 10000] [--requests 40] [--pages 8] [--json PATH]

Each tree's pymon (``TREE/src``) is served by a process of its own, started by this
module (``--serve``) as :mod:`benchmarks.web` serves one: its store open, its states
injected, no checks, uvicorn on 127.0.0.1, on the event loop and collector settings of
``pymon run`` (:mod:`pymon.tuning`). This process is the client of all of them, and
takes turns: each request or page load goes to every tree in turn, the first tree
changing every round, so a busy moment of the machine falls on all of them alike.

``requests``
    ``GET /api/v1/services?limit=N``, ``GET /services`` and ``GET /``, ``--requests`` each per
    tree: the **server time** (:class:`benchmarks.web.ServerTimer`, arrival to last
    body byte) p50/p99, the client's time p50, the size. The trees after the first
    also answer ``fields=name,status,last_check`` and ``format=ndjson`` (the first
    may not know them).
``browser``
    Debian's Chromium (Playwright) opens ``/services`` ``--pages`` times per tree, each
    in a fresh context: first contentful paint, the moment every service is loaded
    (the table's ``data-ready``), then a click on each sortable header: the click's
    script time, and the time to the second frame after it (the sorted rows painted).

There are no thresholds: a timing belongs here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import machine_info
from benchmarks.harness.engine import Daemon
from benchmarks.web import SAMPLES_PATH, build_config, inject_states, percentile_ms, serve

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SORTED_BY = ("status", "name", "message", "last_check", "tags")

# The page's own clock: the click's handler (the sort and the new rows) and the second
# frame after it, by when the browser has laid out and painted them.
SORT_SCRIPT = """async (column) => {
  const header = document.querySelector(`th[data-sort="${column}"]`);
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  await frame();
  const start = performance.now();
  header.click();
  const handled = performance.now();
  await frame();
  await frame();
  return [handled - start, performance.now() - start];
}"""
# The first frame at which the table says every service is in (table.js sets data-ready).
READY_SCRIPT = (
    "() => document.getElementById('services')?.dataset.ready !== undefined && performance.now()"
)
PAINT_SCRIPT = "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"


@dataclass
class Tree:
    """A source tree served by a process of its own."""

    label: str
    path: Path
    process: subprocess.Popen[str]
    port: int
    pymon: str
    figures: dict[str, list[float]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Its web server's URL."""
        return f"http://127.0.0.1:{self.port}"

    def add(self, key: str, value: float) -> None:
        """One more sample of ``key`` (seconds)."""
        self.figures.setdefault(key, []).append(value)


def start_tree(label: str, path: Path, services: int) -> Tree:
    """Serve ``path``'s pymon (its ``src``) with this checkout's benchmarks."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(path / "src"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.web_compare", "--serve", "--services", str(services)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the server of {path} did not start")
    ready = json.loads(line)
    return Tree(label, path, process, ready["port"], ready["pymon"])


def stop_tree(tree: Tree) -> None:
    """Close its stdin (it stops) and wait for it."""
    assert tree.process.stdin is not None
    tree.process.stdin.close()
    try:
        tree.process.wait(30)
    except subprocess.TimeoutExpired:
        tree.process.kill()
        tree.process.wait()


async def serve_one(services: int) -> None:
    """The server process: one line ``{"port", "pymon"}`` once it listens, then serve
    until stdin closes."""
    import pymon

    with tempfile.TemporaryDirectory(prefix="pymon-web-compare-") as tmp:
        daemon = Daemon(build_config(services, Path(tmp)))
        await daemon.store.open()
        inject_states(daemon)
        server, task, port, _ = await serve(daemon)
        print(json.dumps({"port": port, "pymon": pymon.__file__}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
        server.should_exit = True
        await task
        await daemon.store.close()


def in_turn(trees: Sequence[Tree], round_: int) -> list[Tree]:
    """The trees, the first one changing every round."""
    shift = round_ % len(trees)
    return [*trees[shift:], *trees[:shift]]


async def server_times(client: httpx.AsyncClient, tree: Tree) -> list[float]:
    """The server times the tree measured since last asked."""
    samples: list[float] = (await client.get(f"{tree.url}{SAMPLES_PATH}")).json()
    return samples


async def time_requests(trees: Sequence[Tree], services: int, count: int) -> dict[str, Any]:
    """Each path ``count`` times per tree, taking turns; server and client times."""
    paths = {
        "API, JSON": (f"/api/v1/services?limit={services}", False),
        "API, fields=name,status,last_check": (
            f"/api/v1/services?limit={services}&fields=name,status,last_check",
            True,
        ),
        "API, NDJSON": (f"/api/v1/services?limit={services}&format=ndjson", True),
        "services page": ("/services", False),
        "overview page": ("/", False),
    }
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=120) as client:
        for label, (path, new) in paths.items():
            asked = (trees[1:] or trees) if new else trees
            sizes: dict[str, int] = {}
            seen: dict[str, list[float]] = {t.label: [] for t in asked}
            for tree in asked:  # warm: templates, routes, each service's JSON
                await client.get(tree.url + path)
                await server_times(client, tree)
            for round_ in range(count):
                for tree in in_turn(asked, round_):
                    start = time.perf_counter()
                    answer = await client.get(tree.url + path)
                    seen[tree.label].append(time.perf_counter() - start)
                    sizes[tree.label] = len(answer.content)
            figures[label] = {
                "path": path,
                "trees": {
                    tree.label: _summary(
                        await server_times(client, tree), seen[tree.label], sizes[tree.label]
                    )
                    for tree in asked
                },
            }
    return figures


def _summary(server: list[float], client: list[float], size: int) -> dict[str, Any]:
    return {
        "server_p50_ms": round(percentile_ms(server, 50), 1),
        "server_p99_ms": round(percentile_ms(server, 99), 1),
        "client_p50_ms": round(percentile_ms(client, 50), 1),
        "bytes": size,
    }


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--headless=new"],
            headless=True,
        )
        try:
            yield browser
        finally:
            await browser.close()


async def time_page(trees: Sequence[Tree], loads: int) -> dict[str, Any]:
    """``/services`` opened ``loads`` times per tree, taking turns: paint, ready, sorts."""
    async with chromium() as browser:
        for round_ in range(loads):
            for tree in in_turn(trees, round_):
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await page.goto(f"{tree.url}/services")
                ready = await page.wait_for_function(READY_SCRIPT, polling="raf", timeout=120_000)
                tree.add("first paint", (await page.evaluate(PAINT_SCRIPT)) / 1000)
                tree.add("every service loaded", await ready.json_value() / 1000)
                for column in SORTED_BY:
                    handled, painted = await page.evaluate(SORT_SCRIPT, column)
                    tree.add("sort: click handler", handled / 1000)
                    tree.add("sort: to the painted rows", painted / 1000)
                await context.close()
    keys = list(trees[0].figures)
    return {
        key: {
            tree.label: {
                "p50_ms": round(percentile_ms(tree.figures[key], 50), 1),
                "p99_ms": round(percentile_ms(tree.figures[key], 99), 1),
            }
            for tree in trees
        }
        for key in keys
    }


def render(report: dict[str, Any]) -> str:
    """The report as Markdown tables, each tree beside the first."""
    labels: list[str] = report["trees"]
    first = labels[0]
    lines = [f"## The web at {report['services']:,} services, side by side", ""]
    lines += [f"- {label}: `{report['pymon'][label]}`" for label in labels]
    head = " | ".join(f"{label} server p50 / p99" for label in labels)
    lines += [
        "",
        f"| request | {head} | p50 vs {first} | bytes |",
        "|---|" + "---|" * (len(labels) + 2),
    ]
    for name, row in report["requests"].items():
        trees = row["trees"]
        cells = [
            f"{trees[label]['server_p50_ms']} / {trees[label]['server_p99_ms']} ms"
            if label in trees
            else "(no such format)"
            for label in labels
        ]
        base = trees.get(first, {}).get("server_p50_ms")
        ratios = ", ".join(
            f"{trees[label]['server_p50_ms'] / base:.2f}x" for label in labels[1:] if base
        )
        sizes = " / ".join(f"{trees[label]['bytes']:,}" for label in labels if label in trees)
        lines.append(f"| {name} `{row['path']}` | {' | '.join(cells)} | {ratios} | {sizes} |")
    if "browser" in report:
        head = " | ".join(f"{label} p50 / p99" for label in labels)
        lines += ["", f"| services page in Chromium | {head} | p50 vs {first} |"]
        lines += ["|---|" + "---|" * (len(labels) + 1)]
        for name, row in report["browser"].items():
            cells = [f"{row[label]['p50_ms']} / {row[label]['p99_ms']} ms" for label in labels]
            ratios = ", ".join(
                f"{row[label]['p50_ms'] / row[first]['p50_ms']:.2f}x" for label in labels[1:]
            )
            lines.append(f"| {name} | {' | '.join(cells)} | {ratios} |")
    return "\n".join(lines)


async def measure(trees: Sequence[Tree], args: argparse.Namespace) -> dict[str, Any]:
    """Time the served trees in turns: the requests, then the page in Chromium."""
    report: dict[str, Any] = {
        "machine": machine_info(),
        "services": args.services,
        "trees": [t.label for t in trees],
        "pymon": {t.label: t.pymon for t in trees},
        "requests": await time_requests(trees, args.services, args.requests),
    }
    if args.pages:
        report["browser"] = await time_page(trees, args.pages)
    return report


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Serve every tree, time them, stop them."""
    trees: list[Tree] = []
    try:
        for part in args.trees.split(","):
            label, path = part.split("=", 1)
            trees.append(start_tree(label, Path(path).resolve(), args.services))
        return asyncio.run(measure(trees, args))
    finally:
        for tree in trees:
            stop_tree(tree)


def cli() -> None:
    """Parse arguments; compare the trees (or, with --serve, be one tree's server)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default="after=.", help="LABEL=PATH,... (the first: base)")
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40, help="requests per path and tree")
    parser.add_argument("--pages", type=int, default=8, help="page loads per tree (0: none)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        from pymon.tuning import loop_factory, relaxed_gc

        factory, _ = loop_factory()
        with relaxed_gc(), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve_one(args.services))
        return
    if args.pages and not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing: install chromium, or --pages 0")
    report = compare(args)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    cli()
