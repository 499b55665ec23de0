"""What the checks that hold a command/reply dialogue with a server share: smtp and ftp."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from pymon.checks.base import CheckContext
from pymon.model import CheckResult, Status
from pymon.text import one_line

__all__ = ["SHOWN_REPLY", "Dialogue"]

# A goodbye (QUIT) may take this long, and at most half of what is left of the
# timeout: a server slow to say goodbye must not turn a verdict into a timeout.
GOODBYE_GRACE = 1.0

# A server's reply text (maybe several lines, maybe hostile) is shown in a message on
# one line, up to this many characters.
SHOWN_REPLY = 160


class Dialogue:
    """How far a dialogue got: the command awaiting its reply, the last reply code, metrics.

    ``connecting_at`` is the ``ctx.clock`` time connecting began; the time from it
    to the greeting is the ``response_time_ms`` metric.
    """

    def __init__(self, ctx: CheckContext, connecting_at: float) -> None:
        self.ctx = ctx
        self.command = "greeting"
        self.code: int | None = None
        self.connecting_at = connecting_at
        self.metrics: dict[str, float] = {}

    def at(self, command: str, stage: str | None = None) -> None:
        """Note that ``command`` is under way: a problem now is about it."""
        self.command = command
        self.ctx.stage = stage or f"waiting for the reply to {command}"

    def greeted(self) -> float:
        """Record ``response_time_ms`` as of now, a greeting having come; returns it."""
        ms = round((self.ctx.clock.monotonic() - self.connecting_at) * 1000, 3)
        self.metrics["response_time_ms"] = ms
        return ms

    def refused(self, code: int, text: str) -> tuple[Status, str, bool]:
        """The verdict on a reply that was not the one expected to the current command.

        A 4xx or 5xx code is the server refusing: ``error``, and a goodbye is in
        order. Any other code there is not the protocol spoken right: ``failed``,
        and the connection is dropped. Returns status, message and whether to QUIT.
        """
        if self.command == "greeting":
            self.greeted()
        self.code = code
        reply = f"{code} {one_line(text, SHOWN_REPLY)}".rstrip()
        if 400 <= code <= 599:
            return Status.ERROR, f"{self.command} refused: {reply}", True
        return Status.FAILED, f"unexpected reply to {self.command}: {reply}", False

    async def goodbye(
        self,
        started: float,
        quit: Callable[[], Awaitable[object]],
        errors: tuple[type[Exception], ...],
    ) -> None:
        """Await ``quit`` (sending QUIT) within the grace left to a check begun at ``started``.

        Whatever happens (``errors``, a closed connection, no answer in time), the
        dialogue is over and the verdict stands.
        """
        grace = min(GOODBYE_GRACE, (self.ctx.timeout - (self.ctx.clock.monotonic() - started)) / 2)
        if grace <= 0:
            return
        self.ctx.stage = "waiting for the reply to QUIT"
        with contextlib.suppress(OSError, TimeoutError, *errors):
            async with asyncio.timeout(grace):
                await quit()

    def result(self, status: Status, message: str) -> CheckResult:
        """The check's result, with ``reply_code`` when a reply came."""
        if self.code is not None:
            self.metrics["reply_code"] = self.code
        return CheckResult(status, message, self.metrics)
