"""``pymon run --workers N``: a real supervisor and its workers on one SQLite file.

The workers are nodes ``<base>-w1`` .. ``<base>-wN`` of one cluster; the shards table
says who holds what, the nodes table which process each is. Lease times are short
(heartbeat 0.2 s, lease 2 s), as in tests/test_cluster_nodes.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from pymon.cli.supervisor import Backoff, exit_text, worker_count
from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from tests.support.cli import PYMON, pymon
from tests.support.nodes import SERVICES, always_up, get, owners, rows, seqs, wait, write_config
from tests.support.servers import free_port, reserved_port


@pytest.fixture
def up() -> Iterator[int]:
    with always_up() as port:
        yield port


def pids(db: Path) -> dict[str, int]:
    """The process of each worker that joined (nodes that left are gone from the table)."""
    return dict(rows(db, "SELECT name, pid FROM nodes"))


def healthy(address: str) -> bool:
    try:
        return get(f"http://{address}/healthz") is not None
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def supervise(cfg: Path, dashboard: str, log: IO[str]) -> subprocess.Popen[bytes]:
    """``pymon run --workers 2`` as node base ``box``, its output in ``log``."""
    return subprocess.Popen(
        [*PYMON, "run", "-c", str(cfg), "--workers", "2", "--node", "box", "--listen", dashboard],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_workers_share_restart_and_stop_together(tmp_path: Path, up: int) -> None:
    cfg, db = write_config(tmp_path, up)
    every = {f"s{n:02d}" for n in range(SERVICES)}
    dashboard = f"127.0.0.1:{reserved_port()}"
    split = {"box-w1": 8, "box-w2": 8}
    with (tmp_path / "workers.log").open("w") as log:
        supervisor = subprocess.Popen(
            [
                *PYMON,
                "run",
                "-c",
                str(cfg),
                "--workers",
                "2",
                "--node",
                "box",
                "--listen",
                dashboard,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            # A worker answers once its store is open (its tables made).
            wait(lambda: healthy(dashboard), "the dashboard to answer")
            wait(lambda: owners(db) == split, "both workers to hold half of the shards")
            first = pids(db)
            assert first.keys() == split.keys()

            before = seqs(db)
            os.kill(first["box-w2"], signal.SIGKILL)
            wait(
                lambda: pids(db).get("box-w2", first["box-w2"]) != first["box-w2"],
                "the supervisor to start box-w2 again",
            )
            wait(lambda: owners(db) == split, "the split again after the restart")
            wait(
                lambda: all(seqs(db).get(n, 0) > before.get(n, 0) for n in every),
                "every service checked after the restart",
            )
            assert not alive(first["box-w2"])
            assert healthy(dashboard)
            # Each result is in its service's hour bucket once, across the kill and
            # the handovers (both land in one transaction, so one read sees both).
            counted = rows(
                db,
                "SELECT r.service, r.n, b.n FROM"
                " (SELECT service, count(*) AS n FROM results GROUP BY service) r"
                " JOIN (SELECT service, sum(checks) AS n FROM rollup_buckets WHERE width = 3600"
                " GROUP BY service) b ON b.service = r.service",
            )
            assert {name for name, _, _ in counted} == every
            assert [(n, r, b) for n, r, b in counted if r != b] == []
            report = get(f"http://{dashboard}/api/v1/reports/uptime?since=1h")
            # Every tenth service is down (tests/support/nodes.py), the rest up.
            assert {r["service"]: r["uptime_pct"] for r in report["services"]} == {
                n: 0.0 if int(n[1:]) % 10 == 0 else 100.0 for n in every
            }

            supervisor.send_signal(signal.SIGHUP)
            wait(
                lambda: (tmp_path / "workers.log").read_text().count("reload (SIGHUP): ") >= 2,
                "both workers to reload",
                log=tmp_path / "workers.log",
            )

            last = pids(db)
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(timeout=30) == 0
            assert not [name for name, pid in last.items() if alive(pid)]
            assert owners(db) == {None: 16}
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait()
    text = (tmp_path / "workers.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "worker box-w2: killed by SIGKILL; starting it again" in text
    # Each worker reloaded once, and --listen is not a change that needs a restart.
    assert text.count("reload (SIGHUP): no service changed") == 2, text[-3000:]
    assert "needs a restart" not in text


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path, up: int) -> None:
    cfg, db = write_config(tmp_path, up)
    with (tmp_path / "workers.log").open("w") as log:
        dashboard = f"127.0.0.1:{reserved_port()}"
        supervisor = supervise(cfg, dashboard, log)
        try:
            wait(lambda: healthy(dashboard), "the dashboard to answer")
            wait(lambda: owners(db) == {"box-w1": 8, "box-w2": 8}, "both workers")
            workers = pids(db)
            supervisor.kill()
            supervisor.wait()
            wait(lambda: not any(alive(pid) for pid in workers.values()), "the workers to stop")
            # Each stopped cleanly: its shards handed over, itself marked stopped.
            assert owners(db) == {None: 16}
            assert rows(db, "SELECT count(*) FROM nodes WHERE stopped_at IS NULL") == [(0,)]
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait()


@pytest.mark.slow
@pytest.mark.parametrize("value", ["0", "x", "257"])
def test_a_bad_number_of_workers_is_a_usage_error(value: str) -> None:
    result = pymon("run", "--workers", value)
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "1 to 256, or auto" in result.stderr


def test_auto_is_one_worker_per_usable_core() -> None:
    assert worker_count("auto", 6) == 6
    assert worker_count("auto", None) == 1
    assert worker_count(3, 6) == 3


def test_the_backoff_doubles_to_its_cap_and_resets_after_a_steady_run() -> None:
    backoff = Backoff(first=0.5, cap=4.0, steady=60.0)
    assert [backoff.after(1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.after(60.0) == 0.5
    assert backoff.after(2.0) == 1.0
    with pytest.raises(ValueError, match="first <= cap"):
        Backoff(first=5.0, cap=1.0)


def test_an_exit_status_reads_as_a_status_or_a_signal() -> None:
    assert exit_text(3) == "exit status 3"
    assert exit_text(-9) == "killed by SIGKILL"
    assert exit_text(-200) == "killed by signal 200"


async def test_workers_share_the_dashboard_port_and_worker_1_alone_takes_acks(
    tmp_path: Path,
) -> None:
    text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{listen: "127.0.0.1:{reserved_port()}"}}
acknowledgements:
  listen: "127.0.0.1:{free_port()}"
  address: ack@example.org
  authorized: [oncall@example.org]
  confirm: false
reload: {{watch: false}}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {reserved_port()}, interval: 1h}}
"""
    first = Daemon(load_config_text(text), node="box-w1", worker=1)
    second = Daemon(load_config_text(text), node="box-w2", worker=2)
    await first.start()
    try:
        await second.start()
        try:
            assert first.web_port == second.web_port
            assert first.notifier.ack_server is not None
            assert second.notifier.ack_server is None
        finally:
            await second.stop()
    finally:
        await first.stop()
