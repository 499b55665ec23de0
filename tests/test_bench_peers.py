"""``pymon bench --peers``: the same workload through the peer tools, on a tiny point.

Only the report's shape is asserted (a row per peer that ran, checks in each, a
reason for each skip): a timing belongs in the benchmark, never in a pass/fail test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from benchmarks.harness import BenchOptions, run_bench
from benchmarks.harness.peers import blackbox, nagios, nginx
from benchmarks.harness.preflight import find_program
from pymon.cli import cli
from tests.conftest import need

PEERS = {"nagios4": "nagios4-core", "prometheus-blackbox-exporter": "prometheus-blackbox-exporter"}


def _tiny(tmp_path: Path, **options: Any) -> BenchOptions:
    """A point of 20 services at 1 s, two seconds' warm-up, no reference."""
    return BenchOptions(
        services=20, interval=1.0, warmup=2.0, reference=0, workdir=tmp_path, **options
    )


async def test_the_peers_run_the_same_workload_against_the_same_target(tmp_path: Path) -> None:
    for program, package in {**PEERS, "nginx": "nginx-light"}.items():
        need(find_program([program], ["/usr/sbin"]) is not None, f"{program} ({package})")
    report = (await run_bench(_tiny(tmp_path, duration=3.0, peers=True))).to_dict()

    peers = report["peers"]
    assert [row["tool"] for row in peers["rows"]] == ["pymon", "Nagios 4", "blackbox_exporter"]
    assert peers["skipped"] == []
    for row in peers["rows"]:
        assert row["checks"] > 0, row
        assert row["not_ok"] == 0, row
        assert row["demanded_per_second"] == 20.0
        assert row["lateness"]["samples"] == row["duration"]["samples"] == row["checks"]
    assert set(peers["ratios"]) == {"Nagios 4", "blackbox_exporter"}
    # Every tool's http and tcp checks went to nginx, pymon's among them.
    assert peers["target"].startswith("nginx")
    assert report["target"]["server"] == peers["target"]
    assert report["target"]["http_requests"] > 0 and report["target"]["tcp_accepts"] > 0


def test_an_absent_peer_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (nagios, blackbox, nginx):
        monkeypatch.setattr(module, "find_program", lambda *_args: None)
    out = tmp_path / "report.json"
    args = ["bench", "--peers", "--type", "tcp", "--services", "2", "--interval", "500ms"]
    args += ["--warmup", "500ms", "--duration", "1s", "--reference", "0s", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    peers = json.loads(out.read_text())["peers"]
    assert [row["tool"] for row in peers["rows"]] == ["pymon"]
    assert peers["skipped"] == [
        {"tool": "Nagios 4", "reason": "nagios4 not installed (Debian: nagios4-core)"},
        {
            "tool": "blackbox_exporter",
            "reason": "blackbox_exporter not installed (Debian: prometheus-blackbox-exporter)",
        },
    ]
    assert peers["target"] == "pymon's target process (nginx not installed)"
    assert "Nagios 4 skipped: nagios4 not installed" in result.output


def test_a_peer_says_which_types_it_cannot_check() -> None:
    exporter = blackbox.BlackboxExporter()
    exporter.program = "/usr/bin/prometheus-blackbox-exporter"
    reason = exporter.unavailable(BenchOptions(kind="plugin"))
    assert reason == "blackbox_exporter has no prober that runs a program"
    assert exporter.unavailable(BenchOptions(kind="dns")) is None


async def test_nginx_alone_serves_pymons_checks(tmp_path: Path) -> None:
    need(find_program(["nginx"], ["/usr/sbin"]) is not None, "nginx (nginx-light)")
    report = (await run_bench(_tiny(tmp_path, duration=2.0, kind="tcp", nginx=True))).to_dict()
    assert report["checks"]["total"] > 0 and report["checks"]["failed"] == 0
    assert report["target"]["server"].startswith("nginx")
    assert "peers" not in report or not report["peers"]


def test_nginx_is_refused_for_what_it_cannot_serve() -> None:
    result = CliRunner().invoke(cli, ["bench", "--nginx", "--type", "dns", "--services", "2"])
    assert "--nginx serves http and tcp checks, not dns" in result.output
