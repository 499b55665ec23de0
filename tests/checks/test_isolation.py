"""Hostile targets never delay a healthy check running beside them."""

from __future__ import annotations

import asyncio

from pymon.model import Status
from tests.checks.targets import RawServer, RunCheck, until_eof


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    for byte in b"HTTP/1.1 200 OK\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.2)
    await reader.read()


async def test_hanging_targets_do_not_delay_healthy_checks(
    check: RunCheck, raw_server: RawServer, web_url: str
) -> None:
    async with raw_server(until_eof) as silent, raw_server(_drip) as drip:
        hostile = [
            check("tcp", {"host": "127.0.0.1", "port": silent, "expect": "220"}),
            check("http", {"url": f"http://127.0.0.1:{silent}/"}),
            check("http", {"url": f"http://127.0.0.1:{drip}/"}),
        ]
        healthy = [
            check("http", {"url": f"{web_url}/", "contains": ["Hello"]}),
            check("tcp", {"host": "127.0.0.1", "port": silent}),
        ]
        results = await asyncio.gather(*hostile, *healthy)
    bad, good = results[: len(hostile)], results[len(hostile) :]
    assert all(r.status is Status.FAILED and "timed out" in r.message for r in bad), bad
    assert all(r.status is Status.OK for r in good), good
    # Each healthy check took a small fraction of what the stalled ones waited.
    assert max(r.duration for r in good) * 4 < min(r.duration for r in bad)
