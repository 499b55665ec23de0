"""Several real ``pymon run`` nodes on one database: one owner per service, handover on
a clean stop, failover after kill -9, and fencing of a node paused past its lease.

Each node's API lists the services it runs (from memory); the shards table says who
holds what. Lease times are short here (heartbeat 0.2 s, lease 2 s) so the suite
stays quick; the defaults are 2 s and 10 s.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import Node, accepting_port, owners, rows, wait
from tests.support.servers import refused_port

SERVICES = 40


@pytest.fixture
def up() -> Iterator[int]:
    with accepting_port() as port:
        yield port


def write_config(tmp_path: Path, up_port: int) -> tuple[Path, Path]:
    db = tmp_path / "p.db"
    cfg = tmp_path / "p.yaml"
    down = refused_port()
    services = [
        f"  - {{name: s{n:02d}, type: tcp, host: 127.0.0.1, "
        f"port: {down if n % 10 == 0 else up_port}}}"
        for n in range(SERVICES)
    ]
    cfg.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}
defaults: {{interval: 200ms, timeout: 1s}}
cluster: {{heartbeat: 200ms, lease: 2s, shards: 16}}
reload: {{watch: false}}
services:
"""
        + "\n".join(services)
        + "\n"
    )
    return cfg, db


def seqs(db: Path) -> dict[str, int]:
    return dict(rows(db, "SELECT name, seq FROM service_state"))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_nodes_share_hand_over_fail_over_and_fence(tmp_path: Path, up: int) -> None:
    cfg, db = write_config(tmp_path, up)
    every = {f"s{n:02d}" for n in range(SERVICES)}
    with (tmp_path / "nodes.log").open("w") as log:
        a, b = Node("a", cfg, log), Node("b", cfg, log)
        try:
            a.start()
            wait(lambda: a.services() == every, "node a alone to run every service")
            b.start()
            # b joins: a gives up half of the shards, b takes them; one owner each.
            wait(lambda: owners(db) == {"a": 8, "b": 8}, "an even split")
            wait(lambda: a.services() | b.services() == every, "every service running")
            assert not a.services() & b.services()

            # A clean stop hands over at once: nothing of b's is left to lapse.
            before = seqs(db)
            b.signal(signal.SIGTERM)
            assert b.proc is not None and b.proc.wait(timeout=20) == 0
            assert "b" not in owners(db)
            wait(lambda: a.services() == every, "a to take b's services")
            wait(
                lambda: all(seqs(db).get(n, 0) > before.get(n, 0) for n in every),
                "every service checked again",
            )
            now = seqs(db)
            assert all(now[n] >= before.get(n, 0) for n in every), "a state went back"

            # kill -9: the lease lapses, the other node takes over from the store.
            b.start()
            wait(lambda: owners(db) == {"a": 8, "b": 8}, "the split again")
            a.signal(signal.SIGKILL)
            assert a.proc is not None
            a.proc.wait()
            killed = seqs(db)
            wait(lambda: b.services() == every, "b to take over after the lease")
            wait(
                lambda: all(seqs(db).get(n, 0) > killed.get(n, 0) for n in every),
                "every service checked again after the failover",
            )

            # A node paused past its lease writes nothing for the shards it lost.
            a.start()
            wait(lambda: owners(db) == {"a": 8, "b": 8}, "the split after a restart")
            b.signal(signal.SIGSTOP)
            wait(lambda: owners(db) == {"a": 16}, "a to take the paused node's shards", 20)
            taken = seqs(db)
            b.signal(signal.SIGCONT)
            wait(lambda: owners(db) == {"a": 8, "b": 8}, "b back with a fair share")
            wait(lambda: a.services() | b.services() == every, "every service running")
            assert not a.services() & b.services()
            after = seqs(db)
            assert all(after[n] >= taken[n] for n in every), "a fenced write went through"
        finally:
            a.stop()
            b.stop()
    text = (tmp_path / "nodes.log").read_text()
    assert "Traceback" not in text, text[-3000:]
