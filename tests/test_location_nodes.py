"""Locations on a real network (issue 18): real ``pymon run`` nodes, each in a network
namespace of the test's own (tests/support/netns.py), one target on the host.

Cutting a namespace's route to the target is what an outage seen from one place is:
the host, its target and the other namespaces are untouched. The nodes share one
SQLite file (a namespace isolates the network, not the files); the test reads each
node's API over its veth from the host.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import Namespace, Network, cut, exec_argv, need_netns, network, restore
from tests.support.nodes import Node, always_up, get, wait


@pytest.fixture
def net() -> Iterator[Network]:
    """Three namespaces joined to the host (skipped without root and iproute2)."""
    need_netns()
    with network(3) as made:
        yield made


@pytest.fixture
def target(net: Network) -> Iterator[int]:
    """The port of a TCP server on the host's target address: up unless cut."""
    with always_up(net.target) as port:
        yield port


def _node(name: str, ns: Namespace, cfg: Path, log: Any, *args: str) -> Node:
    """A ``pymon run`` node inside ``ns``, its web UI on the namespace's address."""
    return Node(name, cfg, log, host=ns.address, wrap=functools.partial(exec_argv, ns), args=args)


def _detail(node: Node, service: str) -> dict[str, Any]:
    """``GET /api/v1/services/NAME`` from ``node``; empty while it does not answer."""
    try:
        answer: dict[str, Any] = get(f"{node.url}/api/v1/services/{service}")
    except OSError:
        return {}
    return answer


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_cut_route_fails_the_check_of_that_namespace_alone(
    tmp_path: Path, net: Network, target: int
) -> None:
    # The harness itself, with plain services: a node in a namespace sees the target
    # go when its own route is cut (and come back when restored), while a node in
    # another namespace still reaches it.
    db, cfg = tmp_path / "p.db", tmp_path / "p.yaml"
    services = "\n".join(
        f"  - {{name: t{k}, type: tcp, host: {net.target}, port: {target}}}" for k in range(2)
    )
    cfg.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}
defaults: {{interval: 300ms, timeout: 1s, flap_guard: {{ok: 1, failed: 1}}}}
reload: {{watch: false}}
services:
{services}
"""
    )
    first, second = net.namespaces[0], net.namespaces[1]
    log_path = tmp_path / "nodes.log"
    with log_path.open("w") as log:
        # Two single nodes, each on a database of its own: each checks both services.
        other_cfg = tmp_path / "q.yaml"
        other_cfg.write_text(cfg.read_text().replace(str(db), str(tmp_path / "q.db")))
        a = _node("a", first, cfg, log)
        b = _node("b", second, other_cfg, log)
        with contextlib.ExitStack() as stack:
            for node in (a, b):
                stack.callback(node.stop)
                node.start()

            def status(node: Node) -> str | None:
                return _detail(node, "t0").get("status")

            wait(lambda: status(a) == status(b) == "ok", "t0 ok on both nodes", log=log_path)
            cut(first, net.target)
            wait(lambda: status(a) == "failed", "t0 failed from the cut namespace", log=log_path)
            assert "no route to host" in _detail(a, "t0")["message"].lower()
            assert status(b) == "ok"
            restore(first, net.target)
            wait(lambda: status(a) == "ok", "t0 ok again once restored", log=log_path)
