"""``pymon run``: the daemon in the foreground, on the event loop ``pymon.tuning``
picks, logging to standard error; SIGTERM or Ctrl-C stop it within seconds, SIGHUP
reloads its config.

With ``--workers N`` (or ``scheduler.workers``) above 1 it runs no daemon itself: it
supervises N local worker processes (:mod:`pymon.cli.supervisor`), each a ``pymon run``
node given the hidden ``--worker I``. A worker binds the dashboard's port with
SO_REUSEPORT, so the kernel spreads connections over the workers at one address, and
only worker 1 runs the acknowledgement server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from typing import Literal

import click
from pydantic import ValidationError

from pymon.cli.common import config_option, load
from pymon.cli.supervisor import Supervisor, Worker, usable_cpus, worker_count
from pymon.config.schema import Config, location_name
from pymon.errors import PymonError
from pymon.tuning import freeze_heap, loop_factory, relaxed_gc, setup_logging

__all__ = ["run"]

log = logging.getLogger("pymon")


class _WorkersType(click.ParamType[int | Literal["auto"], object]):
    """``--workers``: 1 to 256, or ``auto``."""

    name = "N|auto"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | Literal["auto"]:
        if value == "auto":
            return "auto"
        try:
            count = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a number of workers (1 to 256, or auto)", param, ctx)
        if not 1 <= count <= 256:
            self.fail(f"{count}: workers must be 1 to 256, or auto", param, ctx)
        return count


class _LocationType(click.ParamType[str, object]):
    """``--location``: a location's name, as ``node.location`` takes it."""

    name = "NAME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        try:
            return location_name(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@config_option()
@click.option(
    "--workers",
    type=_WorkersType(),
    default=None,
    metavar="N|auto",
    help="Local worker processes sharing the services (default scheduler.workers; "
    "auto: one per core).",
)
@click.option(
    "--node",
    metavar="NAME",
    help="This node's name in the cluster (default: host name and process id; with "
    "--workers N the workers are NAME-w1 to NAME-wN, NAME the host name by default).",
)
@click.option(
    "--location",
    metavar="NAME",
    type=_LocationType(),
    help="Where this node checks from, instead of node.location (services' locations).",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve the dashboard here instead of web.listen (several nodes from one file).",
)
# Set by the supervisor on its children (I is 1..N), not by people.
@click.option("--worker", type=click.IntRange(min=1), default=None, hidden=True)
def run(
    config_path: str | None,
    workers: int | Literal["auto"] | None,
    node: str | None,
    location: str | None,
    listen: str | None,
    worker: int | None,
) -> None:
    """Run the daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    read_at = time.time()
    config = load(config_path)
    setup_logging(config.log.level)
    try:
        config = config.listening_on(listen)
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"], param_hint="--listen") from None
    count = worker_count(workers or config.scheduler.workers, usable_cpus())
    if count > 1:
        sys.exit(_supervise(config, config_path, count, node, location, listen))
    factory, loop_name = loop_factory()
    log.info("event loop: %s", loop_name)
    try:
        with relaxed_gc(), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(config, node, location, worker, listen, read_at))
    except PymonError as exc:
        log.error("%s", exc)
        sys.exit(1)


def _supervise(
    config: Config,
    config_path: str | None,
    count: int,
    node: str | None,
    location: str | None,
    listen: str | None,
) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; the exit status."""
    if config.web.enabled and config.web.host_port()[1] == 0:
        raise click.UsageError(
            f"web.listen {config.web.listen}: with --workers {count} the workers share one "
            "port: give a port, not 0"
        )
    base = node or socket.gethostname()
    common = [sys.executable, "-m", "pymon", "run", "--workers", "1"]
    if config_path is not None:
        common += ["-c", config_path]
    if listen is not None:
        common += ["--listen", listen]
    if location is not None:
        common += ["--location", location]
    log.info("supervisor: %d workers, %s-w1 to %s-w%d", count, base, base, count)
    return Supervisor(
        [
            Worker(f"{base}-w{i}", [*common, "--node", f"{base}-w{i}", "--worker", str(i)])
            for i in range(1, count + 1)
        ]
    ).run()


async def _serve(
    config: Config,
    node: str | None,
    location: str | None,
    worker: int | None,
    listen: str | None,
    read_at: float,
) -> None:
    from pymon.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(
        config,
        node=node,
        location=location,
        worker=worker,
        listen=listen,
        config_read_at=read_at,
    )
    reloads: set[asyncio.Task[object]] = set()

    def reload() -> None:
        task = asyncio.ensure_future(daemon.reload("SIGHUP"))
        reloads.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    watch = asyncio.ensure_future(_orphaned(os.getppid(), stop)) if worker is not None else None
    # A stop while starting (a database that does not answer yet) ends the start.
    starting = asyncio.ensure_future(daemon.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await daemon.stop()
        return
    stopping.cancel()
    starting.result()  # a start that failed raises here
    freeze_heap(len(config.services))
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        if watch is not None:
            watch.cancel()
        # SIGTERM must end the process within seconds even if a target hangs.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(daemon.stop(), timeout=4.5)


async def _orphaned(supervisor: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once the worker's supervisor is gone (killed with SIGKILL, it could
    not stop its workers; the worker would run on, out of anyone's control)."""
    while os.getppid() == supervisor:
        # The parent is looked at every second: nothing tells a child its parent died.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
            return
    log.error("worker: the supervisor (pid %d) is gone: stopping", supervisor)
    stop.set()
