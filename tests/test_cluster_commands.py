"""Commands sent to any node reach the owner and are applied once: two real ``pymon
run`` nodes on one SQLite file; an acknowledgement sent to the node that does not
run the service, and one sent while the owner hangs.

The lease is long (30 s) so that the hanging owner's shards stay its own for the
length of the test: the command can only time out, not fail over.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from pymon.config.load import load_config
from pymon.engine.cluster import shard_map
from tests.support.nodes import Node, call, owners, rows, wait
from tests.support.servers import refused_port

SERVICES = [f"d{n:02d}" for n in range(16)]
SHARDS = 16


def write_config(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "p.db"
    cfg = tmp_path / "p.yaml"
    down = refused_port()
    services = [f"  - {{name: {n}, type: tcp, host: 127.0.0.1, port: {down}}}" for n in SERVICES]
    cfg.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}
defaults: {{interval: 200ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
cluster: {{heartbeat: 200ms, lease: 30s, shards: {SHARDS}}}
reload: {{watch: false}}
services:
"""
        + "\n".join(services)
        + "\n"
    )
    return cfg, db


def owned_by(node: str, cfg: Path, db: Path) -> str:
    """A service whose shard ``node`` holds, as the shards table says."""
    shard_of = shard_map(load_config(cfg).services, SHARDS)
    for name in SERVICES:
        [(owner,)] = rows(db, "SELECT owner FROM shards WHERE shard = ?", shard_of[name])
        if owner == node:
            return name
    raise AssertionError(f"{node} holds no shard of {SERVICES}")


def has_incident(node: Node, name: str) -> bool:
    status, answer = call("GET", f"{node.url}/api/v1/services/{name}", timeout=5)
    return status == 200 and answer.get("incident") is not None


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_ack_sent_to_any_node_reaches_the_owner_once(tmp_path: Path) -> None:
    cfg, db = write_config(tmp_path)
    with (tmp_path / "nodes.log").open("w") as log:
        a, b = Node("a", cfg, log), Node("b", cfg, log)
        try:
            a.start()
            wait(lambda: a.services() == set(SERVICES), "node a alone to run every service")
            b.start()
            wait(lambda: owners(db) == {"a": 8, "b": 8}, "an even split")
            name = owned_by("a", cfg, db)
            wait(lambda: name in a.services() and has_incident(a, name), f"{name}'s incident")
            assert name not in b.services()

            url = f"/api/v1/services/{name}/ack"
            status, answer = call("POST", b.url + url, {"comment": "on it"})
            assert status == 200, answer
            assert answer["incident"]["ack"]["comment"] == "on it"
            status, shown = call("GET", f"{a.url}/api/v1/services/{name}")
            assert status == 200 and shown["acknowledged"] is True
            assert shown["incident"]["ack"]["comment"] == "on it"

            # A second ack answers as a local second ack does: acknowledged anew.
            again, answer = call("POST", b.url + url, {"comment": "still on it"})
            local, _ = call("POST", a.url + url, {"comment": "here too"})
            assert again == local == 200, answer
            assert answer["incident"]["ack"]["comment"] == "still on it"

            # Each command was taken by the owner and answered, once.
            done = rows(
                db,
                "SELECT origin, taken_by, done_at IS NOT NULL, error FROM commands "
                "WHERE service = ? ORDER BY created_at",
                name,
            )
            assert done == [("b", "a", 1, None), ("b", "a", 1, None)]
            acks = rows(
                db,
                "SELECT message FROM events WHERE service = ? AND kind = 'acknowledged' "
                "ORDER BY id",
                name,
            )
            assert [m for (m,) in acks] == [
                "acknowledged by api: on it",
                "acknowledged by api: still on it",
                "acknowledged by api: here too",
            ]

            # Taking it back and running the check go the same way.
            status, answer = call("DELETE", b.url + url + "?author=bob")
            assert status == 200 and answer["incident"]["ack"] is None, answer
            status, shown = call("GET", f"{a.url}/api/v1/services/{name}")
            assert shown["acknowledged"] is False
            status, answer = call("DELETE", b.url + url)
            assert status == 409 and "not acknowledged" in answer["error"], answer
            status, answer = call("POST", f"{b.url}/api/v1/services/{name}/run")
            assert status == 202, answer
            kinds = rows(
                db, "SELECT kind, taken_by, error_kind FROM commands WHERE service = ?", name
            )
            assert kinds == [
                ("ack", "a", None),
                ("ack", "a", None),
                ("unack", "a", None),
                ("unack", "a", "refused"),
                ("run_now", "a", None),
            ]

            # The owner hangs (paused: its lease runs on, its process is there, so nobody
            # takes its shards over): the command fails cleanly in time.
            a.signal(signal.SIGSTOP)
            began = time.monotonic()
            status, answer = call("POST", b.url + url, {"comment": "anyone?"})
            took = time.monotonic() - began
            assert status == 409, answer
            assert "did not answer in time" in answer["error"]
            assert 9 <= took < 15
            [(error_kind,)] = rows(
                db, "SELECT error_kind FROM commands WHERE service = ? AND taken_by IS NULL", name
            )
            assert error_kind == "expired"
        finally:
            a.stop()
            b.stop()
    text = (tmp_path / "nodes.log").read_text()
    assert "Traceback" not in text, text[-3000:]
