"""Smoke test of ``benchmarks/simulate.py``: two simulated nodes, 200 services, a few
seconds on a throwaway PostgreSQL. Only that it runs and reports its figures is
asserted: a timing belongs in the benchmark, never in a pass/fail test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.pgstats import TABLES
from benchmarks.simulate import failing
from tests.conftest import need
from tests.support.postgres import find_pg_bin

ROOT = Path(__file__).resolve().parents[1]


def test_a_stable_small_share_of_services_fails_in_each_spell() -> None:
    names = [f"s{n:07d}" for n in range(10_000)]
    first = {name for name in names if failing(name, 10.0, 60.0, 0.01)}
    again = {name for name in names if failing(name, 250.0, 60.0, 0.01)}  # the same spell
    later = {name for name in names if failing(name, 400.0, 60.0, 0.01)}  # the next one

    assert 50 < len(first) < 150
    assert again == first
    assert later != first


@pytest.mark.slow
def test_simulate_runs_nodes_and_reports_what_postgres_did(tmp_path: Path) -> None:
    need(find_pg_bin() is not None, "PostgreSQL server binaries not installed")
    out = tmp_path / "simulate.jsonl"
    command = [sys.executable, "-m", "benchmarks.simulate", "--nodes", "2", "--services", "200"]
    command += ["--interval", "1s", "--answer", "10ms", "--warmup", "2s", "--duration", "3s"]
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    proc = subprocess.run(
        [*command, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert "lease_rows_per_s" in proc.stdout
    report = json.loads(out.read_text().splitlines()[-1])
    assert report["nodes"] == 2 and report["services"] == 200
    assert report["checks_per_s"] > 0
    assert set(report["rows"]) == set(TABLES)
    assert report["rows"]["results"]["ins_per_s"] > 0
    assert report["rows"]["shards"]["upd_per_s"] > 0
    assert report["notify_per_s"] == 0
    assert isinstance(report["events_per_s"], dict)
    assert report["pg_cpu_cores"] is not None and report["nodes_cpu_cores"] is not None
    assert report["wal_bytes_per_s"] is not None
