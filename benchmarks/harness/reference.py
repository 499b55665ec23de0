"""The reference phase: the run's two operations without pymon, to measure pymon against.

What the machine charges for a bare aiohttp GET and a bare connect, measured just
before the run against the same targets (see ``ReferenceFigures`` in report.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

import aiohttp

from benchmarks.harness.targets import Target
from pymon.checks.tcp import connect_and_close

__all__ = ["measure_reference"]

# The length of one round of each operation, and how many operations it keeps in flight.
REFERENCE_ROUND = 0.25
REFERENCE_CONCURRENCY = 50


async def measure_reference(
    target: Target, seconds: float, concurrency: int = REFERENCE_CONCURRENCY
) -> tuple[float, float]:
    """CPU seconds of one bare aiohttp GET and of one bare connect, measured alternately.

    The connect is the cheapest pymon knows, a C socket connected by hand
    (``checks.tcp.connect_and_close``, what a connect-only tcp check does).

    Half of ``seconds`` each, in rounds of a quarter second so that a change in the
    machine's speed falls on both; ``concurrency`` operations in flight at a time.
    """
    urls = [f"http://127.0.0.1:{port}/ref" for port in target.http_ports]
    tcp = target.tcp_ports

    async def get(session: aiohttp.ClientSession, i: int) -> None:
        async with session.get(urls[i % len(urls)]) as resp:
            await resp.read()

    async def connect(i: int) -> None:
        await connect_and_close("127.0.0.1", tcp[i % len(tcp)])

    get_cpu = connect_cpu = 0.0
    gets = connects = 0
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            cpu, done = await _reference_round(functools.partial(get, session), concurrency)
            get_cpu, gets = get_cpu + cpu, gets + done
            cpu, done = await _reference_round(connect, concurrency)
            connect_cpu, connects = connect_cpu + cpu, connects + done
    return get_cpu / max(1, gets), connect_cpu / max(1, connects)


async def _reference_round(
    op: Callable[[int], Awaitable[None]], concurrency: int
) -> tuple[float, int]:
    """Run ``op`` for REFERENCE_ROUND seconds, ``concurrency`` at a time: (loop CPU, ops)."""
    stop = time.monotonic() + REFERENCE_ROUND
    done = 0

    async def worker(first: int) -> None:
        nonlocal done
        i = first
        while time.monotonic() < stop:
            await op(i)
            done += 1
            i += concurrency

    cpu0 = time.thread_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.thread_time() - cpu0, done
