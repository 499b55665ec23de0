"""``heartbeat``: a passive check fed by pushes from the job it watches.

A job calls ``POST`` (or ``GET``) ``/api/v1/heartbeat/{token}``, optionally with
``?status=fail&msg=...``. Each run of the check looks at the last push: none within
``interval + grace`` is ``failed``; a push that reported failure is ``error``.
Before the first push ever, the allowance runs from the daemon's start.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from pydantic import Field

from pymon.checks.base import CheckContext
from pymon.checks.spec import CheckSpec
from pymon.durations import Duration
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Heartbeat, Status

__all__ = ["HeartbeatBoard", "HeartbeatSpec", "check_heartbeat", "push_tokens"]


class HeartbeatSpec(CheckSpec):
    """Keys of a ``heartbeat`` service. The token is a secret: it is never shown."""

    unique_fields = ("token",)  # a push must reach exactly one service
    token: str = Field(min_length=16, max_length=256, pattern=r"^[A-Za-z0-9._~-]+$", repr=False)
    grace: Duration = Field(default=60.0, ge=0)


def push_tokens(specs: Mapping[str, CheckSpec]) -> dict[str, str]:
    """Service name -> token of every heartbeat service among ``specs`` (name -> its
    check's keys): the board's lookup table."""
    return {name: spec.token for name, spec in specs.items() if isinstance(spec, HeartbeatSpec)}


class HeartbeatBoard:
    """The last push per heartbeat service, and the token -> service lookup."""

    def __init__(self, since: float, tokens: Mapping[str, str] | None = None) -> None:
        self.since = since
        self._tokens = dict(tokens or {})
        self._beats: dict[str, Heartbeat] = {}

    def set_tokens(self, tokens: Mapping[str, str]) -> None:
        """Replace the service -> token table (on start and on reload)."""
        self._tokens = dict(tokens)

    def owner(self, token: str) -> str | None:
        """The service whose token is ``token``, compared in constant time."""
        found = None
        given = token.encode()
        # Compare with every token, and never stop early, so the time taken says
        # nothing about how close a guess came or which service matched.
        for service, secret in self._tokens.items():
            if hmac.compare_digest(given, secret.encode()):
                found = service
        return found

    def get(self, service: str) -> Heartbeat | None:
        """The last push to ``service``, if any."""
        return self._beats.get(service)

    def record(self, beat: Heartbeat) -> None:
        """Remember a push (the newest wins)."""
        prior = self._beats.get(beat.service)
        if prior is None or prior.at <= beat.at:
            self._beats[beat.service] = beat

    def restore(self, beats: Iterable[Heartbeat]) -> None:
        """Load pushes persisted before a restart."""
        for beat in beats:
            self.record(beat)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


async def check_heartbeat(spec: HeartbeatSpec, ctx: CheckContext) -> CheckResult:
    """Expect a push to /api/v1/heartbeat/TOKEN at least every interval + grace."""
    pushes = ctx.pushes
    if pushes is None:
        raise CheckSetupError(
            "heartbeats are pushed to a running daemon; watch them with `pymon run`"
        )
    now = ctx.clock.time()
    allowed = ctx.interval + spec.grace
    beat = pushes.get(ctx.service)
    if beat is None:
        waited = now - pushes.since
        if waited <= allowed:
            return CheckResult(
                Status.UNKNOWN,
                f"waiting for the first heartbeat (due within {_ago(allowed - waited)})",
            )
        return CheckResult(
            Status.FAILED, f"no heartbeat received in {_ago(waited)} (allowed {_ago(allowed)})"
        )
    age = now - beat.at
    metrics = {"age_s": round(max(0.0, age), 3)}
    note = f": {beat.message}" if beat.message else ""
    if age > allowed:
        return CheckResult(
            Status.FAILED,
            f"no heartbeat for {_ago(age)} (allowed {_ago(allowed)}); last one{note}",
            metrics,
        )
    if not beat.ok:
        return CheckResult(Status.ERROR, f"job reported failure {_ago(age)} ago{note}", metrics)
    return CheckResult(Status.OK, f"last heartbeat {_ago(age)} ago{note}", metrics)
