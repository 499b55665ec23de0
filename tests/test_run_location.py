"""A node's location reaches the cluster (issue 18): ``node.location`` in the config,
``pymon run --location NAME`` over it, and with ``--workers N`` on every worker, as
``GET /api/v1/nodes`` shows each node's ``location``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pymon.cli import cli
from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from tests.support.cli import PYMON
from tests.support.nodes import get, wait
from tests.support.servers import reserved_port

# What the workers are told, as pymon run's arguments.
LOCATION = ("--location", "ap-south.1")


def config_text(tmp_path: Path, web: str, node: str = "") -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{listen: "{web}"}}
cluster: {{heartbeat: 200ms, lease: 2s, shards: 4}}
reload: {{watch: false}}
{node}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {reserved_port()}, interval: 1h,
      locations: [eu-west, us-east]}}
"""


def locations_of(url: str) -> dict[str, str]:
    """Each node's location, by name, as ``GET /api/v1/nodes`` answers (empty while
    the node does not answer yet)."""
    try:
        nodes: list[dict[str, Any]] = get(f"{url}/api/v1/nodes")["nodes"]
    except OSError:
        return {}
    return {n["name"]: n["location"] for n in nodes}


async def test_the_config_s_node_location_is_the_node_s(tmp_path: Path) -> None:
    web = f"127.0.0.1:{reserved_port()}"
    config = load_config_text(config_text(tmp_path, web, "node: {location: eu-west}"))
    daemon = Daemon(config, node="n1")
    await daemon.start()
    try:
        answer = await asyncio.to_thread(get, f"http://{web}/api/v1/nodes")
        assert [(n["name"], n["location"]) for n in answer["nodes"]] == [("n1", "eu-west")]
    finally:
        await daemon.stop()


async def test_the_location_keyword_overrides_the_config_s(tmp_path: Path) -> None:
    web = f"127.0.0.1:{reserved_port()}"
    config = load_config_text(config_text(tmp_path, web, "node: {location: eu-west}"))
    daemon = Daemon(config, node="n1", location="us-east")
    await daemon.start()
    try:
        answer = await asyncio.to_thread(get, f"http://{web}/api/v1/nodes")
        assert [n["location"] for n in answer["nodes"]] == ["us-east"]
    finally:
        await daemon.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_pymon_run_location_reaches_every_worker(tmp_path: Path) -> None:
    web = f"127.0.0.1:{reserved_port()}"
    cfg = tmp_path / "p.yaml"
    cfg.write_text(config_text(tmp_path, web, "node: {location: eu-west}"))
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*PYMON, "run", "-c", str(cfg), *("--workers", "2", "--node", "box"), *LOCATION],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            want = {"box-w1": "ap-south.1", "box-w2": "ap-south.1"}
            wait(lambda: locations_of(f"http://{web}") == want, "both workers", log=log_path)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert "Traceback" not in log_path.read_text()


@pytest.mark.parametrize("name", ["eu west", "-eu", "x" * 65])
def test_a_bad_location_is_a_usage_error(tmp_path: Path, name: str) -> None:
    # Refused before any config is read or daemon started.
    result = CliRunner().invoke(cli, ["run", "-c", str(tmp_path / "none.yaml"), "--location", name])
    assert result.exit_code == 2
    assert "Invalid value for '--location'" in result.output
    assert "is not a location name" in result.output


def test_pymon_config_validate_counts_location_checks_apart(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(config_text(tmp_path, "127.0.0.1:8080"))
    result = CliRunner().invoke(cli, ["config", "validate", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{cfg}: ok (1 services, 2 location checks)\n"


def test_pymon_check_lists_only_configured_services(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(config_text(tmp_path, "127.0.0.1:8080"))
    result = CliRunner().invoke(cli, ["check", "-c", str(cfg), "nope"])
    assert result.exit_code == 2
    assert "(services: web)" in result.output


def test_pymon_check_runs_a_located_service_as_its_locations_judge_it(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cfg = tmp_path / "p.yaml"
        # Any connect time is a warning: only the location checks keep the thresholds.
        cfg.write_text(
            f"services:\n  - {{name: web, type: tcp, host: 127.0.0.1, port: {port},"
            ' locations: [eu, us], thresholds: {connect_ms: {warn: "0+"}}}\n'
        )
        result = CliRunner().invoke(cli, ["check", "-c", str(cfg), "web"])
        by_location = CliRunner().invoke(cli, ["check", "-c", str(cfg), "web@us"])
    assert (result.exit_code, by_location.exit_code) == (1, 1), result.output
    assert result.output.startswith("WARN - ")
