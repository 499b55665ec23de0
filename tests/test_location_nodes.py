"""Locations on a real network (issue 18): real ``pymon run`` nodes, each in a network
namespace of the test's own (tests/support/netns.py), one target on the host.

Cutting a namespace's route to the target is what an outage seen from one place is:
the host, its target and the other namespaces are untouched. The nodes share one
SQLite file (a namespace isolates the network, not the files); the test reads each
node's API over its veth from the host.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.locations import LOCATIONS, node_in, write_config
from tests.support.mail import MailSink, ReceivedMail
from tests.support.netns import Network, cut, need_netns, network, restore
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
        a = node_in(first, cfg, log)
        b = node_in(second, other_cfg, log)
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


def _text(mail: ReceivedMail) -> str:
    """A notice's subject and plain-text body."""
    body = mail.message.get_body(preferencelist=("plain",))
    content = "" if body is None else str(body.get_content())
    return f"{mail.message['Subject']}\n{content}"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_three_locations_decide_by_quorum_on_a_real_network(
    tmp_path: Path, net: Network, target: int
) -> None:
    db, cfg, log_path = tmp_path / "p.db", tmp_path / "p.yaml", tmp_path / "nodes.log"
    with MailSink(host=net.host) as sink, log_path.open("w") as log:
        write_config(cfg, db, net, target, sink, quorum=2)
        nodes = {
            loc: node_in(ns, cfg, log, loc)
            for loc, ns in zip(LOCATIONS, net.namespaces, strict=True)
        }
        east, west = net.namespaces[0], net.namespaces[1]
        with contextlib.ExitStack() as stack:
            for node in nodes.values():
                stack.callback(node.stop)
                node.start()
            ask = nodes["north"]

            def web() -> dict[str, Any]:
                return _detail(ask, "web")

            def until(what: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
                seen: dict[str, Any] = {}

                def probe() -> bool:
                    nonlocal seen
                    seen = web()
                    return bool(seen) and predicate(seen)

                try:
                    wait(probe, what, 60, log=log_path)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\nlast answer: {seen}") from None
                return seen

            def located(view: dict[str, Any]) -> dict[str, str | None]:
                return {loc: r.get("status") for loc, r in view.get("locations", {}).items()}

            every_ok = dict.fromkeys(LOCATIONS, "ok")
            until("every location ok", lambda v: v["status"] == "ok" and located(v) == every_ok)
            # Starting is no outage: until its locations first report, the service
            # has no news to send.
            assert not sink.messages, [_text(m)[:400] for m in sink.messages]

            # One location cut: ok, partial, that location named, no notice.
            cut(east, net.target)
            view = until(
                "east to see the outage alone",
                lambda v: located(v)["east"] == "failed" and v["partial"],
            )
            assert view["status"] == "ok"
            assert view["partial_locations"] == ["east"]
            assert "no route to host" in view["locations"]["east"]["message"].lower()
            checked = view["locations"]["east"]["last_check"]
            # East confirms the outage again, twice: still partial, still no notice.
            view = until(
                "east to check twice more",
                lambda v: (v["locations"]["east"]["last_check"] or 0) >= checked + 2,
            )
            assert view["status"] == "ok" and view["partial_locations"] == ["east"]
            assert not sink.messages, [_text(m)[:400] for m in sink.messages]

            # Two cut: the quorum agrees, one problem notice naming both.
            cut(west, net.target)
            view = until("the quorum to agree", lambda v: v["status"] == "failed")
            assert view["partial"] is False
            (problem,) = sink.wait_for(1, timeout=30)
            assert problem.message["X-Pymon-Service"].endswith("/web")
            assert problem.message["X-Pymon-Status"] == "FAILED"
            text = _text(problem)
            assert "east" in text and "west" in text, text
            assert "down from east, west" in text, text

            # Restored: one recovery, and nothing else.
            restore(east, net.target)
            restore(west, net.target)
            until(
                "every location ok again", lambda v: v["status"] == "ok" and located(v) == every_ok
            )
            mails = sink.wait_for(2, timeout=30)
            assert [m.message["X-Pymon-Status"] for m in mails] == ["FAILED", "OK"]

            # kill -9 north's node: its results age out, east and west decide alone.
            ask = nodes["east"]
            nodes["north"].signal(signal.SIGKILL)
            assert nodes["north"].proc is not None
            nodes["north"].proc.wait()
            view = until("north to age out", lambda v: v["locations"]["north"]["present"] is False)
            assert view["status"] == "ok" and view["partial"] is False
            assert "old" in view["locations"]["north"]["absent_reason"], view["locations"]
            cut(east, net.target)
            cut(west, net.target)
            view = until("east and west to agree without north", lambda v: v["status"] == "failed")
            restore(east, net.target)
            restore(west, net.target)
            until("east and west ok again", lambda v: v["status"] == "ok")
            assert [m.message["X-Pymon-Status"] for m in sink.wait_for(4, timeout=30)] == [
                "FAILED",
                "OK",
                "FAILED",
                "OK",
            ]

            # quorum 3 with north gone: unknown, with the reason.
            write_config(cfg, db, net, target, sink, quorum=3)
            for loc in ("east", "west"):
                nodes[loc].signal(signal.SIGHUP)
            view = until("unknown without north", lambda v: v["status"] == "unknown")
            assert "north" in view["message"], view["message"]
            assert "2 of 3 locations reporting, quorum 3" in view["message"], view["message"]
