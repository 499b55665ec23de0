"""Batches the engine's writes so the store sees one transaction per flush (of at most
``max_batch`` services), not per check.

Reads of history and events go through the writer too, so what is queued but not
yet written is answered from memory and a read never forces a flush.

States are coalesced per service (only the newest is written); results and events
are kept in order; rollups' deltas are merged per bucket (service, width, start) and
land in the same transaction as their service's state, or not at all. A batch with
events (a transition) is flushed at once rather than after ``flush_interval``, so
a transition is on disk within one round trip.
A failed flush keeps its data and retries with backoff: nothing is dropped while
the process lives, except what a fence refuses: rows of shards another node took
(docs/cluster.md) are dropped, and the node is told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pymon.clock import Clock, SystemClock
from pymon.errors import Fenced
from pymon.model import Event, Incident, Notice, ServiceState
from pymon.store.base import Fence, ResultRecord, Store
from pymon.text import spans
from pymon.uptime import HOUR, Bucket, Delta, Tally, Totals, credit, days_of, frozen, merge

__all__ = ["BatchWriter"]

log = logging.getLogger("pymon.store")

_T = TypeVar("_T")

#: The widths :meth:`BatchWriter.credit` credits (the days follow from the hours).
_HOURS = (HOUR,)


class BatchWriter:
    """Collects writes and flushes them to ``store`` in the background."""

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.5,
        max_batch: int = 5000,
        clock: Clock | None = None,
        on_notices: Callable[[], None] | None = None,
        fence: Callable[[], Fence] | None = None,
        on_fenced: Callable[[frozenset[int]], None] | None = None,
    ) -> None:
        self._store = store
        # What each write must still hold (the node's shard epochs), and who hears
        # of shards a write found taken.
        self._fence = fence
        self._on_fenced = on_fenced
        self._interval = flush_interval
        self._max_batch = max_batch
        self._clock = clock or SystemClock()
        # Told after a flush that stored notices: the outbox sends only what is durable.
        self._on_notices = on_notices
        self._states: dict[str, ServiceState] = {}
        self._results: list[ResultRecord] = []
        self._events: list[Event] = []
        self._incidents: dict[str, Incident] = {}
        self._notices: list[Notice] = []
        # Deltas handed to add (either width), and the hours credit adds checks to:
        # their days are derived at the flush (uptime.days_of), so a check costs the
        # loop one tally, not two.
        self._rollups: dict[tuple[str, int, float], Tally] = {}
        self._hours: dict[tuple[str, int, float], Tally] = {}
        # The batch being written now: still answered from memory until it lands.
        self._writing: tuple[list[ResultRecord], list[Event]] = ([], [])
        # The parts of the flush under way not landed yet, and a count that is odd
        # while one is being written: a read of the rollups knows whether the store
        # moved under it (a part landed) and reads again.
        self._parts: list[_Rows] = []
        self._landing = 0
        self._urgent = asyncio.Event()
        self._lock = asyncio.Lock()
        self.flushes = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """Results, events and notices waiting to be written."""
        return len(self._results) + len(self._events) + len(self._notices)

    def unwritten_events(self) -> list[Event]:
        """Events not yet in the store (being written or queued), oldest first."""
        return [*self._writing[1], *self._events]

    async def history(self, service: str, limit: int) -> list[ResultRecord]:
        """``service``'s newest results, newest first: the store's rows and, before
        them, what is not written yet. A read never forces a write."""
        fresh = [r for r in (*self._writing[0], *self._results) if r.service == service]
        stored = await self._store.history(service, limit)
        newest = stored[0].seq if stored else -1
        return ([r for r in reversed(fresh) if r.seq > newest] + stored)[:limit]

    async def events(self, limit: int, service: str | None = None) -> list[Event]:
        """The newest events (of ``service`` if given), newest first, written or not."""
        fresh = [e for e in self.unwritten_events() if service is None or e.service == service]
        stored = await self._store.events(limit, service)
        return (fresh[::-1] + [e for e in stored if e not in fresh])[:limit]

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int
    ) -> list[Bucket]:
        """The buckets of ``names`` (every service when None) overlapping the window:
        the store's rows merged with the deltas not written yet, by service then
        start. A read never forces a write: when a part lands while the store is
        read, it reads again (and after a few tries waits for the flush to end)."""
        return await self._steady(lambda: self._rollups_now(names, since, until, width))

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        """What :meth:`rollups` answers, added up per service (time scaled to the share
        of each bucket inside the window) without a Bucket per stored row: the
        store's sums (``Store.totals``) plus the deltas not written yet. For a report
        over many services: :func:`pymon.uptime.total` makes each one's uptime."""
        return await self._steady(lambda: self._totals_now(names, since, until, width, now))

    async def _steady(self, read: Callable[[], Awaitable[_T]]) -> _T:
        """``read`` of the store and the unwritten deltas, again when a part of a flush
        landed meanwhile (after a few tries: while no flush runs)."""
        for attempt in range(4):
            if attempt == 3:
                async with self._lock:
                    return await read()
            mark = self._landing
            if mark % 2:
                await asyncio.sleep(0)
                continue
            found = await read()
            if self._landing == mark:
                return found
        raise AssertionError("unreachable")  # pragma: no cover

    def _fresh(
        self, names: Sequence[str] | None, since: float, until: float, width: int
    ) -> list[Delta]:
        """The deltas not in the store yet (being written or queued) of ``names``
        (every service when None) overlapping the window."""
        wanted = None if names is None else set(names)
        hours = list(self._hours.values())
        pending = hours if width == HOUR else days_of(hours)
        return [
            b
            for b in (
                *(b for part in self._parts for b in part.rollups),
                *self._rollups.values(),
                *pending,
            )
            if b.width == width
            and b.start < until
            and b.start + b.width > since
            and (wanted is None or b.service in wanted)
        ]

    async def _totals_now(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int,
        now: float | None,
    ) -> dict[str, Totals]:
        fresh = self._fresh(names, since, until, width)
        found = await self._store.totals(names, since, until, width, now=now)
        for delta in fresh:
            found.setdefault(delta.service, Totals()).add_within(delta, since, until, now)
        return found

    async def _rollups_now(
        self, names: Sequence[str] | None, since: float, until: float, width: int
    ) -> list[Bucket]:
        fresh = [frozen(b) for b in self._fresh(names, since, until, width)]
        stored = await self._store.rollups(names, since, until, width)
        merged = {(b.service, b.start): b for b in stored}
        for bucket in fresh:
            key = (bucket.service, bucket.start)
            held = merged.get(key)
            merged[key] = bucket if held is None else merge(held, bucket)
        return [merged[key] for key in sorted(merged)]

    def unwritten_incidents(self) -> list[Incident]:
        """Incidents queued or being written, not yet in the store."""
        return [
            *(i for part in self._parts for i in part.incidents),
            *self._incidents.values(),
        ]

    def add(
        self,
        state: ServiceState,
        result: ResultRecord | None,
        events: list[Event],
        incident: Incident | None = None,
        notices: list[Notice] | None = None,
        rollups: Sequence[Bucket] = (),
    ) -> None:
        """Queue one service's new state, its result, the events it caused, its incident,
        the notices decided with it and its rollups' deltas (these land in the same
        transaction)."""
        self._states[state.name] = state
        if rollups:
            tallies = self._rollups
            for bucket in rollups:
                key = (bucket.service, bucket.width, bucket.start)
                held = tallies.get(key)
                if held is None:
                    tallies[key] = Tally.of(bucket)
                else:
                    held.add(bucket)
        if result is not None:
            self._results.append(result)
        if incident is not None:
            self._incidents[incident.id] = incident
        if notices:
            self._notices.extend(notices)
        if events or notices:
            self._events.extend(events)
            self._urgent.set()
        elif len(self._results) >= self._max_batch:
            self._urgent.set()

    def credit(
        self, previous: ServiceState, state: ServiceState, duration: float | None, gap: float
    ) -> None:
        """Credit the decision that took ``previous`` to ``state`` to the rollups'
        pending tallies (:func:`pymon.uptime.credit`), without a Bucket per check.
        Call it with the :meth:`add` of ``state``, with no await between: both land
        in the same flush."""
        credit(self._hours, previous, state, duration, gap, _HOURS)

    async def flush(self) -> None:
        """Write everything queued so far, at most ``max_batch`` services' rows per
        transaction; on failure what did not land stays queued and this raises.

        A node that fell behind had tens of thousands of services queued, and one
        transaction for all of them held SQLite's single write lock for seconds: the
        heartbeats of the other nodes on the file waited past their leases, and the
        cluster handed its shards back and forth (docs/performance.md, "Two workers
        on two cores"). Each service's state, results, events, incident and notices
        still land together.
        """
        async with self._lock:
            hours = list(self._hours.values())
            queued = _Rows(
                list(self._states.values()),
                self._results,
                self._events,
                list(self._incidents.values()),
                self._notices,
                [*self._rollups.values(), *hours, *days_of(hours)],
            )
            if not queued:
                return
            self._states, self._results, self._events = {}, [], []
            self._incidents, self._notices, self._rollups, self._hours = {}, [], {}, {}
            self._writing = (queued.results, queued.events)
            parts = self._parts = queued.split(self._max_batch)
            try:
                while parts:
                    part = parts[0]
                    fence = self._fence() if self._fence is not None else None
                    self._landing += 1
                    try:
                        await self._store.write(*part.tables(), fence=fence)
                    except Fenced as exc:
                        assert fence is not None
                        parts = self._parts = _without(exc.shards, fence, parts)
                        if self._on_fenced is not None:
                            self._on_fenced(exc.shards)
                        continue
                    finally:
                        self._landing += 1
                    parts.pop(0)
                    if part.notices and self._on_notices is not None:
                        self._on_notices()
            except BaseException:
                # Put what did not land back in front of anything queued meanwhile; a
                # newer state or incident wins over the one that failed to land.
                for part in reversed(parts):
                    self._states = {**{s.name: s for s in part.states}, **self._states}
                    self._incidents = {**{i.id: i for i in part.incidents}, **self._incidents}
                    self._results = part.results + self._results
                    self._events = part.events + self._events
                    self._notices = part.notices + self._notices
                    for bucket in part.rollups:
                        key = (bucket.service, bucket.width, bucket.start)
                        again = Tally.of(bucket)
                        newer = self._rollups.get(key)
                        if newer is not None:
                            again.add(newer)
                        self._rollups[key] = again
                raise
            finally:
                self._writing = ([], [])
                self._parts = []
            self.flushes += 1

    async def run(self) -> None:
        """Flush every ``flush_interval`` (or at once on a transition) until cancelled."""
        backoff = self._interval
        while True:
            try:
                async with asyncio.timeout(self._interval):
                    await self._urgent.wait()
            except TimeoutError:
                pass
            self._urgent.clear()
            try:
                # Shielded: a stop that cancels this task must not abort a write in
                # progress (the connection would be left mid-transaction and the final
                # flush would find the database locked); the final flush waits for it.
                await asyncio.shield(self.flush())
                backoff = self._interval
            except Exception as exc:
                self.failures += 1
                log.error("store write failed, will retry in %.1fs: %s", backoff, exc)
                await self._clock.sleep(backoff)
                backoff = min(backoff * 2, 30.0)


@dataclass(frozen=True, slots=True)
class _Rows:
    """Some services' queued rows, one list per table (what one transaction writes)."""

    states: list[ServiceState]
    results: list[ResultRecord]
    events: list[Event]
    incidents: list[Incident]
    notices: list[Notice]
    rollups: list[Delta]

    def __bool__(self) -> bool:
        return bool(
            self.states
            or self.results
            or self.events
            or self.incidents
            or self.notices
            or self.rollups
        )

    def tables(
        self,
    ) -> tuple[
        list[ServiceState],
        list[ResultRecord],
        list[Event],
        list[Incident],
        list[Notice],
        list[Delta],
    ]:
        """The lists in :meth:`Store.write`'s order."""
        return self.states, self.results, self.events, self.incidents, self.notices, self.rollups

    def split(self, size: int) -> list[_Rows]:
        """These rows in parts of at most ``size`` services, each service's rows in one
        part, in their order. Services are numbered by their first event, then the
        rest, so the events of one flush keep their order from part to part."""
        part: dict[str, int] = {}
        for name in (
            *(e.service for e in self.events),
            *(n.service for n in self.notices),
            *(i.service for i in self.incidents),
            *(s.name for s in self.states),
            *(r.service for r in self.results),
            *(b.service for b in self.rollups),
        ):
            if name not in part:
                part[name] = len(part) // size
        count = (len(part) + size - 1) // size
        if count <= 1:
            return [self]
        parts = [_Rows([], [], [], [], [], []) for _ in range(count)]
        for state in self.states:
            parts[part[state.name]].states.append(state)
        for result in self.results:
            parts[part[result.service]].results.append(result)
        for event in self.events:
            parts[part[event.service]].events.append(event)
        for incident in self.incidents:
            parts[part[incident.service]].incidents.append(incident)
        for notice in self.notices:
            parts[part[notice.service]].notices.append(notice)
        for bucket in self.rollups:
            parts[part[bucket.service]].rollups.append(bucket)
        return parts


def _without(shards: frozenset[int], fence: Fence, parts: list[_Rows]) -> list[_Rows]:
    """``parts`` without the rows of services in ``shards`` (another node runs them
    now and wrote its own; these would go back in time or double a notice)."""

    def kept(name: str) -> bool:
        return fence.shard_of.get(name) not in shards

    dropped = sum(1 for part in parts for s in part.states if not kept(s.name))
    log.warning(
        "store: %d services' rows dropped: another node took shards %s", dropped, spans(shards)
    )
    left = [
        _Rows(
            [s for s in part.states if kept(s.name)],
            [r for r in part.results if kept(r.service)],
            [e for e in part.events if kept(e.service)],
            [i for i in part.incidents if kept(i.service)],
            [n for n in part.notices if kept(n.service)],
            [b for b in part.rollups if kept(b.service)],
        )
        for part in parts
    ]
    return [part for part in left if part]
