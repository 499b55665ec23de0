"""``pymon run --workers N``: a real supervisor and its workers on one SQLite file.

The workers are nodes ``<base>-w1`` .. ``<base>-wN`` of one cluster; the shards table
says who holds what, the nodes table which process each is. Lease times are short
(heartbeat 0.2 s, lease 2 s), as in tests/test_cluster_nodes.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import PYMON, pymon
from tests.support.servers import reserved_port
from tests.test_cli import get
from tests.test_cluster_nodes import SERVICES, owners, rows, seqs, up, wait, write_config

__all__ = ["up"]  # the fixture, imported to be found here


def pids(db: Path) -> dict[str, int]:
    """The process of each worker that joined (nodes that left are gone from the table)."""
    return dict(rows(db, "SELECT name, pid FROM nodes"))


def healthy(address: str) -> bool:
    try:
        return get(f"http://{address}/healthz") is not None
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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


@pytest.mark.slow
@pytest.mark.parametrize("value", ["0", "x", "257"])
def test_a_bad_number_of_workers_is_a_usage_error(value: str) -> None:
    result = pymon("run", "--workers", value)
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "1 to 256, or auto" in result.stderr
