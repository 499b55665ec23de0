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
import itertools
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_or_skip
from tests.support.mail import MailSink
from tests.support.nodes import CountingPorts, Node, always_up, wait
from tests.support.postgres import PostgresServer
from tests.support.servers import refused_port

SERVICES, DOWN_EVERY = 60, 10


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module's own: the tests stop and start it."""
    with postgres_or_skip() as started:
        yield started


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


def write_config(
    tmp_path: Path, url: str, ports: list[int], sink: MailSink, interval: str = "1s"
) -> Path:
    """A service per port in ``ports`` (every tenth one instead down, on a refused
    port), checked every ``interval``, notices to ``sink``; the default cluster timing."""
    cfg = tmp_path / "p.yaml"
    down = refused_port()
    services = [
        f"  - {{name: s{n:03d}, type: tcp, host: 127.0.0.1, "
        f"port: {down if n % DOWN_EVERY == 0 else port}}}"
        for n, port in enumerate(ports)
    ]
    cfg.write_text(
        f"""
storage: {{url: "{url}", flush_interval: 200ms}}
defaults: {{interval: {interval}, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
reload: {{watch: false}}
notifications:
  renotify: 0
  delivery: {{backoff: 200ms, max_backoff: 1s}}
  channels:
    {sink.channel()}
services:
"""
        + "\n".join(services)
        + "\n"
    )
    return cfg


def every_seq_rises(db: Db, before: dict[str, int], count: int) -> bool:
    now = db.seqs()
    return len(now) == count and all(now[n] > before.get(n, 0) for n in now)


def overlaps(times: list[float], interval: float = 1.0) -> list[float]:
    """The times at which two runners of one service met at consecutive intervals.

    A service's phase is the same on every node, so two nodes running it at once meet
    at every interval: close pairs of runs (under 0.3 s apart) one interval after
    another. A handover gives one close pair at most (the old owner's last run started
    late, the new owner's first on time), and a service may be handed over several
    times in the scenario (a kill, the 4th node joining, leaving), so isolated close
    pairs are allowed; two within 2.5 intervals of each other are not.
    """
    close = [x for x, y in itertools.pairwise(times) if y - x < 0.3 * interval]
    return [y for x, y in itertools.pairwise(close) if y - x < 2.5 * interval]


def fair(owners: dict[str, int], nodes: int, shards: int = 256) -> bool:
    """Every one of ``nodes`` nodes holds its fair share, and nobody else holds any."""
    share = shards // nodes
    return len(owners) == nodes and all(share <= n <= share + 1 for n in owners.values())


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_three_nodes_kill_9_every_10s_for_2_minutes(tmp_path: Path, server: PostgresServer) -> None:
    """The issue's scenario: 3 nodes, 300 services at 1 s (some failing, mail to a
    sink), one node killed -9 every 10 s for 2 minutes and restarted each time, then
    the database restarted, a 4th node joining and one leaving."""
    url = server.create_database("cluster_kills")
    db = Db(server, "cluster_kills")
    rng = random.Random(15)
    total = 300
    down = total // DOWN_EVERY
    log_path = tmp_path / "nodes.log"
    with (
        CountingPorts(total) as targets,
        MailSink() as sink,
        log_path.open("w") as log,
    ):
        cfg = write_config(tmp_path, url, targets.ports, sink)
        nodes = [Node(name, cfg, log) for name in ("a", "b", "c")]
        try:
            for node in nodes:
                node.start()
            wait(lambda: fair(db.owners(), 3), "three fair shares", 60)
            wait(lambda: every_seq_rises(db, {}, total), "every service checked", 60)
            began = time.monotonic()
            marks: list[tuple[str, float]] = []
            seen = db.seqs()
            for kill in range(12):
                time.sleep(10)  # the scenario's rhythm, not a wait for a result
                victim = rng.choice(nodes)
                victim.signal(signal.SIGKILL)
                marks.append((f"kill {kill} {victim.name}", time.monotonic()))
                assert victim.proc is not None
                victim.proc.wait()
                victim.start()
                now = db.seqs()
                assert all(now[n] >= seen[n] for n in seen), "a state went back in time"
                seen = now
            wait(lambda: fair(db.owners(), 3), "three fair shares after the kills", 60)

            # The database restarts under the cluster: the nodes reconnect.
            before = db.seqs()
            marks.append(("database restart", time.monotonic()))
            server.halt()
            server.resume()
            wait(lambda: every_seq_rises(db, before, total), "checks after the restart", 60)

            # A 4th node gets its share within a few heartbeats; one leaving cleanly
            # hands its shards over at once.
            fourth = Node("d", cfg, log).start()
            marks.append(("d joins", time.monotonic()))
            nodes.append(fourth)
            wait(lambda: fair(db.owners(), 4), "four fair shares", 20)
            marks.append(("d leaves", time.monotonic()))
            fourth.signal(signal.SIGTERM)
            assert fourth.proc is not None and fourth.proc.wait(timeout=20) == 0
            assert "d" not in db.owners()
            wait(lambda: fair(db.owners(), 3), "three again", 20)
            ended = time.monotonic()
            wait(lambda: len(sink.messages) >= down, "a notice per failing service")
        finally:
            for node in nodes:
                node.stop()
        runs = {
            port: [t for t in times if began <= t <= ended] for port, times in targets.seen.items()
        }
    up = [p for n, p in enumerate(targets.ports) if n % DOWN_EVERY]
    twice = {p: [round(t - began, 1) for t in overlaps(runs[p])] for p in up}
    twice = {p: at for p, at in twice.items() if at}
    events = {what: round(t - began, 1) for what, t in marks}
    assert not twice, f"run by two nodes at once (port: seconds in): {twice}; events: {events}"
    # Checked all along: no gap longer than the lease and two intervals.
    gaps = [max(y - x for x, y in itertools.pairwise(runs[p])) for p in up]
    assert max(gaps) <= 10 + 2 * 1, f"a service went unchecked for {max(gaps):.1f}s"
    opened = db.rows("SELECT service, count(*) FROM incidents GROUP BY service")
    assert sorted(int(count) for _, count in opened) == [1] * down, "an incident opened twice"
    received = collections.Counter(str(m.message["X-Pymon-Notice"]) for m in sink.messages)
    ids = collections.Counter(str(m.message["Message-ID"]) for m in sink.messages)
    assert len(received) == down
    assert max(received.values()) == 1, f"a notice sent twice: {received}"
    assert max(ids.values()) == 1
    assert "Traceback" not in log_path.read_text()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_node_waits_for_a_database_that_does_not_answer_yet(
    tmp_path: Path, server: PostgresServer
) -> None:
    url = server.create_database("cluster_late")
    db = Db(server, "cluster_late")
    with always_up() as up, MailSink() as sink, (tmp_path / "node.log").open("w") as log:
        cfg = write_config(tmp_path, url, [up] * SERVICES, sink, interval="300ms")
        server.halt()
        node = Node("late", cfg, log)
        try:
            node.start()
            text = tmp_path / "node.log"
            wait(lambda: "checking nothing, trying again" in text.read_text(), "the retry")
            assert node.proc is not None and node.proc.poll() is None
            server.resume()
            wait(lambda: len(node.services()) == SERVICES, "the node to join")
            wait(lambda: every_seq_rises(db, {}, SERVICES), "every service checked")
            node.signal(signal.SIGTERM)
            assert node.proc.wait(timeout=20) == 0
        finally:
            node.stop()
            with contextlib.suppress(RuntimeError):
                server.resume()
