"""Config reload: what changed between two configs, and applying a new one to a running daemon.

The pure part (:func:`diff`, :func:`fingerprint`, :func:`live_config`) decides; the
:class:`Reloader` acts. A reload is all or nothing: the new file is parsed and fully
validated off the event loop, and only a valid config touches the daemon. Services
are reconciled by name:

* **unchanged** keep their state and their place in the scheduler (not rescheduled);
* **changed** keep their state and history and continue on their rhythm with the new
  settings (``Scheduler.replace``: no run dropped, none doubled);
* **removed** leave the scheduler, their open incident is closed without a recovery
  notice, and their state and result history are dropped from the store (events stay);
* **added** start at their stable phase, spread over their interval.

Settings the daemon binds at start (listening sockets, the store, the concurrency
bound) keep their running value; the reload says they need a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymon.checks.heartbeat import HeartbeatSpec
from pymon.config.load import DEMO_CONFIG, SECRET_KEYS, load_config
from pymon.config.schema import Config, ServiceConfig
from pymon.engine import rules
from pymon.engine.bus import StateChanged
from pymon.engine.events import ConfigReloaded, ReloadFailed
from pymon.errors import ConfigError, ConfigIssue, PymonError
from pymon.model import EventKind, ServiceState
from pymon.notify.notifier import build_channels

if TYPE_CHECKING:
    from pymon.engine.daemon import Daemon

__all__ = [
    "ConfigDiff",
    "ReloadResult",
    "Reloader",
    "diff",
    "diff_fingerprints",
    "fingerprint",
    "fingerprints",
    "live_config",
    "parse",
    "restart_needed",
]

log = logging.getLogger("pymon")

# Names listed in a log line before "and N more".
_SHOWN = 10


@dataclass(frozen=True)
class ConfigDiff:
    """Service names by what a reload does to them, each in config order."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when no service is added, changed or removed."""
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        """``2 added (a, b), 1 changed (c), 1 removed (d)``, or ``no service changed``."""
        parts = [
            f"{len(names)} {what} ({_names(names)})"
            for what, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        return ", ".join(parts) or "no service changed"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the API's reload answer)."""
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "unchanged": len(self.unchanged),
        }


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one reload: applied (``ok``) or refused with the ``errors``."""

    ok: bool
    source: str
    at: float
    checksum: str = ""
    diff: ConfigDiff | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``POST /api/v1/reload``)."""
        return {
            "ok": self.ok,
            "source": self.source,
            "at": self.at,
            "checksum": self.checksum,
            "diff": None if self.diff is None else self.diff.to_dict(),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def diff(old: Config, new: Config) -> ConfigDiff:
    """How ``new``'s services differ from ``old``'s, comparing each ServiceConfig by value."""
    before = {s.name: s for s in old.services}
    now = {s.name: s for s in new.services}
    return ConfigDiff(
        added=tuple(n for n in now if n not in before),
        changed=tuple(n for n in now if n in before and before[n] != now[n]),
        removed=tuple(n for n in before if n not in now),
        unchanged=tuple(n for n in now if n in before and before[n] == now[n]),
    )


def diff_fingerprints(old: Mapping[str, str], new: Mapping[str, str]) -> ConfigDiff:
    """:func:`diff` from :func:`fingerprints` (what a client can know of a running daemon)."""
    return ConfigDiff(
        added=tuple(n for n in new if n not in old),
        changed=tuple(n for n in new if n in old and old[n] != new[n]),
        removed=tuple(n for n in old if n not in new),
        unchanged=tuple(n for n in new if n in old and old[n] == new[n]),
    )


def fingerprint(service: ServiceConfig) -> str:
    """A stable hash of the service's effective settings, secrets left out.

    Secret values (passwords, tokens) are replaced before hashing so that the hash,
    which the API shows, is no oracle for guessing them; a change of a secret alone
    therefore does not change the fingerprint.
    """
    data = {
        **service.model_dump(mode="json", exclude={"check"}),
        "check": service.check.model_dump(mode="json", by_alias=True),
    }
    text = json.dumps(_without_secrets(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def fingerprints(config: Config) -> dict[str, str]:
    """Every service's :func:`fingerprint`, in config order."""
    return {s.name: fingerprint(s) for s in config.services}


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "<secret>" if k in SECRET_KEYS and v is not None else _without_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _load_issues(path: Path) -> Config | list[ConfigIssue]:
    """:func:`load_config` in a worker process: the Config, or the issues (both pickle)."""
    try:
        return load_config(path)
    except ConfigError as err:
        return err.issues


async def parse(path: Path) -> Config:
    """Load and validate ``path`` in a separate process; raises ConfigError like load_config.

    Parsing is pure Python (10,000 services take seconds): in a thread it would hold
    the GIL against the event loop and make checks late or time out. A fresh
    ``spawn`` process shares nothing with the daemon (no forked loop or sockets).
    """
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcome = await loop.run_in_executor(pool, _load_issues, path)
    if isinstance(outcome, list):
        raise ConfigError(outcome)
    return outcome


def restart_needed(old: Config, new: Config) -> list[str]:
    """Settings that differ but are bound at start: each as ``key: needs a restart``."""
    found = []
    pairs: Iterable[tuple[str, Any, Any]] = (
        ("storage", old.storage, new.storage),
        ("web.enabled", old.web.enabled, new.web.enabled),
        ("web.listen", old.web.listen, new.web.listen),
        ("web.base_path", old.web.base_path, new.web.base_path),
        ("acknowledgements", old.acknowledgements, new.acknowledgements),
        ("scheduler.concurrency", old.scheduler.concurrency, new.scheduler.concurrency),
        ("notifications.delivery", old.notifications.delivery, new.notifications.delivery),
        ("log", old.log, new.log),
    )
    for key, before, after in pairs:
        if before != after:
            found.append(f"{key} changed: needs a restart (the running value is kept)")
    return found


def live_config(old: Config, new: Config) -> Config:
    """``new`` with the settings bound at start (see :func:`restart_needed`) as in ``old``.

    The result is what the daemon really runs with, so ``/healthz`` and the pages
    never show a listen address or store the daemon does not use.
    """
    web = new.web.model_copy(
        update={
            "enabled": old.web.enabled,
            "listen": old.web.listen,
            "base_path": old.web.base_path,
        }
    )
    notifications = new.notifications.model_copy(update={"delivery": old.notifications.delivery})
    return new.model_copy(
        update={
            "storage": old.storage,
            "web": web,
            "acknowledgements": old.acknowledgements,
            "scheduler": old.scheduler,
            "notifications": notifications,
            "log": old.log,
        }
    )


class Reloader:
    """Reloads one daemon's config; one reload at a time (later requests wait their turn)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._lock = asyncio.Lock()
        self.ok: bool | None = None
        self.at: float | None = None
        self.error: str | None = None
        self.source: str | None = None

    @property
    def path(self) -> Path | None:
        """The config file to reload, None when the config did not come from a file."""
        source = self._daemon.config.source
        if not source or source == str(DEMO_CONFIG) or not Path(source).is_file():
            return None
        return Path(source)

    async def reload(self, source: str = "api") -> ReloadResult:
        """Load the config file again and apply it if it is valid (see the module doc)."""
        async with self._lock:
            result = await self._reload(source)
        self.ok, self.at, self.source = result.ok, result.at, source
        self.error = None if result.ok else "\n".join(result.errors)
        self._daemon.bus.publish(ConfigReloaded(result) if result.ok else ReloadFailed(result))
        return result

    async def _reload(self, source: str) -> ReloadResult:
        daemon = self._daemon
        old = daemon.config
        path = self.path
        at = time.time()
        if path is None:
            error = f"{old.source or 'the config'} did not come from a file: nothing to reload"
            log.error("reload (%s) refused: %s", source, error)
            return ReloadResult(False, source, at, old.checksum, errors=(error,))
        try:
            new = await parse(path)
            channels = (
                build_channels(new)
                if new.notifications.channels != old.notifications.channels
                or new.notifications.templates != old.notifications.templates
                else None
            )
        except ConfigError as err:
            errors = tuple(str(issue) for issue in err.issues)
            for line in errors:
                log.error("reload (%s): %s", source, line)
            log.error(
                "reload (%s) failed: %d error%s; the running config is kept",
                source,
                len(errors),
                "" if len(errors) == 1 else "s",
            )
            return ReloadResult(False, source, at, old.checksum, errors=errors)
        except PymonError as exc:
            log.error("reload (%s) failed: %s; the running config is kept", source, exc)
            return ReloadResult(False, source, at, old.checksum, errors=(str(exc),))
        warnings = tuple(restart_needed(old, new))
        config = live_config(old, new)
        changes = diff(old, config)
        await self._apply(old, config, changes, channels)
        for warning in warnings:
            log.warning("reload (%s): %s", source, warning)
        log.info("reload (%s): %s", source, changes.summary())
        return ReloadResult(True, source, at, config.checksum, changes, warnings=warnings)

    async def _apply(
        self,
        old: Config,
        new: Config,
        changes: ConfigDiff,
        channels: tuple[dict[str, Any], dict[str, float]] | None,
    ) -> None:
        daemon = self._daemon
        # Names that come back after being dropped from the store earlier start fresh;
        # names the store still remembers (from before a restart) resume, as at start.
        restored = await daemon.store.load_states() if changes.added else {}
        now = daemon.clock.time()
        services = {s.name: s for s in new.services}
        # From here to the store calls below nothing awaits: checks never see half a swap.
        daemon.config = new
        daemon.services = services
        daemon.notifier.config = new
        stale = []
        if channels is not None:
            stale = list(daemon.notifier.channels.values())
            # The outbox holds this very mapping: swapping its contents reaches it.
            daemon.notifier.channels.clear()
            daemon.notifier.channels.update(channels[0])
        daemon.heartbeats.set_tokens(
            {s.name: s.check.token for s in new.services if isinstance(s.check, HeartbeatSpec)}
        )
        daemon.invalidate_maintenance()
        for name in changes.removed:
            self._retire(name, now)
        for name in changes.changed:
            self._restart(services[name], now)
        for name in changes.added:
            self._start(services[name], restored.get(name), now)
        for name in (*changes.added, *changes.changed):
            daemon.bus.publish(StateChanged(name))
        if changes.removed:
            # The closing events are written first, then the rows are dropped: a
            # pending write landing after the forget would bring a ghost back.
            await daemon.writer.flush()
            await daemon.store.forget(list(changes.removed))
        if old.maintenance != new.maintenance:
            daemon.review_maintenance()
        for channel in stale:
            await channel.close()

    def _retire(self, name: str, now: float) -> None:
        daemon = self._daemon
        daemon.scheduler.remove(name)
        state = daemon.states.pop(name, None) or ServiceState(name)
        incident = daemon.incidents.pop(name, None)
        daemon.invalidate_maintenance(name)
        if incident is None or not incident.open:
            return
        # Closed without a recovery notice, as for a disabled service: nothing recovered.
        outcome = rules.disable(state, incident, now)
        closed = [e for e in outcome.events if e.kind is EventKind.INCIDENT_CLOSED]
        closed = [replace(e, message="removed from the config") for e in closed]
        # Published as a decision (the store writes it) but not as a state change:
        # the service is gone.
        daemon.publish_outcome(
            replace(outcome, state=state, events=closed, notices=[]), changed=False
        )

    def _restart(self, service: ServiceConfig, now: float) -> None:
        daemon = self._daemon
        name = service.name
        if not service.enabled:
            daemon.scheduler.remove(name)
            daemon.apply_outcome(
                rules.disable(daemon.states[name], daemon.incidents.get(name), now)
            )
        elif name in daemon.scheduler:
            daemon.scheduler.replace(name, service.interval)
        else:
            # Enabled again: its first check comes at its stable phase.
            daemon.scheduler.add(name, service.interval)

    def _start(self, service: ServiceConfig, restored: ServiceState | None, now: float) -> None:
        daemon = self._daemon
        state = restored or ServiceState(service.name)
        daemon.states[service.name] = state
        if service.enabled:
            daemon.scheduler.add(service.name, service.interval)
        else:
            daemon.apply_outcome(rules.disable(state, daemon.incidents.get(service.name), now))
