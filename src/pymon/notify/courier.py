"""The courier: a child process that SMTP conversations run in.

Between the moment a mail server keeps a notice (before it answers ``250``) and
the moment pymon has read that answer, a kill -9 of the daemon ends the
conversation unseen, and the next start sends the notice again. No care inside
the daemon's process shrinks that window to nothing. So the conversation is held
by another process: the courier. When the daemon dies, the courier still reads
the ``250``, appends the delivery to the outbox's journal (``notify/journal.py``;
the journal's descriptor travels with each job, and with it the journal's lock,
which a starting node waits for) and exits once its conversations are over
(:data:`GRACE` at most). A machine that loses power still loses that window.

One courier serves the whole daemon; it starts with the first e-mail and again
if it ever dies (its jobs in flight then fail and are retried). It ignores
SIGINT and SIGTERM: the daemon's stop reaches it as the end of its socket, after
the outbox has let every attempt finish.

The two talk over a Unix socket pair, in frames (a 4-byte length, then a pickle:
both ends are the same program, started by the same user). Daemon to courier: a
job, the journal's descriptor attached to its first byte (``SCM_RIGHTS``).
Courier to daemon: ``(id, "accepted")`` the moment the server took the message,
then ``(id, "sent")`` or ``(id, "failed", reason, permanent)``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from pymon.notify.base import DeliveryError
from pymon.notify.journal import Receipt, line
from pymon.notify.smtp import Server, SmtpSettings, send_message
from pymon.tuning import setup_logging

__all__ = ["GRACE", "deliver"]

log = logging.getLogger("pymon.notify")

GRACE = 60.0
"""How long a courier whose daemon is gone lets its conversations run before it exits."""

_HEADER = struct.Struct("!I")
_MAX_FRAME = 64 * 1024 * 1024
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Job:
    id: int
    server: Server
    message: EmailMessage
    # The notice key and channel to journal; the descriptor travels beside.
    receipt: tuple[str, str] | None


def _frame(item: object) -> bytes:
    payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


class _Frames:
    """Splits a byte stream back into the items :func:`_frame` made."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Any]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > _MAX_FRAME:
                raise ValueError(f"a courier frame of {size} bytes")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return
            item = pickle.loads(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield item


@dataclass(slots=True)
class _Waiting:
    """A job handed to the courier, as the daemon waits for it."""

    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[tuple[str, bool] | None]
    accepted: Callable[[], None] | None


class _Process:
    """One courier process, the socket to it and the jobs it holds."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pymon.notify.courier", str(theirs.fileno()), level],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self.sock = ours
        self.jobs: dict[int, _Waiting] = {}
        self.alive = True
        self._lock = threading.Lock()
        self._send = threading.Lock()
        threading.Thread(target=self._read, name="pymon-courier-reader", daemon=True).start()

    def post(self, job: _Job, waiting: _Waiting, journal: int | None) -> None:
        """Hand ``job`` over (blocks while the socket is full: call it off the loop)."""
        frame = _frame(job)
        with self._lock:
            if not self.alive:
                raise DeliveryError("the e-mail courier process has ended")
            self.jobs[job.id] = waiting
        try:
            with self._send:
                sent = (
                    self.sock.send(frame)
                    if journal is None
                    else socket.send_fds(self.sock, [frame], [journal])
                )
                if sent < len(frame):
                    self.sock.sendall(frame[sent:])
        except OSError as exc:
            self.forget(job.id)
            raise DeliveryError(f"cannot reach the e-mail courier process: {exc}") from exc

    def forget(self, job_id: int) -> None:
        """Stop waiting for ``job_id`` (its sender was cancelled)."""
        with self._lock:
            self.jobs.pop(job_id, None)

    def _read(self) -> None:
        frames = _Frames()
        try:
            while data := self.sock.recv(_CHUNK):
                for job_id, what, *rest in frames.feed(data):
                    self._tell(job_id, what, rest)
        except (OSError, ValueError, pickle.UnpicklingError) as exc:
            log.error("outbox: lost the e-mail courier process: %s", exc)
        with self._lock:
            self.alive = False
            left, self.jobs = self.jobs, {}
        for waiting in left.values():
            outcome = ("the e-mail courier process ended during the conversation", False)
            _settle(waiting, outcome)
        self.sock.close()
        code = self.proc.wait()
        if left or code != 0:
            log.error("outbox: the e-mail courier process ended (exit status %d)", code)

    def _tell(self, job_id: int, what: str, rest: list[Any]) -> None:
        with self._lock:
            waiting = self.jobs.get(job_id) if what == "accepted" else self.jobs.pop(job_id, None)
        if waiting is None:
            return
        if what == "accepted":
            if waiting.accepted is not None:
                waiting.accepted()  # thread-safe by the channel contract
        else:
            _settle(waiting, None if what == "sent" else (str(rest[0]), bool(rest[1])))


def _settle(waiting: _Waiting, outcome: tuple[str, bool] | None) -> None:
    def resolve() -> None:
        if not waiting.done.done():
            waiting.done.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # that loop has closed
        waiting.loop.call_soon_threadsafe(resolve)


_lock = threading.Lock()
_current: _Process | None = None
_ids = itertools.count(1)


def _process() -> _Process:
    global _current
    with _lock:
        if _current is None or not _current.alive:
            _current = _Process()
        return _current


async def deliver(
    config: SmtpSettings,
    message: EmailMessage,
    *,
    receipt: Receipt | None = None,
    accepted: Callable[[], None] | None = None,
) -> None:
    """Send ``message`` through the SMTP server of ``config``, in the courier process.

    Returns once the server took it; raises :class:`DeliveryError` otherwise.
    ``accepted`` is called (from another thread) the moment the server said 250,
    after the courier appended ``receipt``'s line to its journal.
    """
    loop = asyncio.get_running_loop()
    waiting = _Waiting(loop, loop.create_future(), accepted)
    job = _Job(
        next(_ids),
        Server.of(config),
        message,
        None if receipt is None else (receipt.key, receipt.channel),
    )
    courier = await asyncio.to_thread(_process)
    try:
        await asyncio.to_thread(courier.post, job, waiting, None if receipt is None else receipt.fd)
        outcome = await waiting.done
    finally:
        courier.forget(job.id)
    if outcome is not None:
        reason, permanent = outcome
        raise DeliveryError(reason, permanent=permanent)


# -- the courier process ----------------------------------------------------------------


def main(argv: list[str]) -> None:
    """The courier process: carry each job the daemon sends, until its socket ends and
    the last conversation is over (or :data:`GRACE` has passed)."""
    sock = socket.socket(fileno=int(argv[0]))
    setup_logging(argv[1] if len(argv) > 1 else "info")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="pymon-courier", daemon=True).start()
    replies = threading.Lock()

    def reply(item: object) -> None:
        with replies, contextlib.suppress(OSError):  # the daemon is gone: it cannot hear
            sock.sendall(_frame(item))

    frames = _Frames()
    journals: collections.deque[int] = collections.deque()
    running: set[concurrent.futures.Future[None]] = set()
    while True:
        try:
            data, fds, _flags, _ = socket.recv_fds(sock, _CHUNK, 8)
        except OSError:
            break
        journals.extend(fds)
        if not data:
            break
        for job in frames.feed(data):
            journal = journals.popleft() if job.receipt is not None and journals else None
            work = asyncio.run_coroutine_threadsafe(_carry(job, journal, reply), loop)
            running.add(work)
            work.add_done_callback(running.discard)
    # The daemon stopped or died: what is in flight ends, then so does the courier.
    concurrent.futures.wait(list(running), timeout=GRACE)


async def _carry(job: _Job, journal: int | None, reply: Callable[[object], None]) -> None:
    def accepted() -> None:
        if journal is not None and job.receipt is not None:
            try:
                os.write(journal, line(*job.receipt, time.time()))
            except OSError as exc:
                log.error("courier: cannot write the outbox journal: %s", exc)
        reply((job.id, "accepted"))

    try:
        await send_message(job.server, job.message, accepted=accepted)
    except DeliveryError as exc:
        reply((job.id, "failed", str(exc), exc.permanent))
    except Exception as exc:
        log.exception("courier: sending failed")
        reply((job.id, "failed", f"{type(exc).__name__}: {exc}", False))
    else:
        reply((job.id, "sent"))
    finally:
        if journal is not None:
            os.close(journal)  # the lock stays with the daemon's own descriptor


if __name__ == "__main__":
    main(sys.argv[1:])
