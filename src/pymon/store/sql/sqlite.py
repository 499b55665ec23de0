"""What only SQLite needs: pragmas (WAL), the engine for a file or memory, schema setup
that waits out another opener, and batches sent as multi-row statements.

:class:`SqliteBackend` is the store's :class:`~pymon.store.sql.backend.Backend` for
``sqlite://`` URLs (aiosqlite).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Executable,
    LargeBinary,
    Table,
    cast,
    event,
    func,
    literal_column,
    update,
)
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from pymon.errors import StoreError
from pymon.store.sql.rows import json_text
from pymon.store.sql.schema import change_table

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "FenceQuery",
    "SqliteBackend",
    "SqliteBatches",
    "Then",
    "sqlite_text",
]

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
        processors = tuple(_processor(table.c[name].type, dialect) for name in columns)
        # As many rows as the dialect's limit on bound parameters allows: each
        # statement costs a round trip to aiosqlite's thread, and under load every
        # round trip waits for a turn of the busy event loop.
        page = max(1, dialect.insertmanyvalues_max_parameters // len(columns))
        return cls(text[:start], text[start:end], text[end:], columns, processors, page)

    def pages(self, rows: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(statement, flat parameters) for each page of ``rows``."""
        # Every stored result passes here (a state row and a result row per check, in
        # a thread that holds the GIL while it runs): the columns are taken out of a
        # row in one C call, and only the few that need it are processed.
        take = operator.itemgetter(*self.columns)
        fix = [(i, p) for i, p in enumerate(self.processors) if p is not None]
        single = len(self.columns) == 1
        for first in range(0, len(rows), self.page):
            chunk = rows[first : first + self.page]
            params: list[Any] = []
            for row in chunk:
                values = take(row)
                if single:
                    values = (values,)
                if fix:
                    values = list(values)
                    for i, process in fix:
                        values[i] = process(values[i])
                params += values
            yield self.head + ", ".join([self.group] * len(chunk)) + self.tail, tuple(params)

    def pages_of_values(
        self, rows: Sequence[Sequence[Any]]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """:meth:`pages` for rows that are values in :attr:`columns`' order already
        (bound as they are)."""
        for first in range(0, len(rows), self.page):
            chunk = rows[first : first + self.page]
            params = [value for row in chunk for value in row]
            yield self.head + ", ".join([self.group] * len(chunk)) + self.tail, tuple(params)


def _processor(kind: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What turns a value of a column of type ``kind`` into a parameter sqlite3 binds.

    SQLAlchemy's own, but for two types whose processing took a third of a batch's
    CPU: sqlite3 binds a bool as the 1 or 0 SQLAlchemy would send, and JSON is written
    by an encoder made once (``json.dumps`` makes one per value).
    """
    if isinstance(kind, Boolean):
        return None
    if isinstance(kind, JSON):
        return json_text
    return kind.bind_processor(dialect)


#: What a fenced batch asks of the database before it writes: the owner, the shards
#: it writes for, and a check of the epochs found (raises to refuse the batch).
FenceQuery = tuple[str, Sequence[int], Callable[[dict[int, int]], None]]

#: What a batch reads and writes after its statements, in the same transaction (the
#: rollups' read-merge-write): given the connection, the statements to run.
Then = Callable[[sqlite3.Connection], Sequence[tuple[str, Sequence[Any]]]]

_CHANGE_SIGNAL = "UPDATE changes SET seq = seq + 1 WHERE id = 1"


class SqliteBatches:
    """A plain ``sqlite3`` connection of the store's own, used from one thread of its
    own, that writes a whole batch in one go: BEGIN IMMEDIATE, the fence, the
    statements, COMMIT.

    Through aiosqlite every statement is a trip to its thread and back through the
    event loop, and the database's write lock is held all the while: on a saturated
    loop one batch held it for 6-11 s, longer than a cluster's lease, and another
    worker on the same file could not renew its leases. Here the lock is held for
    the writing alone, whatever the loop is doing.
    """

    def __init__(self, path: str, where: str) -> None:
        self._path = path
        self._where = where
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pymon-sqlite-batch")
        self._con: sqlite3.Connection | None = None

    async def write(
        self,
        statements: Sequence[tuple[str, Sequence[Any]]],
        fence: FenceQuery | None = None,
        *,
        signal: bool = False,
        doing: str = "write a batch",
        then: Then | None = None,
    ) -> list[Any]:
        """Write ``statements`` in one transaction; ``fence`` first (its check may
        raise, and then nothing is written); ``signal`` counts a transition; ``then``
        (given the connection inside the transaction) reads what it needs and
        answers more statements to run after them. The rows the last statement
        returned (``RETURNING``); StoreError saying what could not be ``doing``."""
        loop = asyncio.get_running_loop()
        write = functools.partial(
            self._write, statements, fence, signal=signal, doing=doing, then=then
        )
        return await loop.run_in_executor(self._executor, write)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            con = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            _pragmas(con, None)
            self._con = con
        return self._con

    def _write(
        self,
        statements: Sequence[tuple[str, Sequence[Any]]],
        fence: FenceQuery | None,
        *,
        signal: bool,
        doing: str,
        then: Then | None = None,
    ) -> list[Any]:
        try:
            con = self._connection()
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {doing} at {self._where}: {exc}") from exc
        try:
            if fence is not None:
                owner, shards, check = fence
                marks = ",".join("?" * len(shards))
                held = con.execute(
                    f"SELECT shard, epoch FROM shards WHERE owner = ? AND shard IN ({marks})",
                    (owner, *shards),
                ).fetchall()
                check({int(shard): int(epoch) for shard, epoch in held})
            if signal:
                con.execute(_CHANGE_SIGNAL)
            rows: list[Any] = []
            for sql, params in statements:
                rows = con.execute(sql, params).fetchall()
            for sql, params in then(con) if then is not None else ():
                rows = con.execute(sql, params).fetchall()
            con.execute("COMMIT")
            return rows
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            # What the database or the driver refused (a value that does not fit a
            # column included); anything else is pymon's, or the fence's, and goes on.
            if isinstance(exc, sqlite3.Error | OverflowError):
                raise StoreError(f"cannot {doing} at {self._where}: {exc}") from exc
            raise


def sqlite_text(stmt: ClauseElement, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """``stmt`` as SQLite text and its positional parameters (for :class:`SqliteBatches`;
    its values must need no processing: numbers and text)."""
    compiled = stmt.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"not a SQL statement: {stmt!r}")
    params = compiled.construct_params()
    return compiled.string, tuple(params[name] for name in compiled.positiontup or ())


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

    def batches(self) -> SqliteBatches | None:
        """A writer of whole batches in one go, for a file (a memory database lives
        in its one shared connection: None)."""
        if self.memory:
            return None
        return SqliteBatches(str(Path(self.url.database or "")), self.where)

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

    def joined_blobs(self, column: ColumnElement[bytes]) -> ColumnElement[bytes]:
        """``group_concat`` keeps a BLOB's bytes (NULs too) but answers text: cast back."""
        return cast(func.group_concat(column, literal_column("''")), LargeBinary)

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

    def batch_values(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: Sequence[Sequence[Any]]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """:meth:`batch` for rows of values in the table's column order."""
        key = f"{table.name} values"
        multirow = self._multirow.get(key)
        if multirow is None:
            names = [c.name for c in table.columns]
            multirow = _MultiRow.of(stmt, table, dialect, names)
            if list(multirow.columns) != names:
                raise ValueError(f"{table.name}: the statement binds {multirow.columns}")
            self._multirow[key] = multirow
        return multirow.pages_of_values(rows)
