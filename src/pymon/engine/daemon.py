"""The composition root: wires config, store, scheduler, checks, rules and web. No globals.

Data flows one way: scheduler -> check -> CheckResult -> rules -> (state, events)
-> in-memory state -> bus -> store, log, metrics (listeners, never dropped) and the
web stream (a subscription, may drop). The listeners are wired in one place,
:meth:`Daemon._wire_listeners`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import uvicorn
from pydantic import ValidationError

from pymon import __version__
from pymon.checks import CheckContext, check_type, run_check
from pymon.checks.base import Resolver, SystemResolver
from pymon.checks.heartbeat import HeartbeatBoard, HeartbeatSpec
from pymon.checks.http import new_session
from pymon.clock import Clock, SystemClock, sleep_or_wake
from pymon.config.schema import Config, ServiceConfig
from pymon.config.watch import ConfigWatcher
from pymon.config.windows import MaintenanceWindow
from pymon.engine import rules
from pymon.engine.bus import Bus, BusItem, StateChanged
from pymon.engine.events import (
    EVENT_TYPES,
    CheckCompleted,
    Decided,
    NoticeQueued,
    from_transition,
)
from pymon.engine.listeners import LOG_TYPES, EventCounts, StoreListener, log_listener
from pymon.engine.maintenance import DEFAULT_HORIZON, next_change, windows_for
from pymon.engine.reload import Reloader, ReloadResult
from pymon.engine.scheduler import Scheduler
from pymon.errors import PymonError
from pymon.model import (
    Ack,
    CheckResult,
    Event,
    Heartbeat,
    Incident,
    ServiceState,
    Status,
)
from pymon.notify.notifier import Notifier
from pymon.store.base import ResultRecord, Store
from pymon.store.sql import SqlStore
from pymon.store.writer import BatchWriter
from pymon.web.app import create_app

__all__ = ["Daemon", "HttpSessions", "check_once"]

log = logging.getLogger("pymon")


class HttpSessions:
    """One lazily created aiohttp session (see ``checks.http.new_session``) for all http checks."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def get(self) -> aiohttp.ClientSession:
        """The shared session, created on first use inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = new_session()
        return self._session

    async def close(self) -> None:
        """Close the session if one was made."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def check_once(
    service: ServiceConfig, *, resolver: Resolver | None = None
) -> tuple[CheckResult, Status, str]:
    """Run ``service``'s check once: the raw result, and status and message after thresholds."""
    sessions = HttpSessions()
    try:
        ctx = CheckContext(
            timeout=service.timeout,
            http_session=sessions.get,
            resolver=resolver or SystemResolver(),
        )
        result = await run_check(check_type(service.type), service.check, ctx)
    finally:
        await sessions.close()
    status, message = rules.evaluate(result, service.thresholds)
    return result, status, message


class Daemon:
    """A running pymon: call :meth:`start`, then :meth:`stop` (or use :meth:`serve`)."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.resolver = resolver or SystemResolver()
        self.store: Store = store or SqlStore(config.storage.url, history=config.storage.history)
        self.incidents: dict[str, Incident] = {}
        # Everything that happens, as typed events: see _wire_listeners for who hears it.
        self.bus: Bus[BusItem] = Bus()
        self.notifier = Notifier(config, self.store, self, self.clock, publish=self.bus.publish)
        self.writer = BatchWriter(
            self.store,
            flush_interval=config.storage.flush_interval,
            clock=self.clock,
            on_notices=self.notifier.outbox.wake,
        )
        self.scheduler = Scheduler(
            self._run_service, concurrency=config.scheduler.concurrency, clock=self.clock
        )
        self.sessions = HttpSessions()
        self.event_counts = EventCounts()
        self._wire_listeners()
        self.states: dict[str, ServiceState] = {}
        self.adhoc_windows: dict[str, MaintenanceWindow] = {}
        # Per service: (in maintenance?, until when that holds), and the times the
        # flag next flips, so a window's end is acted on at once, not at the next check.
        self._maint: dict[str, tuple[bool, float]] = {}
        self._maint_due: list[tuple[float, str]] = []
        self._maint_wake = asyncio.Event()
        self.services: dict[str, ServiceConfig] = {s.name: s for s in config.services}
        self.started_at = time.time()
        self.heartbeats = HeartbeatBoard(self.clock.time(), _tokens(config))
        self.web_port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._web: _WebServer | None = None
        self.reloader = Reloader(self)
        self._watcher: ConfigWatcher | None = None

    async def start(self) -> None:
        """Open the store, restore every service's last state, start checks and the web server."""
        await self.store.open()
        restored = await self.store.load_states()
        self.incidents = await self.store.open_incidents()
        self.heartbeats.restore((await self.store.load_heartbeats()).values())
        for window_id, data in (await self.store.load_windows()).items():
            try:
                self.adhoc_windows[window_id] = MaintenanceWindow.model_validate(data)
            except ValidationError as exc:
                log.error(
                    "maintenance window %s in the store is unusable, skipped: %s", window_id, exc
                )
        now = self.clock.time()
        for service in self.config.services:
            state = restored.get(service.name) or ServiceState(service.name)
            self.states[service.name] = state
            if not service.enabled:
                self._apply(rules.disable(state, self.incidents.get(service.name), now))
        await self.notifier.start()
        log.info(
            "pymon %s starting: %d services (%d restored from %s)",
            __version__,
            len(self.states),
            sum(1 for n in self.states if n in restored),
            _redact(self.config.storage.url),
        )
        if self.config.web.enabled:
            self._web = _WebServer(self)
            self.web_port = await self._web.start()
        for service in self.config.services:
            if service.enabled:
                self.scheduler.add(service.name, service.interval)
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self.writer.run(), name="store-writer"),
            asyncio.create_task(self._maintenance_sweeper(), name="maintenance"),
        ]
        path = self.reloader.path
        if path is not None and self.config.reload.watch:
            # The globs of the config at start: a reload that adds an include glob
            # in a new directory needs a restart to watch it (SIGHUP reloads it).
            self._watcher = ConfigWatcher(
                path, self.config.include, lambda: self.reload("file change")
            )
            self._watcher.start()

    def _wire_listeners(self) -> None:
        """Register every listener of the bus, here and nowhere else.

        Synchronous listeners, called inline in this order and never dropped:
        the store (each decision whole into the batch writer, whose flush wakes the
        outbox, so only committed notices are sent), the log (one line per
        transition) and the event counters (``/metrics``). The web stream subscribes
        itself when its first client connects (``web/stream.py``): a bounded queue
        that is dropped, never waited for, when it falls behind. Publishers beside
        the daemon: the outbox (``NoticeSent``/``NoticeFailed``, through the
        ``publish`` it was given) and the reloader (``ConfigReloaded``/``ReloadFailed``).
        """
        self.bus.listen(StoreListener(self.writer), *StoreListener.TYPES)
        self.bus.listen(log_listener, *LOG_TYPES)
        self.bus.listen(self.event_counts, *EVENT_TYPES)

    @property
    def reload_ok(self) -> bool | None:
        """Whether the last reload succeeded; None before the first one."""
        return self.reloader.ok

    @property
    def last_reload_at(self) -> float | None:
        """When the last reload was tried (Unix time), None before the first one."""
        return self.reloader.at

    @property
    def last_reload_error(self) -> str | None:
        """Every error of the last reload, one per line, when it failed."""
        return self.reloader.error

    @property
    def last_reload_source(self) -> str | None:
        """What asked for the last reload (``SIGHUP``, ``api``, ``file change``...)."""
        return self.reloader.source

    async def reload(self, source: str = "api") -> ReloadResult:
        """Read the config file again and apply it if valid; else keep the running one.

        See :mod:`pymon.engine.reload`. One reload runs at a time; others wait.
        """
        return await self.reloader.reload(source)

    async def stop(self) -> None:
        """Stop checks, flush every pending write, close the web server and the store."""
        if self._watcher is not None:
            await self._watcher.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._web is not None:
            await self._web.stop()
        await self.notifier.stop()
        try:
            await self.writer.flush()
        except Exception as exc:
            log.error("final store write failed: %s", exc)
        await self.sessions.close()
        await self.store.close()
        log.info("pymon stopped")

    async def serve(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then stop cleanly."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def run_now(self, name: str) -> None:
        """Run the named service's check at once (outside its rhythm)."""
        self.scheduler.run_now(name)

    async def push_heartbeat(self, token: str, *, ok: bool, message: str) -> str | None:
        """Record a job's push; returns the service it belongs to, None for an unknown token.

        The push is persisted before it is acknowledged, and the service is checked
        at once so its state reflects the push without waiting for its next run.
        """
        name = self.heartbeats.owner(token)
        if name is None:
            return None
        beat = Heartbeat(name, self.clock.time(), ok, message)
        await self.store.save_heartbeat(beat)
        self.heartbeats.record(beat)
        if name in self.scheduler:
            self.run_now(name)
        return name

    async def _run_service(self, name: str, lateness: float) -> float | None:
        service = self.services.get(name)
        if service is None:
            return None  # removed by a reload while it waited for a slot
        ctx = CheckContext(
            timeout=service.timeout,
            http_session=self.sessions.get,
            clock=self.clock,
            resolver=self.resolver,
            service=name,
            interval=service.interval,
            heartbeats=self.heartbeats,
        )
        result = await run_check(check_type(service.type), service.check, ctx)
        current = self.services.get(name)
        if current is None or not current.enabled:
            return None  # removed or disabled by a reload while it ran: nothing to apply
        prev = self.states.get(name) or ServiceState(name)
        outcome = rules.apply(
            prev,
            self.incidents.get(name),
            result,
            service,
            self.config.notifications,
            self._situation(service),
        )
        state = outcome.state
        record = ResultRecord(
            name,
            state.seq,
            state.status,
            state.message,
            result.metrics,
            result.started_at,
            result.duration,
            lateness,
        )
        self._apply(outcome, record)
        return service.retry_after if rules.wants_retry(state) else None

    def _situation(self, service: ServiceConfig) -> rules.Situation:
        """The world around ``service`` now: its maintenance windows and its parents."""
        parent_down = bool(service.depends_on) and any(
            (parent := self.states.get(dep)) is not None
            and parent.confirmed_status in (Status.ERROR, Status.FAILED)
            for dep in service.depends_on
        )
        now = self.clock.time()
        return rules.Situation(
            now, maintenance=self.in_maintenance(service, now), parent_down=parent_down
        )

    @property
    def windows(self) -> tuple[MaintenanceWindow, ...]:
        """Every maintenance window: the config's, then those added at run time."""
        return (*self.config.maintenance, *self.adhoc_windows.values())

    def in_maintenance(self, service: ServiceConfig, now: float) -> bool:
        """Whether a maintenance window covers ``service`` at ``now`` (cached until it flips)."""
        cached = self._maint.get(service.name)
        if cached is not None and cached[1] > now:
            return cached[0]
        windows = self.windows
        flag = bool(windows_for(windows, service.name, service.tags, now))
        change = next_change(windows, service.name, service.tags, now) if windows else None
        until = change if change is not None else now + DEFAULT_HORIZON
        self._maint[service.name] = (flag, until)
        heapq.heappush(self._maint_due, (until, service.name))
        if self._maint_due[0][1] == service.name:
            self._maint_wake.set()
        return flag

    async def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        """Add a maintenance window at run time (persisted; it survives restarts).

        The services it covers are re-evaluated at once, so their flags show now.
        """
        window = window.model_copy(
            update={
                "id": window.id or uuid.uuid4().hex[:12],
                "created": window.created or datetime.fromtimestamp(self.clock.time(), UTC),
            }
        )
        assert window.id is not None
        await self.store.save_window(
            window.id, window.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        self.adhoc_windows[window.id] = window
        self._windows_changed()
        return window

    async def remove_maintenance(self, window_id: str) -> bool:
        """Remove a window added at run time; False when there is none with that id."""
        if window_id not in self.adhoc_windows:
            return False
        await self.store.delete_window(window_id)
        del self.adhoc_windows[window_id]
        self._windows_changed()
        return True

    def invalidate_maintenance(self, name: str | None = None) -> None:
        """Forget the cached maintenance flag of ``name`` (of every service if None)."""
        if name is None:
            self._maint.clear()
        else:
            self._maint.pop(name, None)

    def review_maintenance(self) -> None:
        """Re-evaluate every service's maintenance flag now (the windows changed)."""
        self._windows_changed()

    def apply_outcome(self, outcome: rules.Outcome) -> None:
        """Take a decision of the rules that came without a check (disable, review)."""
        self._apply(outcome)

    def _windows_changed(self) -> None:
        self._maint.clear()
        for service in self.services.values():
            if service.enabled and service.name in self.states:
                self._review_now(service)
        log.info("maintenance windows changed: %d in force", len(self.windows))

    def _review_now(self, service: ServiceConfig) -> None:
        outcome = rules.review(
            self.states[service.name],
            self.incidents.get(service.name),
            service,
            self.config.notifications,
            self._situation(service),
        )
        if outcome.events or outcome.notices:
            self._apply(outcome)

    async def _maintenance_sweeper(self) -> None:
        """Re-evaluate a service when a maintenance window starts or ends for it."""
        while True:
            now = self.clock.time()
            while self._maint_due and self._maint_due[0][0] <= now:
                _, name = heapq.heappop(self._maint_due)
                service = self.services.get(name)
                cached = self._maint.get(name)
                if service is None or not service.enabled or (cached and cached[1] > now):
                    continue  # gone, disabled, or a stale entry (recomputed since)
                self._review_now(service)
            self._maint_wake.clear()
            delay = self._maint_due[0][0] - now if self._maint_due else 3600.0
            await sleep_or_wake(self.clock, self._maint_wake, min(delay, 3600.0))

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        """Acknowledge the open incident of ``name``; its notices stop until it closes or
        gets worse. Raises PymonError when there is nothing to acknowledge."""
        service, incident = self._open_incident(name)
        incident, events = rules.acknowledge(
            incident, Ack(author, comment, self.clock.time(), expires)
        )
        return await self._review(service, incident, events)

    async def unacknowledge(self, name: str, author: str) -> Incident:
        """Take the acknowledgement of ``name``'s open incident back."""
        service, incident = self._open_incident(name)
        incident, events = rules.unacknowledge(
            incident, self.clock.time(), f"acknowledgement taken back by {author}"
        )
        return await self._review(service, incident, events)

    def _open_incident(self, name: str) -> tuple[ServiceConfig, Incident]:
        service = self.services.get(name)
        if service is None:
            raise PymonError(f"no service named {name!r}")
        incident = self.incidents.get(name)
        if incident is None or not incident.open:
            raise PymonError(f"{name} has no open incident to acknowledge")
        return service, incident

    async def _review(
        self, service: ServiceConfig, incident: Incident, events: list[Event]
    ) -> Incident:
        outcome = rules.review(
            self.states[service.name],
            incident,
            service,
            self.config.notifications,
            self._situation(service),
        )
        outcome.events[:0] = events
        self._apply(outcome)
        # An acknowledgement is an operator's word: make it durable before answering.
        await self.writer.flush()
        assert outcome.incident is not None
        return outcome.incident

    def _apply(self, outcome: rules.Outcome, record: ResultRecord | None = None) -> None:
        state = outcome.state
        changed = (
            self.states.get(state.name) is not state
            or self.incidents.get(state.name) is not outcome.incident
        )
        self.states[state.name] = state
        if outcome.incident is not None:
            if outcome.incident.open:
                self.incidents[state.name] = outcome.incident
            else:
                self.incidents.pop(state.name, None)
        self.publish_outcome(outcome, record, changed=changed)

    def publish_outcome(
        self, outcome: rules.Outcome, record: ResultRecord | None = None, *, changed: bool = True
    ) -> None:
        """Publish one decision of the rules: the decision whole (for the store), then
        ``CheckCompleted`` when a check ran, a typed event per transition, a
        ``NoticeQueued`` per notice, and ``StateChanged`` when ``changed``.

        Every piece goes out in this one call, so the store gets them in one loop turn.
        """
        bus = self.bus
        name = outcome.state.name
        bus.publish(Decided(outcome, record))
        if record is not None:
            bus.publish(CheckCompleted(name, outcome.state, record))
        for event in outcome.events:
            bus.publish(from_transition(event, outcome.incident))
        for notice in outcome.notices:
            bus.publish(NoticeQueued(notice))
        if changed:
            bus.publish(StateChanged(name))


def _tokens(config: Config) -> dict[str, str]:
    return {s.name: s.check.token for s in config.services if isinstance(s.check, HeartbeatSpec)}


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


class _WebServer:
    """uvicorn serving the web app inside the daemon's event loop, on a socket we bind."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        host, port = self._daemon.config.web.host_port()
        sock = _bind(host, port)
        app = create_app(self._daemon)
        # proxy_headers off: uvicorn would believe X-Forwarded-* from any local peer;
        # pymon.web.proxy honours them only from web.trusted_proxies.
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            proxy_headers=False,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web")
        bound: int = sock.getsockname()[1]
        log.info("web: listening on http://%s:%d%s", host, bound, self._daemon.config.web.base_path)
        return bound

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=3)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PymonError(f"web: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon owns SIGTERM and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
