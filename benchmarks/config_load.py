"""How long a large config takes to load: libyaml's fast path against ruamel alone.

From the repository root::

    .venv/bin/python -m benchmarks.config_load [--services 20000,100000] [--rounds 3]

For each size it writes a config of that many services (half tcp in flow style,
half http in block style, as people write them) and loads it with
``load_config``, rounds alternating between the two readers in one process: the
fast path as shipped, and ruamel for everything (``read_plain`` patched to
decline). It prints the median wall time of each, the YAML reading's share
(``reading.read`` alone), and the speed-up.

``--node`` ends each file with a ``node:`` section (its last lines: the farthest the
checksum's search for them goes) and prints what the checksum costs: SHA-256 of the
bytes alone against the same with the section found and left out
(``config/checksum.py``).

``--trees before=PATH,after=.`` compares source trees instead (e.g. a worktree of an
older commit): each round loads the file once per tree, in a fresh process each,
trees alternating, and prints the median wall and CPU time of each tree's load::

    .venv/bin/python -m benchmarks.config_load --services 100000 --rounds 3 \
        --trees before=/tmp/before,after=.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from pymon.config import reading
from pymon.config.checksum import checksum, node_span
from pymon.config.load import load_config
from pymon.config.tree import Tree


def write_config(path: Path, services: int, node: bool = False) -> None:
    """A config of ``services`` services, ending with a ``node`` section if ``node``."""
    lines = ['storage: {url: "sqlite:///bench.db"}', "defaults: {interval: 5s, timeout: 2s}"]
    lines.append("services:")
    for i in range(services):
        if i % 2:
            lines.append(
                f"  - {{name: tcp-{i:06d}, type: tcp, host: 127.0.0.1, port: {1000 + i % 5000},"
                f" tags: [web, t{i % 7}]}}"
            )
        else:
            lines += [
                f"  - name: http-{i:06d}",
                "    type: http",
                f'    url: "http://127.0.0.1:{2000 + i % 100}/health"',
                "    contains: ok",
            ]
    if node:
        lines += ["node:", "  location: bench-1"]
    path.write_text("\n".join(lines) + "\n")


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def measure(path: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds per round of each reader: whole load and YAML reading alone."""
    text = path.read_text()
    figures: dict[str, list[float]] = {"load": [], "read": [], "load-ruamel": [], "read-ruamel": []}
    for _ in range(rounds):
        figures["load"].append(timed(lambda: load_config(path)))
        figures["read"].append(timed(lambda: reading.read(Tree("b"), text, {})))
        with mock.patch("pymon.config.reading.read_plain", return_value=None):
            figures["load-ruamel"].append(timed(lambda: load_config(path)))
            figures["read-ruamel"].append(timed(lambda: reading.read(Tree("b"), text, {})))
    return figures


def checksum_cost(path: Path, rounds: int) -> tuple[float, float]:
    """Median seconds of the checksum: the bytes' SHA-256 alone, and with the ``node``
    section found and left out (the tree the reader made is read once, outside)."""
    data = path.read_bytes()
    tree = Tree(str(path))
    reading.read(tree, data.decode(), {})
    plain, left_out = [], []
    for _ in range(max(rounds, 5)):
        plain.append(timed(lambda: hashlib.sha256(data).hexdigest()))
        left_out.append(timed(lambda: checksum(data, node_span(data, tree))))
    assert node_span(data, tree) is not None, "the node section was not found"
    return statistics.median(plain), statistics.median(left_out)


def print_checksum_cost(path: Path, size: int, rounds: int) -> None:
    alone, left_out = checksum_cost(path, rounds)
    print(
        f"checksum of {size:,} services ({path.stat().st_size / 1e6:.1f} MB):"
        f" bytes alone {alone * 1e3:.1f} ms, node left out {left_out * 1e3:.1f} ms",
        flush=True,
    )


# A tree's load, timed in a process of its own (run with that tree's sources first
# on the path): wall and CPU seconds.
_TIMED_LOAD = (
    "import sys, time; from pymon.config.load import load_config; "
    "w, c = time.perf_counter(), time.process_time(); load_config(sys.argv[1]); "
    "print(time.perf_counter() - w, time.process_time() - c)"
)


def compare_trees(path: Path, trees: dict[str, Path], rounds: int) -> dict[str, list[float]]:
    """Median wall and CPU seconds of each tree's load of ``path``, trees alternating."""
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
            out = subprocess.run(
                [sys.executable, "-c", _TIMED_LOAD, str(path)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            runs[label].append((float(out[0]), float(out[1])))
    return {
        label: [statistics.median(r[0] for r in done), statistics.median(r[1] for r in done)]
        for label, done in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", default="20000,100000", help="comma-separated sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", help="LABEL=PATH,...: compare source trees' loads")
    parser.add_argument("--node", action="store_true", help="end each file with a node section")
    args = parser.parse_args()
    if args.trees:
        trees = {k: Path(v) for k, v in (t.split("=", 1) for t in args.trees.split(","))}
        print("| services | " + " | ".join(f"{t} wall / CPU" for t in trees) + " |")
        print("|---|" + "---|" * len(trees))
        with tempfile.TemporaryDirectory() as tmp:
            for size in (int(s) for s in args.services.split(",")):
                path = Path(tmp) / f"{size}.yaml"
                write_config(path, size, args.node)
                if args.node:
                    print_checksum_cost(path, size, args.rounds)
                got = compare_trees(path, trees, args.rounds)
                cells = " | ".join(f"{w:.2f} / {c:.2f} s" for w, c in got.values())
                print(f"| {size:,} | {cells} |", flush=True)
        return
    print("| services | load (fast) | of which YAML | load (ruamel) | of which YAML | speed-up |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.services.split(",")):
            path = Path(tmp) / f"{size}.yaml"
            write_config(path, size, args.node)
            if args.node:
                print_checksum_cost(path, size, args.rounds)
            f = {k: statistics.median(v) for k, v in measure(path, args.rounds).items()}
            print(
                f"| {size:,} | {f['load']:.2f} s | {f['read']:.2f} s | {f['load-ruamel']:.2f} s"
                f" | {f['read-ruamel']:.2f} s | {f['load-ruamel'] / f['load']:.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
