"""The peers in turn, after pymon's point: same services, targets, interval, warm-up
and window; one :class:`~benchmarks.harness.peers.figures.Comparison` of them all."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from benchmarks.harness.options import BenchOptions
from benchmarks.harness.peers.blackbox import BlackboxExporter
from benchmarks.harness.peers.figures import Comparison, PeerFigures, Skipped
from benchmarks.harness.peers.nagios import Nagios
from benchmarks.harness.peers.nginx import NginxTarget
from benchmarks.harness.report import BenchReport
from benchmarks.harness.targets import Target, TargetProcess
from benchmarks.harness.workload import Endpoints

__all__ = ["Peer", "compare", "peers", "shared_target"]


class Peer(Protocol):
    """A tool the workload runs through after pymon."""

    name: str

    def unavailable(self, options: BenchOptions) -> str | None:
        """Why it cannot run the point here, or None."""
        ...

    async def measure(self, options: BenchOptions, endpoints: Endpoints, home: Path) -> PeerFigures:
        """Run the workload in the new directory ``home``; its row."""
        ...


def peers() -> list[Peer]:
    """The peers, in the order they run."""
    return [Nagios(), BlackboxExporter()]


@contextlib.asynccontextmanager
async def shared_target(
    options: BenchOptions, process: TargetProcess, workdir: Path
) -> AsyncIterator[tuple[Target, str]]:
    """The target every tool's http and tcp checks go to, and what it is: nginx when
    installed (for a point of http or tcp checks), else the target process."""
    program = NginxTarget.program()
    if not options.web_kind:
        yield process, process.description
    elif program is None:
        yield process, f"{process.description} (nginx not installed)"
    else:
        async with NginxTarget.running(
            program, options.effective_ports, workdir / "nginx", process
        ) as nginx:
            yield nginx, nginx.description


async def compare(
    options: BenchOptions,
    endpoints: Endpoints,
    workdir: Path,
    say: Callable[[str], None],
    report: BenchReport,
    target: str,
    lineup: list[Peer] | None = None,
) -> Comparison:
    """Run each peer of ``lineup`` (default :func:`peers`) on the point's workload; a
    peer that cannot run, or fails, is a row of ``skipped`` with the reason."""
    rows = [PeerFigures.of_pymon(report)]
    skipped: list[Skipped] = []
    for peer in peers() if lineup is None else lineup:
        reason = peer.unavailable(options)
        if reason is None:
            say(
                f"{peer.name}: the same services, {options.effective_warmup:g}s warm-up, "
                f"then measuring {options.duration:g}s"
            )
            home = workdir / peer.name.lower().replace(" ", "-")
            try:
                rows.append(await peer.measure(options, endpoints, home))
                continue
            except RuntimeError as exc:
                reason = f"failed: {exc}"
        say(f"{peer.name} skipped: {reason}")
        skipped.append(Skipped(peer.name, reason))
    workload = f"{options.services} services ({options.describe()}) every {options.interval:g}s"
    return Comparison(workload, target, rows, skipped)
