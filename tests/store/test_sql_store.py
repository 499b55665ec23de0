"""SqlStore on real SQLite files and a real PostgreSQL server: same tests, both backends."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table

from pymon.errors import StoreError
from pymon.model import (
    Ack,
    Event,
    EventKind,
    Heartbeat,
    Incident,
    Notice,
    NoticeKind,
    ServiceState,
    Status,
)
from pymon.store.base import ResultRecord, Store
from pymon.store.sql import SqlStore
from pymon.store.sql.schema import event_table, heartbeat_table, result_table, state_table
from pymon.store.sql.sqlite import SqliteBatches
from tests.support.postgres import PostgresServer

T0 = 1_700_000_000.0


def result(service: str, seq: int, status: Status = Status.OK) -> ResultRecord:
    """A result whose fields all derive from ``seq``, so a mix-up shows."""
    return ResultRecord(
        service=service,
        seq=seq,
        status=status,
        message=f"{service} run {seq}",
        metrics={"time": seq / 1000, "size": float(seq)},
        started_at=T0 + seq,
        duration=0.001 * seq,
        lateness=0.0001 * seq,
    )


def ev(service: str, at: float, status: Status, previous: Status) -> Event:
    """A status-change event."""
    return Event(
        service=service,
        kind=EventKind.CHANGED,
        at=at,
        status=status,
        previous=previous,
        message=f"{service} {previous} -> {status}",
    )


def full_state(name: str = "web") -> ServiceState:
    """A state with every field away from its default."""
    return ServiceState(
        name=name,
        status=Status.ERROR,
        previous_status=Status.WARN,
        confirmed_status=Status.ERROR,
        confirmed=True,
        recovering=True,
        count=3_000_000_000,  # beyond 32 bits
        message="HTTP 503 — Service Unavailable ✓",
        metrics={"time": 0.25, "status_code": 503.0, "ratio": math.inf, "neg": -math.inf},
        last_check=T0 + 0.123456,
        last_change=T0 - 3600.5,
        last_duration=0.25,
        last_by_status={"ok": T0 - 7200.0, "error": T0 + 0.123456},
        seq=2**40,
    )


def test_store_satisfies_protocol() -> None:
    store: Store = SqlStore("sqlite://")  # mypy checks the structural match
    assert isinstance(store, SqlStore)


@pytest.mark.parametrize(
    ("model", "table", "store_only"),
    [
        (ServiceState, state_table, set()),
        (ResultRecord, result_table, {"slot"}),
        (Event, event_table, {"id"}),
        (Heartbeat, heartbeat_table, set()),
    ],
)
def test_every_model_field_has_a_column(model: type, table: Table, store_only: set[str]) -> None:
    # A field added to the model without a column would silently not survive a restart.
    assert {f.name for f in dataclasses.fields(model)} == set(table.columns.keys()) - store_only


async def test_state_round_trip(store: SqlStore) -> None:
    bare = ServiceState(name="bare")  # defaults: None times, no confirmed status, empty maps
    nan = ServiceState(name="nan", metrics={"loss": math.nan})
    await store.write([full_state(), bare, nan], [], [])

    loaded = await store.load_states()

    assert set(loaded) == {"web", "bare", "nan"}
    assert loaded["web"] == full_state()
    assert loaded["bare"] == bare
    assert loaded["bare"].confirmed_status is None
    assert loaded["bare"].last_check is None
    assert math.isnan(loaded["nan"].metrics["loss"])


async def test_empty_store_and_empty_write(store: SqlStore) -> None:
    await store.write([], [], [])
    assert await store.load_states() == {}
    assert await store.history("nothing") == []
    assert await store.events() == []


async def test_upsert_overwrites_state(store: SqlStore) -> None:
    await store.write([full_state()], [], [])
    newer = ServiceState(name="web", status=Status.OK, count=1, message="back", seq=2**40 + 1)
    await store.write([newer], [], [])
    assert await store.load_states() == {"web": newer}

    # Within one batch the last state of a service wins.
    first = ServiceState(name="web", status=Status.WARN, seq=10)
    last = ServiceState(name="web", status=Status.FAILED, seq=11)
    await store.write([first, last], [], [])
    assert await store.load_states() == {"web": last}


async def test_results_are_a_bounded_ring(store_url: str) -> None:
    store = SqlStore(store_url, history=100)
    await store.open()
    try:
        # history + 50 results: a first batch larger than the ring, then smaller ones.
        await store.write([], [result("web", seq) for seq in range(120)], [])
        for start in range(120, 150, 10):
            await store.write([], [result("web", seq) for seq in range(start, start + 10)], [])
        await store.write([], [result("other", 0)], [])

        kept = await store.history("web", limit=10_000)

        assert len(kept) == 100
        assert [r.seq for r in kept] == list(range(149, 49, -1))  # newest kept, newest first
        assert kept[0] == result("web", 149)
        assert [r.seq for r in await store.history("web", limit=3)] == [149, 148, 147]
        assert await store.history("other") == [result("other", 0)]
        assert await store.history("web", limit=0) == []
    finally:
        await store.close()


async def test_same_slot_in_one_batch_newest_wins(store_url: str) -> None:
    store = SqlStore(store_url, history=10)
    await store.open()
    try:
        # 3, 13 and 23 share slot 3; the batch lists the newest in the middle.
        await store.write([], [result("web", 3), result("web", 23), result("web", 13)], [])
        assert await store.history("web") == [result("web", 23)]

        # A replayed, older result must not move the slot backwards.
        await store.write([], [result("web", 13, Status.ERROR)], [])
        assert await store.history("web") == [result("web", 23)]
    finally:
        await store.close()


async def test_a_batch_of_several_pages_is_written_whole(store_url: str) -> None:
    # SQLite writes big batches as multi-row statements a page at a time; every
    # row of every page must land, in its own columns, and upserts still apply.
    store = SqlStore(store_url, history=10)
    await store.open()
    try:
        names = [f"svc-{i:04d}" for i in range(2_345)]
        states = [
            dataclasses.replace(full_state(name), seq=2**40 + i) for i, name in enumerate(names)
        ]
        await store.write(states, [result(name, 7) for name in names], [])
        newer = [result(name, 17, Status.WARN) for name in names] + [result(names[0], 5)]
        await store.write(states[:3], newer, [])

        loaded = await store.load_states()
        assert loaded == {state.name: state for state in states}
        assert await store.history(names[-1]) == [result(names[-1], 17, Status.WARN)]
        assert await store.history(names[0]) == [
            result(names[0], 17, Status.WARN),
            result(names[0], 5),
        ]
    finally:
        await store.close()


async def test_events_newest_first_and_by_service(store: SqlStore) -> None:
    batch1 = [ev("a", T0, Status.ERROR, Status.OK), ev("b", T0 + 1, Status.WARN, Status.OK)]
    batch2 = [ev("a", T0 + 2, Status.OK, Status.ERROR), ev("c", T0 + 2, Status.FAILED, Status.OK)]
    await store.write([], [], batch1)
    await store.write([], [], batch2)

    everything = batch1 + batch2
    assert await store.events() == everything[::-1]
    assert await store.events(limit=2) == everything[:1:-1]
    assert await store.events(service="a") == [batch2[0], batch1[0]]
    assert await store.events(limit=1, service="a") == [batch2[0]]
    assert await store.events(service="nobody") == []


async def test_forget_removes_state_and_history_only(store: SqlStore) -> None:
    events = [ev("gone", T0, Status.ERROR, Status.OK)]
    await store.write(
        [ServiceState(name="gone", seq=2), ServiceState(name="kept", seq=1)],
        [result("gone", 1), result("gone", 2), result("kept", 1)],
        events,
    )

    await store.forget(["gone", "never-existed", "gone"])

    assert set(await store.load_states()) == {"kept"}
    assert await store.history("gone") == []
    assert await store.history("kept") == [result("kept", 1)]
    assert await store.events() == events  # the record of what happened stays

    # A new service of the same name starts its ring from seq 0 again.
    await store.write([ServiceState(name="gone", seq=0)], [result("gone", 0)], [])
    assert await store.history("gone") == [result("gone", 0)]
    await store.forget([])


async def test_heartbeats_round_trip_upsert_and_forget(store: SqlStore) -> None:
    await store.save_heartbeat(Heartbeat("job", 10.0, True, "fine"))
    await store.save_heartbeat(Heartbeat("job", 20.0, False, "disk full"))
    await store.save_heartbeat(Heartbeat("other", 5.0))
    assert await store.load_heartbeats() == {
        "job": Heartbeat("job", 20.0, False, "disk full"),
        "other": Heartbeat("other", 5.0, True, ""),
    }
    await store.forget(["job"])
    assert set(await store.load_heartbeats()) == {"other"}


async def test_incidents_upsert_and_open_ones_come_back(store: SqlStore) -> None:
    ack = Ack("ann", "on it", 12.0, 99.0)
    first = Incident(
        "i1", "web", 10.0, Status.ERROR, Status.ERROR, notices=1, last_notice_at=10.0, pending=False
    )
    await store.write([], [], [], [first], [])
    acked = dataclasses.replace(first, ack=ack, status=Status.WARN, escalated=True)
    closed = Incident("i0", "db", 1.0, Status.FAILED, Status.FAILED, closed_at=5.0)
    await store.write([], [], [], [acked, closed], [])
    assert await store.open_incidents() == {"web": acked}
    assert [i.id for i in await store.incidents()] == ["i1", "i0"]
    assert await store.incidents(service="db") == [closed]


NOTICE = Notice(
    "i1:problem:1",
    "web",
    NoticeKind.PROBLEM,
    10.0,
    Status.ERROR,
    "down",
    ("ops", "dev"),
    "i1",
    {"status_code": 503.0, "ratio": math.nan},
    5.0,
)


async def test_a_notice_enters_the_outbox_once(store: SqlStore) -> None:
    await store.write([], [], [], [], [NOTICE])
    await store.write([], [], [], [], [NOTICE, dataclasses.replace(NOTICE, message="again")])
    [stored] = await store.notices()
    assert dataclasses.replace(stored, metrics={}) == dataclasses.replace(NOTICE, metrics={})
    assert stored.metrics["status_code"] == 503.0
    assert math.isnan(stored.metrics["ratio"])


async def test_a_notice_has_one_delivery_per_channel_due_at_once(store: SqlStore) -> None:
    await store.write([], [], [], [], [NOTICE])
    due = await store.due_deliveries(10.0)
    assert sorted((d.channel, d.attempts, d.next_at, d.state) for d in due) == [
        ("dev", 0, 10.0, "pending"),
        ("ops", 0, 10.0, "pending"),
    ]
    assert await store.due_deliveries(9.9) == []
    assert await store.next_delivery_at() == 10.0


async def test_a_claim_is_taken_once_and_leases_the_delivery(store: SqlStore) -> None:
    await store.write([], [], [], [], [NOTICE])
    assert await store.claim_delivery("i1:problem:1", "ops", 10.0, 70.0)
    assert not await store.claim_delivery("i1:problem:1", "ops", 10.0, 70.0)
    assert [d.channel for d in await store.due_deliveries(69.0)] == ["dev"]
    [leased] = [d for d in await store.due_deliveries(70.0) if d.channel == "ops"]
    assert (leased.attempts, leased.next_at) == (1, 70.0)


async def test_finishing_a_delivery_records_success_retry_and_giving_up(store: SqlStore) -> None:
    await store.write([], [], [], [], [NOTICE, dataclasses.replace(NOTICE, key="i1:problem:2")])
    await store.finish_delivery("i1:problem:1", "ops", at=11.0)
    await store.finish_delivery("i1:problem:1", "dev", at=11.0, error="refused", retry_at=21.0)
    await store.finish_delivery("i1:problem:2", "ops", at=12.0, error="550 no such user")
    delivered = await store.deliveries(state="delivered")
    assert [(d.notice.key, d.channel, d.delivered_at) for d in delivered] == [
        ("i1:problem:1", "ops", 11.0)
    ]
    failed = await store.deliveries(state="failed")
    assert [(d.channel, d.error, d.failed_at) for d in failed] == [
        ("ops", "550 no such user", 12.0)
    ]
    pending = await store.deliveries(state="pending")
    assert sorted((d.notice.key, d.channel, d.error) for d in pending) == [
        ("i1:problem:1", "dev", "refused"),
        ("i1:problem:2", "dev", None),
    ]
    assert await store.next_delivery_at() == 10.0
    assert len(await store.deliveries(service="web", limit=2)) == 2
    assert await store.deliveries(service="other") == []


async def test_meta_keeps_the_first_value(store: SqlStore) -> None:
    assert await store.keep_meta("ack_key", "first") == "first"
    assert await store.keep_meta("ack_key", "second") == "first"


async def test_a_failing_batch_leaves_nothing(store: SqlStore) -> None:
    before = ServiceState(name="web", status=Status.OK, seq=1)
    await store.write([before], [result("web", 1)], [])

    # The states statement runs, then the results statement meets a seq that does
    # not fit the 64-bit column: the whole transaction has to roll back.
    with pytest.raises(StoreError, match="cannot write a batch"):
        await store.write(
            [ServiceState(name="web", status=Status.ERROR, seq=2), ServiceState(name="new")],
            [result("web", 2), result("web", 2**63)],
            [ev("web", T0, Status.ERROR, Status.OK)],
        )

    assert await store.load_states() == {"web": before}
    assert await store.history("web") == [result("web", 1)]
    assert await store.events() == []

    # The store is still usable afterwards.
    await store.write([], [result("web", 2)], [])
    assert [r.seq for r in await store.history("web")] == [2, 1]


async def test_concurrent_opens_and_writes(store_url: str) -> None:
    # Two instances starting together on one database (a cluster, or a restart
    # overlapping the old process), then many writers at once on both.
    one, two = SqlStore(store_url), SqlStore(store_url)
    await asyncio.gather(one.open(), two.open())
    try:
        await asyncio.gather(
            *(
                (one if n % 2 else two).write(
                    [ServiceState(name=f"s{n}", seq=1)],
                    [result(f"s{n}", 1)],
                    [ev(f"s{n}", T0 + n, Status.OK, Status.UNKNOWN)],
                )
                for n in range(20)
            )
        )
        assert set(await one.load_states()) == {f"s{n}" for n in range(20)}
        assert len(await two.events(limit=100)) == 20
    finally:
        await one.close()
        await two.close()


async def test_history_size_change_keeps_newest(store_url: str) -> None:
    # The operator changes storage.history between runs; the ring is re-fitted.
    url = store_url
    store = SqlStore(url, history=10)
    await store.open()
    await store.write([], [result("web", seq) for seq in range(25)], [])
    await store.close()

    smaller = SqlStore(url, history=4)
    await smaller.open()
    assert [r.seq for r in await smaller.history("web")] == [24, 23, 22, 21]
    await smaller.write([], [result("web", 25)], [])
    assert [r.seq for r in await smaller.history("web")] == [25, 24, 23, 22]
    await smaller.close()

    larger = SqlStore(url, history=8)
    await larger.open()
    await larger.write([], [result("web", seq) for seq in range(26, 30)], [])
    assert [r.seq for r in await larger.history("web")] == list(range(29, 21, -1))
    await larger.close()


async def test_sqlite_file_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "pymon.db"
    url = f"sqlite:///{path}"
    store = SqlStore(url)
    await store.open()
    await store.write([full_state()], [result("web", 7)], [ev("web", T0, Status.OK, Status.ERROR)])
    await store.close()
    await store.close()  # closing twice is harmless

    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    again = SqlStore(url)
    await again.open()
    try:
        assert await again.load_states() == {"web": full_state()}
        assert await again.history("web") == [result("web", 7)]
        assert len(await again.events()) == 1
    finally:
        await again.close()


async def test_sqlite_relative_path_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = SqlStore("sqlite:///pymon-data/pymon.db")
    assert relative.where == str(tmp_path / "pymon-data" / "pymon.db")
    await relative.open()
    await relative.close()
    assert (tmp_path / "pymon-data" / "pymon.db").is_file()

    memory = SqlStore("sqlite://")
    await memory.open()
    try:
        await memory.write([full_state()], [result("web", 1)], [])
        assert await memory.load_states() == {"web": full_state()}
        assert await memory.history("web") == [result("web", 1)]
    finally:
        await memory.close()


def test_urls_are_translated_to_async_drivers() -> None:
    assert SqlStore("sqlite:///a/b.db").url.drivername == "sqlite+aiosqlite"
    assert SqlStore("sqlite:////abs/b.db").url.database == "/abs/b.db"
    assert SqlStore("sqlite:///rel/b.db").url.database == "rel/b.db"
    pg = SqlStore("postgresql://pymon:s3cret@db.example:5433/mon")
    assert pg.url.drivername == "postgresql+asyncpg"
    assert (pg.url.host, pg.url.port, pg.url.database) == ("db.example", 5433, "mon")
    assert "s3cret" not in repr(pg)
    assert SqlStore("postgres://h/db").url.drivername == "postgresql+asyncpg"
    for bad in ("mysql://h/db", "postgresql+psycopg2://h/db", "not a url"):
        with pytest.raises(StoreError, match="URL"):
            SqlStore(bad)
    with pytest.raises(ValueError, match="history"):
        SqlStore("sqlite://", history=0)


async def test_using_a_closed_store_is_a_store_error() -> None:
    store = SqlStore("sqlite://")
    with pytest.raises(StoreError, match="not open"):
        await store.load_states()


async def test_unreachable_postgresql_is_a_clear_store_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        store = SqlStore(f"postgresql://pymon:s3cret@127.0.0.1:{port}/pymon")
        with pytest.raises(StoreError) as caught:
            await store.open()
    message = str(caught.value)
    assert message.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}/pymon: ")
    assert "refused" in message.lower() or "connect call failed" in message.lower()
    assert "s3cret" not in message
    await store.close()


async def test_missing_postgresql_database_is_a_clear_store_error(
    postgres_server: PostgresServer,
) -> None:
    store = SqlStore(postgres_server.url("no_such_db"))
    with pytest.raises(StoreError, match=r'cannot connect to PostgreSQL.*"no_such_db" does not'):
        await store.open()


async def test_unusable_sqlite_path_is_a_clear_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    store = SqlStore(f"sqlite:///{tmp_path}/a-file/pymon.db")
    with pytest.raises(StoreError, match="cannot create the directory"):
        await store.open()
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    store = SqlStore(f"sqlite:///{tmp_path}/garbage.db")
    with pytest.raises(StoreError, match=r"cannot open SQLite database at .*garbage\.db: "):
        await store.open()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pymon.model import Event, EventKind, ServiceState, Status
    from pymon.store.base import ResultRecord
    from pymon.store.sql import SqlStore

    async def main() -> None:
        store = SqlStore(sys.argv[1], history=50)
        await store.open()
        seq = 0
        while True:
            seq += 1
            status = Status.OK if seq % 2 else Status.ERROR
            names = [f"svc{i}" for i in range(40)]
            states = [ServiceState(name=n, status=status, seq=seq, message="x" * 200)
                      for n in names]
            results = [ResultRecord(n, seq, status, "y" * 200, {"t": 0.1}, 1.0, 0.1, 0.0)
                       for n in names]
            events = [Event(n, EventKind.CHANGED, float(seq), status, Status.OK, "z")
                      for n in names]
            await store.write(states, results, events)
            print(seq, flush=True)

    asyncio.run(main())
    """
)


def test_sqlite_survives_kill_9_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    child = subprocess.Popen(
        [sys.executable, str(script), f"sqlite:///{path}"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert child.stdout is not None
        committed = 0
        for line in child.stdout:  # each line: a batch that has committed
            committed = int(line)
            if committed >= 30:
                break
        assert committed >= 30, "the writer died on its own (its stderr is above)"
        # Killed while it is writing the following batches.
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    async def reload() -> tuple[dict[str, ServiceState], list[ResultRecord], int]:
        store = SqlStore(f"sqlite:///{path}", history=50)
        await store.open()
        try:
            states = await store.load_states()
            history = await store.history("svc0", limit=1000)
            return states, history, len(await store.events(limit=1_000_000))
        finally:
            await store.close()

    states, history, n_events = asyncio.run(reload())
    assert len(states) == 40
    seqs = {s.seq for s in states.values()}
    assert len(seqs) == 1  # every service from the same (last committed) batch
    (last,) = seqs
    assert last >= committed  # nothing that was reported committed is lost
    assert history[0].seq == last
    assert len(history) == min(last, 50)
    assert n_events == 40 * last  # no batch landed in part


def test_a_url_listing_several_postgresql_hosts_names_them_all() -> None:
    one = SqlStore("postgresql://u:secret@db.example.org/pymon")
    assert one.where == "db.example.org:5432/pymon"
    several = SqlStore(
        "postgresql://u@/pymon?host=a:5432&host=b:5433&target_session_attrs=read-write"
    )
    assert several.where == "a:5432,b:5433/pymon"


async def test_a_sqlite_batch_commits_while_the_event_loop_is_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write lock must be held for the writing alone: a batch that needed the
    # event loop between its statements held it for seconds on a saturated loop,
    # and another worker on the file lost its leases (docs/performance.md).
    db = tmp_path / "p.db"
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    started, go = threading.Event(), threading.Event()
    write = SqliteBatches._write

    def gated(self: SqliteBatches, *args: Any, **kwargs: Any) -> None:
        started.set()
        go.wait(30)
        write(self, *args, **kwargs)

    monkeypatch.setattr(SqliteBatches, "_write", gated)
    try:
        batch = [ServiceState(name=f"s{n}", status=Status.OK, seq=1) for n in range(2000)]
        writing = asyncio.create_task(store.write(batch, [result(s.name, 1) for s in batch], []))
        assert await asyncio.to_thread(started.wait, 10), "the batch never reached its thread"
        # From here the loop is blocked (this code does not await), and the batch
        # must land all the same.
        go.set()
        deadline = time.monotonic() + 30
        with sqlite3.connect(db, timeout=30) as reader:
            while not reader.execute("SELECT count(*) FROM service_state").fetchone()[0]:
                assert time.monotonic() < deadline, "the batch waited for the event loop"
                time.sleep(0.01)  # noqa: ASYNC251 - blocking the loop is the point
        await writing
        assert len(await store.load_states()) == 2000
    finally:
        await store.close()
