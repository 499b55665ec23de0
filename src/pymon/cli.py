"""The ``pymon`` command line: run, check, config validate, ack, shell, bench."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pymon import __version__
from pymon.checks import REGISTRY
from pymon.client import Client, ClientError
from pymon.config.load import load_config, load_config_text, load_demo_config
from pymon.config.schema import Config
from pymon.errors import ConfigError, PymonError
from pymon.model import Status
from pymon.runtime import loop_factory, relaxed_gc

__all__ = ["main"]

log = logging.getLogger("pymon")

# Nagios plugin exit codes: 0 ok, 1 warning, 2 critical, 3 unknown.
EXIT_CODES = {
    Status.OK: 0,
    Status.DISABLED: 0,
    Status.WARN: 1,
    Status.ERROR: 2,
    Status.FAILED: 2,
    Status.UNKNOWN: 3,
}


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


def _fail_config(err: ConfigError) -> NoReturn:
    for issue in err.issues:
        click.echo(str(issue), err=True)
    n = len(err.issues)
    click.echo(f"{n} error{'s' if n != 1 else ''} in config", err=True)
    sys.exit(1)


def _load(path: str | None) -> Config:
    try:
        if path is not None:
            return load_config(path)
        if Path("pymon.yaml").exists():
            return load_config("pymon.yaml")
        return load_demo_config()
    except ConfigError as err:
        _fail_config(err)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pymon")
def cli() -> None:
    """pymon: watch hosts, services and processes; tell the right people once."""


_config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default ./pymon.yaml, else the built-in demo).",
)


@cli.command()
@_config_option
def run(config_path: str | None) -> None:
    """Run the daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    config = _load(config_path)
    _setup_logging(config.log.level)
    factory, loop_name = loop_factory()
    log.info("event loop: %s", loop_name)
    try:
        with relaxed_gc(), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(config))
    except PymonError as exc:
        log.error("%s", exc)
        sys.exit(1)


async def _serve(config: Config) -> None:
    from pymon.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config)
    reloads: set[asyncio.Task[object]] = set()

    def reload() -> None:
        task = asyncio.ensure_future(daemon.reload("SIGHUP"))
        reloads.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    await daemon.start()
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        # SIGTERM must end the process within seconds even if a target hangs.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(daemon.stop(), timeout=4.5)


def _parse_adhoc(args: list[str]) -> dict[str, Any]:
    """``--key value`` / ``--key=value`` pairs; values read as YAML; a repeated key makes a list."""
    yaml = YAML(typ="safe")
    keys: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise click.UsageError(f"expected --key value, got {arg!r}")
        key, eq, raw = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise click.UsageError(f"--{key} needs a value")
            i += 1
            raw = args[i]
        try:
            value = yaml.load(raw) if raw else raw
        except YAMLError:
            value = raw
        key = key.replace("-", "_")
        if key in keys:
            prior = keys[key]
            keys[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            keys[key] = value
        i += 1
    return keys


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file holding the service NAME.",
)
@click.argument("target")
@click.pass_context
def check(ctx: click.Context, config_path: str | None, target: str) -> None:
    """Run one check once, print a Nagios-style line; exit 0 ok, 1 warn, 2 error/failed, 3 unknown.

    \b
    pymon check -c pymon.yaml NAME          a configured service
    pymon check TYPE --key value ...        an ad-hoc target, e.g.
    pymon check tcp --host 127.0.0.1 --port 22
    """
    from pymon.daemon import check_once

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if config_path is not None:
        if ctx.args:
            raise click.UsageError("with -c, give only the service NAME")
        config = _load(config_path)
        service = config.service(target)
        if service is None:
            known = ", ".join(s.name for s in config.services) or "none"
            raise click.UsageError(f"no service {target!r} in {config_path} (services: {known})")
    else:
        if target not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise click.UsageError(
                f"unknown check type {target!r} (known: {known}); "
                "to run a configured service give -c FILE"
            )
        keys = {"name": target, "type": target, **_parse_adhoc(ctx.args)}
        try:
            config = load_config_text(json.dumps({"services": [keys]}), "<command line>")
        except ConfigError as err:
            for issue in err.issues:
                click.echo(f"pymon check: {issue.path}: {issue.message}", err=True)
            sys.exit(3)
        service = config.services[0]
    result, status, message = asyncio.run(check_once(service))
    perf = " ".join(f"{_perf_label(k)}={v:g}" for k, v in result.metrics.items())
    click.echo(f"{status.value.upper()} - {message}" + (f"|{perf}" if perf else ""))
    sys.exit(EXIT_CODES[status])


def _perf_label(label: str) -> str:
    # Nagios performance data quotes labels with spaces or quotes, doubling quotes.
    if any(c in label for c in " '=;"):
        return "'" + label.replace("'", "''") + "'"
    return label


@cli.group()
def config() -> None:
    """Work with config files."""


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--against",
    metavar="URL",
    default=None,
    help="A running daemon: also print what reloading FILE there would change.",
)
@click.option(
    "--token", envvar="PYMON_TOKEN", default=None, help="A web.auth token (or $PYMON_TOKEN)."
)
def validate(file: str, against: str | None, token: str | None) -> None:
    """Check FILE; print every error as FILE:LINE: key.path: what is wrong."""
    from pymon.notify.templates import Templates, template_dir

    try:
        cfg = load_config(file)
    except ConfigError as err:
        _fail_config(err)
    problems = Templates(template_dir(cfg)).check()
    for problem in problems:
        click.echo(f"{file}: notifications.templates: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{file}: ok ({len(cfg.services)} services)")
    if against is not None:
        _print_diff(cfg, Client(against, token=token))


def _print_diff(cfg: Config, client: Client) -> None:
    """What a reload of ``cfg`` would change on the daemon ``client`` talks to."""
    from pymon.engine.reconcile import diff_fingerprints, fingerprints

    try:
        running = client.config()
    except ClientError as exc:
        click.echo(f"pymon config validate: {exc}", err=True)
        sys.exit(1)
    changes = diff_fingerprints(running.get("services") or {}, fingerprints(cfg))
    click.echo(f"against {client.url} ({running.get('source')}): {changes.summary()}")
    for what, names in (
        ("+", changes.added),
        ("~", changes.changed),
        ("-", changes.removed),
    ):
        for name in names:
            click.echo(f"  {what} {name}")


def _api_url(url: str | None, config_path: str | None) -> str:
    """``--url``, else where the config (``-c``, ``./pymon.yaml``, the demo) serves the web UI."""
    if url:
        return url
    return _load(config_path).web.local_url()


def _daemon_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--url`` and ``--token``: how a command reaches the running daemon."""
    command = click.option(
        "--token",
        envvar="PYMON_TOKEN",
        default=None,
        help="A web.auth token (or $PYMON_TOKEN); not needed on loopback without auth.",
    )(command)
    return click.option(
        "--url", default=None, help="The daemon's web address (default: from the config)."
    )(command)


def _default_author() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "cli"
    return f"{user}@{socket.gethostname()}"


@cli.command()
@_config_option
@_daemon_options
@click.option("-m", "--message", "comment", default="", help="Why (shown with the state).")
@click.option("--author", default=None, help="Who (default: user@host).")
@click.option("--expires", default=None, help="End the acknowledgement after e.g. 2h.")
@click.option("--undo", is_flag=True, help="Take the acknowledgement back instead.")
@click.argument("name")
def ack(
    config_path: str | None,
    url: str | None,
    token: str | None,
    comment: str,
    author: str | None,
    expires: str | None,
    undo: bool,
    name: str,
) -> None:
    """Acknowledge service NAME's open incident on the running daemon (notices stop)."""
    client = Client(_api_url(url, config_path), token=token)
    who = author or _default_author()
    try:
        if undo:
            answer = client.unacknowledge(name, author=who)
        else:
            answer = client.acknowledge(name, author=who, comment=comment, expires=expires)
    except ClientError as exc:
        click.echo(f"pymon ack: {exc}", err=True)
        sys.exit(1)
    incident = answer.get("incident") or {}
    if undo:
        click.echo(f"{name}: acknowledgement taken back ({incident.get('status', '?')})")
    else:
        click.echo(f"{name}: {incident.get('status', '?')} acknowledged by {who}")


@cli.command()
@_config_option
@_daemon_options
@click.option(
    "-e",
    "--execute",
    "commands",
    multiple=True,
    metavar="COMMAND",
    help="Run COMMAND and exit (repeatable); exit 1 if any failed.",
)
def shell(
    config_path: str | None, url: str | None, token: str | None, commands: tuple[str, ...]
) -> None:
    """An interactive shell on the running daemon: status, show, ack, maint, watch, ...

    \b
    pymon shell                         prompt, with history and TAB completion
    pymon shell -e status -e "ack db 'disk swap'"   for scripts
    """
    from pymon.shell import main as shell_main

    address = _api_url(url, config_path)
    sys.exit(shell_main(address, token=token, commands=list(commands), author=_default_author()))


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback reading ``500ms``, ``5s``, ``2m`` or plain seconds."""
    from pymon.config.schema import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _checkout_on_path() -> None:
    """Put the source checkout this pymon runs from on ``sys.path``, when there is one.

    ``pymon bench``'s harness (``benchmarks/harness``) is not part of the package: it
    sits beside ``src/`` in the checkout an editable install points at.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "benchmarks" / "harness").is_dir() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))


@cli.command()
@click.option(
    "--services",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Services to run, half tcp and half http.",
)
@click.option(
    "--interval",
    metavar="DURATION",
    callback=_duration,
    default="5s",
    show_default=True,
    help="Check interval of every service.",
)
@click.option(
    "--duration",
    metavar="DURATION",
    callback=_duration,
    default="60s",
    show_default=True,
    help="Length of the measuring window.",
)
@click.option(
    "--warmup",
    metavar="DURATION",
    callback=_duration,
    default=None,
    help="Wait before measuring (default two intervals; at least one).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="scheduler.concurrency (default: the config default).",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(["asyncio", "uvloop"]),
    default=None,
    help="Event loop for pymon (default: the one `pymon run` uses, uvloop when installed).",
)
@click.option(
    "--reference",
    callback=_duration,
    default="4s",
    show_default=True,
    help="Time first spent on bare GETs and connects without pymon (0s: skip).",
)
@click.option(
    "--timeline",
    is_flag=True,
    help="Also print each second since start: checks, latest start, store writes.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the full report as JSON to this file (the timeline included).",
)
def bench(
    services: int,
    interval: float,
    duration: float,
    warmup: float | None,
    concurrency: int | None,
    loop_name: str | None,
    reference: float,
    timeline: bool,
    json_path: str | None,
) -> None:
    """Run N services against local targets; report checks/s, lateness, CPU and memory.

    The targets (an HTTP server and a TCP listener on 127.0.0.1) run in a separate
    process; storage is a real SQLite file in a temporary directory; web is off.
    """
    from rich.console import Console

    _checkout_on_path()
    try:
        from benchmarks.harness import BenchOptions, render_report, render_timeline
        from benchmarks.harness import run as run_bench
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.harness"):
            raise
        raise click.ClickException(
            "pymon bench runs from a source checkout (clone the repository, pip install -e .):"
            " this installation has no benchmarks/harness"
        ) from None

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    options = BenchOptions(
        services=services,
        interval=interval,
        duration=duration,
        warmup=warmup,
        concurrency=concurrency,
        loop="uvloop" if (loop_name or loop_factory()[1]).startswith("uvloop") else "asyncio",
        reference=reference,
    )
    try:
        options.validate()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    console = Console(stderr=True)
    try:
        report = run_bench(options, progress=lambda msg: console.print(f"[dim]{msg}[/dim]"))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    Console().print(render_report(report))
    if timeline:
        Console().print(render_timeline(report))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        console.print(f"[dim]report written to {json_path}[/dim]")
    if report.checks.total == 0:
        # Nothing ran: the figures above describe an engine that is not working.
        raise click.ClickException("no check completed in the window; see the log above")


@cli.command("hash-password")
@click.option(
    "--new-token", is_flag=True, help="Make a random bearer token; print it and its hash."
)
def hash_password(new_token: bool) -> None:
    """Print the argon2id hash of a password or token for web.auth (read from standard
    input when it is not a terminal, else asked for twice)."""
    import secrets

    from pymon.web.auth import hash_secret

    if new_token:
        token = secrets.token_urlsafe(32)
        click.echo(f"token: {token}")
        click.echo(f"token_hash: {hash_secret(token)}")
        return
    if sys.stdin.isatty():
        secret = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != secret:
            raise click.ClickException("the two entries differ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise click.ClickException("an empty password would let anyone in")
    click.echo(hash_secret(secret))


def main() -> None:
    """Entry point of the ``pymon`` script."""
    cli(prog_name="pymon")
