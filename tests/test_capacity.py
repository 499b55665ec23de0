"""``pymon capacity``: the arithmetic on made-up costs and machines, the machine's
readings from a /proc of the test's own, and the command on a small config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from pymon.capacity import SATURATION, Cost, Machine, demand, estimate, read_machine
from pymon.cli import cli
from pymon.config.load import load_config_text

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
    assert {p["resource"] for p in report["pressures"]} >= {"loop CPU", "open files", "memory"}
    assert report["bottleneck"] in {p["resource"] for p in report["pressures"]}
    text = CliRunner().invoke(cli, ["capacity", "-c", str(cfg), "--seconds", "1s"])
    assert text.exit_code == 0, text.output
    assert "first bottleneck:" in text.stdout and "µs/check" in text.stdout
