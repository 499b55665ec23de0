"""What each tool achieved on the same workload: one row per tool, the ratios, the skips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.harness.options import BenchOptions
from benchmarks.harness.peers.window import Window
from benchmarks.harness.report import BenchReport, Percentiles

__all__ = ["Comparison", "PeerFigures", "Sample", "Skipped"]

Sample = tuple[float, float, bool]
"""One check in a window: (lateness s, duration s, ok)."""


@dataclass(slots=True)
class PeerFigures:
    """One tool's row: checks achieved against demanded, lateness, duration, CPU.

    ``lateness`` is how long after its due time a check started (pymon's scheduler's
    figure, Nagios' check latency, the scrape driver's for the exporter); ``duration``
    how long the check took (pymon's, Nagios' execution time, the exporter's
    probe_duration_seconds). ``cpu_s`` counts the programs a tool ran for its checks
    (plugins). ``note`` says what the figures cover.
    """

    tool: str
    checks: int
    per_second: float
    demanded_per_second: float
    not_ok: int
    lateness: Percentiles
    duration: Percentiles
    cpu_s: float
    cpu_per_1000_checks_s: float
    window_s: float
    note: str = ""

    @classmethod
    def of(
        cls,
        tool: str,
        samples: Sequence[Sample],
        window: Window,
        options: BenchOptions,
        note: str = "",
    ) -> PeerFigures:
        """The row of ``samples`` that started in ``window``, for ``options``' workload."""
        checks, cpu, seconds = len(samples), window.cpu, window.seconds
        return cls(
            tool=tool,
            checks=checks,
            per_second=round(checks / seconds, 1),
            demanded_per_second=round(options.services / options.interval, 1),
            not_ok=sum(1 for _, _, ok in samples if not ok),
            lateness=Percentiles.of([late for late, _, _ in samples]),
            duration=Percentiles.of([took for _, took, _ in samples]),
            cpu_s=round(cpu, 3),
            cpu_per_1000_checks_s=round(cpu * 1000 / checks, 4) if checks else 0.0,
            window_s=round(seconds, 3),
            note=note,
        )

    @classmethod
    def of_pymon(cls, report: BenchReport) -> PeerFigures:
        """pymon's row, from its point's report (its CPU with the programs it ran)."""
        c, cpu = report.checks, report.cpu.pymon_s + report.cpu.children_s
        return cls(
            tool="pymon",
            checks=c.total,
            per_second=c.per_second,
            demanded_per_second=c.expected_per_second,
            not_ok=c.failed,
            lateness=report.lateness,
            duration=report.duration,
            cpu_s=round(cpu, 3),
            cpu_per_1000_checks_s=round(cpu * 1000 / c.total, 4) if c.total else 0.0,
            window_s=report.run.window_s,
            note=f"{report.run.workers} process(es), scheduler and store included",
        )


@dataclass(frozen=True, slots=True)
class Skipped:
    """A peer that did not run, and why."""

    tool: str
    reason: str


@dataclass(slots=True)
class Comparison:
    """pymon and its peers on one workload: rows, skips, and pymon over each peer.

    ``ratios`` maps a peer to pymon's figure over the peer's, for checks/s (above 1:
    pymon did more) and CPU per check (below 1: pymon took less); ``target`` names the
    server the http and tcp checks of every tool went to.
    """

    workload: str
    target: str
    rows: list[PeerFigures]
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def ratios(self) -> dict[str, dict[str, float]]:
        """pymon over each peer that ran: throughput and CPU per check."""
        pymon, *peers = self.rows
        ratios: dict[str, dict[str, float]] = {}
        for peer in peers:
            ratios[peer.tool] = {
                "checks_per_s": _ratio(pymon.per_second, peer.per_second),
                "cpu_per_check": _ratio(pymon.cpu_per_1000_checks_s, peer.cpu_per_1000_checks_s),
            }
        return ratios

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the bench report's ``peers`` section)."""
        return asdict(self) | {"ratios": self.ratios}


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0
