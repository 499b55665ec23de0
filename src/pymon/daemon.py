"""The composition root: builds the store, the writer, the engine, the notifier and the
web server, and wires them together. No globals.

This is the one module that imports both the engine and its edges (store, notify,
web). The engine (:class:`~pymon.engine.runtime.Runtime`) is handed what it needs;
the edges get the engine only as an :class:`~pymon.engine.ports.EnginePort`. Who
hears the bus is decided here too (:meth:`Daemon._wire_listeners`).

Data flows one way: scheduler -> check -> CheckResult -> rules -> (state, events)
-> the runtime's memory -> the store's writer (one transaction per decision batch)
and the bus -> log, metrics and the web stream.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pymon import __version__
from pymon.checks.base import Resolver
from pymon.clock import Clock, SystemClock
from pymon.config.load import DEMO_CONFIG, load_config
from pymon.config.schema import Config, ServiceConfig
from pymon.config.watch import ConfigWatcher
from pymon.engine.bus import Bus
from pymon.engine.cluster import Membership, Pools, default_node_name, new_node, shard_map
from pymon.engine.listeners import LOG_TYPES, log_listener
from pymon.engine.peers import Peers
from pymon.engine.reconcile import diff_in_turns, live_config, reconcile, restart_needed
from pymon.engine.relay import Relay
from pymon.engine.runtime import Runtime
from pymon.errors import ConfigError, ConfigIssue, PymonError, StoreError
from pymon.events import BusItem, StateChanged
from pymon.model import ReloadResult
from pymon.notify.notifier import Notifier, build_channels
from pymon.store.base import Store
from pymon.store.retention import Retention
from pymon.store.sql import SqlStore
from pymon.store.writer import BatchWriter
from pymon.tuning import freeze_heap, paused_gc
from pymon.web.app import create_app
from pymon.web.server import WebServer

__all__ = ["Daemon", "Reloader", "parse"]

log = logging.getLogger("pymon")

# Opening a database server that does not answer is tried again after this long,
# doubling up to the cap.
_OPEN_RETRY = 1.0
_OPEN_RETRY_MAX = 30.0


class Daemon:
    """A running pymon: call :meth:`start`, then :meth:`stop` (or use :meth:`serve`).

    ``runtime`` is the engine (and its port); ``store``, ``writer`` and ``notifier``
    are its edges, built here. ``worker`` (1..N) says it is a local worker of ``pymon
    run --workers N``: its web server shares the dashboard's port with the other
    workers (SO_REUSEPORT) and only worker 1 runs the acknowledgement server.
    """

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        node: str | None = None,
        worker: int | None = None,
        listen: str | None = None,
        config_read_at: float | None = None,
        location: str | None = None,
    ) -> None:
        self.worker = worker
        # ``pymon run --listen``: it outlives reloads, which read web.listen anew.
        self.listen = listen
        # When the config's files were read (wall clock), if known: an edit after it
        # and before the file watch starts is caught up on (ConfigWatcher's since).
        self._config_read_at = config_read_at
        # A SQLite file: nodes on one machine only, and a store that will not open is a
        # local mistake, not a server to wait for.
        self._on_sqlite = config.storage.url.startswith("sqlite")
        self.clock = clock or SystemClock()
        self.store: Store = store or SqlStore(config.storage.url, history=config.storage.history)
        self.bus: Bus[BusItem] = Bus()
        name = node or default_node_name()
        web = config.web.listen if config.web.enabled else ""
        self.membership = Membership(
            self.store,
            config.cluster,
            new_node(name, config.checksum, web, location or config.node.location),
            self._handover,
            clock=self.clock,
            rate=self._checks_per_s,
            one_machine=self._on_sqlite,
        )
        self.notifier = Notifier(
            config,
            self.store,
            self.clock,
            publish=self.bus.publish,
            owner=name,
            serve_acks=worker in (None, 1),
        )
        self.writer = BatchWriter(
            self.store,
            flush_interval=config.storage.flush_interval,
            clock=self.clock,
            on_notices=self.notifier.outbox.wake,
            fence=self.membership.fence,
            on_fenced=self.membership.lost,
        )
        self.reloader = Reloader(self)
        peers = Peers(
            self.store,
            node=name,
            shard_of=lambda: self.membership.shard_of,
            lease=config.cluster.lease,
            clock=self.clock,
            changed=self._others_changed,
        )
        self.relay = Relay(self.store, name, clock=self.clock)
        self.retention = Retention(self.store, config.storage.rollups, self.clock)
        self.runtime = Runtime(
            config,
            store=self.store,
            writer=self.writer,
            bus=self.bus,
            clock=self.clock,
            resolver=resolver,
            reloader=self.reloader.reload,
            notices=self.notifier,
            peers=peers,
            relay=self.relay,
        )
        self.runtime.owns = self._owns
        self.runtime.cluster_figures = self.membership.figures
        self._wire_listeners()
        self._membership_task: asyncio.Task[None] | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._checks_seen = (time.monotonic(), 0)
        self.web_port: int | None = None
        self._web: WebServer | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._watcher: ConfigWatcher | None = None

    @property
    def config(self) -> Config:
        """The config running now."""
        return self.runtime.config

    def _wire_listeners(self) -> None:
        """Register every synchronous listener of the bus, here and nowhere else.

        The store is not one: the runtime hands each decision to the writer itself.
        The log writes one line per transition; the runtime counts events for
        ``/metrics``. The web stream subscribes through the port when its first
        client connects: a bounded queue that is dropped, never waited for. Publishers
        beside the runtime: the outbox (``NoticeSent``/``NoticeFailed``).
        """
        self.bus.listen(log_listener, *LOG_TYPES)

    def _owns(self, name: str) -> bool:
        return self.membership.owns(name)

    def _others_changed(self, names: Iterable[str]) -> None:
        """The store shows other nodes' services changed: the live stream shows them."""
        for name in names:
            if not self._owns(name):
                self.bus.publish(StateChanged(name))

    def _checks_per_s(self) -> float:
        """Checks this node started per second since the last heartbeat."""
        now, started = time.monotonic(), self.runtime.scheduler.stats.runs
        then, before = self._checks_seen
        self._checks_seen = (now, started)
        return (started - before) / (now - then) if now > then else 0.0

    async def _handover(self, gained: set[int], lost: set[int]) -> None:
        """Stop the services of ``lost`` shards (their writes flushed, or refused if
        another node took them) and start those of ``gained`` ones from the store."""
        shard_of = self.membership.shard_of
        if lost:
            self.runtime.drop([n for n in list(self.runtime.states) if shard_of.get(n) in lost])
            await self.writer.flush()
        if gained:
            names = [n for n in self.runtime.configs if shard_of.get(n) in gained]
            restored = await self.runtime.take(names)
            log.info("took %d services (%d restored from the store)", len(names), restored)

    async def _settle(self) -> None:
        """After a reload: services whose shard changed leave or join this node."""
        mine = self.membership.services(list(self.runtime.configs))
        self.runtime.drop([n for n in list(self.runtime.states) if n not in mine])
        await self.runtime.take(sorted(mine - self.runtime.states.keys()))

    async def _unannounced(self) -> None:
        """Warn of each location a service lists that no node ever announced: its
        checks run nowhere, and those services stay unknown until a node of it starts."""
        announced = {n.location for n in await self.store.nodes()}
        for location in self.membership.pools.locations:
            if location not in announced:
                log.warning(
                    "location %s: no node has ever announced it (pymon run --location %s);"
                    " the services listing it stay unknown until one does",
                    location,
                    location,
                )

    async def _open_store(self) -> None:
        """Open the store. A database server that cannot be reached (down, restarting,
        a network gap) is tried again with backoff until it answers or the daemon is
        stopped: nothing is checked meanwhile, since no shard is held. A SQLite file
        that cannot be opened is a local mistake and fails at once."""
        wait = _OPEN_RETRY
        while True:
            try:
                await self.store.open()
                return
            except StoreError as exc:
                if self._on_sqlite:
                    raise
                log.error("%s; checking nothing, trying again in %gs", exc, wait)
            await self.clock.sleep(wait)
            wait = min(wait * 2, _OPEN_RETRY_MAX)

    async def start(self) -> None:
        """Open the store, join the cluster (take this node's shards and their
        services' last states), start checks and the web server."""
        await self._open_store()
        await self.runtime.load()
        await self.notifier.start(self.runtime)
        log.info(
            "pymon %s starting as node %s: %d services configured, store %s",
            __version__,
            self.membership.name,
            len(self.runtime.configs),
            _redact(self.config.storage.url),
        )
        web = self.config.web
        if web.enabled:
            host, port = web.host_port()
            self._web = WebServer(
                create_app(self.runtime),
                host,
                port,
                web.base_path,
                limits=web.connections,
                trusted_proxies=web.trusted_proxies,
                reuse_port=self.worker is not None,
            )
            self.web_port = await self._web.start()
        self.runtime.start()
        self._writer_task = asyncio.create_task(self.writer.run(), name="store-writer")
        config = self.config
        pools = Pools.of(config.services, config.cluster.shards)
        await self.membership.start(shard_map(config.services, config.cluster.shards, pools), pools)
        await self._unannounced()
        self._membership_task = asyncio.create_task(self.membership.run(), name="cluster")
        self._relay_task = asyncio.create_task(self.relay.run(self.runtime), name="relay")
        self._retention_task = asyncio.create_task(self.retention.run(), name="retention")
        path = self.reloader.path
        if path is not None and self.config.reload.watch:
            # The globs of the config at start: a reload that adds an include glob
            # in a new directory needs a restart to watch it (SIGHUP reloads it).
            self._watcher = ConfigWatcher(
                path,
                self.config.include,
                lambda: self.reload("file change"),
                since=self._config_read_at,
            )
            self._watcher.start()

    async def reload(self, source: str = "api") -> ReloadResult:
        """Read the config file again and apply it if valid (see :class:`Reloader`)."""
        return await self.runtime.reload(source)

    async def stop(self) -> None:
        """Stop checks, flush every pending write, close the web server and the store."""
        if self._watcher is not None:
            await self._watcher.stop()
        # The leases are still renewed while the last writes go in (a final flush that
        # outlasted the lease would let another node take the shards and fence it),
        # but no shard changes hands any more.
        self.membership.hold()
        self.relay.close()
        await _finish(self._relay_task)
        self.retention.close()
        await _finish(self._retention_task)
        await self.runtime.stop()
        if self._writer_task is not None:
            self._writer_task.cancel()
            await asyncio.gather(self._writer_task, return_exceptions=True)
        if self._web is not None:
            await self._web.stop()
        await self.notifier.stop()
        try:
            await self.writer.flush()
        except Exception as exc:
            log.error("final store write failed: %s", exc)
        self.membership.close()
        await _finish(self._membership_task)
        try:
            # Every write is in: the other nodes may take the shards now, not after the lease.
            await self.membership.leave()
        except Exception as exc:
            log.error("cannot give the shards up (the others wait out the lease): %s", exc)
        await self.store.close()
        log.info("pymon stopped")

    async def serve(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then stop cleanly."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


async def _finish(task: asyncio.Task[None] | None) -> None:
    """Wait for a loop told to close to end its step; cancel it only if that takes
    longer than a store's busy timeout would (a cancel inside a transaction can
    leave the connection holding SQLite's write lock)."""
    if task is None:
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=15)
    except TimeoutError:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# Services per pickled piece of a reloaded config: unpickling one takes ~20 ms, and
# checks run between pieces.
_PIECE = 1000


def _load_pieces(path: Path) -> tuple[Config, list[bytes]] | list[ConfigIssue]:
    """:func:`load_config` in a worker process: the issues, or the Config without its
    services and the services pickled in pieces of :data:`_PIECE`."""
    try:
        config = load_config(path)
    except ConfigError as err:
        return err.issues
    services = config.services
    pieces = [pickle.dumps(services[i : i + _PIECE]) for i in range(0, len(services), _PIECE)]
    return config.model_copy(update={"services": ()}), pieces


async def parse(path: Path) -> Config:
    """Load and validate ``path`` in a separate process; raises ConfigError like load_config.

    Parsing is pure Python (100,000 services take seconds): in a thread it would hold
    the GIL against the event loop and make checks late or time out. A fresh
    ``spawn`` process shares nothing with the daemon (no forked loop or sockets).
    Unpickling 100,000 services here takes two seconds too, and holds the GIL for
    half a second at a time, so the services come in pieces, unpickled on the loop
    with checks running between them and the cyclic collector paused.
    """
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        outcome = await loop.run_in_executor(pool, _load_pieces, path)
    finally:
        # Joining the worker takes a fifth of a second: not on the loop.
        await asyncio.to_thread(pool.shutdown)
    if isinstance(outcome, list):
        raise ConfigError(outcome)
    bare, pieces = outcome
    services: list[ServiceConfig] = []
    # The collector, set off by the objects these make, would walk the whole heap
    # (every service's config and state) again and again: pauses of half a second.
    with paused_gc():
        for piece in pieces:
            services.extend(pickle.loads(piece))
            await asyncio.sleep(0)
        freeze_heap(len(services))
    return bare.model_copy(update={"services": tuple(services)})


class Reloader:
    """Reloads the daemon's config file, all or nothing; one reload at a time.

    The file is parsed off the loop; a valid config is applied to the engine
    (:meth:`~pymon.engine.runtime.Runtime.reconcile`) and to the notifier
    (:meth:`~pymon.notify.notifier.Notifier.apply`); an invalid one changes nothing.
    """

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path | None:
        """The config file to reload, None when the config did not come from a file."""
        source = self._daemon.config.source
        if not source or source == str(DEMO_CONFIG) or not Path(source).is_file():
            return None
        return Path(source)

    async def reload(self, source: str) -> ReloadResult:
        """Load the config file again and apply it if it is valid."""
        async with self._lock:
            try:
                return await self._reload(source)
            except Exception as exc:
                # Whoever asked (a signal, the file watch) has nobody to tell: say it
                # here, with the traceback, since the running config may be half applied.
                log.exception("reload (%s) failed unexpectedly", source)
                return ReloadResult(
                    False, source, time.time(), self._daemon.config.checksum, errors=(repr(exc),)
                )

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
            new = (await parse(path)).listening_on(daemon.listen)
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
        # Compared in turns (a second for 100,000 services): nothing is applied before.
        plan = await diff_in_turns(daemon.runtime.config, config)
        pools = Pools.of(config.services, config.cluster.shards)
        shards = shard_map(config.services, config.cluster.shards, pools)
        stale = daemon.notifier.apply(config, channels)
        daemon.membership.map(shards, pools)
        changes = await reconcile(daemon.runtime, config, plan)
        await daemon._settle()
        daemon.membership.config_changed(config.checksum)
        for channel in stale:
            await channel.close()
        for warning in warnings:
            log.warning("reload (%s): %s", source, warning)
        log.info("reload (%s): %s", source, changes.summary())
        return ReloadResult(True, source, at, config.checksum, changes, warnings=warnings)


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
