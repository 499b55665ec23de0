"""The commands table on SqlStore: sending, taking once, answering, withdrawing and
pruning, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pymon.store.sql import SqlStore
from tests.store.test_sql_store import T0

ACK = {"author": "ann ✓", "comment": "on it", "expires": T0 + 3600.5}


@pytest.fixture
async def other(store: SqlStore, store_url: str) -> AsyncIterator[SqlStore]:
    """A second store on the same database: another node."""
    second = SqlStore(store_url)
    await second.open()
    try:
        yield second
    finally:
        await second.close()


async def test_a_command_is_sent_taken_and_answered(store: SqlStore) -> None:
    sent = await store.send_command("web", "ack", ACK, "b", T0)
    [pending] = await store.open_commands(T0 - 10, 100)
    assert (pending.id, pending.service, pending.kind, pending.origin) == (sent, "web", "ack", "b")
    assert pending.arguments == ACK
    assert pending.created_at == T0 and pending.taken_by is None and pending.done_at is None

    [taken] = await store.take_commands("a", [sent], T0 + 1)
    assert (taken.id, taken.taken_by, taken.taken_at, taken.arguments) == (sent, "a", T0 + 1, ACK)
    assert await store.open_commands(T0 - 10, 100) == []

    answer = {"incident": {"id": "x1", "ack": {"author": "ann ✓"}}}
    await store.finish_command(sent, T0 + 2, answer=answer)
    done = await store.command(sent)
    assert done is not None
    assert (done.done_at, done.answer, done.error, done.error_kind) == (T0 + 2, answer, None, None)


async def test_an_error_is_recorded_with_its_kind(store: SqlStore) -> None:
    sent = await store.send_command("web", "unack", {"author": "ann"}, "b", T0)
    await store.take_commands("a", [sent], T0)
    await store.finish_command(sent, T0 + 1, error="web is not acknowledged", error_kind="refused")
    done = await store.command(sent)
    assert done is not None
    assert (done.answer, done.error, done.error_kind) == (
        None,
        "web is not acknowledged",
        "refused",
    )


async def test_open_commands_are_the_untaken_recent_ones_oldest_first(store: SqlStore) -> None:
    old = await store.send_command("web", "run_now", {}, "b", T0 - 60)
    first = await store.send_command("db", "run_now", {}, "b", T0)
    second = await store.send_command("web", "ack", ACK, "c", T0 + 1)
    third = await store.send_command("mail", "run_now", {}, "c", T0 + 2)
    await store.take_commands("a", [third], T0 + 3)
    assert [c.id for c in await store.open_commands(T0 - 10, 100)] == [first, second]
    assert [c.id for c in await store.open_commands(T0 - 10, 1)] == [first]
    assert [c.id for c in await store.open_commands(T0 - 100, 100)] == [old, first, second]
    assert await store.open_commands(T0, 0) == []


@pytest.mark.parametrize("round_", range(3))
async def test_two_nodes_taking_at_once_take_each_command_once(
    store: SqlStore, other: SqlStore, round_: int
) -> None:
    ids = [await store.send_command(f"s{n}", "run_now", {}, "c", T0 + n) for n in range(20)]
    got_a, got_b = await asyncio.gather(
        store.take_commands("a", ids, T0 + 30), other.take_commands("b", ids[::-1], T0 + 30)
    )
    a, b = {c.id for c in got_a}, {c.id for c in got_b}
    assert not a & b
    assert a | b == set(ids)
    assert [c.created_at for c in got_a] == sorted(c.created_at for c in got_a)
    # Taken is taken: nobody gets them again.
    assert await store.take_commands("b", ids, T0 + 31) == []


async def test_a_withdrawn_command_is_never_taken(store: SqlStore) -> None:
    sent = await store.send_command("web", "ack", ACK, "b", T0)
    assert await store.withdraw_command(sent, T0 + 10)
    assert await store.take_commands("a", [sent], T0 + 11) == []
    done = await store.command(sent)
    assert done is not None and done.error_kind == "expired" and done.done_at == T0 + 10


async def test_a_taken_command_cannot_be_withdrawn(store: SqlStore) -> None:
    sent = await store.send_command("web", "ack", ACK, "b", T0)
    await store.take_commands("a", [sent], T0 + 1)
    assert not await store.withdraw_command(sent, T0 + 10)
    taken = await store.command(sent)
    assert taken is not None and taken.done_at is None and taken.taken_by == "a"


async def test_pruning_drops_the_commands_sent_before(store: SqlStore) -> None:
    old = await store.send_command("web", "ack", ACK, "b", T0 - 7200)
    await store.take_commands("a", [old], T0 - 7199)
    await store.finish_command(old, T0 - 7198, answer={})
    lost = await store.send_command("web", "ack", ACK, "b", T0 - 7100)
    new = await store.send_command("web", "ack", ACK, "b", T0)
    assert await store.prune_commands(T0 - 3600) == 2
    assert await store.command(old) is None and await store.command(lost) is None
    assert await store.command(new) is not None
    assert await store.prune_commands(T0 - 3600) == 0


async def test_an_unknown_command_is_none(store: SqlStore) -> None:
    assert await store.command("0" * 32) is None
    assert await store.take_commands("a", [], T0) == []
