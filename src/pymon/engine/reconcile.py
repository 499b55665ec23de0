"""What changed between two configs, decided purely: the reload's reconciliation plan.

A reload is all or nothing: the new file is parsed and fully validated off the
event loop (:mod:`pymon.daemon`), and only a valid config reaches the engine;
:func:`reconcile` then applies it by service name, through the runtime's public
service lifecycle (:class:`Reconcilable`):

* **unchanged** keep their state and their place in the scheduler (not rescheduled);
* **changed** keep their state and history and continue on their rhythm with the new
  settings (``Scheduler.replace``: no run dropped, none doubled);
* **removed** leave the scheduler, their open incident is closed without a recovery
  notice, and their state and result history are dropped from the store (events stay);
* **added** start at their stable phase, spread over their interval.

Settings bound at start (listening sockets, the store, the concurrency bound) keep
their running value (:func:`live_config`); :func:`restart_needed` says which.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pymon.config.load import SECRET_KEYS
from pymon.config.schema import Config, ServiceConfig
from pymon.model import ConfigDiff, ServiceState

__all__ = [
    "Reconcilable",
    "diff",
    "diff_fingerprints",
    "diff_in_turns",
    "fingerprint",
    "fingerprints",
    "live_config",
    "reconcile",
    "restart_needed",
]


class Reconcilable(Protocol):
    """What reconciliation asks of the runtime: its config and its services' lifecycle."""

    @property
    def config(self) -> Config:
        """The config running now."""
        ...

    async def remembered(self) -> dict[str, ServiceState]:
        """Every state the store keeps."""
        ...

    def adopt(self, config: Config) -> None:
        """Run ``config`` from now on (services, tokens, windows)."""
        ...

    def retire(self, name: str) -> None:
        """Stop and drop a removed service."""
        ...

    def restart(self, service: ServiceConfig) -> None:
        """Go on with a changed service's new settings."""
        ...

    def begin(self, service: ServiceConfig, restored: ServiceState | None) -> None:
        """Start a new service."""
        ...

    async def forget(self, names: Sequence[str]) -> None:
        """Drop removed services' rows from the store."""
        ...

    def review_windows(self) -> None:
        """Work every maintenance flag out again."""
        ...


async def reconcile(
    runtime: Reconcilable, new: Config, changes: ConfigDiff | None = None
) -> ConfigDiff:
    """Apply ``new`` to ``runtime`` by service name; what changed (see the module doc).

    ``changes``: :func:`diff` of the running config and ``new``, if already worked out
    (the daemon does it in turns, :func:`diff_in_turns`: a second for 100,000 services).
    """
    old = runtime.config
    changes = diff(old, new) if changes is None else changes
    # Names that come back after being dropped from the store earlier start fresh;
    # names the store still remembers (from before a restart) resume, as at start.
    restored = await runtime.remembered() if changes.added else {}
    services = {s.name: s for s in new.services}
    # From here to forget() nothing awaits: checks never see half a swap.
    runtime.adopt(new)
    for name in changes.removed:
        runtime.retire(name)
    for name in changes.changed:
        runtime.restart(services[name])
    for name in changes.added:
        runtime.begin(services[name], restored.get(name))
    if changes.removed:
        await runtime.forget(changes.removed)
    if old.maintenance != new.maintenance:
        runtime.review_windows()
    return changes


def diff(old: Config, new: Config) -> ConfigDiff:
    """How ``new``'s services differ from ``old``'s, comparing each ServiceConfig by value."""
    comparison = _Comparison(old)
    comparison.take(new.services)
    return comparison.result(new)


async def diff_in_turns(old: Config, new: Config, turn: int = 1000) -> ConfigDiff:
    """:func:`diff`, letting the loop run after every ``turn`` services compared.

    100,000 services take half a second to a second to compare: in one go that stalls
    every check; in a thread it is worse (the loop waits for the GIL after each
    socket call). In turns, checks run every few milliseconds.
    """
    comparison = _Comparison(old)
    for start in range(0, len(new.services), turn):
        comparison.take(new.services[start : start + turn])
        await asyncio.sleep(0)
    return comparison.result(new)


class _Comparison:
    """One :func:`diff`, fed the new services a part at a time."""

    def __init__(self, old: Config) -> None:
        self._before = {s.name: s for s in old.services}
        self._added: list[str] = []
        self._changed: list[str] = []
        self._unchanged: list[str] = []

    def take(self, services: Iterable[ServiceConfig]) -> None:
        for service in services:
            was = self._before.get(service.name)
            if was is None:
                self._added.append(service.name)
            elif was is service or was == service:
                self._unchanged.append(service.name)
            else:
                self._changed.append(service.name)

    def result(self, new: Config) -> ConfigDiff:
        now = {s.name for s in new.services}
        return ConfigDiff(
            added=tuple(self._added),
            changed=tuple(self._changed),
            removed=tuple(n for n in self._before if n not in now),
            unchanged=tuple(self._unchanged),
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


def restart_needed(old: Config, new: Config) -> list[str]:
    """Settings that differ but are bound at start: each as ``key: needs a restart``."""
    found = []
    pairs: Iterable[tuple[str, Any, Any]] = (
        ("storage", old.storage, new.storage),
        ("web.enabled", old.web.enabled, new.web.enabled),
        ("web.listen", old.web.listen, new.web.listen),
        ("web.base_path", old.web.base_path, new.web.base_path),
        ("web.connections", old.web.connections, new.web.connections),
        ("acknowledgements", old.acknowledgements, new.acknowledgements),
        ("scheduler.concurrency", old.scheduler.concurrency, new.scheduler.concurrency),
        ("scheduler.workers", old.scheduler.workers, new.scheduler.workers),
        ("cluster", old.cluster, new.cluster),
        ("node", old.node, new.node),
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
            "connections": old.web.connections,
        }
    )
    notifications = new.notifications.model_copy(update={"delivery": old.notifications.delivery})
    return new.model_copy(
        update={
            "storage": old.storage,
            "web": web,
            "acknowledgements": old.acknowledgements,
            "scheduler": old.scheduler,
            "cluster": old.cluster,
            "node": old.node,
            "notifications": notifications,
            "log": old.log,
        }
    )
