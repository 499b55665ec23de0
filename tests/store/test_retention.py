"""The rollups' retention: ``storage.rollups`` read from the config, old buckets pruned
in bounded runs on the clock, the current ones kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymon.config.load import load_config_text
from pymon.store import retention
from pymon.store.retention import Retention
from pymon.store.sql import SqlStore
from pymon.uptime import DAY, HOUR, Bucket
from tests.config.helpers import issues
from tests.support.clock import FakeClock
from tests.support.waiting import wait_for

NOW = 1_800_000_000 // DAY * DAY + 600.0


@pytest.fixture
async def memory_store() -> AsyncIterator[SqlStore]:
    store = SqlStore("sqlite://")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def test_the_retention_is_400_days_unless_configured(tmp_path: Path) -> None:
    assert load_config_text("services: []").storage.rollups == 400 * DAY
    assert load_config_text("storage: {rollups: 90d}").storage.rollups == 90 * DAY
    found = issues(tmp_path, "storage:\n  rollups: 1h\n")
    assert len(found) == 1 and found[0].startswith("FILE:2: storage.rollups:")


async def hours_left(store: SqlStore) -> int:
    return len(await store.rollups(None, 0, NOW + DAY, HOUR))


async def test_old_buckets_are_pruned_in_bounded_runs_on_the_clock(
    memory_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PRUNE_LIMIT", 3)
    keep = 2 * DAY
    old = [Bucket("web", NOW - keep - k * HOUR, HOUR) for k in range(1, 8)]
    current = [Bucket("web", NOW - keep + k * HOUR, HOUR) for k in range(3)]
    await memory_store.write([], [], [], rollups=[*old, *current])
    clock = FakeClock(NOW)
    pruner = Retention(memory_store, keep, clock)
    task = asyncio.create_task(pruner.run())

    async def after(seconds: float, runs: int) -> int:
        await clock.advance(seconds)
        await wait_for(lambda: pruner.runs == runs)
        return pruner.pruned

    try:
        # Runs that reach the limit are followed by another a second later.
        assert await after(0.0, 1) == 3
        assert await after(1.0, 2) == 6
        assert await after(1.0, 3) == 7
        assert await hours_left(memory_store) == 3
        # Then every 10 minutes, pruning what has come due meanwhile.
        assert await after(retention.PRUNE_EVERY, 4) == 7
        for runs in range(5, 10):
            await after(retention.PRUNE_EVERY, runs)
        assert pruner.pruned == 8 and await hours_left(memory_store) == 2
    finally:
        pruner.close()
        await asyncio.wait_for(task, 5)
