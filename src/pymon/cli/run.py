"""``pymon run``: the daemon in the foreground, on the event loop ``pymon.tuning``
picks, logging to standard error; SIGTERM or Ctrl-C stop it within seconds, SIGHUP
reloads its config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import click
from pydantic import ValidationError

from pymon.cli.common import config_option, load
from pymon.config.schema import Config, WebConfig
from pymon.errors import PymonError
from pymon.tuning import loop_factory, relaxed_gc

__all__ = ["run"]

log = logging.getLogger("pymon")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # aiosmtpd (the acknowledgement server) logs every SMTP command at INFO, watchfiles
    # every change it sees; pymon logs what matters of both itself.
    for chatty in ("mail.log", "watchfiles"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


@click.command()
@config_option()
@click.option(
    "--node",
    metavar="NAME",
    help="This node's name in the cluster (default: host name and process id).",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve the dashboard here instead of web.listen (several nodes from one file).",
)
def run(config_path: str | None, node: str | None, listen: str | None) -> None:
    """Run the daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    config = load(config_path)
    _setup_logging(config.log.level)
    if listen is not None:
        try:
            web = WebConfig.model_validate({**config.web.model_dump(), "listen": listen})
        except ValidationError as exc:
            raise click.BadParameter(exc.errors()[0]["msg"], param_hint="--listen") from None
        config = config.model_copy(update={"web": web})
    if config.scheduler.workers != 1:
        log.error(
            "scheduler.workers: %s: local worker processes are not built yet; start one "
            "`pymon run --node NAME --listen HOST:PORT` per worker on the same storage.url "
            "(docs/cluster.md)",
            config.scheduler.workers,
        )
        sys.exit(2)
    factory, loop_name = loop_factory()
    log.info("event loop: %s", loop_name)
    try:
        with relaxed_gc(), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(config, node))
    except PymonError as exc:
        log.error("%s", exc)
        sys.exit(1)


async def _serve(config: Config, node: str | None) -> None:
    from pymon.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config, node=node)
    reloads: set[asyncio.Task[object]] = set()

    def reload() -> None:
        task = asyncio.ensure_future(daemon.reload("SIGHUP"))
        reloads.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
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
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        # SIGTERM must end the process within seconds even if a target hangs.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(daemon.stop(), timeout=4.5)
