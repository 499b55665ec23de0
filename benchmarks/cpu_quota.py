"""Run a command with a CPU quota on its process tree, some processes kept outside.

    python -m benchmarks.cpu_quota --cores 0.85 --outside nginx -- \
        python -m benchmarks.run --trees after=. --nginx --type mixed --workers 1 ...

On a 2-core machine one pymon worker has a core to itself and the target (nginx)
the other, while two workers share both cores with the target: "two workers
against one" then measures the machine as much as pymon. With a quota of N cores
for pymon's processes (the bench and its workers) and the target outside it, one
worker and two can be compared on the same CPU per worker (docs/performance.md,
"One worker or two on the same CPU").

Linux only, as root: a cgroup (v2, or v1's ``cpu`` controller) is made for the
run and removed after it. Processes named by ``--outside`` (their ``comm``) are
moved back to the root group as they appear, every 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

_V2 = Path("/sys/fs/cgroup")
_V1 = Path("/sys/fs/cgroup/cpu")
_PERIOD_US = 100_000


def _make_group(cores: float) -> tuple[Path, Path]:
    """A new cgroup limited to ``cores``, and the root group's process list."""
    name = f"pymon-bench-{os.getpid()}"
    quota = int(cores * _PERIOD_US)
    if (_V2 / "cgroup.controllers").exists():
        group = _V2 / name
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota} {_PERIOD_US}\n")
        return group, _V2 / "cgroup.procs"
    group = _V1 / name
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text(f"{_PERIOD_US}\n")
    (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    return group, _V1 / "cgroup.procs"


def _named(names: set[str]) -> list[int]:
    """Process ids whose ``comm`` is one of ``names``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in names:
            found.append(int(entry.name))
    return found


def _move(pids: set[int], to: Path) -> None:
    """Move ``pids`` to the group whose process list is ``to`` (one gone meanwhile is left)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            to.write_text(f"{pid}\n")


def _members(group: Path) -> set[int]:
    try:
        return {int(p) for p in (group / "cgroup.procs").read_text().split()}
    except OSError:
        return set()


def main(argv: list[str] | None = None) -> int:
    """Run the command after ``--`` in a CPU-limited cgroup; its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=float, required=True, help="the quota, in cores")
    parser.add_argument("--outside", action="append", default=[], help="comm of processes kept out")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.cores <= 0:
        parser.error("give --cores > 0 and a command after --")
    group, root = _make_group(args.cores)
    outside = set(args.outside)
    try:
        child = subprocess.Popen(
            command,
            preexec_fn=lambda: (group / "cgroup.procs").write_text(f"{os.getpid()}\n"),
        )
        while child.poll() is None:
            _move(set(_named(outside)) & _members(group), root)
            time.sleep(0.2)
        return child.returncode
    finally:
        _move(_members(group), root)
        group.rmdir()


if __name__ == "__main__":
    sys.exit(main())
