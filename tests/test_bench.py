"""Smoke test of ``pymon bench``: a few seconds, 20 services, real targets and SQLite.

Only the report's shape and the absence of failures are asserted: a timing
belongs in the benchmark, never in a pass/fail test.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from click.testing import CliRunner

from benchmarks.harness import BenchOptions, bench, run_bench
from benchmarks.harness.preflight import icmp_unavailable
from benchmarks.harness.targets import DNS_ADDRESS, dns_answer
from pymon.cli import cli
from tests.conftest import need

SECTIONS = {
    "run": {"services", "tcp", "http", "interval_s", "warmup_s", "window_s", "concurrency"},
    "checks": {"total", "per_second", "expected_per_second", "ok", "failed", "skipped_runs"},
    "lateness": {"p50_ms", "p90_ms", "p99_ms", "max_ms", "samples"},
    "loop_lag": {"p50_ms", "p99_ms", "samples"},
    "gc": {"collections", "pause_s", "pause_share", "max_pause_ms"},
    "cpu": {"pymon_s", "pymon_per_1000_checks_s", "target_s", "target_per_1000_checks_s"},
    "memory": {"rss_before_mb", "rss_running_mb", "per_service_kb"},
    "store": {"batches", "results_written", "mean_batch", "write_ms", "writer_failures"},
    "target": {"http_requests", "tcp_accepts"},
    "reference": {"get_us", "connect_us", "mix_us", "per_core", "pymon_ratio"},
    "machine": {"cpu_model", "nproc", "python"},
}


async def test_bench_runs_checks_without_failures(tmp_path: Path) -> None:
    options = BenchOptions(services=20, interval=1.0, warmup=1.0, duration=2.0, workdir=tmp_path)
    report = (await run_bench(options)).to_dict()

    for section, keys in SECTIONS.items():
        assert keys <= set(report[section]), section
    checks = report["checks"]
    assert checks["total"] > 0
    assert checks["failed"] == 0, checks["failure_samples"]
    assert checks["ok"] == checks["total"]
    assert report["lateness"]["samples"] == checks["total"]
    assert report["run"]["tcp"] == report["run"]["http"] == 10
    # Both kinds of target were reached, and the results went through the store.
    assert report["target"]["http_requests"] > 0
    assert report["target"]["tcp_accepts"] > 0
    assert report["store"]["writer_failures"] == 0
    assert (tmp_path / "bench.db").exists()
    # The reference phase measured both bare operations, and the ratio uses them.
    reference = report["reference"]
    assert reference["get_us"] > 0 and reference["connect_us"] > 0
    mean = (reference["get_us"] + reference["connect_us"]) / 2
    assert abs(reference["mix_us"] - mean) <= 0.1
    assert reference["pymon_ratio"] > 0
    # The timeline covers the whole run from the daemon's start, warm-up included:
    # every result ever written is counted in one of its seconds.
    timeline = report["timeline"]
    seconds = [t["second"] for t in timeline]
    assert seconds == sorted(seconds) and seconds[0] >= 0
    assert sum(t["checks"] for t in timeline) >= checks["total"]
    assert sum(t["batches"] for t in timeline) >= report["store"]["batches"]
    assert not timeline[0]["in_window"]  # the warm-up
    assert any(t["in_window"] and t["checks"] for t in timeline)


async def test_bench_can_skip_the_reference(tmp_path: Path) -> None:
    options = BenchOptions(
        services=4, interval=0.5, warmup=0.5, duration=1.0, workdir=tmp_path, reference=0
    )
    report = (await run_bench(options)).to_dict()
    assert report["reference"]["get_us"] == report["reference"]["pymon_ratio"] == 0
    assert report["checks"]["failed"] == 0


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_bench_command_runs_one_type_only(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "report.json"
    args = ["bench", "--type", kind, "--services", "3", "--interval", "500ms"]
    args += ["--warmup", "500ms", "--duration", "1s", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    other = "http" if kind == "tcp" else "tcp"
    assert (report["run"][kind], report["run"][other]) == (3, 0)
    answered = {"tcp": "tcp_accepts", "http": "http_requests"}
    assert report["target"][answered[kind]] > 0
    assert report["target"][answered[other]] == 0
    assert report["checks"]["failed"] == 0, report["checks"]["failure_samples"]
    # The reference mix is this type's bare operation alone.
    bare = {"tcp": "connect_us", "http": "get_us"}[kind]
    assert report["reference"]["mix_us"] == report["reference"][bare]


def test_bench_options_split_the_services_by_type() -> None:
    mixed, tcp, http = (BenchOptions(services=5, kind=k) for k in ("mixed", "tcp", "http"))
    assert [mixed.type_of(i) for i in range(5)] == ["tcp", "http", "tcp", "http", "tcp"]
    assert (mixed.tcp_services, tcp.tcp_services, http.tcp_services) == (3, 5, 0)
    assert mixed.by_type == {"tcp": 3, "http": 2}
    assert {http.type_of(i) for i in range(5)} == {"http"}
    assert BenchOptions(services=5, kind="dns").by_type == {"dns": 5}
    with pytest.raises(ValueError, match="at least 2"):
        BenchOptions(services=1).validate()
    BenchOptions(services=1, kind="tcp").validate()


@pytest.mark.parametrize("kind", ["ping", "dns", "plugin"])
@pytest.mark.parametrize("workers", [1, 2])
def test_bench_command_runs_the_other_types(tmp_path: Path, kind: str, workers: int) -> None:
    if kind == "ping":
        reason = icmp_unavailable()
        need(reason is None, str(reason))
    out = tmp_path / "report.json"
    args = ["bench", "--type", kind, "--services", "4", "--interval", "1s", "--duration", "1s"]
    args += ["--warmup", "3s" if workers > 1 else "1s", "--workers", str(workers)]
    result = CliRunner().invoke(cli, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["run"]["by_type"] == {kind: 4}
    assert report["checks"]["total"] > 0
    assert report["checks"]["failed"] == 0, report["checks"]["failure_samples"]
    assert report["duration"]["samples"] == report["checks"]["total"]
    # The dns services asked the target; the plugin ones ran a program each.
    assert (report["target"]["dns_queries"] > 0) == (kind == "dns")
    assert (report["cpu"]["children_s"] > 0) == (kind == "plugin")
    # There is no bare operation to compare these types with.
    assert report["reference"]["seconds"] == 0


def test_the_dns_target_answers_an_a_query_and_nothing_else() -> None:
    query = dns.message.make_query("bench.pymon.test", "A")
    answer = dns.message.from_wire(dns_answer(query.to_wire()) or b"")
    assert answer.id == query.id and answer.rcode() == dns.rcode.NOERROR
    assert [r.to_text() for r in answer.answer[0]] == [DNS_ADDRESS]
    other = dns.message.from_wire(
        dns_answer(dns.message.make_query("x.test", "MX").to_wire()) or b""
    )
    assert other.answer == []
    assert dns_answer(b"short") is None
    assert dns_answer(answer.to_wire()) is None  # an answer is not a query


def test_ping_without_the_privilege_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError("no")

    monkeypatch.setattr(socket, "socket", refuse)
    reason = icmp_unavailable()
    assert reason is not None and "ping_group_range" in reason
    monkeypatch.undo()
    monkeypatch.setattr(bench, "icmp_unavailable", lambda: reason)
    result = CliRunner().invoke(cli, ["bench", "--type", "ping", "--services", "2"])
    assert result.exit_code == 0, result.output
    assert "--type ping skipped: ICMP needs root" in result.output


def test_bench_command_refuses_a_warmup_shorter_than_an_interval() -> None:
    result = CliRunner().invoke(cli, ["bench", "--interval", "5s", "--warmup", "1s"])
    assert result.exit_code == 2
    assert "at least one interval" in result.output


def test_bench_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["bench", "--services", "4", "--interval", "500ms", "--warmup", "500ms"]
    args += ["--reference", "0s"]
    result = CliRunner().invoke(cli, [*args, "--duration", "1s", "--timeline", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "per second since the daemon started" in result.output
    report = json.loads(out.read_text())
    assert set(SECTIONS) <= set(report)
    assert report["timeline"]
    assert report["checks"]["failed"] == 0, report["checks"]["failure_samples"]


def test_bench_command_outside_a_source_checkout_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed wheel has no benchmarks/harness: the import fails as it would there.
    monkeypatch.setitem(sys.modules, "benchmarks.harness", None)
    result = CliRunner().invoke(cli, ["bench", "--services", "4"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: pymon bench runs from a source checkout (clone the repository, pip install -e .):"
        " this installation has no benchmarks/harness"
    ]


async def test_bench_with_two_workers_sums_both_workers(tmp_path: Path) -> None:
    options = BenchOptions(
        services=20,
        interval=1.0,
        warmup=3.0,
        duration=2.0,
        workdir=tmp_path,
        reference=0,
        workers=2,
    )
    report = (await run_bench(options)).to_dict()

    for section, keys in SECTIONS.items():
        assert keys <= set(report[section]), section
    assert report["run"]["workers"] == 2
    workers = report["workers"]
    assert [w["node"] for w in workers] == ["bench-w1", "bench-w2"]
    # The cluster split the shards between them, and each checked its own services.
    assert sum(w["shards"] for w in workers) == 256
    assert all(w["shards"] > 0 and w["checks"] > 0 for w in workers)
    checks = report["checks"]
    assert checks["failed"] == 0, checks["failure_samples"]
    assert checks["total"] == sum(w["checks"] for w in workers)
    assert report["lateness"]["samples"] == checks["total"]
    assert report["store"]["batches"] == sum(w["batches"] for w in workers)
    assert report["store"]["results_written"] == sum(w["results_written"] for w in workers)
    assert report["cpu"]["pymon_s"] == pytest.approx(
        sum(w["pymon_cpu_s"] for w in workers), abs=0.01
    )
    assert report["cpu"]["db_thread_s"] <= report["cpu"]["pymon_s"]
    # One target served both workers, and the parent read it over the common window.
    assert report["target"]["http_requests"] > 0
    assert report["target"]["tcp_accepts"] > 0
    assert any(t["in_window"] and t["checks"] for t in report["timeline"])


def test_bench_command_prints_each_worker(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["bench", "--services", "4", "--interval", "1s", "--warmup", "3s", "--workers", "2"]
    args += ["--reference", "0s", "--duration", "1s", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "per worker" in result.output
    report = json.loads(out.read_text())
    assert [w["node"] for w in report["workers"]] == ["bench-w1", "bench-w2"]


def test_config_load_benchmark_loads_its_configs_both_ways(tmp_path: Path) -> None:
    from benchmarks.config_load import measure, write_config
    from pymon.config.load import load_config

    path = tmp_path / "c.yaml"
    write_config(path, 6)
    assert [s.name for s in load_config(path).services][:2] == ["http-000000", "tcp-000001"]
    figures = measure(path, rounds=2)
    assert sorted(figures) == ["load", "load-ruamel", "read", "read-ruamel"]
    assert all(len(times) == 2 and min(times) > 0 for times in figures.values())
