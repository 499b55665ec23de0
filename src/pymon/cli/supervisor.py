"""``pymon run --workers N``: the supervisor of N local worker processes.

The supervisor runs no daemon and imports nothing of the engine: it starts N children
``python -m pymon run --workers 1 --node BASE-wI --worker I`` (they share the services
through the cluster's shards, docs/cluster.md) and keeps them running:

* a child that exits while the supervisor is not stopping, whatever its status, is
  logged and started again after a :class:`Backoff` delay;
* SIGTERM or SIGINT: SIGTERM to every child, wait for them (``grace`` seconds, then
  SIGKILL), exit 0;
* SIGHUP: forwarded to every child (each reloads its config).

Signals reach the loop through :func:`signal.set_wakeup_fd`: the handlers do nothing,
the C handler writes the signal's number to a pipe the loop waits on, so no signal is
lost between two checks and the loop sleeps only until the next restart is due.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Backoff", "Supervisor", "Worker", "exit_text", "worker_count"]

log = logging.getLogger("pymon")

# The signals the supervisor acts on; SIGCHLD only wakes it to look at its children.
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def worker_count(workers: int | Literal["auto"], cpus: int | None) -> int:
    """How many workers ``workers`` means: itself, or for ``auto`` one per core
    (``cpus``: the cores this process may use, None when unknown: 1)."""
    if workers == "auto":
        return max(1, cpus or 1)
    return workers


def usable_cpus() -> int | None:
    """The cores this process may run on (Python 3.13's ``os.process_cpu_count``, else
    the affinity mask where there is one, else every core)."""
    counted: Callable[[], int | None] | None = getattr(os, "process_cpu_count", None)
    if counted is not None:
        return counted()
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


@dataclass
class Backoff:
    """The delay before a worker is started again: ``first``, doubled at each exit up to
    ``cap``, and ``first`` again once the worker had run ``steady`` seconds (a crash
    loop waits longer and longer; a rare crash is restarted at once)."""

    first: float = 0.5
    cap: float = 30.0
    steady: float = 60.0
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.cap:
            raise ValueError(f"backoff: need 0 < first <= cap, got {self.first}, {self.cap}")
        self._next = self.first

    def after(self, ran: float) -> float:
        """The delay before the next start of a worker that exited after ``ran`` seconds."""
        if ran >= self.steady:
            self._next = self.first
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay


def exit_text(status: int) -> str:
    """A child's exit status for the log: ``exit status 3`` or ``killed by SIGKILL``."""
    if status >= 0:
        return f"exit status {status}"
    try:
        return f"killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"killed by signal {-status}"


@dataclass
class Worker:
    """One child: its name, its command line, and its process while it runs."""

    name: str
    command: Sequence[str]
    backoff: Backoff = field(default_factory=Backoff)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    due: float | None = 0.0  # when to start it next (monotonic), None while it runs

    def start(self, now: float) -> None:
        """Start the process (its output goes where the supervisor's goes)."""
        self.proc = subprocess.Popen(self.command)
        self.started, self.due = now, None
        log.info("worker %s: started, pid %d", self.name, self.proc.pid)

    def reap(self, now: float) -> int | None:
        """The exit status if the process ended since the last look (then it is gone)."""
        if self.proc is None or (status := self.proc.poll()) is None:
            return None
        self.proc = None
        self.due = now + self.backoff.after(now - self.started)
        return status

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process if it runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)


class Supervisor:
    """Keeps ``workers`` running until SIGTERM or SIGINT (see the module's text)."""

    def __init__(
        self,
        workers: Sequence[Worker],
        *,
        grace: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not workers:
            raise ValueError("a supervisor needs at least one worker")
        self._workers = list(workers)
        self._grace = grace
        self._clock = clock

    def run(self) -> int:
        """Run the workers until told to stop; the exit status (0)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous = {sig: signal.signal(sig, _noted) for sig in _SIGNALS}
        old_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        try:
            self._loop(wake_r)
            self._stop()
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
        log.info("supervisor: every worker stopped")
        return 0

    def _loop(self, wake: int) -> None:
        while True:
            now = self._clock()
            for worker in self._workers:
                if worker.due is not None and worker.due <= now:
                    worker.start(now)
            dues = [w.due - now for w in self._workers if w.due is not None]
            select.select([wake], [], [], max(0.0, min(dues)) if dues else None)
            received = _drain(wake)
            if signal.SIGHUP in received:
                log.info("supervisor: SIGHUP, every worker reloads")
                for worker in self._workers:
                    worker.signal(signal.SIGHUP)
            if received & {signal.SIGTERM, signal.SIGINT}:
                log.info("supervisor: stopping %d workers", len(self._workers))
                return
            now = self._clock()
            for worker in self._workers:
                status = worker.reap(now)
                if status is not None:
                    assert worker.due is not None
                    log.warning(
                        "worker %s: %s; starting it again in %.1f s",
                        worker.name,
                        exit_text(status),
                        worker.due - now,
                    )

    def _stop(self) -> None:
        """SIGTERM to every worker; SIGKILL to those still running after ``grace``."""
        for worker in self._workers:
            worker.signal(signal.SIGTERM)
        deadline = self._clock() + self._grace
        for worker in self._workers:
            if worker.proc is None:
                continue
            try:
                worker.proc.wait(timeout=max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                log.error("worker %s: still running after %.0f s: killed", worker.name, self._grace)
                worker.proc.kill()
                worker.proc.wait()
            status = worker.proc.returncode
            if status != 0:
                log.warning("worker %s: stopped with %s", worker.name, exit_text(status))


def _noted(signum: int, frame: object) -> None:
    """The Python side of a signal does nothing: the wakeup pipe carries its number."""


def _drain(fd: int) -> set[int]:
    """The signal numbers written to the wakeup pipe since the last read."""
    received: set[int] = set()
    while True:
        try:
            chunk = os.read(fd, 512)
        except BlockingIOError:
            return received
        if not chunk:
            return received
        received.update(chunk)
