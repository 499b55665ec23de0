"""The operator's tools: ``pymon bench`` (the load benchmark, whose harness lives in
the source checkout's ``benchmarks/``, not in the package) and ``pymon
hash-password`` (hashes for ``web.auth``).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from pymon.tuning import loop_factory

__all__ = ["bench", "checkout_harness", "duration_option", "hash_password"]


def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
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
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "benchmarks" / "harness").is_dir() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))


@contextlib.contextmanager
def checkout_harness(command: str) -> Iterator[None]:
    """Import the benchmark harness in the block; a plain error if this pymon has none."""
    _checkout_on_path()
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.harness"):
            raise
        raise click.ClickException(
            f"pymon {command} runs from a source checkout (clone the repository, pip install"
            " -e .): this installation has no benchmarks/harness"
        ) from None


@click.command()
@click.option(
    "--services",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Services to run (of --type).",
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["mixed", "tcp", "http", "ping", "dns", "plugin"]),
    default="mixed",
    show_default=True,
    help="What the services check: half tcp and half http, or one type only.",
)
@click.option(
    "--interval",
    metavar="DURATION",
    callback=duration_option,
    default="5s",
    show_default=True,
    help="Check interval of every service.",
)
@click.option(
    "--duration",
    metavar="DURATION",
    callback=duration_option,
    default="60s",
    show_default=True,
    help="Length of the measuring window.",
)
@click.option(
    "--warmup",
    metavar="DURATION",
    callback=duration_option,
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
    callback=duration_option,
    default="4s",
    show_default=True,
    help="Time first spent on bare GETs and connects without pymon (0s: skip).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run the services on N worker nodes of one cluster, as `pymon run --workers N`.",
)
@click.option(
    "--peers",
    is_flag=True,
    help="Then run the same workload through Nagios 4 and blackbox_exporter; compare.",
)
@click.option(
    "--nginx",
    is_flag=True,
    help="Serve the http and tcp checks from nginx (when installed), not a Python target.",
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
    kind: str,
    interval: float,
    duration: float,
    warmup: float | None,
    concurrency: int | None,
    loop_name: str | None,
    reference: float,
    workers: int,
    peers: bool,
    nginx: bool,
    timeline: bool,
    json_path: str | None,
) -> None:
    """Run N services against local targets; report checks/s, lateness, CPU and memory.

    The targets (an HTTP server and a TCP listener on 127.0.0.1) run in a separate
    process; storage is a real SQLite file in a temporary directory; web is off.
    With --workers N, N worker processes share the services by the cluster's shards.
    With --peers the same services then run through each peer installed (Nagios 4 with
    the monitoring plugins, blackbox_exporter), against the same targets (nginx for
    http and tcp when installed), and one table compares them.
    """
    from rich.console import Console

    with checkout_harness("bench"):
        from benchmarks.harness import (
            KINDS,
            BenchOptions,
            Unavailable,
            render_peers,
            render_report,
            render_timeline,
            render_workers,
        )
        from benchmarks.harness import run as run_bench

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    options = BenchOptions(
        services=services,
        kind=next(k for k in KINDS if k == kind),
        interval=interval,
        duration=duration,
        warmup=warmup,
        concurrency=concurrency,
        loop="uvloop" if (loop_name or loop_factory()[1]).startswith("uvloop") else "asyncio",
        reference=reference,
        workers=workers,
        peers=peers,
        nginx=nginx,
    )
    try:
        options.validate()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    console = Console(stderr=True)
    try:
        report = run_bench(options, progress=lambda msg: console.print(f"[dim]{msg}[/dim]"))
    except Unavailable as exc:
        # The machine lacks what the point needs: said plainly, not a failed run.
        console.print(f"skipped: {exc}")
        return
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    Console().print(render_report(report))
    if report.workers:
        Console().print(render_workers(report))
    if report.peers is not None:
        Console().print(render_peers(report.peers))
    if timeline:
        Console().print(render_timeline(report))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        console.print(f"[dim]report written to {json_path}[/dim]")
    if report.checks.total == 0:
        # Nothing ran: the figures above describe an engine that is not working.
        raise click.ClickException("no check completed in the window; see the log above")


@click.command("hash-password")
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
