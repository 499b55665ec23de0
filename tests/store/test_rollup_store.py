"""The rollups table on SQLite and PostgreSQL: deltas added to the stored bucket
across flushes (in SQL; the histogram merged in the batch's transaction), windows
read back as buckets and as totals, the fence refusing a bucket with its state,
bounded pruning, incidents by window, the first version's table dropped."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from pymon.errors import Fenced
from pymon.model import Incident, ServiceState, Status
from pymon.store.sql import SqlStore
from pymon.uptime import (
    DAY,
    HOUR,
    Bucket,
    Totals,
    Uptime,
    bin_of,
    layout,
    merge,
    summarize,
    total,
)

T0 = 1_800_000_000 // DAY * DAY
BIN = bin_of(0.1)


def delta(name: str, start: float, width: int = HOUR, **kw: object) -> Bucket:
    return Bucket(name, start, width, **kw)  # type: ignore[arg-type]


async def test_two_flushes_of_one_bucket_add_up(store: SqlStore) -> None:
    first = delta(
        "web",
        T0,
        checks=2,
        ok_checks=1,
        seconds={"ok": 100.0, "error": 20.0},
        worst=Status.ERROR,
        duration_sum=0.3,
        duration_min=0.1,
        duration_max=0.2,
        bins={bin_of(0.1): 1, bin_of(0.2): 1},
    )
    second = delta(
        "web",
        T0,
        checks=1,
        ok_checks=1,
        seconds={"ok": 50.0},
        maintenance={"failed": 7.5},
        worst=Status.OK,
        duration_sum=0.05,
        duration_min=0.05,
        duration_max=0.05,
        bins={bin_of(0.05): 1, bin_of(0.1): 1},
    )
    await store.write([ServiceState("web", seq=1)], [], [], rollups=[first])
    await store.write([ServiceState("web", seq=2)], [], [], rollups=[second])
    (got,) = await store.rollups(["web"], T0, T0 + HOUR, HOUR)
    assert got.checks == 3 and got.ok_checks == 2
    assert got.seconds == {"ok": 150.0, "error": 20.0}
    assert got.maintenance == {"failed": 7.5}
    assert got.worst is Status.ERROR
    assert got.duration_sum == pytest.approx(0.35)
    assert (got.duration_min, got.duration_max) == (0.05, 0.2)
    assert got.bins == {bin_of(0.05): 1, bin_of(0.1): 2, bin_of(0.2): 1}
    assert (await store.load_states())["web"].seq == 2


async def test_one_batch_with_several_deltas_of_a_bucket_merges_them(store: SqlStore) -> None:
    parts = [delta("web", T0, checks=1, seconds={"ok": 10.0}) for _ in range(3)]
    await store.write([], [], [], rollups=parts)
    (got,) = await store.rollups(None, T0, T0 + HOUR, HOUR)
    assert got.checks == 3 and got.seconds == {"ok": 30.0}


async def test_a_window_reads_overlapping_buckets_of_one_width_by_service(store: SqlStore) -> None:
    rows = [
        delta(name, T0 + k * HOUR, seconds={"ok": 1.0})
        for name in ("b", "a", "c")
        for k in range(-1, 4)
    ]
    rows.append(delta("a", T0, DAY, seconds={"ok": 5.0}))
    await store.write([], [], [], rollups=rows)
    got = await store.rollups(["a", "b"], T0 + 1800, T0 + 2 * HOUR, HOUR)
    assert [(b.service, b.start - T0) for b in got] == [
        ("a", 0),
        ("a", HOUR),
        ("b", 0),
        ("b", HOUR),
    ]
    days = await store.rollups(None, T0, T0 + DAY, DAY)
    assert [(b.service, b.width) for b in days] == [("a", DAY)]
    assert await store.rollups([], T0, T0 + DAY, HOUR) == []


async def test_a_fenced_write_lands_neither_state_nor_bucket(store: SqlStore) -> None:
    from pymon.store.base import Fence

    await store.add_shards(2)
    epochs = await store.claim_shards("me", [0, 1], T0, T0 + 60)
    await store.release_shards("me", [1])
    await store.claim_shards("other", [1], T0, T0 + 60)
    fence = Fence("me", epochs, {"web": 1})
    with pytest.raises(Fenced):
        await store.write(
            [ServiceState("web", seq=1)], [], [], rollups=[delta("web", T0)], fence=fence
        )
    assert await store.rollups(None, T0, T0 + HOUR, HOUR) == []
    assert "web" not in await store.load_states()


async def test_pruning_deletes_ended_buckets_a_bounded_number_at_a_time(store: SqlStore) -> None:
    old = [delta("web", T0 - k * HOUR) for k in range(1, 6)]
    old.append(delta("web", T0 - 2 * DAY, DAY))
    current = [delta("web", T0), delta("web", T0, DAY)]
    await store.write([], [], [], rollups=[*old, *current])
    assert await store.prune_rollups(T0, limit=4) == 4
    assert await store.prune_rollups(T0, limit=4) == 2
    assert await store.prune_rollups(T0, limit=4) == 0
    left = [
        *(await store.rollups(None, 0, T0 + DAY, HOUR)),
        *(await store.rollups(None, 0, T0 + DAY, DAY)),
    ]
    assert sorted((b.width, b.start) for b in left) == [(HOUR, T0), (DAY, T0)]


async def test_forgetting_a_service_keeps_its_buckets(store: SqlStore) -> None:
    await store.write([ServiceState("gone")], [], [], rollups=[delta("gone", T0)])
    await store.forget(["gone"])
    assert [b.service for b in await store.rollups(None, T0, T0 + HOUR, HOUR)] == ["gone"]


async def test_incidents_between_finds_those_open_in_the_window(store: SqlStore) -> None:
    def incident(ident: str, opened: float, closed: float | None, service: str = "web") -> Incident:
        return Incident(ident, service, opened, Status.ERROR, Status.ERROR, closed_at=closed)

    await store.write(
        [],
        [],
        [],
        [
            incident("before", T0 - 100, T0 - 50),
            incident("across", T0 - 10, T0 + 10),
            incident("inside", T0 + 20, T0 + 30),
            incident("open", T0 + 40, None),
            incident("after", T0 + 200, None),
            incident("other", T0 + 20, None, service="db"),
        ],
    )
    found = await store.incidents_between(["web"], T0, T0 + 100)
    assert [i.id for i in found] == ["across", "inside", "open"]
    assert {i.id for i in await store.incidents_between(None, T0, T0 + 100)} == {
        "across",
        "inside",
        "open",
        "other",
    }


async def test_a_store_opened_again_adds_to_the_stored_bucket(store_url: str) -> None:
    # A restart: the new store has not written the bucket, so it reads it first.
    for seconds in (100.0, 20.0):
        again = SqlStore(store_url)
        await again.open()
        try:
            await again.write(
                [],
                [],
                [],
                rollups=[delta("web", T0, checks=1, seconds={"ok": seconds}, bins={BIN: 1})],
            )
        finally:
            await again.close()
    reader = SqlStore(store_url)
    await reader.open()
    try:
        (got,) = await reader.rollups(["web"], T0, T0 + HOUR, HOUR)
    finally:
        await reader.close()
    assert got.checks == 2 and got.seconds == {"ok": 120.0} and got.bins == {BIN: 2}


async def test_a_bucket_another_node_wrote_meanwhile_is_read_again(store_url: str) -> None:
    from pymon.store.base import Fence

    a, b = SqlStore(store_url), SqlStore(store_url)
    await a.open()
    await b.open()
    try:
        await a.add_shards(1)

        async def write(store: SqlStore, node: str, seconds: float) -> None:
            epochs = await store.claim_shards(node, [0], T0, T0 + 60)
            fence = Fence(node, epochs, {"web": 0})
            tally = delta("web", T0, checks=1, seconds={"ok": seconds}, bins={BIN: 1})
            await store.write([], [], [], rollups=[tally], fence=fence)
            await store.release_shards(node, [0])

        await write(a, "a", 1.0)
        await write(b, "b", 10.0)  # the shard went to b, which added its part
        await write(a, "a", 100.0)  # and back: a must not write over b's part
        (got,) = await a.rollups(["web"], T0, T0 + HOUR, HOUR)
        assert got.checks == 3 and got.seconds == {"ok": 111.0}
        # The histogram is merged in Python: a's remembered one is stale after b's.
        assert got.bins == {BIN: 3}
    finally:
        await a.close()
        await b.close()


async def test_a_write_that_fails_leaves_no_trace_in_the_next(store: SqlStore) -> None:
    from pymon.errors import StoreError

    await store.write([], [], [], rollups=[delta("web", T0, checks=1, bins={BIN: 1})])
    # A delta the database refuses (beyond 64 bits), after the remembered histogram
    # was added to: the transaction rolls back, and the next write reads the row again.
    with pytest.raises(StoreError):
        await store.write([], [], [], rollups=[delta("web", T0, checks=2**70, bins={BIN: 1})])
    await store.write([], [], [], rollups=[delta("web", T0, checks=1, bins={BIN: 1})])
    (got,) = await store.rollups(["web"], T0, T0 + HOUR, HOUR)
    assert got.checks == 2 and got.bins == {BIN: 2}


def _varied(name: str, start: float, width: int, k: int) -> Bucket:
    """A bucket with a bit of everything, different for each ``k``."""
    return delta(
        name,
        start,
        width,
        checks=3 + k % 4,
        ok_checks=2 + k % 3,
        seconds={"ok": 100.0 + k, "warn": 7.5, "failed": float(k % 5)},
        maintenance={"error": 30.0} if k % 3 == 0 else {},
        worst=(Status.OK, Status.WARN, Status.FAILED, Status.ERROR)[k % 4],
        duration_sum=0.01 * (k + 1),
        duration_min=0.001 * (k % 7 + 1),
        duration_max=0.5 + k,
        bins={bin_of(0.002 * (k % 3 + 1)): 2, bin_of(0.03): 1 + k % 4},
    )


def _close(a: Uptime, b: Uptime) -> None:
    times = ("up", "down", "unknown", "maintenance", "no_data", "response_avg")
    assert [getattr(a, f) for f in times] == pytest.approx([getattr(b, f) for f in times])
    exact = ("checks", "ok_checks", "worst", "response_p95", "response_min", "response_max")
    assert [getattr(a, f) for f in exact] == [getattr(b, f) for f in exact]


@pytest.mark.parametrize("include_maintenance", [False, True])
async def test_totals_summed_in_the_database_are_the_summary_of_the_buckets(
    store: SqlStore, include_maintenance: bool
) -> None:
    rows = [_varied(n, T0 + k * HOUR, HOUR, k) for n in ("a", "b") for k in range(-30, 80)]
    rows += [_varied(n, T0 + k * DAY, DAY, k) for n in ("a", "b") for k in range(-2, 5)]
    rows.append(_varied("c", T0, HOUR, 1))
    await store.write([], [], [], rollups=rows)
    # Edges inside hours and days; a window wholly inside one bucket; whole days; a
    # window ending now (the current hour counts whole) and one reaching past now.
    now = T0 + 2 * HOUR + 1000.0
    windows: list[tuple[float, float, float | None]] = [
        (T0 - 5 * HOUR - 1234.5, T0 + 3 * DAY + 2 * HOUR + 17.25, None),
        (T0 + 600, T0 + 900, None),
        (T0 - DAY, T0 + 2 * DAY, None),
        (T0 - DAY - 500.0, now, now),
        (T0 - 3 * HOUR, T0 + DAY, now),
    ]
    for since, until, at in windows:
        found: dict[str, list[Bucket]] = {}
        parts: dict[str, list[Totals]] = {}
        for width, low, high in layout(since, until):
            for bucket in await store.rollups(["a", "b", "c"], low, high, width):
                found.setdefault(bucket.service, []).append(bucket)
            read = await store.totals(["a", "b", "c"], low, high, width, now=at)
            for name, totals in read.items():
                parts.setdefault(name, []).append(totals)
        assert sorted(parts) == sorted(found)
        for name, buckets in found.items():
            apart = include_maintenance
            want = summarize(name, buckets, since, until, include_maintenance=apart, now=at)
            got = total(name, parts[name], since, until, include_maintenance=apart)
            _close(got, want)
    assert await store.totals([], T0, T0 + DAY, DAY) == {}
    assert sorted(await store.totals(None, T0, T0 + HOUR, HOUR)) == ["a", "b", "c"]


async def test_a_database_of_the_first_version_opens_without_its_json_rollups(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE rollups (service VARCHAR NOT NULL, width INTEGER NOT NULL,"
        " start BIGINT NOT NULL, checks BIGINT NOT NULL, ok_checks BIGINT NOT NULL,"
        " seconds JSON NOT NULL, maintenance JSON NOT NULL, worst VARCHAR(16),"
        " duration_sum FLOAT NOT NULL, duration_min FLOAT, duration_max FLOAT,"
        " bins JSON NOT NULL, PRIMARY KEY (service, width, start))"
    )
    con.execute(
        "INSERT INTO rollups VALUES ('web', 3600, ?, 1, 1, '{\"ok\": 5.0}', '{}', 'ok',"
        " 0.1, 0.1, 0.1, '{\"3\": 1}')",
        (T0,),
    )
    con.commit()
    con.close()
    store = SqlStore(f"sqlite:///{path}")
    await store.open()
    try:
        await store.write([], [], [], rollups=[delta("web", T0, checks=1, seconds={"ok": 2.0})])
        (got,) = await store.rollups(["web"], T0, T0 + HOUR, HOUR)
        assert got.checks == 1 and got.seconds == {"ok": 2.0}
    finally:
        await store.close()
    con = sqlite3.connect(path)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    assert "rollups" not in tables and "rollup_buckets" in tables


async def test_a_batch_of_more_buckets_than_one_statement_binds_lands_whole(
    store: SqlStore,
) -> None:
    # SQLite binds at most 32,766 values a statement: 3,000 rows of 24 columns are
    # three statements, each row's values in the table's column order.
    rows = [
        delta(f"s{k:04d}", T0, checks=1, seconds={"warn": float(k)}, bins={BIN: 1})
        for k in range(3000)
    ]
    await store.write([], [], [], rollups=rows)
    await store.write([], [], [], rollups=rows)
    got = await store.rollups(None, T0, T0 + HOUR, HOUR)
    assert len(got) == 3000
    assert [(b.checks, b.seconds, b.bins) for b in got[2999:]] == [(2, {"warn": 5998.0}, {BIN: 2})]
    assert got[1].seconds == {"warn": 2.0} and got[0].seconds == {}


async def test_rows_of_ok_time_alone_and_the_rest_add_up_alike(store: SqlStore) -> None:
    # Rows whose time was all ok outside maintenance are bound narrower on SQLite
    # (the other time columns literal zeros, left alone on conflict): onto a new row,
    # onto a row that has other statuses, and the other way round, in batches larger
    # than one statement binds, each bucket ends as the deltas merged would.
    def ok(name: str, seconds: float, duration: float | None) -> Bucket:
        timed = duration is not None
        return delta(
            name,
            T0,
            checks=int(timed),
            ok_checks=int(timed),
            seconds={"ok": seconds} if seconds else {},
            worst=Status.OK if timed else None,
            duration_sum=duration or 0.0,
            duration_min=duration,
            duration_max=duration,
            bins={bin_of(duration): 1} if duration is not None else {},
        )

    other = delta(
        "b",
        T0,
        checks=1,
        seconds={"ok": 3.0, "error": 4.0},
        maintenance={"warn": 1.5},
        worst=Status.ERROR,
        duration_sum=0.5,
        duration_min=0.5,
        duration_max=0.5,
        bins={bin_of(0.5): 1},
    )
    crowd = [ok(f"c{k:04d}", float(k + 1), 0.01) for k in range(3000)]
    batches = [
        [ok("a", 5.0, 0.2), other, ok("c", 0.0, None), *crowd],
        [ok("a", 2.5, None), ok("b", 5.0, 0.05), replace(other, service="c"), *crowd],
        [replace(ok("d", 2.0, 0.1), maintenance={"failed": 2.5}), ok("d", 1.0, 0.1)],
        [replace(other, service="a"), ok("b", 0.0, 0.3), ok("c", 1.0, 0.002)],
    ]
    for seq, batch in enumerate(batches, 1):
        await store.write([ServiceState("a", seq=seq)], [], [], rollups=batch)
    want: dict[str, Bucket] = {}
    for batch in batches:
        for bucket in batch:
            held = want.get(bucket.service)
            want[bucket.service] = bucket if held is None else merge(held, bucket)
    got = {b.service: b for b in await store.rollups(None, T0, T0 + HOUR, HOUR)}
    assert len(got) == 3004
    for name in ("a", "b", "c", "d", "c0000", "c2999"):
        held, expected = got[name], want[name]
        assert held.seconds == expected.seconds and held.maintenance == expected.maintenance
        assert (held.checks, held.ok_checks, held.worst) == (
            expected.checks,
            expected.ok_checks,
            expected.worst,
        )
        assert held.duration_sum == pytest.approx(expected.duration_sum)
        assert (held.duration_min, held.duration_max) == (
            expected.duration_min,
            expected.duration_max,
        )
        assert held.bins == expected.bins
    assert got["c2999"].seconds == {"ok": 6000.0} and got["c2999"].checks == 2
