"""What only SQLite needs: pragmas (WAL), the engine for a file or memory, schema setup
that waits out another opener, and batches sent as multi-row statements.

:class:`SqliteBackend` is the store's :class:`~pymon.store.sql.backend.Backend` for
``sqlite://`` URLs (aiosqlite).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Executable, Table, event, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from pymon.errors import StoreError
from pymon.store.sql.schema import change_table

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "SqliteBackend"]

#: SQLite waits this long for another connection's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings (they are not stored in the file, except WAL).

    WAL lets readers (the web UI) run while the engine writes; ``synchronous=NORMAL``
    in WAL mode still survives a process crash (only an OS crash can lose the last
    commits) at a fraction of the fsyncs; the busy timeout makes a second writer
    wait instead of failing at once.
    """
    cursor = dbapi_connection.cursor()
    try:
        # The timeout first: switching a new file to WAL needs a moment's exclusive lock.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class _MultiRow:
    """An upsert as SQLite text with one VALUES group per row, sent a page at a time.

    SQLite's driver runs in aiosqlite's thread and takes the GIL back from the busy
    event loop after every row of an executemany; one statement per page needs a
    few hand-overs, and costs 20-30 % less CPU per row (docs/performance.md).
    """

    head: str
    group: str
    tail: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    page: int

    @classmethod
    def of(cls, stmt: Insert, table: Table, dialect: Dialect, columns: Sequence[str]) -> _MultiRow:
        """Split ``stmt`` compiled for ``dialect`` and ``columns`` around its one VALUES group."""
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
        text = compiled.string
        start = text.index(" VALUES (") + len(" VALUES ")
        end = text.index(")", start) + 1
        columns = tuple(compiled.positiontup or ())
        processors = tuple(table.c[name].type.bind_processor(dialect) for name in columns)
        # As many rows as the dialect's limit on bound parameters allows: each
        # statement costs a round trip to aiosqlite's thread, and under load every
        # round trip waits for a turn of the busy event loop.
        page = max(1, dialect.insertmanyvalues_max_parameters // len(columns))
        return cls(text[:start], text[start:end], text[end:], columns, processors, page)

    def pages(self, rows: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(statement, flat parameters) for each page of ``rows``."""
        bind = list(zip(self.columns, self.processors, strict=True))
        for first in range(0, len(rows), self.page):
            chunk = rows[first : first + self.page]
            params = tuple(
                row[name] if process is None else process(row[name])
                for row in chunk
                for name, process in bind
            )
            yield self.head + ", ".join([self.group] * len(chunk)) + self.tail, params


class SqliteBackend:
    """SQLite through aiosqlite: a file (its directory made on open) or ``sqlite://`` memory."""

    name: ClassVar[str] = "sqlite"
    schemes: ClassVar[tuple[str, ...]] = ("sqlite",)
    driver: ClassVar[str] = "aiosqlite"
    example: ClassVar[str] = "sqlite:///relative/path.db or sqlite:////absolute/path.db"
    opening: ClassVar[str] = "open SQLite database"

    def __init__(self, url: URL) -> None:
        self.url = url
        self.memory = url.database in (None, "", ":memory:")
        # A memory database lives in one shared connection, which cannot hold two
        # transactions at once, so everything queues; a file has one writer at a
        # time anyway, so writers queue in the store rather than in the busy handler.
        self.queues_writes = True
        self.queues_reads = self.memory
        # Per table: the multi-row text, made once for the columns of its first row.
        self._multirow: dict[str, _MultiRow] = {}

    @property
    def where(self) -> str:
        """The file's absolute path, or ``:memory:``."""
        return ":memory:" if self.memory else str(Path(self.url.database or "").absolute())

    async def create_engine(self) -> AsyncEngine:
        if self.memory:
            engine = create_async_engine(self.url, poolclass=StaticPool)
        else:
            path = Path(self.url.database or "")
            try:
                await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory for SQLite database {self.where}: {exc}"
                ) from exc
            engine = create_async_engine(self.url)
        event.listen(engine.sync_engine, "connect", _pragmas)
        return engine

    def change_signal(self) -> Executable:
        """Count the batch in the changes table (other nodes poll it)."""
        table = change_table
        return update(table).where(table.c.id == 1).values(seq=table.c.seq + 1)

    async def watch(self, engine: AsyncEngine, on_change: Callable[[], None]) -> None:
        """SQLite cannot push: the changes table is polled."""
        return

    async def set_up(
        self, engine: AsyncEngine, create: Callable[[AsyncConnection], Awaitable[None]]
    ) -> None:
        """``create`` holding the write lock, taken up front (the driver would otherwise
        run the DDL outside any transaction).

        Two processes creating one new file together can both try to switch it to
        WAL; SQLite then refuses one at once ("database is locked", its busy timeout
        does not apply to that deadlock), so the first connection is tried again
        until the busy timeout has passed.
        """
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    await create(conn)
                return
            except OperationalError as exc:
                if "database is locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    def insert(self, table: Table) -> Insert:
        return sqlite_dialect.insert(table)

    def batch(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: list[dict[str, Any]]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """``rows`` as multi-row statement text with flat parameters, a page at a time.

        Every row of one table has the same keys (one function builds them), so the
        text is made once per table, for the columns of the first row it sees.
        """
        multirow = self._multirow.get(table.name)
        if multirow is None:
            multirow = _MultiRow.of(stmt, table, dialect, list(rows[0]))
            self._multirow[table.name] = multirow
        return multirow.pages(rows)
