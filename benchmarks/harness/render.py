"""The report as ``pymon bench`` prints it: rich tables of the headline figures and the timeline."""

from __future__ import annotations

from typing import Any

from benchmarks.harness.peers.figures import Comparison
from benchmarks.harness.report import BenchReport

__all__ = ["render_peers", "render_report", "render_timeline", "render_workers"]


def render_peers(comparison: Comparison) -> Any:
    """A rich Table of pymon and its peers on one workload, with the ratios and skips."""
    from rich.table import Table

    table = Table(
        title=f"the same workload through each tool: {comparison.workload}; "
        f"http and tcp target: {comparison.target}"
    )
    names = ("tool", "checks/s (demanded)", "not ok", "late p50 / p99 ms")
    for name in (*names, "check p50 / p99 ms", "CPU s / 1,000", "pymon / it: checks/s, CPU"):
        table.add_column(name, justify="left" if name == "tool" else "right")
    ratios = comparison.ratios
    notes = [f"{row.tool}: {row.note}" for row in comparison.rows]
    notes += [f"{skip.tool} skipped: {skip.reason}" for skip in comparison.skipped]
    table.caption = "\n".join(notes)
    table.caption_justify = "left"
    for row in comparison.rows:
        ratio = ratios.get(row.tool)
        table.add_row(
            row.tool,
            f"{row.per_second:,.1f} ({row.demanded_per_second:,.1f})",
            f"{row.not_ok:,}",
            f"{row.lateness.p50_ms:,.1f} / {row.lateness.p99_ms:,.1f}",
            f"{row.duration.p50_ms:,.1f} / {row.duration.p99_ms:,.1f}",
            f"{row.cpu_per_1000_checks_s:.3f}",
            f"{ratio['checks_per_s']:.2f} / {ratio['cpu_per_check']:.2f}" if ratio else "",
        )
    for skip in comparison.skipped:
        table.add_row(skip.tool, "skipped", "", "", "", "", "")
    return table


def render_timeline(report: BenchReport) -> Any:
    """A rich Table of the report's timeline, one row per second of the run."""
    from rich.table import Table

    table = Table(title="per second since the daemon started (* = in the window)")
    for name in ("second", "checks", "latest start", "batches", "longest write"):
        table.add_column(name, justify="right")
    for t in report.timeline:
        table.add_row(
            f"{t.second}{'*' if t.in_window else ''}",
            f"{t.checks:,}",
            f"{t.max_lateness_ms:,.0f} ms",
            f"{t.batches}",
            f"{t.longest_write_ms:,.0f} ms" if t.batches else "",
        )
    return table


def render_workers(report: BenchReport) -> Any:
    """A rich Table of each worker's own figures (a point of several workers)."""
    from rich.table import Table

    table = Table(title="per worker (the report above is their sum, percentiles merged)")
    names = ("node", "shards", "checks/s", "p50 / p99 ms", "not ok", "skipped", "CPU s")
    for name in (*names, "loop thread", "DB thread s", "batches"):
        table.add_column(name, justify="right")
    for w in report.workers:
        table.add_row(
            w.node,
            f"{w.shards}",
            f"{w.per_second:,.1f}",
            f"{w.lateness_p50_ms:.1f} / {w.lateness_p99_ms:.1f}",
            f"{w.failed:,}",
            f"{w.skipped_runs:,}",
            f"{w.pymon_cpu_s:.2f}",
            f"{w.loop_thread_utilization:.0%}",
            f"{w.db_thread_s:.2f}",
            f"{w.batches:,}",
        )
    return table


def render_report(report: BenchReport) -> Any:
    """A rich Table of the report's headline figures."""
    from rich.table import Table

    r, c, t = report.run, report.checks, report.target
    types = ", ".join(f"{n} {kind}" for kind, n in r.by_type.items())
    table = Table(
        title=(
            f"pymon bench: {r.services} services ({types}) every "
            f"{r.interval_s:g}s, {r.window_s:g}s window, loop={r.loop}"
            + (f", {r.workers} workers" if r.workers > 1 else "")
        ),
        show_header=True,
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("note")
    rows: list[tuple[str, str, str]] = [
        ("checks/s", f"{c.per_second:,.1f}", f"expected {c.expected_per_second:,.1f}"),
        ("checks in window", f"{c.total:,}", f"ok {c.ok:,}, not ok {c.failed:,}"),
        ("skipped runs", f"{c.skipped_runs:,}", "due time passed before the previous run ended"),
        (
            "lateness p50 / p99",
            f"{report.lateness.p50_ms:.1f} / {report.lateness.p99_ms:.1f} ms",
            f"max {report.lateness.max_ms:.1f} ms",
        ),
        (
            "check duration p50 / p99",
            f"{report.duration.p50_ms:.1f} / {report.duration.p99_ms:.1f} ms",
            f"max {report.duration.max_ms:.1f} ms",
        ),
        (
            "loop lag p50 / p99",
            f"{report.loop_lag.p50_ms:.1f} / {report.loop_lag.p99_ms:.1f} ms",
            f"max {report.loop_lag.max_ms:.1f} ms",
        ),
        (
            "garbage collector",
            f"{report.gc.pause_share:.1%} of the time",
            f"{sum(report.gc.collections.values()):,} collections, "
            f"longest {report.gc.max_pause_ms:.1f} ms",
        ),
        (
            "pymon CPU / 1,000 checks",
            f"{report.cpu.pymon_per_1000_checks_s:.3f} s",
            f"{report.cpu.pymon_utilization:.0%} of one core"
            + (" (all workers)" if r.workers > 1 else ""),
        ),
        (
            "programs checks ran",
            f"{report.cpu.children_per_1000_checks_s:.3f} s / 1,000",
            f"{report.cpu.children_s:.2f} s of CPU (plugins, not in pymon's own CPU)",
        ),
        (
            "SQLite threads' CPU",
            f"{report.cpu.db_thread_s:.2f} s",
            f"{report.cpu.db_thread_share:.0%} of pymon's CPU",
        ),
        (
            "event loop thread CPU",
            f"{report.cpu.loop_thread_per_1000_checks_s:.3f} s / 1,000",
            f"{report.cpu.loop_thread_utilization:.0%} of one core (saturates first)",
        ),
        (
            "target CPU / 1,000 checks",
            f"{report.cpu.target_per_1000_checks_s:.3f} s",
            f"{report.cpu.target_utilization:.0%} of one core",
        ),
        (
            "machine busy",
            f"{report.cpu.machine_busy_cores:.2f} cores",
            f"of which other processes {report.cpu.others_cores:.2f}",
        ),
        (
            "memory / service",
            f"{report.memory.per_service_kb:.1f} KiB",
            f"RSS {report.memory.rss_before_mb:.0f} -> {report.memory.rss_running_mb:.0f} MiB",
        ),
        (
            "store batches",
            f"{report.store.batches:,}",
            f"mean {report.store.mean_batch:,.0f} results, "
            f"write p50 {report.store.write_ms.p50_ms:.0f} / p99 "
            f"{report.store.write_ms.p99_ms:.0f} ms, busy {report.store.write_busy:.0%}; "
            f"{report.store.batches_per_s:,.1f} batches, "
            f"{report.store.results_per_s:,.0f} results / s",
        ),
        (
            "reference (no pymon)",
            f"{report.reference.pymon_ratio:.2f}x",
            f"loop CPU per check over a bare GET {report.reference.get_us:.0f} µs / "
            f"connect {report.reference.connect_us:.0f} µs "
            f"(mix: {report.reference.per_core:,} per core)",
        ),
        (
            "target answered",
            f"{t.http_requests + t.tcp_accepts + t.dns_queries:,}",
            f"http {t.http_requests:,}, tcp {t.tcp_accepts:,}, dns {t.dns_queries:,} ({t.server})",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    for message, count in c.failure_samples.items():
        table.add_row("failure", f"{count:,}", message)
    return table
