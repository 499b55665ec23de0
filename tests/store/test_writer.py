"""BatchWriter: coalescing, urgency on transitions, and no loss when the store fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from pymon.errors import Fenced
from pymon.model import Event, EventKind, Incident, Notice, NoticeKind, ServiceState, Status
from pymon.store.base import Fence, ResultRecord
from pymon.store.sql.buckets import coalesce
from pymon.store.writer import BatchWriter
from pymon.uptime import DAY, HOUR, Bucket, Delta, Totals, add_up, frozen, summarize


class ListStore:
    """A Store seam that keeps batches in lists and can be told to fail."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[tuple[list[ServiceState], list[ResultRecord], list[Event]]] = []
        self.incidents: list[Incident] = []
        self.notices: list[Notice] = []
        self.rollups_written: list[Delta] = []
        #: Each write's states (names) and rollups, to see what landed together.
        self.writes: list[tuple[set[str], list[Delta]]] = []
        self.failures = failures
        #: Shards another node took: a fenced write touching them is refused.
        self.taken: frozenset[int] = frozenset()

    async def write(
        self,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        events: Sequence[Event],
        incidents: Sequence[Incident] = (),
        notices: Sequence[Notice] = (),
        rollups: Sequence[Delta] = (),
        *,
        fence: Fence | None = None,
    ) -> None:
        if fence is not None:
            touched = (
                {fence.shard_of[s.name] for s in states}
                | {fence.shard_of[r.service] for r in results}
                | {fence.shard_of[b.service] for b in rollups}
            )
            if touched & self.taken:
                raise Fenced(frozenset(touched & self.taken))
        if self.failures:
            self.failures -= 1
            raise OSError("disk on fire")
        self.batches.append((list(states), list(results), list(events)))
        self.incidents.extend(incidents)
        self.notices.extend(notices)
        self.rollups_written.extend(rollups)
        self.writes.append(({s.name for s in states}, list(rollups)))

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = HOUR
    ) -> list[Bucket]:
        kept = coalesce(b for b in self.rollups_written if b.width == width)
        return [
            frozen(b)
            for b in kept.values()
            if (names is None or b.service in names)
            and b.start < until
            and b.start + b.width > since
        ]

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int = HOUR,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        return add_up(await self.rollups(names, since, until, width), since, until, now)

    async def history(self, service: str, limit: int = 100) -> list[ResultRecord]:
        rows = [r for _, results, _ in self.batches for r in results if r.service == service]
        return sorted(rows, key=lambda r: -r.seq)[:limit]

    async def events(self, limit: int = 100, service: str | None = None) -> list[Event]:
        rows = [e for _, _, events in self.batches for e in events]
        return [e for e in reversed(rows) if service is None or e.service == service][:limit]


def record(name: str, seq: int) -> ResultRecord:
    return ResultRecord(name, seq, Status.OK, "", {}, 0.0, 0.0, 0.0)


def event(name: str) -> Event:
    return Event(name, EventKind.CHANGED, 0.0, Status.ERROR, Status.OK, "bad")


def writer(store: ListStore, interval: float = 60.0) -> BatchWriter:
    return BatchWriter(store, flush_interval=interval)  # type: ignore[arg-type]


async def test_flush_coalesces_states_and_keeps_every_result() -> None:
    store = ListStore()
    w = writer(store)
    for seq in (1, 2, 3):
        w.add(ServiceState("a", seq=seq), record("a", seq), [])
    await w.flush()
    ((states, results, _),) = store.batches
    assert [s.seq for s in states] == [3]
    assert [r.seq for r in results] == [1, 2, 3]
    assert w.pending == 0


async def test_failed_flush_keeps_the_batch_for_the_next_one() -> None:
    store = ListStore(failures=1)
    w = writer(store)
    w.add(ServiceState("a", seq=1), record("a", 1), [event("a")])
    with pytest.raises(OSError, match="disk on fire"):
        await w.flush()
    w.add(ServiceState("a", seq=2), record("a", 2), [])
    await w.flush()
    ((states, results, events),) = store.batches
    assert [s.seq for s in states] == [2]
    assert [r.seq for r in results] == [1, 2]
    assert len(events) == 1


async def test_transition_is_flushed_without_waiting_for_the_interval() -> None:
    store = ListStore()
    w = writer(store, interval=3600)
    task = asyncio.create_task(w.run())
    w.add(ServiceState("a"), None, [event("a")])
    for _ in range(100):
        if store.batches:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(store.batches) == 1


async def test_run_retries_after_a_store_failure() -> None:
    store = ListStore(failures=2)
    w = writer(store, interval=0.01)
    task = asyncio.create_task(w.run())
    w.add(ServiceState("a"), record("a", 1), [event("a")])
    for _ in range(300):
        if store.batches:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert w.failures == 2
    assert [r.seq for r in store.batches[0][1]] == [1]


async def test_incidents_coalesce_and_notices_are_urgent_and_kept() -> None:
    store = ListStore(failures=1)
    w = writer(store)
    incident = Incident("i1", "a", 0.0, Status.ERROR, Status.ERROR)
    notice = Notice("i1:problem:1", "a", NoticeKind.PROBLEM, 0.0, Status.ERROR, "", ("log",), "i1")
    w.add(ServiceState("a"), None, [], incident, [notice])
    w.add(ServiceState("a"), None, [], replace(incident, notices=1), [])
    with pytest.raises(OSError, match="disk on fire"):
        await w.flush()
    await w.flush()
    assert [i.notices for i in store.incidents] == [1]
    assert store.notices == [notice]


async def test_cancelling_the_writer_mid_write_loses_nothing() -> None:
    class SlowStore(ListStore):
        async def write(self, *args: object, **kw: object) -> None:
            await asyncio.sleep(0.2)
            await super().write(*args, **kw)  # type: ignore[arg-type]

    store = SlowStore()
    w = writer(store, interval=3600)
    task = asyncio.create_task(w.run())
    w.add(ServiceState("a"), record("a", 1), [event("a")])
    await asyncio.sleep(0.05)  # the urgent flush is now in the middle of its write
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    w.add(ServiceState("a", seq=2), record("a", 2), [])
    await w.flush()
    # The write in progress completed on its own (not aborted and redone later).
    assert [[r.seq for r in batch[1]] for batch in store.batches] == [[1], [2]]


async def test_reads_answer_what_is_not_written_yet_without_a_flush() -> None:
    store = ListStore()
    w = writer(store)
    w.add(ServiceState("a", seq=1), record("a", 1), [event("a")])
    await w.flush()
    w.add(ServiceState("a", seq=2), record("a", 2), [])
    w.add(ServiceState("b", seq=1), record("b", 1), [event("b")])
    assert [r.seq for r in await w.history("a", 10)] == [2, 1]
    assert [r.seq for r in await w.history("a", 1)] == [2]
    assert [e.service for e in await w.events(10)] == ["b", "a"]
    assert [e.service for e in await w.events(10, "a")] == ["a"]
    assert len(store.batches) == 1  # the reads wrote nothing


async def test_rows_of_shards_another_node_took_are_dropped_and_the_rest_written() -> None:
    store = ListStore()
    store.taken = frozenset({1})
    told: list[frozenset[int]] = []
    fence = Fence("me", {0: 3, 1: 3}, {"a": 0, "b": 1})
    writer = BatchWriter(store, fence=lambda: fence, on_fenced=told.append)  # type: ignore[arg-type]
    writer.add(ServiceState("a", seq=1), None, [])
    writer.add(ServiceState("b", seq=1), None, [])
    await writer.flush()
    assert told == [frozenset({1})]
    assert [[s.name for s in states] for states, _, _ in store.batches] == [["a"]]
    assert writer.pending == 0


async def test_a_large_flush_writes_each_services_rows_together_a_part_at_a_time() -> None:
    store = ListStore()
    w = BatchWriter(store, max_batch=2)  # type: ignore[arg-type]
    for name in "abcde":
        w.add(ServiceState(name), record(name, 1), [])
    w.add(ServiceState("c", seq=2), record("c", 2), [event("c")])
    await w.flush()
    # c's event puts it first; then the others in the order they were queued.
    parts = [sorted({s.name for s in states}) for states, _, _ in store.batches]
    assert parts == [["a", "c"], ["b", "d"], ["e"]]
    for states, results, events in store.batches:
        names = {s.name for s in states}
        assert {r.service for r in results} == names
        assert {e.service for e in events} <= names
    assert [r.seq for _, results, _ in store.batches for r in results if r.service == "c"] == [1, 2]
    assert w.flushes == 1 and w.pending == 0


async def test_a_part_that_fails_keeps_itself_and_the_rest_queued_and_not_what_landed() -> None:
    class FailsSecond(ListStore):
        calls = 0

        async def write(self, *args: object, **kw: object) -> None:
            self.calls += 1
            if self.calls == 2:
                raise OSError("disk on fire")
            await super().write(*args, **kw)  # type: ignore[arg-type]

    store = FailsSecond()
    w = BatchWriter(store, max_batch=2)  # type: ignore[arg-type]
    for name in "abcde":
        w.add(ServiceState(name), record(name, 1), [])
    with pytest.raises(OSError, match="disk on fire"):
        await w.flush()
    assert [[s.name for s in states] for states, _, _ in store.batches] == [["a", "b"]]
    w.add(ServiceState("c", seq=2), record("c", 2), [])
    assert w.pending == 4
    await w.flush()
    written = [(s.name, s.seq) for states, _, _ in store.batches for s in states]
    assert written == [("a", 0), ("b", 0), ("c", 2), ("d", 0), ("e", 0)]
    results = [(r.service, r.seq) for _, results, _ in store.batches for r in results]
    assert sorted(results) == [("a", 1), ("b", 1), ("c", 1), ("c", 2), ("d", 1), ("e", 1)]


async def test_shards_found_taken_are_dropped_from_the_parts_not_yet_written() -> None:
    store = ListStore()
    store.taken = frozenset({1})
    told: list[frozenset[int]] = []
    fence = Fence("me", {0: 3, 1: 3}, {"a": 0, "b": 1, "c": 0, "d": 1})
    w = BatchWriter(store, max_batch=1, fence=lambda: fence, on_fenced=told.append)  # type: ignore[arg-type]
    for name in "abcd":
        w.add(ServiceState(name), record(name, 1), [])
    await w.flush()
    assert told == [frozenset({1})]
    assert [[s.name for s in states] for states, _, _ in store.batches] == [["a"], ["c"]]
    assert w.pending == 0


T0 = 1_800_000_000 // DAY * DAY


def tally(name: str, seconds: float, *, at: float = T0, width: int = HOUR) -> Bucket:
    return Bucket(name, at, width, checks=1, ok_checks=1, seconds={"ok": seconds})


async def test_rollups_coalesce_per_bucket_and_land_with_their_state() -> None:
    store = ListStore()
    w = writer(store)
    for seq in (1, 2, 3):
        w.add(ServiceState("a", seq=seq), record("a", seq), [], rollups=[tally("a", 10.0)])
    w.add(ServiceState("b"), record("b", 1), [], rollups=[tally("b", 5.0, width=DAY)])
    await w.flush()
    ((names, rollups),) = store.writes
    assert names == {"a", "b"}
    by_key = {(b.service, b.width): b for b in rollups}
    assert len(rollups) == 2
    assert by_key["a", HOUR].seconds == {"ok": 30.0} and by_key["a", HOUR].checks == 3
    assert by_key["b", DAY].seconds == {"ok": 5.0}


async def test_a_failing_flush_keeps_the_state_and_its_rollups_together() -> None:
    store = ListStore(failures=1)
    w = writer(store)
    w.add(ServiceState("a", seq=1), record("a", 1), [], rollups=[tally("a", 10.0)])
    with pytest.raises(OSError, match="disk on fire"):
        await w.flush()
    assert store.writes == []
    # Queued meanwhile: merged with what failed, none of it lost or doubled.
    w.add(ServiceState("a", seq=2), record("a", 2), [], rollups=[tally("a", 20.0)])
    await w.flush()
    ((names, rollups),) = store.writes
    assert names == {"a"} and [(b.seconds, b.checks) for b in rollups] == [({"ok": 30.0}, 2)]


async def test_fenced_shards_drop_the_state_and_its_rollups_alike() -> None:
    store = ListStore()
    store.taken = frozenset({1})
    told: list[frozenset[int]] = []
    fence = Fence("me", {0: 3, 1: 3}, {"a": 0, "b": 1})
    w = BatchWriter(store, fence=lambda: fence, on_fenced=told.append)  # type: ignore[arg-type]
    w.add(ServiceState("a"), record("a", 1), [], rollups=[tally("a", 1.0)])
    w.add(ServiceState("b"), record("b", 1), [], rollups=[tally("b", 1.0)])
    await w.flush()
    assert told == [frozenset({1})]
    ((names, rollups),) = store.writes
    assert names == {"a"} and [b.service for b in rollups] == ["a"]
    assert await w.rollups(None, T0, T0 + HOUR, HOUR) == [frozen(rollups[0])]


async def test_rollups_read_what_is_not_written_yet_merged_with_the_store() -> None:
    store = ListStore()
    w = writer(store)
    w.add(ServiceState("a"), None, [], rollups=[tally("a", 10.0)])
    await w.flush()
    w.add(ServiceState("a"), None, [], rollups=[tally("a", 5.0), tally("a", 7.0, at=T0 + HOUR)])
    found = await w.rollups(["a"], T0, T0 + 2 * HOUR, HOUR)
    assert [(b.start, b.seconds["ok"], b.checks) for b in found] == [
        (T0, 15.0, 2),
        (T0 + HOUR, 7.0, 1),
    ]
    assert await w.rollups(["b"], T0, T0 + 2 * HOUR, HOUR) == []
    assert store.writes[1:] == []  # the read wrote nothing


async def test_credited_checks_land_with_their_state_and_totals_read_them_unwritten() -> None:
    store = ListStore()
    w = writer(store)
    first = ServiceState("a", Status.OK, last_check=T0 + 100.0)
    second = ServiceState("a", Status.FAILED, last_check=T0 + 160.0)
    w.credit(ServiceState("a"), first, 0.2, 300.0)
    w.add(first, record("a", 1), [])
    await w.flush()
    ((names, rollups),) = store.writes
    assert names == {"a"} and {(b.width, b.checks) for b in rollups} == {(HOUR, 1), (DAY, 1)}
    w.credit(first, second, 0.4, 300.0)
    w.add(second, record("a", 2), [])
    # Not written yet: the totals hold the store's part and the queued one.
    since, until = T0 + 130.0, T0 + 1930.0
    (got,) = (await w.totals(["a"], since, until, HOUR)).values()
    want = summarize("a", await w.rollups(["a"], since, until, HOUR), since, until)
    assert got.checks == want.checks == 2 and got.worst is Status.FAILED
    assert got.seconds == {"ok": pytest.approx(60.0 * 1800.0 / HOUR)}
    assert await w.totals(["b"], since, until, HOUR) == {}
    assert len(store.writes) == 1  # the reads wrote nothing


async def test_credited_hours_give_their_days_at_the_flush_and_to_reads_before_it() -> None:
    # Checks an hour apart within one flush: the writer holds hour tallies alone;
    # its reads and the flush give each day the sum of its hours, and the hours
    # themselves go out unchanged.
    store = ListStore()
    w = writer(store)
    states = [ServiceState("a", Status.OK, last_check=T0 + 10.0 + k * 1800.0) for k in range(4)]
    previous = ServiceState("a")
    for k, current in enumerate(states):
        w.credit(previous, current, 0.1 * (k + 1), 3700.0)
        w.add(current, record("a", k + 1), [])
        previous = current
    (day,) = await w.rollups(["a"], T0, T0 + DAY, DAY)
    hours = await w.rollups(["a"], T0, T0 + DAY, HOUR)
    assert [(h.start, h.checks) for h in hours] == [(T0, 2), (T0 + HOUR, 2)]
    assert (day.start, day.width, day.checks, day.seconds) == (T0, DAY, 4, {"ok": 5400.0})
    assert day.duration_max == pytest.approx(0.4) and day.duration_min == pytest.approx(0.1)
    await w.flush()
    ((_, written),) = store.writes
    by_width = {(b.width, b.start): frozen(b) for b in written}
    assert by_width[(DAY, T0)] == day
    assert [by_width[(HOUR, h.start)] for h in hours] == hours
    assert sum(b.seconds["ok"] for b in hours) == day.seconds["ok"]
