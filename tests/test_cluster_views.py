"""Every node of a cluster shows the whole cluster: two real ``pymon run`` nodes on
one SQLite file each list every service with the node that runs it (as the shards
table says), both nodes alive with all the shards between them, in the API, in
``/metrics`` and in ``pymon nodes``."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pymon.engine.cluster import shard_of
from tests.support.cli import pymon
from tests.support.nodes import SERVICES, Node, always_up, get, owners, rows, wait, write_config

SHARDS = 16
EVERY = {f"s{n:02d}" for n in range(SERVICES)}


@pytest.fixture
def up() -> Iterator[int]:
    with always_up() as port:
        yield port


def runs(db: Path) -> dict[str, str | None]:
    """The node running each service, as the shards table says."""
    holder = dict(rows(db, "SELECT shard, owner FROM shards"))
    return {name: holder[shard_of(name, SHARDS)] for name in EVERY}


def shown(node: Node) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in node.listed()}


def hello(node: Node) -> dict[str, Any]:
    """The live stream's first frame on ``node``."""
    with urllib.request.urlopen(f"{node.url}/api/v1/stream", timeout=5) as stream:
        for line in stream:
            if line.startswith(b"data: "):
                frame: dict[str, Any] = json.loads(line[len(b"data: ") :])
                return frame
    raise AssertionError("the stream ended before its hello")


def shows_the_cluster(node: Node, db: Path) -> bool:
    """Every service listed, checked (its owner wrote a state), with its owner."""
    listed, expected = shown(node), runs(db)
    return (
        listed.keys() == EVERY
        and all(s["status"] != "unknown" for s in listed.values())
        and {n: s["node"] for n, s in listed.items()} == expected
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_every_node_shows_every_service_and_node(tmp_path: Path, up: int) -> None:
    cfg, db = write_config(tmp_path, up)
    with (tmp_path / "nodes.log").open("w") as log:
        north, south = Node("north", cfg, log), Node("south", cfg, log)
        try:
            north.start()
            wait(lambda: north.services() == EVERY, "north alone to run every service")
            south.start()
            wait(lambda: owners(db) == {"north": 8, "south": 8}, "an even split")
            for node in (north, south):
                wait(partial(shows_the_cluster, node, db), f"{node.name} to show every service")
                # A service down is failed wherever it is read, whoever runs it.
                assert shown(node)["s00"]["status"] == "failed"
                assert {s["node"] for s in node.listed()} == {"north", "south"}

                answer = get(f"{node.url}/api/v1/nodes")["nodes"]
                assert [n["name"] for n in answer] == ["north", "south"]
                assert all(n["alive"] for n in answer)
                assert sum(n["shards"] for n in answer) == SHARDS
                assert all(n["heartbeat_age"] < 2 for n in answer)
                assert len({n["config_checksum"] for n in answer}) == 1

                with urllib.request.urlopen(f"{node.url}/metrics", timeout=2) as resp:
                    metrics = resp.read().decode()
                assert 'pymon_node_up{node="north"} 1.0' in metrics
                assert 'pymon_node_up{node="south"} 1.0' in metrics

                printed = pymon("nodes", "--url", node.url)
                assert printed.returncode == 0, printed.stderr
                lines = printed.stdout.splitlines()
                for name in ("north", "south"):
                    assert any(line.split()[:2] == [name, "alive"] for line in lines), lines
                assert "2 nodes: 2 alive, 16 shards held" in printed.stdout

                assert hello(node)["services"] == SERVICES

            # A clean stop: north runs everything, and says south is gone.
            south.signal(signal.SIGTERM)
            assert south.proc is not None and south.proc.wait(timeout=20) == 0
            wait(lambda: north.services() == EVERY, "north to run every service")
            # What north read of the store may be a second old: wait for the next read.
            wait(
                lambda: (
                    [
                        (n["name"], n["alive"], n["shards"])
                        for n in get(f"{north.url}/api/v1/nodes")["nodes"]
                    ]
                    == [("north", True, SHARDS), ("south", False, 0)]
                ),
                "north to see south gone",
            )
        finally:
            north.stop()
            south.stop()
    text = (tmp_path / "nodes.log").read_text()
    assert "Traceback" not in text, text[-3000:]
