"""The harness behind ``pymon bench``: N services of the real daemon against local targets.

The workload is the real daemon (scheduler, checks, rules, batch writer, SqlStore
on SQLite) with the web server off, checking half ``tcp`` and half ``http``
services against a target process on 127.0.0.1 (``targets``). What is measured,
over a window that starts after a warm-up (so every service has run and settled
and the first-run transitions are not in the figures):

* sustained checks per second (results whose start falls in the window);
* lateness p50/p99: how long after its due time a check started (the
  scheduler's own figure, carried on every ResultRecord);
* CPU seconds per 1,000 checks of the pymon process (``getrusage``: every
  thread, so SQLite's and the resolver's too), of the event loop's own thread
  (the one that saturates first) and of the target process; and how much CPU
  other processes took meanwhile, since on a shared machine that moves everything;
* resident memory per service: (VmRSS once the services run minus VmRSS before
  the daemon was built) / N;
* the store's batches and write times, the loop's lag, the garbage collector's
  pauses, and every non-ok result (on a healthy run there are none; any there
  are mean the target or the client is saturated).

A timing belongs here, never in a pass/fail test.

Modules: ``options`` (one point), ``bench`` (running it), ``targets`` (the target
process), ``meters`` (what is read on the pymon side), ``reference`` (the bare
operations without pymon), ``report`` (the figures), ``render`` (the tables),
``engine`` (the one contact with pymon's daemon), ``workload`` (the services'
config), ``workers`` and ``worker`` (a point run by N worker nodes of one
cluster, ``--workers N``: the parent's side and each worker's program),
``preflight`` (what a point needs from the machine) and ``peers`` (the same
workload through the peer tools, ``--peers``). It lives in the source
checkout, not in the pymon package; see benchmarks/README.md.
"""

from __future__ import annotations

from benchmarks.harness.bench import run, run_bench
from benchmarks.harness.meters import MeteredStore, machine_info
from benchmarks.harness.options import KINDS, BenchOptions, LoopName
from benchmarks.harness.preflight import Unavailable
from benchmarks.harness.render import render_peers, render_report, render_timeline, render_workers
from benchmarks.harness.report import BenchReport, TimelineSecond
from benchmarks.harness.targets import TargetProcess

__all__ = [
    "KINDS",
    "BenchOptions",
    "BenchReport",
    "LoopName",
    "MeteredStore",
    "TargetProcess",
    "TimelineSecond",
    "Unavailable",
    "machine_info",
    "render_peers",
    "render_report",
    "render_timeline",
    "render_workers",
    "run",
    "run_bench",
]
