"""A new SQLite file whose WAL switch another opener holds up is opened once it lets go.

Two processes opening one new file together both switch it to WAL; SQLite refuses
one of them at once ("database is locked", no busy timeout applies), so the store
tries its first connection again. Here the other opener is a connection of the
test's own holding the lock, released from inside the store's second attempt: the
retry is seen, not waited for, and nothing depends on timing.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

from pymon.store.sql import SqlStore


async def test_first_open_waits_out_another_openers_wal_switch(tmp_path: Path) -> None:
    path = tmp_path / "pymon.db"
    # A RESERVED lock, as another opener holds between its first read and its own
    # WAL switch: under it SQLite refuses the store's WAL switch at once.
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    attempts: list[bool] = []

    # Pool-wide listeners run before the store's own (its pragmas), so each attempt
    # is seen before it tries the switch; the second one lets the lock go first.
    def attempt(_dbapi_connection: Any, _record: Any) -> None:
        attempts.append(other.in_transaction)
        if len(attempts) == 2:
            other.execute("COMMIT")

    event.listen(Pool, "connect", attempt)
    store = SqlStore(f"sqlite:///{path}")
    try:
        await store.open()
    finally:
        event.remove(Pool, "connect", attempt)
        other.close()
    try:
        assert await store.load_states() == {}
    finally:
        await store.close()
    # The first attempt met the lock; the second, once it was let go, opened the file.
    assert attempts == [True, True]
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
