"""``pymon capacity``: what a config takes of this machine, and how far it can grow.

It measures what one check of each type the config uses costs here (a short run of
the benchmark harness against local targets, as ``pymon bench`` does; with ``--live``,
a sample of the config's own services against their configured targets), then works
the limits out with :mod:`pymon.capacity`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

import click
from sqlalchemy.engine import make_url

from pymon.capacity import (
    Basis,
    Cost,
    Demand,
    Estimate,
    Machine,
    Outbox,
    above_idle,
    caveats,
    demand,
    estimate,
    outbox,
    read_machine,
)
from pymon.cli.common import config_option, load
from pymon.cli.tools import checkout_harness, duration_option
from pymon.config.schema import Config
from pymon.store.pace import sqlite_pace
from pymon.tuning import loop_factory

__all__ = ["capacity"]

# Seconds for the outbox to drain an outage's notices beyond which it is worth advice.
_SLOW_DRAIN: Final = 60.0

# Checks per second each type is calibrated at: about half of one process's limit.
# Below the limit, so that the cost measured is a check's and not a saturated loop's;
# not far below, since a check costs more on a quiet loop (fewer checks share each
# wake-up and each store batch: 150 µs a tcp check at 1,000/s, 110 at 8,000).
_CALIBRATION_RATE: Final = {"tcp": 5000, "http": 2500, "dns": 1000, "ping": 4000, "plugin": 100}
_CALIBRATION_INTERVAL: Final = 2.0
# Services of each type --live measures at most, by default.
_LIVE_SAMPLE: Final = 200


@click.command()
@config_option("The config whose services to weigh (default ./pymon.yaml, else the demo).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes to plan for (default: the config's scheduler.workers).",
)
@click.option(
    "--seconds",
    "window",
    default="5s",
    show_default=True,
    callback=duration_option,
    help="How long each check type is measured.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Measure each type on the config's own services, against their configured targets.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help=f"With --live: at most N services of each type, spread over the config"
    f" (default {_LIVE_SAMPLE}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def capacity(
    config_path: str | None,
    workers: int | None,
    window: float,
    live: bool,
    sample: int | None,
    as_json: bool,
) -> None:
    """Measure what each check type of a config costs here; print the limits.

    Prints the checks per second the config demands, the cores they take, how many
    services of each type one machine holds at their intervals, memory, and the
    first resource to run out (loop CPU, cores, open files, local ports, memory),
    with what to change. Calibrates tcp, http, dns, ping and plugin checks against
    local targets; with --live, every type on a sample of the config's own services,
    each checked about once, never more often than its interval. Runs from a source
    checkout, as ``pymon bench`` does.
    """
    if sample is not None and not live:
        raise click.UsageError("--sample goes with --live")
    config = load(config_path)
    demands = demand(config)
    measured = sorted(k for k, d in demands.items() if d.per_second > 0)
    if not measured:
        raise click.ClickException("the config has no enabled service that runs checks")
    unknown = [k for k in measured if k not in _CALIBRATION_RATE]
    if unknown and not live:
        raise click.ClickException(
            f"cannot calibrate {', '.join(unknown)} checks on this machine: there is no local"
            f" target for them (calibrated here: {', '.join(_CALIBRATION_RATE)}; --live"
            " measures every type against the config's own targets)"
        )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    machine = read_machine()
    planned = workers or _configured_workers(config.scheduler.workers, machine)
    if live:
        costs, bases, idle = _measure_live(config, measured, window, sample or _LIVE_SAMPLE)
    else:
        calibrated = {kind: _calibrate(kind, window) for kind in measured}
        costs = {kind: cost for kind, (cost, _) in calibrated.items()}
        bases = {kind: basis for kind, (_, basis) in calibrated.items()}
        idle = None
    found = estimate(
        demands,
        costs,
        machine,
        workers=planned,
        concurrency=config.scheduler.concurrency,
        store_pace=_store_pace(config.storage.url),
    )
    figures = _Figures(demands, costs, bases, idle, machine, found, outbox(config))
    if as_json:
        click.echo(json.dumps(_as_dict(figures), indent=2))
    else:
        _print(figures)


def _configured_workers(workers: int | str, machine: Machine) -> int:
    return machine.cores if workers == "auto" else int(workers)


def _loop_name() -> Literal["asyncio", "uvloop"]:
    return "uvloop" if loop_factory()[1].startswith("uvloop") else "asyncio"


def _calibrate(kind: str, window: float) -> tuple[Cost, Basis]:
    """One short bench point of ``kind``: what a check costs here."""
    with checkout_harness("capacity"):
        from benchmarks.harness import KINDS, BenchOptions, Unavailable
        from benchmarks.harness import run as run_bench

    rate = _CALIBRATION_RATE[kind]
    options = BenchOptions(
        services=int(rate * _CALIBRATION_INTERVAL),
        kind=next(k for k in KINDS if k == kind),
        interval=_CALIBRATION_INTERVAL,
        duration=window,
        warmup=2 * _CALIBRATION_INTERVAL,
        reference=0.0,
        loop=_loop_name(),
    )
    click.echo(f"measuring {kind} checks at {rate:,}/s for {window:g}s...", err=True)
    try:
        report = run_bench(options)
    except (Unavailable, RuntimeError) as exc:
        raise click.ClickException(f"cannot calibrate {kind} checks: {exc}") from None
    if report.checks.total == 0 or report.checks.failed:
        raise click.ClickException(
            f"cannot calibrate {kind} checks: {report.checks.failed} of "
            f"{report.checks.total} failed against the local target"
        )
    cost = Cost(
        kind,
        cpu=report.cpu.pymon_per_1000_checks_s / 1000,
        children=report.cpu.children_per_1000_checks_s / 1000,
        memory=report.memory.per_service_kb * 1024,
        duration=report.duration.p50_ms / 1000,
    )
    return cost, Basis(report.checks.total)


def _measure_live(
    config: Config, kinds: list[str], window: float, most: int
) -> tuple[dict[str, Cost], dict[str, Basis], float]:
    """Each of ``kinds`` measured on the config's own services (benchmarks/harness/live.py):
    the costs, what each rests on, and the idle daemon's CPU seconds per second."""
    with checkout_harness("capacity"):
        from benchmarks.harness.live import run_live

    run = run_live(
        config,
        kinds,
        window=window,
        most=most,
        loop=_loop_name(),
        say=lambda msg: click.echo(msg, err=True),
    )
    costs, bases = {}, {}
    for kind, live in run.types.items():
        costs[kind] = Cost(
            kind,
            cpu=above_idle(live.cpu, run.idle * live.window, live.checks),
            children=live.children / live.checks if live.checks else 0.0,
            memory=run.memory.get(kind, 0.0),
            duration=live.duration,
        )
        bases[kind] = Basis(live.checks, live.failed, live.sampled, live.failure)
    return costs, bases, run.idle


@dataclass(frozen=True, slots=True)
class _Figures:
    """What the command found: the demand, what each type costs and what that rests
    on, the idle daemon's CPU per second (None: calibrated locally), the machine and
    the limits."""

    demands: dict[str, Demand]
    costs: dict[str, Cost]
    bases: dict[str, Basis]
    idle: float | None
    machine: Machine
    found: Estimate
    outbox: Outbox


def _print(figures: _Figures) -> None:
    demands, costs, bases, idle = figures.demands, figures.costs, figures.bases, figures.idle
    machine, found = figures.machine, figures.found
    click.echo(
        f"this machine: {machine.cores} cores, {machine.memory / 2**30:.1f} GiB, "
        f"ulimit -n {machine.open_files:,}, {machine.ports:,} local ports, "
        f"tcp_tw_reuse {machine.reuse_time_wait}"
    )
    if idle is not None:
        click.echo(
            "measured live on the config's own services; an idle daemon's "
            f"{idle * 1000:,.1f} ms of CPU a second left out of each type's"
        )
    click.echo(f"planned for {found.workers} worker process(es)\n")
    click.echo(
        f"{'type':<8} {'services':>9} {'checks/s':>9} {'µs/check':>9} {'+plugin':>8}"
        f" {'KiB/svc':>8} {'ms/check':>9} {'measured':>9} {'failed':>7} {'most services':>14}"
    )
    for kind, d in sorted(demands.items()):
        cost = costs.get(kind)
        if cost is None:  # passive (heartbeat): no check of its own
            click.echo(
                f"{kind:<8} {d.services:>9,} {'-':>9} {'-':>9} {'-':>8} {'-':>8} {'-':>9}"
                f" {'-':>9} {'-':>7} {'-':>14}"
            )
            continue
        basis = bases[kind]
        click.echo(
            f"{kind:<8} {d.services:>9,} {d.per_second:>9,.1f} {cost.cpu * 1e6:>9,.0f}"
            f" {cost.children * 1e6:>8,.0f} {cost.memory / 1024:>8,.1f}"
            f" {cost.duration * 1000:>9,.1f} {basis.checks:>9,} {basis.failed:>7,}"
            f" {found.most_services.get(kind, 0):>14,}"
        )
    for line in caveats(bases):
        click.echo(f"warning: {line}")
    click.echo(
        f"\ndemanded: {found.per_second:,.1f} checks/s, {found.cores:.2f} cores "
        f"({found.share:.0%} of the machine), memory for the services "
        f"{found.memory / 2**20:,.0f} MiB"
    )
    click.echo(
        f"the config could grow {found.headroom:,.1f}x, as it is mixed, before the first"
        " resource runs out:\n"
    )
    for p in sorted(found.pressures, key=lambda p: -p.used):
        click.echo(f"  {p.resource:<12} {p.used:>7.1%}  {p.detail}")
    first = found.bottleneck
    click.echo(f"\nfirst bottleneck: {first.resource} ({first.used:.0%} used)")
    if first.advice and first.used > 0.5:
        click.echo(f"advice: {first.advice}")
    for p in found.pressures:
        if p is not first and p.used > 0.8 and p.advice:
            click.echo(f"also: {p.resource}: {p.advice}")
    box = figures.outbox
    click.echo(
        f"\noutbox: an outage of every service at once queues {box.notices:,} notices "
        f"(children of a parent in the config hold theirs), {box.concurrency} delivered at "
        f"a time (notifications.delivery.concurrency): at a second each, the last leaves "
        f"after {box.drain:,.0f} s"
    )
    if box.drain > _SLOW_DRAIN:
        click.echo(
            "advice: depends_on for what sits behind a shared router or host, routes that"
            " send fewer services to each channel, or a larger delivery.concurrency"
        )


def _store_pace(url: str) -> float | None:
    """One SQLite writer's pace here, beside the configured database file (None for
    PostgreSQL, or a database in memory)."""
    parts = make_url(url)
    if not parts.drivername.startswith("sqlite") or parts.database in (None, "", ":memory:"):
        return None
    folder = Path(parts.database).absolute().parent
    click.echo("measuring SQLite's writes...", err=True)
    writable = folder.is_dir() and os.access(folder, os.W_OK)
    return asyncio.run(sqlite_pace(folder if writable else None))


def _as_dict(figures: _Figures) -> dict[str, Any]:
    demands, costs, bases, found = figures.demands, figures.costs, figures.bases, figures.found
    idle = figures.idle
    return {
        "machine": asdict(figures.machine),
        "workers": found.workers,
        "live": idle is not None,
        "idle_cpu_per_second": idle,
        "types": {
            kind: {
                "services": d.services,
                "per_second": d.per_second,
                "timeout": d.timeout,
                "cost": asdict(costs[kind]) if kind in costs else None,
                "basis": _basis(bases[kind]) if kind in bases else None,
                "most_services": found.most_services.get(kind),
            }
            for kind, d in sorted(demands.items())
        },
        "warnings": caveats(bases),
        "per_second": found.per_second,
        "cores": found.cores,
        "share": found.share,
        "headroom": found.headroom,
        "memory": found.memory,
        "pressures": [asdict(p) for p in found.pressures],
        "bottleneck": found.bottleneck.resource,
        "outbox": {**asdict(figures.outbox), "drain": figures.outbox.drain},
    }


def _basis(basis: Basis) -> dict[str, Any]:
    return asdict(basis) | {"rough": basis.rough, "all_failed": basis.all_failed}
