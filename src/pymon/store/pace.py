"""How many check results a second one SQLite writer records here: what ``pymon
capacity`` weighs the config's write rate against.

Batches as the daemon's writer sends them (a state row and a result row per check,
upserted over the same services again and again, as in a steady daemon) go to a
throw-away file in the directory given (the configured database's: its disk is the
one that matters), timed around the writes alone.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pymon.model import ServiceState, Status
from pymon.store.base import ResultRecord
from pymon.store.sql import SqlStore

__all__ = ["sqlite_pace"]


async def sqlite_pace(directory: Path | None, *, batch: int = 2000, seconds: float = 2.0) -> float:
    """Checks a second (state and result rows) written in batches of ``batch``, over
    about ``seconds`` of writing, to a new SQLite file in ``directory``."""
    with tempfile.TemporaryDirectory(prefix="pymon-pace-", dir=directory) as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'pace.db'}", history=100)
        await store.open()
        try:
            written, spent, seq = 0, 0.0, 0
            names = [f"pace-{i:06d}" for i in range(batch)]
            while spent < seconds or seq < 2:
                seq += 1
                states = [
                    ServiceState(name, Status.OK, Status.OK, Status.OK, True, seq=seq)
                    for name in names
                ]
                results = [
                    ResultRecord(name, seq, Status.OK, "ok", {"connect_ms": 0.5}, 0.0, 0.001, 0.0)
                    for name in names
                ]
                started = time.perf_counter()
                await store.write(states, results, [])
                spent += time.perf_counter() - started
                written += batch
        finally:
            await store.close()
    return written / spent
