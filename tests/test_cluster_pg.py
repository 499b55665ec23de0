"""Three real ``pymon run`` nodes on a real PostgreSQL: kill -9 one node after another
(each restarted), restart the database under them, and count what reached people.

Invariants: every service keeps being checked; each permanently failing service opened
exactly one incident and its problem notice reached the mail sink exactly once; no
state went back in time. And a node started while the database is down waits,
checking nothing, and joins once it answers.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need
from tests.support.mail import MailSink
from tests.support.nodes import Node, always_up, wait
from tests.support.postgres import PostgresServer, PostgresUnavailable
from tests.support.servers import refused_port

SERVICES, DOWN_EVERY = 60, 10


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module's own: the tests stop and start it."""
    try:
        started = PostgresServer.start()
    except PostgresUnavailable as exc:
        need(False, str(exc))
        raise
    try:
        yield started
    finally:
        started.stop()


class Db:
    """The cluster's tables as psql reads them, behind pymon's back."""

    def __init__(self, server: PostgresServer, name: str) -> None:
        self._server, self._name = server, name

    def rows(self, sql: str) -> list[list[str]]:
        """The rows of ``sql``; none while the nodes have not made the tables yet."""
        try:
            text = self._server.psql(sql, database=self._name)
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                return []
            raise
        return [line.split("|") for line in text.splitlines() if line]

    def owners(self) -> dict[str, int]:
        return dict(collections.Counter(r[0] for r in self.rows("SELECT owner FROM shards")))

    def seqs(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self.rows("SELECT name, seq FROM service_state")}


def write_config(tmp_path: Path, url: str, up: int, sink: MailSink) -> Path:
    cfg = tmp_path / "p.yaml"
    down = refused_port()
    services = [
        f"  - {{name: s{n:02d}, type: tcp, host: 127.0.0.1, "
        f"port: {down if n % DOWN_EVERY == 0 else up}}}"
        for n in range(SERVICES)
    ]
    cfg.write_text(
        f"""
storage: {{url: "{url}", flush_interval: 100ms}}
defaults: {{interval: 300ms, timeout: 1s, flap_guard: {{failed: 2}}}}
cluster: {{heartbeat: 200ms, lease: 2s, shards: 32}}
reload: {{watch: false}}
notifications:
  renotify: 0
  delivery: {{backoff: 200ms, max_backoff: 1s}}
  channels:
    mail: {{type: email, host: 127.0.0.1, port: {sink.port}, tls: none,
           from: pymon@example.org, to: [ops@example.org]}}
services:
"""
        + "\n".join(services)
        + "\n"
    )
    return cfg


def every_seq_rises(db: Db, before: dict[str, int]) -> bool:
    now = db.seqs()
    return len(now) == SERVICES and all(now[n] > before.get(n, 0) for n in now)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_three_nodes_survive_kills_and_a_database_restart(
    tmp_path: Path, server: PostgresServer
) -> None:
    url = server.create_database("cluster_kills")
    db = Db(server, "cluster_kills")
    rng = random.Random(15)
    with always_up() as up, MailSink() as sink, (tmp_path / "nodes.log").open("w") as log:
        cfg = write_config(tmp_path, url, up, sink)
        nodes = [Node(name, cfg, log) for name in ("a", "b", "c")]
        try:
            for node in nodes:
                node.start()
            wait(lambda: sorted(db.owners().values()) == [10, 11, 11], "three fair shares")
            wait(lambda: every_seq_rises(db, {}), "every service checked")
            for round_ in range(6):
                victim = rng.choice(nodes)
                before = db.seqs()
                victim.signal(signal.SIGKILL)
                assert victim.proc is not None
                victim.proc.wait()
                wait(
                    functools.partial(every_seq_rises, db, before),
                    f"checks go on after kill {round_}",
                )
                after = db.seqs()
                assert all(after[n] >= before[n] for n in before), "a state went back"
                victim.start()
                wait(lambda: len(db.owners()) == 3 and None not in db.owners(), "three owners")
            # The database restarts under the cluster: the nodes reconnect.
            before = db.seqs()
            server.halt()
            server.resume()
            wait(lambda: every_seq_rises(db, before), "checks go on after the restart", 60)
            down = SERVICES // DOWN_EVERY
            wait(lambda: len(sink.messages) >= down, "a notice per failing service")
        finally:
            for node in nodes:
                node.stop()
    opened = db.rows("SELECT service, count(*) FROM incidents GROUP BY service")
    assert sorted(int(count) for _, count in opened) == [1] * down, "an incident opened twice"
    received = collections.Counter(str(m.message["X-Pymon-Notice"]) for m in sink.messages)
    assert len(received) == down
    assert max(received.values()) == 1, f"a notice sent twice: {received}"
    assert "Traceback" not in (tmp_path / "nodes.log").read_text()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_node_waits_for_a_database_that_does_not_answer_yet(
    tmp_path: Path, server: PostgresServer
) -> None:
    url = server.create_database("cluster_late")
    db = Db(server, "cluster_late")
    with always_up() as up, MailSink() as sink, (tmp_path / "node.log").open("w") as log:
        cfg = write_config(tmp_path, url, up, sink)
        server.halt()
        node = Node("late", cfg, log)
        try:
            node.start()
            text = tmp_path / "node.log"
            wait(lambda: "checking nothing, trying again" in text.read_text(), "the retry")
            assert node.proc is not None and node.proc.poll() is None
            server.resume()
            wait(lambda: len(node.services()) == SERVICES, "the node to join")
            wait(lambda: every_seq_rises(db, {}), "every service checked")
            node.signal(signal.SIGTERM)
            assert node.proc.wait(timeout=20) == 0
        finally:
            node.stop()
            with contextlib.suppress(RuntimeError):
                server.resume()
