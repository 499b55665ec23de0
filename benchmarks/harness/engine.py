"""The benchmarks' one contact with pymon's daemon: where it lives, how it is built,
started and stopped, and the counters the bench reads off it.

Everything under benchmarks/ reaches the daemon through this module, so when the
composition root moves (``pymon.daemon`` today) this is the file to re-point.
"""

from __future__ import annotations

from typing import cast

from pymon.config.schema import Config
from pymon.daemon import Daemon
from pymon.store.base import Store

__all__ = ["BenchDaemon", "Daemon"]


class BenchDaemon:
    """A daemon on ``config`` writing to ``store``, as the bench drives it; ``node``
    and ``worker`` name it as ``pymon run --workers N`` names its workers."""

    def __init__(
        self, config: Config, store: object, *, node: str | None = None, worker: int | None = None
    ) -> None:
        # ``store`` is a MeteredStore: a proxy with the Store protocol's methods.
        self._daemon = Daemon(config, store=cast(Store, store), node=node, worker=worker)

    async def start(self) -> None:
        """Start the daemon: every service is scheduled."""
        await self._daemon.start()

    async def stop(self) -> None:
        """Stop it: checks in flight end, the writer flushes."""
        await self._daemon.stop()

    @property
    def skipped_runs(self) -> int:
        """Runs the scheduler dropped because the previous run was still going."""
        return self._daemon.runtime.scheduler.stats.skipped

    def hold(self) -> None:
        """Start no more checks; those in flight run to their end."""
        runtime = self._daemon.runtime
        for name in list(runtime.configs):
            runtime.scheduler.remove(name)

    @property
    def in_flight(self) -> int:
        """Checks running or waiting for a slot right now."""
        return self._daemon.runtime.scheduler.in_flight

    @property
    def shards(self) -> int:
        """Shards this node holds now."""
        return len(self._daemon.membership.epochs)

    @property
    def writer_failures(self) -> int:
        """Batches the writer failed to write."""
        return self._daemon.writer.failures
