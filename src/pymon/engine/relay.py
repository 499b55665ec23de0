"""Commands for services another node runs, and run-time maintenance windows kept in
step across the cluster (docs/cluster.md, "Commands on any node").

A node runs only the services of its shards, so an acknowledgement (or a take
back, or a run now) that reaches another node is sent through the store's
commands table. :meth:`Relay.send` writes the row and polls it for the answer;
the owner's :meth:`Relay.run` loop takes the open commands of the services it
runs (one conditional update: one taker, once), applies each through the same
runtime methods as a local call, and writes the answer or the error, which the
sender raises as the same :class:`UnknownService` or :class:`CommandRefused`. A
sender that waited too long withdraws its command, so an owner that comes back
late does not apply it behind the operator's back.

The same loop reads the windows table now and then: a window added or removed
on another node is taken up here, and the services it covers are reviewed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from pymon.clock import Clock, sleep_or_wake
from pymon.config.windows import MaintenanceWindow
from pymon.errors import CommandRefused, UnknownService
from pymon.model import Incident
from pymon.store.base import CommandRecord, Store

__all__ = ["Relay", "Target"]

log = logging.getLogger("pymon.relay")

#: How many open commands one look takes at most (the rest wait for the next look).
_BATCH = 100


class Target(Protocol):
    """What the relay applies commands to and keeps windows in: the runtime."""

    adhoc_windows: dict[str, MaintenanceWindow]

    def owns(self, name: str) -> bool:
        """Whether this node runs ``name``."""
        ...

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        """Acknowledge ``name``'s open incident."""
        ...

    async def unacknowledge(self, name: str, author: str) -> Incident:
        """Take ``name``'s acknowledgement back."""
        ...

    async def run_now(self, name: str) -> None:
        """Run ``name``'s check at once."""
        ...

    def review_windows(self) -> None:
        """The windows changed: work every service's maintenance flag out again."""
        ...


class Relay:
    """Sends this node's commands for other nodes' services and applies theirs.

    ``timeout`` bounds how long a sender waits for the owner's answer (polling every
    ``poll`` seconds); the owner looks for commands every ``every`` seconds, reads
    the windows every ``windows_every`` and drops commands older than ``keep``.
    """

    def __init__(
        self,
        store: Store,
        node: str,
        *,
        clock: Clock,
        timeout: float = 10.0,
        poll: float = 0.1,
        every: float = 0.2,
        windows_every: float = 1.0,
        keep: float = 3600.0,
    ) -> None:
        if not 0 < poll <= timeout <= 300:
            raise ValueError(f"need 0 < poll <= timeout <= 300 s, got {poll} and {timeout}")
        if not 0 < every <= 60 or not 0 < windows_every <= 3600:
            raise ValueError(f"the loop's periods must be positive, got {every}, {windows_every}")
        if keep < timeout:
            raise ValueError(f"keep ({keep} s) must be at least the timeout ({timeout} s)")
        self._store = store
        self.node = node
        self._clock = clock
        self._timeout = timeout
        self._poll = poll
        self._every = every
        self._windows_every = windows_every
        self._keep = keep
        self._closing = asyncio.Event()
        # The windows table as last read: what changed since is what another node did.
        self._windows_seen: dict[str, dict[str, Any]] | None = None

    # -- sending -------------------------------------------------------------------------

    async def acknowledge(
        self, name: str, author: str, comment: str, expires: float | None
    ) -> Incident:
        """Acknowledge ``name``'s open incident on the node that runs it."""
        args = {"author": author, "comment": comment, "expires": expires}
        return _incident(await self.send(name, "ack", args))

    async def unacknowledge(self, name: str, author: str) -> Incident:
        """Take ``name``'s acknowledgement back on the node that runs it."""
        return _incident(await self.send(name, "unack", {"author": author}))

    async def run_now(self, name: str) -> None:
        """Run ``name``'s check at once on the node that runs it."""
        await self.send(name, "run_now", {})

    async def send(self, service: str, kind: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Send a command to the owner of ``service`` and wait for its answer.

        Raises what the owner raised (:class:`UnknownService`, :class:`CommandRefused`),
        or :class:`CommandRefused` when no answer came within the timeout.
        """
        command_id = await self._store.send_command(
            service, kind, arguments, self.node, self._clock.time()
        )
        deadline = self._clock.monotonic() + self._timeout
        while True:
            record = await self._store.command(command_id)
            if record is not None and record.done_at is not None:
                return _answer(record)
            if self._clock.monotonic() >= deadline:
                break
            await self._clock.sleep(self._poll)
        if await self._store.withdraw_command(command_id, self._clock.time()):
            raise CommandRefused(
                f"the owner of {service} did not answer in time ({self._timeout:g} s); "
                "the command was withdrawn, nothing was done"
            )
        raise CommandRefused(
            f"the owner of {service} took the command but did not answer in time "
            f"({self._timeout:g} s); it may still be applied"
        )

    # -- the owner's loop ----------------------------------------------------------------

    async def run(self, target: Target) -> None:
        """Apply the commands for ``target``'s services and take up other nodes'
        windows, until :meth:`close`; trouble (the store's, mostly) is logged and retried."""
        windows_at = prune_at = self._clock.monotonic()
        while not self._closing.is_set():
            await sleep_or_wake(self._clock, self._closing, self._every)
            if self._closing.is_set():
                return
            try:
                await self.step(target)
                now = self._clock.monotonic()
                if now >= windows_at:
                    windows_at = now + self._windows_every
                    await self.sync_windows(target)
                if now >= prune_at:
                    prune_at = now + min(self._keep, 60.0)
                    await self._store.prune_commands(self._clock.time() - self._keep)
            except Exception as exc:
                log.error("relay: failed, will retry: %s", exc)

    def close(self) -> None:
        """End :meth:`run` after the step in progress (never in the middle of one: a
        task cancelled inside a transaction can leave its connection holding the lock)."""
        self._closing.set()

    async def step(self, target: Target) -> int:
        """Take and apply the open commands for services ``target`` runs; how many."""
        now = self._clock.time()
        # Older ones' senders gave up (and withdrew them, unless they died).
        pending = await self._store.open_commands(now - self._timeout, _BATCH)
        mine = [c.id for c in pending if target.owns(c.service)]
        taken = await self._store.take_commands(self.node, mine, now)
        for command in taken:
            await self._apply(target, command)
        return len(taken)

    async def _apply(self, target: Target, command: CommandRecord) -> None:
        answer: dict[str, Any] | None = None
        error: str | None = None
        kind: str | None = None
        try:
            if not target.owns(command.service):
                # Its shard left this node since the take: the sender may try again.
                raise CommandRefused(f"{command.service} moved to another node; try again")
            answer = await _carry_out(target, command)
        except UnknownService as exc:
            error, kind = str(exc), "unknown"
        except CommandRefused as exc:
            error, kind = str(exc), "refused"
        except (KeyError, TypeError, ValueError) as exc:
            error, kind = f"malformed command {command.kind!r}: {exc!r}", "refused"
        except Exception as exc:
            # The sender gets an answer rather than a timeout, and the loop goes on.
            log.exception("relay: %s %s failed", command.kind, command.service)
            error, kind = f"{command.service}: the owner failed to apply it: {exc}", "refused"
        log.info(
            "relay: %s %s from %s: %s",
            command.kind,
            command.service,
            command.origin,
            error or "done",
        )
        await self._store.finish_command(
            command.id, self._clock.time(), answer=answer, error=error, error_kind=kind
        )

    async def sync_windows(self, target: Target) -> bool:
        """Take up the windows other nodes added, changed or removed since the last
        read; whether any did (then the services are reviewed)."""
        stored = await self._store.load_windows()
        # At the first read, every window in memory counts as seen: those gone from
        # the store go (the runtime loaded them a moment ago).
        seen = self._windows_seen
        if seen is None:
            seen = {wid: {} for wid in target.adhoc_windows}
        self._windows_seen = stored
        changed = False
        for wid, data in stored.items():
            if seen.get(wid) == data:
                continue
            try:
                window = MaintenanceWindow.model_validate(data)
            except ValidationError as exc:
                log.error("maintenance window %s in the store is unusable, skipped: %s", wid, exc)
                continue
            if target.adhoc_windows.get(wid) != window:
                target.adhoc_windows[wid] = window
                changed = True
        for wid in seen.keys() - stored.keys():
            changed = target.adhoc_windows.pop(wid, None) is not None or changed
        if changed:
            target.review_windows()
        return changed


async def _carry_out(target: Target, command: CommandRecord) -> dict[str, Any]:
    """Apply ``command`` through ``target``'s own methods; its JSON answer."""
    args, name = command.arguments, command.service
    if command.kind == "ack":
        expires = args.get("expires")
        incident = await target.acknowledge(
            name,
            str(args["author"]),
            str(args.get("comment", "")),
            None if expires is None else float(expires),
        )
        return {"incident": incident.to_dict()}
    if command.kind == "unack":
        incident = await target.unacknowledge(name, str(args["author"]))
        return {"incident": incident.to_dict()}
    if command.kind == "run_now":
        await target.run_now(name)
        return {}
    raise CommandRefused(f"unknown command {command.kind!r}")


def _answer(record: CommandRecord) -> dict[str, Any]:
    """The answer of a done command, or what its owner raised, raised here."""
    if record.error_kind == "unknown":
        raise UnknownService(record.error or f"no service named {record.service!r}")
    if record.error is not None or record.error_kind is not None:
        raise CommandRefused(record.error or f"{record.kind} {record.service} was refused")
    return dict(record.answer or {})


def _incident(answer: Mapping[str, Any]) -> Incident:
    return Incident.from_dict(answer["incident"])
