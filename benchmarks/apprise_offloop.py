"""How apprise's blocking sends fare off pymon's loop: its async API against asyncio.to_thread.

A local aiohttp sink answers each POST after ``--delay`` seconds; ``--sends`` notices
go out at once to a ``json://`` URL, either through ``Apprise.async_notify`` (apprise's
own executor) or through ``asyncio.to_thread(Apprise.notify)`` (the loop's default
executor, which pymon shares with name resolution). Meanwhile a ticker measures the
loop's lateness, and a ``getaddrinfo`` probe measures how long a name lookup waits
for a default-executor thread. Run:

    PYTHONPATH=src .venv/bin/python benchmarks/apprise_offloop.py --sends 40 --delay 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from aiohttp import web
from apprise import Apprise, NotifyFormat
from tests.support.servers import reserved_port

logging.getLogger("apprise").propagate = False


async def sink(delay: float) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/n", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = reserved_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        lateness.append(time.perf_counter() - start - 0.005)


async def lookup(stop: asyncio.Event, waits: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = time.perf_counter()
        await loop.getaddrinfo("localhost", 80)
        waits.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)


async def run(mode: str, sends: int, delay: float) -> None:
    runner, port = await sink(delay)
    url = f"json://127.0.0.1:{port}/n"

    async def one() -> bool:
        notifier = Apprise()
        notifier.add(url)
        if mode == "async":
            result = await notifier.async_notify(
                body="b", title="t", body_format=NotifyFormat.TEXT, timeout=30
            )
        else:
            result = await asyncio.to_thread(
                notifier.notify, body="b", title="t", body_format=NotifyFormat.TEXT, timeout=30
            )
        return bool(result)

    await one()  # apprise loads its plugins once, outside the measurement
    stop = asyncio.Event()
    lateness: list[float] = []
    waits: list[float] = []
    tasks = [asyncio.create_task(ticker(stop, lateness)), asyncio.create_task(lookup(stop, waits))]
    start = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(sends)))
    elapsed = time.perf_counter() - start
    stop.set()
    await asyncio.gather(*tasks)
    await runner.cleanup()
    lateness.sort()
    print(
        f"{mode:8} {sends} sends, {sum(results)} ok in {elapsed:.2f}s; loop lateness "
        f"p50 {lateness[len(lateness) // 2] * 1000:.1f} ms, p99 "
        f"{lateness[int(len(lateness) * 0.99)] * 1000:.1f} ms; getaddrinfo wait "
        f"median {statistics.median(waits) * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.5)
    args = parser.parse_args()
    for mode in ("async", "thread"):
        asyncio.run(run(mode, args.sends, args.delay))


if __name__ == "__main__":
    main()
