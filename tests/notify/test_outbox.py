"""The outbox against a real SQLite store: once per channel, retries with backoff, giving
up, leases, and two senders on one database. Channels here are recorders (the seam)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pymon.config.schema import DeliveryConfig, EmailChannel
from pymon.model import Notice, NoticeKind, ServiceState, Status
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.email import EmailSender
from pymon.notify.outbox import Outbox
from pymon.notify.templates import Templates
from pymon.store.sql import SqlStore, sqlite
from tests.support.clock import FakeClock, settle
from tests.support.mail import MailSink
from tests.support.waiting import wait_for

POLICY = DeliveryConfig(backoff=10.0, max_backoff=40.0, give_up_after=3600.0, concurrency=4)


class Recorder:
    """A channel that records what it was given and fails as told."""

    def __init__(self, failures: list[DeliveryError | None] | None = None) -> None:
        self.sent: list[tuple[str, int]] = []
        self.failures = list(failures or [])
        self.hang = False

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        if self.hang:
            await asyncio.Event().wait()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        self.sent.append((notice.key, ctx.attempt))

    async def close(self) -> None:
        return None


def context(notice: Notice, channel: str, attempt: int) -> NoticeContext:
    return NoticeContext(
        instance="test",
        organization="",
        host="h",
        service_type="tcp",
        service_uri=f"pymon://test/{notice.service}",
        service_url="http://127.0.0.1/",
        attempt=attempt,
    )


def notice(
    clock: FakeClock, key: str = "i1:problem:1", channels: tuple[str, ...] = ("ops",)
) -> Notice:
    return Notice(
        key, "web", NoticeKind.PROBLEM, clock.time(), Status.FAILED, "down", channels, "i1"
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path}/o.db")
    await s.open()
    yield s
    await s.close()


def outbox(store: SqlStore, clock: FakeClock, **channels: Recorder) -> Outbox:
    return Outbox(
        store, channels, context, POLICY, timeouts=dict.fromkeys(channels, 5.0), clock=clock
    )


async def run_once(box: Outbox) -> int:
    started = await box.deliver_due()
    await box.drain()
    return started


async def test_a_notice_is_delivered_once_to_each_channel(store: SqlStore) -> None:
    clock, ops, dev = FakeClock(), Recorder(), Recorder()
    box = outbox(store, clock, ops=ops, dev=dev)
    await store.write([], [], [], [], [notice(clock, channels=("ops", "dev"))])
    assert await run_once(box) == 2
    assert await run_once(box) == 0
    assert ops.sent == dev.sent == [("i1:problem:1", 1)]
    assert {d.state for d in await store.deliveries()} == {"delivered"}
    assert box.stats.sent == 2


async def test_a_failed_attempt_is_retried_after_backoff(store: SqlStore) -> None:
    clock, ops = FakeClock(), Recorder([DeliveryError("connection refused")])
    box = outbox(store, clock, ops=ops)
    await store.write([], [], [], [], [notice(clock)])
    await run_once(box)
    [pending] = await store.deliveries(state="pending")
    assert (pending.attempts, pending.error) == (1, "connection refused")
    assert pending.next_at == clock.time() + 10.0
    await clock.advance(9.0)
    assert await run_once(box) == 0
    await clock.advance(1.0)
    assert await run_once(box) == 1
    assert ops.sent == [("i1:problem:1", 2)]
    [done] = await store.deliveries()
    assert (done.state, done.attempts, done.error) == ("delivered", 2, None)


async def test_backoff_doubles_up_to_its_cap(store: SqlStore) -> None:
    clock = FakeClock()
    ops = Recorder([DeliveryError("down")] * 4)
    box = outbox(store, clock, ops=ops)
    await store.write([], [], [], [], [notice(clock)])
    waits = []
    for _ in range(4):
        await run_once(box)
        [pending] = await store.deliveries(state="pending")
        waits.append(pending.next_at - clock.time())
        await clock.advance(pending.next_at - clock.time())
    assert waits == [10.0, 20.0, 40.0, 40.0]


async def test_a_retry_after_longer_than_the_backoff_is_waited_for_up_to_the_cap(
    store: SqlStore,
) -> None:
    clock = FakeClock()
    asked = [25.0, 3.0, 500.0]  # beyond the backoff; within it; beyond the cap (40 s)
    ops = Recorder([DeliveryError("HTTP 429", retry_after=wait) for wait in asked])
    box = outbox(store, clock, ops=ops)
    await store.write([], [], [], [], [notice(clock)])
    waits = []
    for _ in asked:
        await run_once(box)
        [pending] = await store.deliveries(state="pending")
        waits.append(pending.next_at - clock.time())
        await clock.advance(pending.next_at - clock.time())
    assert waits == [25.0, 20.0, 40.0]
    assert await run_once(box) == 1
    assert ops.sent == [("i1:problem:1", 4)]


async def test_a_permanent_refusal_gives_up_at_once(store: SqlStore) -> None:
    clock, ops = FakeClock(), Recorder([DeliveryError("550 no such user", permanent=True)])
    box = outbox(store, clock, ops=ops)
    await store.write([], [], [], [], [notice(clock)])
    await run_once(box)
    [failed] = await store.deliveries(state="failed")
    assert failed.error == "550 no such user"
    assert box.stats.gave_up == 1
    await clock.advance(3600)
    assert await run_once(box) == 0


async def test_a_notice_too_old_to_retry_is_given_up(store: SqlStore) -> None:
    clock, ops = FakeClock(), Recorder([DeliveryError("down")])
    box = outbox(store, clock, ops=ops)
    await store.write([], [], [], [], [notice(clock)])
    await clock.advance(POLICY.give_up_after)
    await run_once(box)
    assert [d.state for d in await store.deliveries()] == ["failed"]


async def test_a_channel_no_longer_configured_fails_for_good(store: SqlStore) -> None:
    clock = FakeClock()
    box = outbox(store, clock, ops=Recorder())
    await store.write([], [], [], [], [notice(clock, channels=("gone",))])
    await run_once(box)
    [failed] = await store.deliveries(state="failed")
    assert failed.error == "channel 'gone' is not configured"


async def test_one_failing_channel_does_not_resend_the_other(store: SqlStore) -> None:
    clock, ops, dev = FakeClock(), Recorder(), Recorder([DeliveryError("503")])
    box = outbox(store, clock, ops=ops, dev=dev)
    await store.write([], [], [], [], [notice(clock, channels=("ops", "dev"))])
    await run_once(box)
    await clock.advance(10)
    await run_once(box)
    assert ops.sent == [("i1:problem:1", 1)]
    assert dev.sent == [("i1:problem:1", 2)]


async def test_two_senders_on_one_database_send_each_delivery_once(store: SqlStore) -> None:
    clock, first, second = FakeClock(), Recorder(), Recorder()
    a, b = outbox(store, clock, ops=first), outbox(store, clock, ops=second)
    await store.write([], [], [], [], [notice(clock, f"i1:problem:{n}") for n in range(1, 21)])
    await asyncio.gather(run_once(a), run_once(b), run_once(a), run_once(b))
    for _ in range(5):
        await asyncio.gather(run_once(a), run_once(b))
    keys = [k for k, _ in first.sent + second.sent]
    assert sorted(keys) == sorted(f"i1:problem:{n}" for n in range(1, 21))


async def test_an_attempt_cut_short_by_a_crash_is_retried_after_its_lease(
    store: SqlStore,
) -> None:
    clock = FakeClock()
    await store.write([], [], [], [], [notice(clock)])
    [due] = await store.due_deliveries(clock.time())
    # A sender claimed it and died before recording anything.
    assert await store.claim_delivery(
        due.notice.key, "ops", due.next_at, clock.time() + 35.0, "another-instance"
    )
    ops = Recorder()
    box = outbox(store, clock, ops=ops)
    assert await run_once(box) == 0
    await clock.advance(35.0)
    assert await run_once(box) == 1
    assert ops.sent == [("i1:problem:1", 2)]


async def test_a_restart_retries_its_own_cut_short_attempts_at_once(store: SqlStore) -> None:
    clock, ops = FakeClock(), Recorder()
    await store.write([], [], [], [], [notice(clock)])
    [due] = await store.due_deliveries(clock.time())
    await store.claim_delivery(due.notice.key, "ops", due.next_at, clock.time() + 35.0, "me")
    box = Outbox(store, {"ops": ops}, context, POLICY, clock=clock, owner="me")
    task = asyncio.create_task(box.run())
    try:
        for _ in range(200):
            if ops.sent:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert ops.sent == [("i1:problem:1", 2)]


async def test_a_hanging_channel_is_cut_off_and_retried(store: SqlStore) -> None:
    clock, ops = FakeClock(), Recorder()
    ops.hang = True
    box = Outbox(store, {"ops": ops}, context, POLICY, timeouts={"ops": 0.05}, clock=clock)
    await store.write([], [], [], [], [notice(clock)])
    await box.deliver_due()
    await asyncio.wait_for(box.drain(), timeout=10)
    [pending] = await store.deliveries(state="pending")
    assert pending.error is not None
    assert "no answer within" in pending.error


async def test_run_wakes_for_new_notices(store: SqlStore) -> None:
    clock, ops = FakeClock(), Recorder()
    box = outbox(store, clock, ops=ops)
    task = asyncio.create_task(box.run())
    try:
        await settle()
        await store.write([], [], [], [], [notice(clock)])
        box.wake()
        for _ in range(200):
            if ops.sent:
                break
            await asyncio.sleep(0.01)
        assert ops.sent == [("i1:problem:1", 1)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def mail_to(sink: MailSink, timeout: float) -> EmailChannel:
    """An e-mail channel's config for ``sink``."""
    return EmailChannel.model_validate(
        {
            "type": "email",
            "port": sink.port,
            "tls": "none",
            "from": "pymon@example.org",
            "to": ["ops@example.org"],
            "timeout": timeout,
        }
    )


class LockAtThe250:
    """The real e-mail channel, at whose first 250 another process takes the
    database's write lock (as a backup job or a second pymon did in the field)."""

    def __init__(self, sender: EmailSender, holder: sqlite3.Connection) -> None:
        self.sender = sender
        self.holder = holder
        self.locked = False

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        def accepted() -> None:
            if not self.locked:
                self.holder.execute("BEGIN IMMEDIATE")
                self.locked = True
            if ctx.accepted is not None:
                ctx.accepted()

        await self.sender.send(notice, dataclasses.replace(ctx, accepted=accepted))

    async def close(self) -> None:
        return None


async def test_a_store_locked_after_the_250_does_not_double_the_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A short busy timeout: the record fails in 0.1 s instead of 10 s, the same way.
    monkeypatch.setattr(sqlite, "SQLITE_BUSY_TIMEOUT_MS", 100)
    db = tmp_path / "o.db"
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    clock = FakeClock()
    try:
        with MailSink() as sink:
            config = mail_to(sink, 5.0)
            mail = LockAtThe250(EmailSender("ops", config, Templates()), holder)
            box = Outbox(store, {"ops": mail}, context, POLICY, timeouts={"ops": 5.0}, clock=clock)
            await store.write([], [], [], [], [notice(clock)])
            assert await box.deliver_due() == 1
            await wait_for(lambda: "cannot record the delivery" in caplog.text)
            # The lock outlasts the claim's lease (5 s timeout + the margin).
            await clock.advance(100.0)
            holder.execute("COMMIT")
            await box.deliver_due()
            await clock.advance(60.0)
            await asyncio.wait_for(box.drain(), timeout=10)
            await run_once(box)
            assert len(sink.messages) == 1
            [done] = await store.deliveries()
            assert (done.state, done.attempts) == ("delivered", 1)
    finally:
        holder.close()
        await store.close()


async def test_the_delivered_mark_is_committed_before_queued_batches(tmp_path: Path) -> None:
    # The mail is out once the server said 250; until the mark is committed a kill -9
    # sends it again, so it must not wait for batch flushes queued before it.
    db = tmp_path / "o.db"
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    clock = FakeClock()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        await store.write([], [], [], [], [notice(clock)])
        [due] = await store.due_deliveries(clock.time())
        await store.claim_delivery(due.notice.key, "ops", due.next_at, clock.time() + 35.0, "")
        holder.execute("BEGIN IMMEDIATE")
        done: list[str] = []

        def task(name: str, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
            made = asyncio.create_task(job)
            made.add_done_callback(lambda _: done.append(name))
            return made

        states = [ServiceState(name="web", seq=n) for n in (1, 2)]
        tasks = [task("flushing", store.write(states[:1], [], []))]
        await settle()
        tasks.append(task("queued", store.write(states[1:], [], [])))
        await settle()
        tasks.append(task("mark", store.finish_delivery(due.notice.key, "ops", at=clock.time())))
        await settle()
        holder.execute("COMMIT")
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
        assert done == ["flushing", "mark", "queued"]
    finally:
        holder.close()
        await store.close()


async def test_a_delivery_is_recorded_at_the_250_before_the_server_says_goodbye(
    store: SqlStore,
) -> None:
    # A kill -9 while the server takes its time over QUIT must find the mail recorded.
    clock = FakeClock()
    with MailSink() as sink:
        config = mail_to(sink, 10.0)
        box = Outbox(
            store,
            {"ops": EmailSender("ops", config, Templates())},
            context,
            POLICY,
            timeouts={"ops": 10.0},
            clock=clock,
        )
        await store.write([], [], [], [], [notice(clock)])
        sink.quit_open.clear()
        try:
            assert await box.deliver_due() == 1
            await sink.await_for(1)

            async def recorded() -> bool:
                return [d.state for d in await store.deliveries()] == ["delivered"]

            async with asyncio.timeout(10):
                while not await recorded():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert box.in_flight == 1  # still waiting for the 221
        finally:
            sink.quit_open.set()
        await asyncio.wait_for(box.drain(), timeout=10)
    assert len(sink.messages) == 1
    assert box.stats.sent == 1
