"""The rollups' retention: buckets older than ``storage.rollups`` are deleted, a
bounded number a run, so a run stays short however much has come due (a retention
shortened from years to days is worked off over several runs, never in one long
transaction that holds the writers up).

Every node runs it; a delete is idempotent, so two nodes pruning together only do
the same work twice.
"""

from __future__ import annotations

import asyncio
import logging

from pymon.clock import Clock, sleep_or_wake
from pymon.store.base import Store

__all__ = ["PRUNE_EVERY", "PRUNE_LIMIT", "Retention"]

log = logging.getLogger("pymon.store")

#: Seconds between two runs (an hour bucket comes due once an hour).
PRUNE_EVERY = 600.0
#: Buckets one run deletes at most; a run that deleted as many goes on soon after.
PRUNE_LIMIT = 10_000
#: The pause between two runs while more is due, so writers get their turns.
_BUSY_PAUSE = 1.0


class Retention:
    """Prunes buckets older than ``keep`` seconds from ``store`` until :meth:`close`."""

    def __init__(self, store: Store, keep: float, clock: Clock) -> None:
        self.keep = keep
        self._store = store
        self._clock = clock
        self._closing = asyncio.Event()
        #: Buckets deleted since start, and runs finished.
        self.pruned = 0
        self.runs = 0

    async def prune(self) -> int:
        """One run: delete at most :data:`PRUNE_LIMIT` buckets that ended more than
        ``keep`` ago; how many."""
        count = await self._store.prune_rollups(self._clock.time() - self.keep, PRUNE_LIMIT)
        self.pruned += count
        return count

    async def run(self) -> None:
        """Prune every :data:`PRUNE_EVERY` seconds (sooner while more is due) until
        closed; a failure is logged and tried again at the next run."""
        while not self._closing.is_set():
            pause = PRUNE_EVERY
            try:
                if await self.prune() >= PRUNE_LIMIT:
                    pause = _BUSY_PAUSE
            except Exception as exc:
                log.error("pruning old rollups failed, will retry: %s", exc)
            self.runs += 1
            await sleep_or_wake(self._clock, self._closing, pause)

    def close(self) -> None:
        """End :meth:`run` after the run in progress (never inside its transaction)."""
        self._closing.set()
