"""``pymon capacity``: the arithmetic on made-up costs and machines, the machine's
readings from a /proc of the test's own, and the command on a small config, calibrated
locally and live (against targets the test starts)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from benchmarks.harness.live import derived_config, idle_name, live_services, sample
from pymon.capacity import (
    ROUGH,
    SATURATION,
    Basis,
    Cost,
    Estimate,
    Machine,
    Pressure,
    above_idle,
    caveats,
    demand,
    estimate,
    outbox,
    read_machine,
)
from pymon.cli import cli
from pymon.config.load import load_config_text
from pymon.engine.scheduler import phase
from pymon.store.pace import sqlite_pace
from tests.support.mail import MailSink
from tests.support.nodes import CountingPorts
from tests.support.servers import refused_port

MACHINE = Machine(cores=2, open_files=1024, ports=28232, reuse_time_wait=2, memory=8 << 30)

CONFIG = """
defaults: {interval: 5s}
services:
  - {name: t1, type: tcp, host: 10.0.0.1, port: 22}
  - {name: t2, type: tcp, host: 10.0.0.1, port: 22, interval: 1s}
  - {name: t3, type: tcp, host: 127.0.0.1, port: 80, interval: 500ms}
  - {name: h, type: http, url: "http://10.0.0.2/"}
  - {name: off, type: tcp, host: 10.0.0.9, port: 1, enabled: false}
  - {name: beat, type: heartbeat, token: t0123456789abcdef}
"""


def test_demand_counts_enabled_checks_per_type_and_the_busiest_destination() -> None:
    demands = demand(load_config_text(CONFIG))
    assert set(demands) == {"tcp", "http", "heartbeat"}
    tcp = demands["tcp"]
    assert tcp.services == 3
    assert tcp.per_second == pytest.approx(0.2 + 1 + 2)
    # 10.0.0.1:22 takes 1.2 connections/s; 127.0.0.1:80 takes 2, but is loopback.
    assert tcp.busiest == pytest.approx(2)
    assert tcp.busiest_remote == pytest.approx(1.2)
    # An http server closes first: its TIME_WAIT is not this machine's.
    assert demands["http"].busiest == 0
    assert demands["heartbeat"].per_second == 0


def test_a_service_with_locations_is_counted_by_its_location_checks() -> None:
    demands = demand(
        load_config_text(
            "services:\n"
            "  - {name: w, type: tcp, host: 10.0.0.1, port: 22, interval: 1s,"
            " locations: [a, b, c]}\n"
        )
    )
    assert demands["tcp"].services == 3
    assert demands["tcp"].per_second == pytest.approx(3)


def test_the_limits_follow_from_the_costs() -> None:
    demands = demand(load_config_text(CONFIG))
    costs = {"tcp": Cost("tcp", cpu=100e-6, memory=5000), "http": Cost("http", cpu=200e-6)}
    found = estimate(demands, costs, MACHINE, workers=1)
    loop = 3.2 * 100e-6 + 0.2 * 200e-6
    assert found.cores == pytest.approx(loop)
    assert found.per_second == pytest.approx(3.4)
    # Alone, at its own mean interval (3 services / 3.2 checks/s).
    assert found.most_services["tcp"] == int(SATURATION / 100e-6 * 3 / 3.2)
    assert found.memory == 3 * 5000
    assert found.bottleneck.resource in {p.resource for p in found.pressures}
    assert found.headroom == pytest.approx(min(p.growth for p in found.pressures))
    files = next(p for p in found.pressures if p.resource == "open files")
    # The daemon's own files do not grow with the config.
    assert files.growth > 1 / files.used
    two = estimate(demands, costs, MACHINE, workers=2)
    assert two.most_services["tcp"] == pytest.approx(2 * found.most_services["tcp"], abs=1)


def test_a_loop_past_one_core_asks_for_workers_and_a_busy_port_for_reuse() -> None:
    text = "services:\n" + "".join(
        f"  - {{name: s{i}, type: tcp, host: 10.1.1.1, port: 443, interval: 1s}}\n"
        for i in range(2000)
    )
    demands = demand(load_config_text(text))
    found = estimate(demands, {"tcp": Cost("tcp", cpu=600e-6)}, MACHINE, workers=1)
    loop = next(p for p in found.pressures if p.resource == "loop CPU")
    assert loop.used == pytest.approx(2000 * 600e-6 / SATURATION)
    assert "--workers 2" in loop.advice
    # 2,000 new connections a second to one host and port: the ports run out first.
    assert found.bottleneck.resource == "local ports"
    assert found.bottleneck.used == pytest.approx(2000 / (28232 / 60))
    assert "tcp_tw_reuse" in found.bottleneck.advice
    reusing = estimate(
        demands,
        {"tcp": Cost("tcp", cpu=600e-6)},
        Machine(2, 1024, 28232, 1, 8 << 30),
        workers=2,
    )
    assert "local ports" not in {p.resource for p in reusing.pressures}


def test_a_config_without_checks_has_no_bottleneck_to_fear() -> None:
    demands = demand(
        load_config_text("services:\n  - {name: b, type: heartbeat, token: t0123456789abcdef}\n")
    )
    found = estimate(demands, {}, MACHINE)
    assert found.per_second == 0 and found.cores == 0
    assert found.headroom > 1 and not math.isnan(found.headroom)


def test_the_machine_is_read_from_proc(tmp_path: Path) -> None:
    (tmp_path / "sys/net/ipv4").mkdir(parents=True)
    (tmp_path / "sys/net/ipv4/ip_local_port_range").write_text("10000\t10999\n")
    (tmp_path / "sys/net/ipv4/tcp_tw_reuse").write_text("0\n")
    (tmp_path / "meminfo").write_text("MemTotal:       1024 kB\nMemFree: 1 kB\n")
    machine = read_machine(tmp_path)
    assert (machine.ports, machine.reuse_time_wait, machine.memory) == (1000, 0, 1 << 20)
    assert machine.cores >= 1 and machine.open_files > 0
    # Without the files: Linux's defaults.
    bare = read_machine(tmp_path / "missing")
    assert (bare.ports, bare.reuse_time_wait) == (28232, 2)


def test_capacity_refuses_a_config_it_cannot_calibrate(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("services:\n  - {name: m, type: smtp, host: 127.0.0.1, port: 25}\n")
    result = CliRunner().invoke(cli, ["capacity", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "cannot calibrate smtp checks" in result.output
    cfg.write_text("services:\n  - {name: b, type: heartbeat, token: t0123456789abcdef}\n")
    result = CliRunner().invoke(cli, ["capacity", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "no enabled service that runs checks" in result.output


@pytest.mark.slow
def test_capacity_measures_and_prints_the_limits(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        f'storage: {{url: "sqlite:///{tmp_path}/p.db"}}\n'
        "services:\n"
        + "".join(
            f"  - {{name: s{i}, type: tcp, host: 10.0.0.{i % 7}, port: 22, interval: 10s}}\n"
            for i in range(50)
        )
        + "  - {name: b, type: heartbeat, token: t0123456789abcdef}\n"
    )
    result = CliRunner().invoke(
        cli, ["capacity", "-c", str(cfg), "--seconds", "2s", "--workers", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["workers"] == 2
    assert report["per_second"] == pytest.approx(5.0)
    tcp = report["types"]["tcp"]
    assert tcp["services"] == 50 and tcp["cost"]["cpu"] > 0
    assert tcp["most_services"] > 50
    assert report["types"]["heartbeat"]["cost"] is None
    resources = {p["resource"] for p in report["pressures"]}
    assert resources >= {"loop CPU", "open files", "memory", "store writes"}
    assert report["bottleneck"] in resources
    assert report["outbox"] == {"notices": 0, "concurrency": 10, "drain": 0.0}
    text = CliRunner().invoke(cli, ["capacity", "-c", str(cfg), "--seconds", "1s"])
    assert text.exit_code == 0, text.output
    assert "first bottleneck:" in text.stdout and "µs/check" in text.stdout
    assert "outbox: an outage of every service at once queues 0 notices" in text.stdout


def _open_files(found: Estimate) -> Pressure:
    return next(p for p in found.pressures if p.resource == "open files")


def test_a_types_timeout_is_its_services_weighted_by_their_checks() -> None:
    demands = demand(
        load_config_text(
            "services:\n"
            "  - {name: a, type: tcp, host: 10.0.0.1, port: 22, interval: 1s, timeout: 2s}\n"
            "  - {name: b, type: tcp, host: 10.0.0.1, port: 22, interval: 10s, timeout: 20s}\n"
            "  - {name: h, type: http, url: 'http://10.0.0.2/'}\n"
        )
    )
    # a runs ten times as often as b: (1 x 2 + 0.1 x 20) / 1.1.
    assert demands["tcp"].timeout == pytest.approx(4 / 1.1)
    assert demands["http"].timeout == pytest.approx(10)  # the config's default


def test_the_open_files_worst_case_holds_each_check_until_its_own_timeout() -> None:
    text = (
        "services:\n"
        + "".join(
            f"  - {{name: t{i}, type: tcp, host: 10.0.0.1, port: 22, interval: 10s, timeout: 2s}}\n"
            for i in range(100)
        )
        + "".join(
            f"  - {{name: p{i}, type: plugin, command: [/bin/true], interval: 5s, timeout: 30s}}\n"
            for i in range(20)
        )
    )
    demands = demand(load_config_text(text))
    costs = {"tcp": Cost("tcp", cpu=100e-6), "plugin": Cost("plugin", cpu=1e-3)}
    base = 64  # the daemon's own files

    def used(workers: int = 1, concurrency: int = 1000) -> float:
        found = estimate(demands, costs, MACHINE, workers=workers, concurrency=concurrency)
        return _open_files(found).used

    # tcp: 10 checks/s hanging 2 s, a socket each; plugin: 4/s hanging 30 s, three pipes.
    assert used() == pytest.approx((10 * 2 + 4 * 30 * 3 + base) / MACHINE.open_files)
    # Two workers share the checks, each with its own scheduler.concurrency.
    assert used(workers=2) == pytest.approx((10 + 60 * 3 + base) / MACHINE.open_files)
    # Fewer slots than hanging checks: at worst the plugins hold them all...
    assert used(concurrency=50) == pytest.approx((50 * 3 + base) / MACHINE.open_files)
    # ...and the tcp checks what the 120 plugins leave.
    assert used(concurrency=130) == pytest.approx((120 * 3 + 10 + base) / MACHINE.open_files)


def test_a_live_cost_is_read_against_the_idle_daemon_and_says_what_it_rests_on() -> None:
    assert above_idle(0.1, 0.04, 30) == pytest.approx(0.002)
    assert above_idle(0.03, 0.04, 30) == 0  # an idle daemon that happened to take more
    assert above_idle(0.03, 0.0, 0) == 0
    bases = {
        "tcp": Basis(checks=200, failed=3, sampled=200, failure="connection refused"),
        "smtp": Basis(checks=ROUGH - 1, sampled=40),
        "ftp": Basis(checks=2, failed=2, sampled=2, failure="timed out"),
    }
    lines = caveats(bases)
    assert lines[0].startswith("EVERY ftp check failed (2 of 2: timed out): its cost is that")
    assert lines[1] == "tcp: 3 of 200 checks failed: connection refused"
    assert [line.split(":")[0] for line in lines[2:]] == ["ftp", "smtp"]
    assert all("rough" in line for line in lines[2:])
    assert not bases["tcp"].rough and not bases["tcp"].all_failed
    assert not Basis(0).all_failed


def test_a_live_sample_keeps_the_configs_intervals_and_tells_no_one() -> None:
    config = load_config_text(
        "notifications:\n"
        "  channels: {mail: {type: email, from: p@example.org, to: [o@example.org]}}\n"
        "acknowledgements: {listen: '127.0.0.1:2525', address: ack@example.org,"
        " authorized: ['@example.org']}\n"
        "defaults: {notify: [mail]}\n"
        "services:\n"
        "  - {name: up, type: tcp, host: 10.0.0.1, port: 22, interval: 500ms}\n"
        "  - {name: slow, type: tcp, host: 10.0.0.1, port: 22, interval: 1m, depends_on: [up]}\n"
    )
    assert sample(range(1000), 4) == [0, 250, 500, 750]
    assert sample(range(3), 4) == [0, 1, 2]
    live = live_services(config.services, 2.0)
    assert [(s.name, s.interval) for s in live] == [("up", 2.0), ("slow", 60.0)]
    assert all(s.notify is False and not s.depends_on for s in live)
    derived = derived_config(config, live, Path("/tmp/x.db"))
    assert not derived.notifications.enabled and not derived.notifications.channels
    assert derived.acknowledgements.listen is None and not derived.web.enabled
    assert derived.scheduler.workers == 1 and derived.storage.url == "sqlite:////tmp/x.db"
    # Renamed for the idle daemon and the copies: first due past half their interval.
    taken: set[str] = set()
    names = [idle_name("up", taken) for _ in range(50)]
    assert len(set(names)) == 50 and all(phase(name) >= 0.5 for name in names)


def _services(kind: str, count: int, port: int, interval: str) -> str:
    """``count`` services of ``kind`` to 127.0.0.1:``port``, as a config's lines."""
    return "".join(
        f"  - {{name: {kind}{i}, type: {kind}, host: 127.0.0.1, port: {port},"
        f" interval: {interval}}}\n"
        for i in range(count)
    )


def _live(cfg: Path, *args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["capacity", "-c", str(cfg), "--live", *args])
    return result, time.monotonic() - started


@pytest.mark.slow
def test_capacity_live_measures_every_type_on_its_own_targets(tmp_path: Path) -> None:
    tcp, smtp, interval = 30, 4, 1.0
    with CountingPorts(1) as target, MailSink() as sink:
        (port,) = target.ports
        cfg = tmp_path / "p.yaml"
        cfg.write_text(
            "services:\n"
            + _services("tcp", tcp, port, "1s")
            + _services("smtp", smtp, sink.port, "1s")
        )
        result, took = _live(cfg, "--seconds", "1s", "--json")
        connections, goodbyes = len(target.seen[port]), sink.quits
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["live"] is True and report["idle_cpu_per_second"] > 0
    for kind, services in (("tcp", tcp), ("smtp", smtp)):
        entry = report["types"][kind]
        assert entry["cost"]["cpu"] >= 0 and entry["cost"]["memory"] > 0
        assert entry["cost"]["duration"] > 0
        basis = entry["basis"]
        assert basis["checks"] > 0 and basis["sampled"] == services and basis["failed"] == 0
    # Each service was checked about once in the window, never more often than its
    # interval: the targets saw no more than that over the whole run.
    assert report["types"]["tcp"]["basis"]["checks"] <= connections
    assert connections <= tcp * (math.ceil(took / interval) + 1)
    assert goodbyes <= smtp * (math.ceil(took / interval) + 1)
    assert not sink.messages
    rough = [line for line in report["warnings"] if "rough" in line]
    assert [line.split(":")[0] for line in rough] == ["smtp"]


@pytest.mark.slow
def test_capacity_live_reports_a_type_whose_every_check_fails(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("services:\n" + _services("ftp", 3, refused_port(), "1s"))
    result, _ = _live(cfg, "--seconds", "1s")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cannot calibrate" not in result.output
    # Each service is due once a second, and measured for one: about once each.
    assert re.search(r"warning: EVERY ftp check failed \((\d) of \1: connection refused", out)
    assert re.search(r"warning: ftp: the cost rests on \d check\(s\), fewer than 20", out)
    assert "first bottleneck:" in out


@pytest.mark.slow
def test_capacity_live_warns_when_the_window_holds_few_checks(tmp_path: Path) -> None:
    with CountingPorts(1) as target:
        (port,) = target.ports
        cfg = tmp_path / "p.yaml"
        # Every 30 s, measured for a second: one service in thirty is due in the window.
        cfg.write_text("services:\n" + _services("tcp", 30, port, "30s"))
        result, took = _live(cfg, "--seconds", "1s", "--sample", "20", "--json")
        connections = len(target.seen[port])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    basis = report["types"]["tcp"]["basis"]
    assert basis["sampled"] == 20 and basis["rough"] is True
    assert basis["checks"] < ROUGH
    assert any(line.startswith("tcp: the cost rests on") for line in report["warnings"])
    assert connections <= 20 * (math.ceil(took / 30) + 1)


def test_open_files_bounded_by_the_concurrency_never_run_out() -> None:
    # 1,000 checks a second hanging 10 s would be 10,000 in flight, but a worker runs
    # at most 1,000 at once: 1,064 files of 20,000 stay 1,064 however the config grows.
    demands = demand(
        load_config_text(
            "services:\n"
            + "".join(
                f"  - {{name: t{i}, type: tcp, host: 10.0.0.1, port: 1, interval: 1s}}\n"
                for i in range(1000)
            )
        )
    )
    found = estimate(
        demands, {"tcp": Cost("tcp", cpu=100e-6)}, Machine(2, 20_000, 28232, 1, 8 << 30)
    )
    files = next(p for p in found.pressures if p.resource == "open files")
    assert files.used == pytest.approx(1064 / 20_000)
    assert math.isinf(files.growth)
    assert found.bottleneck.resource == "loop CPU"
    assert found.headroom == pytest.approx(0.85 / 0.1)


def test_store_writes_weigh_every_worker_against_sqlites_one_writer() -> None:
    demands = demand(load_config_text(CONFIG))
    costs = {k: Cost(k, cpu=100e-6) for k in ("tcp", "http")}
    alone = estimate(demands, costs, MACHINE, store_pace=1000.0)
    writes = next(p for p in alone.pressures if p.resource == "store writes")
    assert writes.used == pytest.approx(alone.per_second / 500)
    # The workers share the file's one writer: more workers, the same pressure.
    two = estimate(demands, costs, MACHINE, workers=2, store_pace=1000.0)
    assert next(p for p in two.pressures if p.resource == "store writes").used == writes.used
    assert "PostgreSQL" in writes.advice
    # Not measured (PostgreSQL): not weighed.
    assert "store writes" not in {p.resource for p in estimate(demands, costs, MACHINE).pressures}


def test_the_outbox_counts_what_an_outage_of_everything_would_send() -> None:
    config = load_config_text(
        "notifications:\n"
        "  channels:\n"
        "    mail: {type: email, host: 127.0.0.1, from: p@example.org, to: [o@example.org]}\n"
        "    hook: {type: webhook, url: 'http://127.0.0.1:9/'}\n"
        "    log: {type: log}\n"
        "  delivery: {concurrency: 4}\n"
        "services:\n"
        "  - {name: gw, type: tcp, host: 10.0.0.1, port: 22}\n"
        "  - {name: a, type: tcp, host: 10.0.0.2, port: 22, depends_on: [gw]}\n"
        "  - {name: b, type: tcp, host: 10.0.0.3, port: 22, depends_on: [gw]}\n"
        "  - {name: c, type: tcp, host: 10.0.0.4, port: 22, notify: [mail]}\n"
        "  - {name: d, type: tcp, host: 10.0.0.5, port: 22, notify: false}\n"
        "  - {name: e, type: tcp, host: 10.0.0.6, port: 22, enabled: false}\n"
    )
    box = outbox(config)
    # gw: mail and hook (log costs the outbox nothing); a and b wait for gw; c: mail.
    assert (box.notices, box.concurrency, box.drain) == (3, 4, 0.75)


async def test_sqlite_pace_is_measured_in_the_directory_given(tmp_path: Path) -> None:
    pace = await sqlite_pace(tmp_path, batch=100, seconds=0.05)
    assert pace > 0
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []  # its file is gone
