"""The outbox: delivers every notice in the store to each of its channels, with retries.

The rules' notices reach the store in the same transaction as the state change that
caused them (``store/writer.py``), one delivery row per channel. This sender reads
due rows back, claims each one (a lease in the database, see ``SqlStore.claim_delivery``),
hands it to its channel and records the end: delivered, retry later with backoff,
or given up (a permanent refusal, or ``give_up_after`` since the notice). Sending
runs in its own tasks with a concurrency bound, so a slow mail server never delays
a check.

Delivery is *at least once*: a notice stays pending until its channel took it, and
one that was taken is never sent again. An attempt's outcome is kept in memory until
the store has recorded it: a locked or failing store is retried with backoff, and
meanwhile the delivery keeps its slot and is never claimed again by this sender,
however long its lease has run out. Before the store's mark, an accepted delivery
is appended to a journal file (SQLite stores, ``notify/journal.py``) that the next
start copies into the store before it sends anything, so a crash during the
commit sends nothing twice. The only gap left is a crash between the receiver
taking a notice and this process reading its answer; the retry then carries the
same ``Message-ID`` / ``X-Pymon-Delivery`` id so the receiver can drop it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pymon.clock import Clock, SystemClock, sleep_or_wake
from pymon.config.schema import DeliveryConfig
from pymon.events import NoticeFailed, NoticeSent
from pymon.model import Notice
from pymon.notify.base import Channel, DeliveryError, NoticeContext
from pymon.notify.journal import LOCK_WAIT, Journal, Receipt
from pymon.store.base import Delivery, Outcome, Store

__all__ = ["ContextFor", "Outbox", "OutboxStats", "Publish"]

log = logging.getLogger("pymon.notify")

#: Builds the context of a notice for a channel at an attempt (the daemon's view).
ContextFor = Callable[[Notice, str, int], NoticeContext]

#: Told the end of each attempt (the daemon passes its bus's ``publish``).
Publish = Callable[[NoticeSent | NoticeFailed], None]

# A claimed delivery is retried after this much beyond its channel's own timeout
# if the process died mid-send (the lease runs out).
_LEASE_MARGIN = 30.0
# How much longer than its own timeout a channel may take before the outbox cuts it off.
_BACKSTOP = 1.0
# Look at the store at least this often even when nothing seems due (another
# instance on the same database may have added work).
_MAX_IDLE = 60.0
# Recording an outcome the store refused (locked by another process, unreachable) is
# tried again after this long, doubling up to the cap, until it is written.
_RECORD_RETRY = 0.5
_RECORD_RETRY_MAX = 5.0


@dataclass(slots=True)
class OutboxStats:
    """Counters since start: deliveries done, attempts that failed, deliveries given up."""

    sent: int = 0
    failed: int = 0
    gave_up: int = 0


class Outbox:
    """Sends pending deliveries from ``store`` through ``channels`` until cancelled."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        context: ContextFor,
        policy: DeliveryConfig,
        *,
        timeouts: Mapping[str, float] | None = None,
        clock: Clock | None = None,
        owner: str = "",
        publish: Publish | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._store = store
        self._channels = channels
        self._context = context
        self._policy = policy
        self._timeouts = dict(timeouts or {})
        self._clock = clock or SystemClock()
        self._owner = owner
        self._publish = publish
        self._journal = journal
        # Deliveries noted in the journal whose store record is not written yet.
        self._noted: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        # (notice key, channel) of every attempt this sender has not finished
        # recording: never claimed again here, even once its lease has run out.
        self._held: set[tuple[str, str]] = set()
        self._stopping = asyncio.Event()
        # Outcomes waiting to be recorded, and the one record being written at a time.
        self._unrecorded: dict[tuple[str, str], Outcome] = {}
        self._recording = asyncio.Lock()
        self.stats = OutboxStats()

    def use(self, channels: Mapping[str, Channel], timeouts: Mapping[str, float]) -> None:
        """Send through these channels from now on (a reload rebuilt them); attempts in
        progress finish on the senders they started with."""
        self._channels = channels
        self._timeouts = dict(timeouts)

    def wake(self) -> None:
        """Look for due deliveries now (new notices were just written)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Deliveries being attempted right now."""
        return len(self._running)

    async def run(self) -> None:
        """Deliver due notices until cancelled; store trouble is logged and retried.

        First, what the journal holds from an earlier life goes into the store
        (retried until it does: sending before would double those notices), then
        attempts this owner (instance) had in flight when it last stopped dead are
        made due at once instead of waiting out their leases.
        """
        await self._replay_journal()
        try:
            released = await self._store.release_claims(self._owner, self._clock.time())
            if released:
                log.warning("outbox: retrying %d deliveries cut short by a crash", released)
        except Exception as exc:
            log.error("outbox: cannot release earlier claims: %s", exc)
        try:
            while True:
                self._wake.clear()
                try:
                    await self.deliver_due()
                    delay = await self._idle_time()
                except Exception as exc:
                    log.error("outbox: cannot read pending notices, will retry: %s", exc)
                    delay = self._policy.backoff
                await sleep_or_wake(self._clock, self._wake, delay)
        finally:
            self._stopping.set()
            await self.drain()

    async def _replay_journal(self) -> None:
        """Record what the journals beside the database hold (this node's and those of
        nodes that are gone: see ``notify/journal.py``), then give the gone nodes'
        claims back, so what they had not sent goes out now rather than after its lease."""
        if self._journal is None:
            return
        # Off the loop: it may wait for a killed life's courier to end its conversation.
        replay = await asyncio.to_thread(self._journal.take_over, LOCK_WAIT)
        wait = _RECORD_RETRY
        while replay.outcomes:
            try:
                await self._store.finish_deliveries(replay.outcomes)
            except Exception as exc:
                log.error(
                    "outbox: cannot record %d deliveries accepted before a crash, retry in "
                    "%gs (nothing is sent meanwhile): %s",
                    len(replay.outcomes),
                    wait,
                    exc,
                )
                await self._clock.sleep(wait)
                wait = min(wait * 2, _RECORD_RETRY_MAX)
            else:
                log.warning(
                    "outbox: recorded %d deliveries accepted just before a crash",
                    len(replay.outcomes),
                )
                break
        for gone in replay.gone:
            try:
                released = await self._store.release_claims(gone, self._clock.time())
            except Exception as exc:
                log.error("outbox: cannot release the claims of %s: %s", gone, exc)
            else:
                if released:
                    log.warning("outbox: retrying %d deliveries of stopped node %s", released, gone)
        self._journal.done(replay)

    async def drain(self) -> None:
        """Wait for attempts in progress (each is bounded by its channel's timeout, and
        an outcome the store keeps refusing by the retries it gets: unbounded while
        running, one more once stopping)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def deliver_due(self) -> int:
        """Start an attempt for every due delivery there is a free slot for; returns how many."""
        free = self._policy.concurrency - len(self._running)
        if free <= 0:
            return 0
        now = self._clock.time()
        started = 0
        for delivery in await self._store.due_deliveries(now, limit=free + len(self._held)):
            if started >= free:
                break
            key, channel = delivery.notice.key, delivery.channel
            if (key, channel) in self._held:
                # Its outcome is known here but not recorded yet (the store was
                # locked past its lease): sending again would double it.
                continue
            lease = now + self._timeout(delivery.channel) + _LEASE_MARGIN
            claimed = await self._store.claim_delivery(
                key, channel, delivery.next_at, lease, self._owner
            )
            if not claimed:
                continue  # another sender took it
            task = asyncio.create_task(self._attempt(delivery), name=f"deliver {key} {channel}")
            self._running.add(task)
            self._held.add((key, channel))
            task.add_done_callback(functools.partial(self._done, (key, channel)))
            started += 1
        return started

    def _done(self, held: tuple[str, str], task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._held.discard(held)
        # A slot came free: there may be more due work waiting for one.
        self._wake.set()

    async def _idle_time(self) -> float:
        due = await self._store.next_delivery_at()
        if due is None:
            return _MAX_IDLE
        # A held delivery's lapsed lease looks due at once; polling for it at full
        # speed would only read the store until its record is written.
        least = _RECORD_RETRY if self._held else 0.05
        return min(max(due - self._clock.time(), least), _MAX_IDLE)

    def _timeout(self, channel: str) -> float:
        return self._timeouts.get(channel, 30.0)

    async def _attempt(self, delivery: Delivery) -> None:
        notice, name = delivery.notice, delivery.channel
        attempt = delivery.attempts + 1
        error: str | None = None
        permanent = False
        retry_after: float | None = None
        # The record of a delivery starts the moment the receiver took it (before the
        # channel's goodbye), in a task of its own so the backstop cannot cut it off.
        # A channel may report that from a thread of its own (the e-mail courier):
        # the journal line is written there at once, the record starts on this loop.
        recording: list[asyncio.Task[None]] = []
        taken: list[Outcome] = []
        loop = asyncio.get_running_loop()

        def record(outcome: Outcome) -> None:
            if not recording:
                if self._journal is not None:
                    self._noted.add((outcome.key, outcome.channel))
                recording.append(asyncio.create_task(self._record(outcome, _what(delivery))))

        def accepted() -> None:
            if taken:
                return
            taken.append(Outcome(notice.key, name, self._clock.time()))
            if self._journal is not None:
                # A courier may have written this line already: twice is harmless.
                self._journal.note(taken[0])
            loop.call_soon_threadsafe(record, taken[0])

        receipt: Receipt | None = None
        if self._journal is not None:
            self._journal.reserve()
            receipt = Receipt(self._journal.fd, notice.key, name)
        channel = self._channels.get(name)
        if channel is None:
            error, permanent = f"channel {name!r} is not configured", True
        else:
            ctx = dataclasses.replace(
                self._context(notice, name, attempt), accepted=accepted, receipt=receipt
            )
            try:
                # The channel enforces its own timeout; this one is a backstop so a
                # channel that hangs anyway can never hold its slot forever.
                async with asyncio.timeout(self._timeout(name) + _BACKSTOP):
                    await channel.send(notice, ctx)
            except DeliveryError as exc:
                error, permanent, retry_after = str(exc), exc.permanent, exc.retry_after
            except TimeoutError:
                error = f"no answer within {self._timeout(name) + _BACKSTOP:g}s"
            except Exception as exc:
                log.exception("outbox: channel %s failed on notice %s", name, notice.key)
                error = f"{type(exc).__name__}: {exc}"
        if taken:
            record(taken[0])  # accepted just as the attempt was cut off: not queued yet
        elif self._journal is not None:
            self._journal.settled()  # never accepted: no line to keep
        if recording:
            if error is not None:
                log.warning(
                    "outbox: %s failed after it was accepted, so it counts as delivered: %s",
                    _what(delivery),
                    error,
                )
            await recording[0]
            error = None
        await self._finish(
            delivery, attempt, error, permanent, retry_after, recorded=bool(recording)
        )

    async def _finish(
        self,
        delivery: Delivery,
        attempt: int,
        error: str | None,
        permanent: bool,
        retry_after: float | None,
        *,
        recorded: bool,
    ) -> None:
        notice, name = delivery.notice, delivery.channel
        now = self._clock.time()
        what = _what(delivery)
        retry_at: float | None = None
        wait = self._wait(attempt, retry_after)
        final = error is not None and (permanent or now - notice.at >= self._policy.give_up_after)
        if error is not None and not final:
            retry_at = now + wait
        # The record first, the log lines after: a mail that is out stays unrecorded
        # (sent again by a crash) for as short a time as can be.
        if not recorded:
            await self._record(Outcome(notice.key, name, now, error, retry_at), what)
        if error is None:
            self.stats.sent += 1
            log.info("delivered %s (attempt %d)", what, attempt)
        else:
            self.stats.failed += 1
            if final:
                self.stats.gave_up += 1
                why = "refused for good" if permanent else "too old to retry"
                log.error("gave up on %s after %d attempts (%s): %s", what, attempt, why, error)
            else:
                log.warning(
                    "could not deliver %s (attempt %d), retry in %.0fs: %s",
                    what,
                    attempt,
                    wait,
                    error,
                )
        if self._publish is not None:
            self._publish(
                NoticeSent(notice, name, attempt)
                if error is None
                else NoticeFailed(notice, name, attempt, error, final)
            )

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next try after ``attempt`` failed: the doubling backoff,
        or the receiver's ``Retry-After`` when that is longer, never over the cap."""
        wait: float = self._policy.backoff * 2 ** (attempt - 1)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self._policy.max_backoff)

    async def _record(self, outcome: Outcome, what: str) -> None:
        """Write an attempt's outcome, retrying until the store takes it.

        Outcomes that end while a record is being written wait for it and then go
        together, in one transaction (a burst of sends costs a commit or two, not one
        each). While this runs the delivery stays held (see ``deliver_due``), so a
        store locked for longer than the lease delays the record, never doubles the
        send. Once the outbox is stopping, one more try; if that fails too the claim
        stays in the store and the next start sends again (the same Message-ID).
        """
        mine = (outcome.key, outcome.channel)
        self._unrecorded[mine] = outcome
        wait = _RECORD_RETRY
        while True:
            async with self._recording:
                if mine not in self._unrecorded:
                    return  # an earlier waiter's commit took it along
                batch = dict(self._unrecorded)
                try:
                    await self._store.finish_deliveries(list(batch.values()))
                except Exception as exc:
                    if self._stopping.is_set():
                        # The journal keeps it, if it was noted: the next start records it.
                        del self._unrecorded[mine]
                        log.error(
                            "outbox: cannot record the delivery of %s while stopping, the "
                            "next start tries it again: %s",
                            what,
                            exc,
                        )
                        return
                    log.error(
                        "outbox: cannot record the delivery of %s (with %d more), retry in "
                        "%gs (not sent again meanwhile): %s",
                        what,
                        len(batch) - 1,
                        wait,
                        exc,
                    )
                else:
                    for done in batch:
                        del self._unrecorded[done]
                    self._forget_noted(batch)
                    return
            await sleep_or_wake(self._clock, self._stopping, wait)
            wait = min(wait * 2, _RECORD_RETRY_MAX)

    def _forget_noted(self, recorded: Iterable[tuple[str, str]]) -> None:
        """The journal's lines for ``recorded`` are in the store now."""
        if self._journal is None:
            return
        done = self._noted.intersection(recorded)
        if done:
            self._noted -= done
            self._journal.settled(len(done))


def _what(delivery: Delivery) -> str:
    """The delivery in words, for log lines."""
    notice = delivery.notice
    return f"{notice.kind.value} notice for {notice.service} to {delivery.channel}"
