"""The scheduler on a fake clock: spreading, rhythm, concurrency bound, lateness."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest

from pymon.engine.scheduler import Scheduler, phase
from tests.support.clock import FakeClock, settle


class Recorder:
    """A job that records (name, start time, lateness); optionally blocks until released."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, float, float]] = []
        self.gate: asyncio.Event | None = None
        self.running: Counter[str] = Counter()
        self.max_overlap = 0
        self.hang: set[str] = set()

    async def __call__(self, name: str, lateness: float) -> None:
        self.runs.append((name, self.clock.monotonic(), lateness))
        self.running[name] += 1
        self.max_overlap = max(self.max_overlap, self.running[name])
        try:
            if name in self.hang:
                await asyncio.Event().wait()
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.running[name] -= 1

    def times(self, name: str) -> list[float]:
        return [t for n, t, _ in self.runs if n == name]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def job(clock: FakeClock) -> Recorder:
    return Recorder(clock)


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    """``scheduler`` dispatching in a task, stopped (as the daemon stops it) on exit."""
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def sched(clock: FakeClock, job: Recorder) -> AsyncIterator[Scheduler]:
    async with running(Scheduler(job, concurrency=100, clock=clock)) as s:
        yield s


def test_phase_is_stable_and_in_unit_interval() -> None:
    assert phase("web") == phase("web")
    assert 0 <= phase("web") < 1
    assert phase("web") != phase("db")


def test_phases_spread_a_thousand_services() -> None:
    buckets = Counter(int(phase(f"svc-{i}") * 60) for i in range(1000))
    # 1,000 services over 60 one-second buckets: ~17 each, none near all of them.
    assert len(buckets) == 60
    assert max(buckets.values()) < 50


async def test_first_run_at_phase_then_fixed_rate(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    sched.add("web", 10.0)
    await clock.advance(45)
    first = phase("web") * 10
    assert job.times("web") == pytest.approx(
        [first + 10 * k for k in range(5) if first + 10 * k <= 45]
    )
    assert all(late == 0 for _, _, late in job.runs)


async def test_many_services_do_not_fire_together(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    for i in range(1000):
        sched.add(f"svc-{i}", 60.0)
    await clock.advance(60)
    assert len(job.runs) == 1000
    per_second = Counter(int(t) for _, t, _ in job.runs)
    assert max(per_second.values()) < 50


async def test_concurrency_bound_delays_and_records_lateness(
    clock: FakeClock, job: Recorder
) -> None:
    job.gate = asyncio.Event()
    async with running(Scheduler(job, concurrency=2, clock=clock)) as s:
        for i in range(5):
            s.add(f"s{i}", 100.0, first_due=1.0)
        await clock.advance(2)
        assert len(job.runs) == 2
        assert s.in_flight == 5
        await clock.advance(3)
        job.gate.set()
        await settle()
    assert len(job.runs) == 5
    assert sorted(late for _, _, late in job.runs)[-1] == pytest.approx(4.0)
    assert s.stats.runs == 5
    assert s.stats.percentile(99) == pytest.approx(4.0)


async def test_runs_waiting_for_a_slot_start_in_the_order_they_fell_due(
    clock: FakeClock, job: Recorder
) -> None:
    job.gate = asyncio.Event()
    async with running(Scheduler(job, concurrency=1, clock=clock)) as s:
        for i, due in enumerate((1.0, 3.0, 2.0, 4.0)):
            s.add(f"s{i}", 100.0, first_due=due)
        await clock.advance(5)
        job.gate.set()
        await settle()
    assert [name for name, _, _ in job.runs] == ["s0", "s2", "s1", "s3"]


async def test_a_run_that_raises_gives_its_slot_back(clock: FakeClock) -> None:
    started: list[str] = []

    async def crash(name: str, lateness: float) -> None:
        started.append(name)
        raise RuntimeError("broken check")

    async with running(Scheduler(crash, concurrency=1, clock=clock)) as s:
        for i in range(3):
            s.add(f"s{i}", 100.0, first_due=1.0)
        await clock.advance(2)
        assert sorted(started) == ["s0", "s1", "s2"]
        assert s.in_flight == 0


async def test_stopping_drops_runs_waiting_for_a_slot(clock: FakeClock, job: Recorder) -> None:
    job.gate = asyncio.Event()
    async with running(Scheduler(job, concurrency=1, clock=clock)) as s:
        for i in range(3):
            s.add(f"s{i}", 100.0, first_due=1.0)
        await clock.advance(2)
    job.gate.set()
    await settle()
    assert len(job.runs) == 1 and s.in_flight == 0


async def test_a_hanging_check_does_not_delay_others(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    job.hang.add("stuck")
    sched.add("stuck", 5.0, first_due=0.0)
    sched.add("fine", 5.0, first_due=0.0)
    await clock.advance(20)
    assert job.times("fine") == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert job.times("stuck") == [0.0]


async def test_no_overlap_and_skips_counted(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    job.gate = asyncio.Event()
    sched.add("slow", 1.0, first_due=0.0)
    await clock.advance(3.5)
    job.gate.set()
    await settle()
    assert job.max_overlap == 1
    assert sched.stats.skipped == 3
    job.gate = None
    await clock.advance(1)
    assert job.times("slow") == [0.0, 4.0]


async def test_remove_stops_future_runs(clock: FakeClock, job: Recorder, sched: Scheduler) -> None:
    sched.add("gone", 1.0, first_due=0.0)
    await clock.advance(2)
    sched.remove("gone")
    await clock.advance(5)
    assert job.times("gone") == [0.0, 1.0, 2.0]
    assert "gone" not in sched


async def test_run_now_runs_at_once_and_keeps_rhythm(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    sched.add("web", 10.0, first_due=0.0)
    await clock.advance(3)
    sched.run_now("web")
    await settle()
    await clock.advance(17)
    assert job.times("web") == [0.0, 3.0, 10.0, 20.0]


async def test_job_exception_does_not_stop_the_rhythm(clock: FakeClock) -> None:
    calls: defaultdict[str, int] = defaultdict(int)

    async def boom(name: str, lateness: float) -> None:
        calls[name] += 1
        raise RuntimeError("bug")

    s = Scheduler(boom, clock=clock)
    task = asyncio.create_task(s.run())
    s.add("x", 1.0, first_due=0.0)
    await clock.advance(3)
    assert calls["x"] == 4
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_retry_delay_runs_sooner_then_rhythm_resumes_on_the_grid(clock: FakeClock) -> None:
    times: list[float] = []
    retries = iter([3.0, 3.0, None, None])

    async def job(name: str, lateness: float) -> float | None:
        times.append(clock.monotonic())
        return next(retries, None)

    s = Scheduler(job, clock=clock)
    task = asyncio.create_task(s.run())
    s.add("svc", 10.0, first_due=0.0)
    await clock.advance(30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # Two quick retries while unconfirmed, then back on the 10 s grid (not 6 + 10).
    assert times == [0.0, 3.0, 6.0, 10.0, 20.0, 30.0]
    assert s.stats.skipped == 0


async def test_retry_never_later_than_the_next_regular_run(clock: FakeClock) -> None:
    times: list[float] = []

    async def job(name: str, lateness: float) -> float | None:
        times.append(clock.monotonic())
        return 100.0

    s = Scheduler(job, clock=clock)
    task = asyncio.create_task(s.run())
    s.add("svc", 10.0, first_due=0.0)
    await clock.advance(20)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert times == [0.0, 10.0, 20.0]


async def test_an_extra_run_asking_for_retry_takes_the_rhythm_over(clock: FakeClock) -> None:
    times: list[float] = []
    answers = iter([None, 2.0, None])

    async def job(name: str, lateness: float) -> float | None:
        times.append(clock.monotonic())
        return next(answers, None)

    s = Scheduler(job, clock=clock)
    task = asyncio.create_task(s.run())
    s.add("svc", 10.0, first_due=0.0)
    await clock.advance(1)
    s.run_now("svc")
    await clock.advance(20)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert times == [0.0, 1.0, 3.0, 10.0, 20.0]


async def test_runs_due_within_a_tick_start_together_at_the_next_wake(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    # The first wake takes "a"; "b" and "c", due less than a tick later, wait for
    # the next wake one tick after it and start together, late by the difference.
    sched.add("a", 60.0, first_due=1.0)
    sched.add("b", 60.0, first_due=1.004)
    sched.add("c", 60.0, first_due=1.008)
    sched.add("d", 60.0, first_due=1.5)
    await clock.advance(2)
    assert [n for n, _, _ in job.runs] == ["a", "b", "c", "d"]
    assert [t for _, t, _ in job.runs] == pytest.approx([1.0, 1.01, 1.01, 1.5])
    assert [late for _, _, late in job.runs] == pytest.approx([0.0, 0.006, 0.002, 0.0])


async def test_an_earlier_run_added_while_sleeping_wakes_the_scheduler(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    sched.add("late", 60.0, first_due=50.0)
    await clock.advance(1)
    sched.add("soon", 60.0, first_due=3.0)
    await clock.advance(59)
    assert job.times("soon") == pytest.approx([3.0])
    assert job.times("late") == pytest.approx([50.0])


async def test_a_zero_tick_runs_every_due_time_exactly(clock: FakeClock, job: Recorder) -> None:
    sched = Scheduler(job, clock=clock, tick=0.0)
    task = asyncio.create_task(sched.run())
    sched.add("a", 60.0, first_due=1.0)
    sched.add("b", 60.0, first_due=1.004)
    await clock.advance(2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [(n, t, late) for n, t, late in job.runs] == [("a", 1.0, 0.0), ("b", 1.004, 0.0)]


async def test_replace_never_skips_a_run_that_is_due_but_not_started(
    clock: FakeClock, job: Recorder
) -> None:
    # The dispatcher has not looked at the heap yet (a busy loop, a reload holding it):
    # the run due at 1.0 is overdue when the service is replaced, and must still happen.
    s = Scheduler(job, concurrency=10, clock=clock)
    s.add("web", 1.0, first_due=1.0)
    await clock.advance(1.5)
    s.replace("web", 1.0)
    task = asyncio.create_task(s.run())
    try:
        await clock.advance(2.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # Late once (when the dispatcher gets to it), then back on its rhythm.
    assert job.times("web") == pytest.approx([1.5, 2.0, 3.0])


async def test_replace_keeps_the_rhythm_of_a_waiting_run(
    clock: FakeClock, job: Recorder, sched: Scheduler
) -> None:
    sched.add("web", 1.0, first_due=1.0)
    await clock.advance(1.2)
    sched.replace("web", 1.0)
    await clock.advance(2.0)
    assert job.times("web") == pytest.approx([1.0, 2.0, 3.0])
