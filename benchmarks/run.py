"""Run a matrix of ``pymon bench`` points and variants; print a Markdown table.

From the repository root::

    .venv/bin/python -m benchmarks.run --services 1000,5000,10000 --variants baseline,uvloop \\
        --duration 60 --out benchmarks/results/run.jsonl

Every point runs in a fresh process, so a variant's patches, its event loop and
its memory never leak into the next one. ``--trees before=PATH,after=PATH`` runs
``pymon bench`` of each source tree instead (each tree's own pymon and harness),
alternating the trees within each repeat, so a change is measured against the
commit before it side by side, under the same machine load::

    git worktree add /tmp/before <commit>
    .venv/bin/python -m benchmarks.run --services 10000 --repeat 3 \\
        --trees before=/tmp/before,after=. --out benchmarks/results/compare.jsonl
 Each result is appended to ``--out`` as
one JSON line (the bench report plus ``variant`` and ``commit``); ``--table FILE``
prints the table of a results file again without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import KINDS, BenchOptions, LoopName
from benchmarks.harness import run as run_bench


def _pct(value: float | None) -> str:
    # Older result files lack the newer figures.
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _kind(run: dict[str, Any]) -> str:
    """What a run's services checked (older result files name no kind: tcp, http or both)."""
    if "kind" in run:
        return str(run["kind"])
    return "mixed" if run["tcp"] and run["http"] else "tcp" if run["tcp"] else "http"


COLUMNS = (
    ("services", lambda r: f"{r['run']['services']:,}"),
    ("variant", lambda r: r.get("variant", "")),
    ("workers", lambda r: str(r["run"].get("workers", 1))),
    ("type", lambda r: _kind(r["run"])),
    (
        "checks/s",
        lambda r: f"{r['checks']['per_second']:,.0f} / {r['checks']['expected_per_second']:,.0f}",
    ),
    ("p50 ms", lambda r: f"{r['lateness']['p50_ms']:,.1f}"),
    ("p99 ms", lambda r: f"{r['lateness']['p99_ms']:,.1f}"),
    ("skipped", lambda r: f"{r['checks']['skipped_runs']:,}"),
    ("not ok", lambda r: f"{r['checks']['failed']:,}"),
    ("CPU s/1k", lambda r: f"{r['cpu']['pymon_per_1000_checks_s']:.3f}"),
    ("CPU %", lambda r: f"{r['cpu']['pymon_utilization']:.0%}"),
    ("loop CPU s/1k", lambda r: _num(r["cpu"].get("loop_thread_per_1000_checks_s"), 3)),
    ("loop thread %", lambda r: _pct(r["cpu"].get("loop_thread_utilization"))),
    ("DB thread %", lambda r: _pct(r["cpu"].get("db_thread_share"))),
    ("DB tx/s", lambda r: _num(r["store"].get("batches_per_s"), 1)),
    ("rows/s", lambda r: _num(r["store"].get("results_per_s"), 0)),
    ("target CPU %", lambda r: f"{r['cpu']['target_utilization']:.0%}"),
    ("others", lambda r: _num(r["cpu"].get("others_cores"))),
    ("KiB/svc", lambda r: f"{r['memory']['per_service_kb']:.1f}"),
    ("write p99 ms", lambda r: f"{r['store']['write_ms']['p99_ms']:,.0f}"),
    ("x reference", lambda r: _num(r.get("reference", {}).get("pymon_ratio") or None)),
)


def table(rows: list[dict[str, Any]]) -> str:
    """The headline figures of ``rows`` as a Markdown table."""
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(fmt(r) for _, fmt in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def _points(args: argparse.Namespace) -> list[tuple[str, Path | None, int]]:
    """(name, tree, workers) per run of one point: each variant (tree None), or with
    ``--trees`` each tree, on each of ``--workers``, in turn, ``--repeat`` times: the
    runs alternate, so a change of the machine's load falls on all of them."""
    workers = [int(w) for w in args.workers.split(",")]
    named: list[tuple[str, Path | None]]
    if args.trees is None:
        named = [(variant, None) for variant in args.variants.split(",")]
    else:
        trees = [item.partition("=") for item in args.trees.split(",")]
        named = [(name, Path(path).resolve()) for name, _, path in trees]
    return [(name, tree, w) for _ in range(args.repeat) for name, tree in named for w in workers]


def _commit(tree: Path | None = None) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tree,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tree,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _one(args: argparse.Namespace) -> None:
    """Run one point in this process (the child side) and write its JSON."""
    from benchmarks.variants import apply_variants

    loop: LoopName = "asyncio"
    options = BenchOptions(
        services=args.services_one,
        interval=args.interval,
        duration=args.duration,
        warmup=args.warmup,
        loop=loop,
        workers=args.workers_one,
        kind=args.type,
    )
    options = apply_variants(args.variant, options)
    report = run_bench(options).to_dict()
    report["variant"] = args.variant
    report["commit"] = _commit()
    Path(args.json).write_text(json.dumps(report))


def main() -> None:
    """Parse the command line; run the matrix (or one point, or reprint a table)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="1000,5000,10000", help="comma-separated points")
    parser.add_argument("--variants", default="baseline", help="comma-separated, + composes")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per point")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts")
    parser.add_argument("--type", default="mixed", choices=KINDS)
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    parser.add_argument("--table", type=Path, default=None, help="print the table of a file")
    parser.add_argument("--trees", default=None, help="NAME=PATH,...: each tree's pymon bench")
    parser.add_argument("--nginx", action="store_true", help="trees: nginx as the target")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--services-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--workers-one", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        _one(args)
        return
    if args.table is not None:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line]
        print(table(rows))
        return

    rows = []
    for services in (int(s) for s in args.services.split(",")):
        for variant, tree, workers in _points(args):
            # Older trees' pymon bench has no --workers: one worker is its default.
            several = ["--workers", str(workers)] if workers != 1 else []
            # Likewise --type, before issue 16: mixed is what they run.
            typed = ["--type", args.type] if args.type != "mixed" else []
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "report.json"
                env = os.environ | {"PYTHONHASHSEED": "0"}
                if tree is None:
                    cmd = [
                        sys.executable, "-m", "benchmarks.run", "--one",
                        "--services-one", str(services), "--variant", variant,
                        "--interval", str(args.interval), "--duration", str(args.duration),
                        *(["--warmup", str(args.warmup)] if args.warmup is not None else []),
                        "--workers-one", str(workers), "--type", args.type, "--json", str(out),
                    ]  # fmt: skip
                else:
                    # The tree's own pymon and harness, on the loop `pymon run` uses.
                    cmd = [
                        sys.executable, "-m", "pymon", "bench", "--services", str(services),
                        "--interval", f"{args.interval}s", "--duration", f"{args.duration}s",
                        *(["--warmup", f"{args.warmup}s"] if args.warmup is not None else []),
                        *several, *typed, *(["--nginx"] if args.nginx else []),
                        "--json", str(out),
                    ]  # fmt: skip
                    env["PYTHONPATH"] = f"{tree / 'src'}{os.pathsep}{tree}"
                print(
                    f"# {services} services, {variant}, {workers} worker(s)",
                    file=sys.stderr,
                    flush=True,
                )
                proc = subprocess.run(cmd, env=env, cwd=tree)
                if proc.returncode != 0:
                    print(f"#   failed with exit code {proc.returncode}", file=sys.stderr)
                    continue
                row = json.loads(out.read_text())
                if tree is not None:
                    row["variant"] = variant
                    row["commit"] = _commit(tree)
            rows.append(row)
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(table([row]).splitlines()[-1], flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
