"""The outbox's journal of accepted deliveries: what it keeps, when it empties, and
that a restart records what it holds before sending anything."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from pymon.notify.journal import Journal, journal_path
from pymon.notify.outbox import Outbox
from pymon.store.base import Outcome
from pymon.store.sql import SqlStore
from tests.notify.test_outbox import POLICY, Recorder, context, notice
from tests.support.clock import FakeClock
from tests.support.waiting import wait_for


def test_its_place_is_beside_a_sqlite_file_only() -> None:
    assert journal_path("sqlite:////var/lib/pymon/p.db", "node 1/a") == Path(
        "/var/lib/pymon/p.db-sent-node_1_a"
    )
    assert journal_path("sqlite:///:memory:", "n") is None
    assert journal_path("sqlite://", "n") is None
    assert journal_path("postgresql://db.example.org/pymon", "n") is None


def test_what_is_noted_is_replayed_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.db-sent-n1"
    journal = Journal(path, "n1")
    assert journal.take_over().outcomes == []
    journal.note(Outcome("i1:problem:1", "ops", 10.5))
    journal.note(Outcome("i2:problem:1", "dev", 11.0))
    journal.close()
    with path.open("ab") as f:
        f.write(b'["i3:probl')  # the process died in the middle of a write
    assert Journal(path, "n1").take_over().outcomes == [
        Outcome("i1:problem:1", "ops", 10.5),
        Outcome("i2:problem:1", "dev", 11.0),
    ]


def test_it_empties_once_every_noted_delivery_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "p.db-sent-n1"
    journal = Journal(path, "n1")
    journal.reserve()
    journal.reserve()
    journal.note(Outcome("a", "ops", 1.0))
    journal.note(Outcome("b", "ops", 2.0))
    journal.settled(1)
    assert len(Journal(path, "other").take_over().outcomes) == 2
    journal.settled(1)
    [header] = path.read_bytes().splitlines()
    assert json.loads(header)[:3] == ["node", "n1", os.getpid()]
    journal.reserve()
    journal.note(Outcome("c", "ops", 3.0))  # appends after the header again
    assert Journal(path, "other").take_over().outcomes == [Outcome("c", "ops", 3.0)]
    journal.close()


def test_the_journal_of_a_node_that_is_gone_is_taken_over_a_live_one_only_read(
    tmp_path: Path,
) -> None:
    live, dead = (
        Journal(tmp_path / "p.db-sent-live", "live"),
        Journal(tmp_path / "p.db-sent-dead", "dead"),
    )
    live.note(Outcome("a", "ops", 1.0))
    dead.note(Outcome("b", "ops", 2.0))
    dead.close()  # the process died: the kernel dropped its lock
    me = Journal(tmp_path / "p.db-sent-me", "me")
    replay = me.take_over()
    assert sorted(o.key for o in replay.outcomes) == ["a", "b"]
    assert replay.gone == ["dead"]
    me.done(replay)
    assert not (tmp_path / "p.db-sent-dead").exists()
    assert (tmp_path / "p.db-sent-live").exists()
    live.close()
    me.close()


def test_an_oversized_file_is_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "p.db-sent-big").write_bytes(b"x" * (16 * 1024 * 1024 + 1))
    assert Journal(tmp_path / "p.db-sent-me", "me").take_over().outcomes == []
    assert "not read" in caplog.text


async def test_a_restart_records_the_journal_before_it_sends(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/o.db")
    await store.open()
    clock, ops = FakeClock(), Recorder()
    try:
        await store.write([], [], [], [], [notice(clock), notice(clock, key="i2:problem:1")])
        # The life before claimed both, the server took the first, and the process
        # died before the store's mark was committed: only the journal knows.
        for due in await store.due_deliveries(clock.time()):
            key = due.notice.key
            await store.claim_delivery(key, "ops", due.next_at, clock.time() + 35, "me")
        journal = Journal(tmp_path / "o.db-sent-me", "me")
        journal.note(Outcome("i1:problem:1", "ops", clock.time()))
        journal.close()

        journal = Journal(tmp_path / "o.db-sent-me", "me")
        box = Outbox(store, {"ops": ops}, context, POLICY, clock=clock, owner="me", journal=journal)
        task = asyncio.create_task(box.run())
        try:
            await wait_for(lambda: bool(ops.sent))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert ops.sent == [("i2:problem:1", 2)]
        states = {d.notice.key: (d.state, d.attempts) for d in await store.deliveries()}
        assert states == {"i1:problem:1": ("delivered", 1), "i2:problem:1": ("delivered", 2)}
        assert Journal(tmp_path / "o.db-sent-x", "x").take_over().outcomes == []
    finally:
        await store.close()
