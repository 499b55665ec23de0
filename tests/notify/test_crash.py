"""kill -9 between a state change and its delivery: after a restart, exactly one notice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.mail import MailSink, ReceivedMail
from tests.support.servers import refused_port, reserved_port
from tests.test_cli import get, start, wait_api


def deliveries(db: Path) -> list[tuple[int, float | None]]:
    """(attempts, delivered_at) of every delivery; empty before the schema exists."""
    try:
        with sqlite3.connect(db, timeout=5) as con:
            rows = con.execute("SELECT attempts, delivered_at FROM deliveries").fetchall()
    except sqlite3.OperationalError:
        return []
    return [(int(a), d) for a, d in rows]


def wait(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def write_config(cfg: Path, db: Path, web: int, sink: MailSink) -> None:
    """One service that is down from its first check, one notice for it, one channel."""
    cfg.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:{web}"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1}}}}
notifications:
  cutoff: 1
  delivery: {{backoff: 200ms, max_backoff: 500ms}}
  channels:
    {sink.channel()}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
"""
    )


def restart_until_delivered(cfg: Path, db: Path, api: str) -> None:
    """Start pymon, wait until every delivery is marked done and a few more checks ran,
    stop it."""
    proc = start(cfg)
    try:
        wait_api(api, proc)
        wait(lambda: all(d is not None for _, d in deliveries(db)), "the delivery")
        seq = get(api)["seq"]
        wait(lambda: get(api)["seq"] >= seq + 5, "more checks")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_kill_9_before_delivery_then_restart_sends_exactly_one(tmp_path: Path) -> None:
    sink = MailSink()  # not serving yet: every attempt is refused
    web = reserved_port()
    db = tmp_path / "p.db"
    cfg = tmp_path / "p.yaml"
    write_config(cfg, db, web, sink)
    api = f"http://127.0.0.1:{web}/api/v1/services/down"
    proc = start(cfg)
    try:
        wait_api(api, proc)
        wait(lambda: any(attempts >= 1 for attempts, _ in deliveries(db)), "a failed attempt")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    [(_, delivered)] = deliveries(db)
    assert delivered is None

    with sink:
        restart_until_delivered(cfg, db, api)
        # Once more: a delivered notice is never sent again.
        proc = start(cfg)
        try:
            wait_api(api, proc)
            seq = get(api)["seq"]
            wait(lambda: get(api)["seq"] >= seq + 5, "more checks")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        assert len(sink.messages) == 1
        assert sink.messages[0].message["X-Pymon-Status"] == "FAILED"


@pytest.mark.slow
def test_kill_9_after_the_250_with_the_store_locked_sends_exactly_one(tmp_path: Path) -> None:
    # The server took the mail, but the delivered mark cannot be committed: another
    # process holds SQLite's write lock (a backup, a batch flush). A kill -9 now must
    # not send the mail again at the next start: the journal has it.
    web = reserved_port()
    db = tmp_path / "p.db"
    cfg = tmp_path / "p.yaml"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=30)
    locked: list[bool] = []

    def lock_the_store(_: ReceivedMail) -> None:
        if not locked:
            holder.execute("BEGIN IMMEDIATE")
            locked.append(True)

    with MailSink() as sink:
        sink.on_message = lock_the_store
        write_config(cfg, db, web, sink)
        api = f"http://127.0.0.1:{web}/api/v1/services/down"
        proc = start(cfg)
        try:
            sink.wait_for(1, timeout=30)
            # pymon says QUIT once it has read the 250 (and started the mark).
            wait(lambda: sink.quits >= 1, "QUIT after the 250")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        holder.execute("ROLLBACK")
        holder.close()
        [(_, delivered)] = deliveries(db)
        assert delivered is None, "the mark was committed after all: nothing tested"

        restart_until_delivered(cfg, db, api)
        assert len(sink.messages) == 1
        # The killed node's journal was taken over and deleted; the last one's holds
        # only its header line.
        [journal] = tmp_path.glob("p.db-sent-*")
        assert journal.read_bytes().count(b"\n") == 1


@pytest.mark.slow
def test_kill_9_before_the_250_is_read_sends_exactly_one(tmp_path: Path) -> None:
    # The server has kept the mail and is about to answer 250 when pymon is killed.
    # Nothing in pymon's own process could note that answer; its courier process
    # still reads it and journals it, so the next start does not send it again.
    web = reserved_port()
    db = tmp_path / "p.db"
    cfg = tmp_path / "p.yaml"
    running: list[subprocess.Popen[str]] = []

    def kill_pymon_first(_: ReceivedMail) -> None:
        if len(running) == 1:
            proc = running.pop()
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    with MailSink() as sink:
        sink.on_message = kill_pymon_first
        write_config(cfg, db, web, sink)
        api = f"http://127.0.0.1:{web}/api/v1/services/down"
        proc = start(cfg)
        running.append(proc)
        try:
            sink.wait_for(1, timeout=30)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert not running, "the sink never saw pymon's mail"
        # The orphaned courier read the 250 and says QUIT: its conversation is over.
        wait(lambda: sink.quits >= 1, "the courier's QUIT")
        [(_, delivered)] = deliveries(db)
        assert delivered is None, "the mark was committed after all: nothing tested"

        restart_until_delivered(cfg, db, api)
        assert len(sink.messages) == 1
