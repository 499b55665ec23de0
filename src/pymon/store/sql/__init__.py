"""The SQL store: SQLAlchemy 2 Core on an async engine, for SQLite and PostgreSQL.

One schema (``schema.py``: every table and what it holds) serves both backends.

Users write plain URLs (``sqlite:///pymon-data/pymon.db``, ``sqlite:////abs.db``,
``sqlite://`` for memory, ``postgresql://user:pw@host:5432/db``); the store picks
the async driver (aiosqlite, asyncpg) itself. Every statement is batched: a
``write`` issues at most one executemany per table (on SQLite, states and results
go as multi-row statements instead), inside one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, event, func, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert

from pymon.errors import StoreError
from pymon.model import Event, Heartbeat, Incident, Notice, ServiceState
from pymon.store.base import Delivery, ResultRecord
from pymon.store.sql.rows import (
    delivery_from_row,
    delivery_rows,
    event_from_row,
    event_row,
    incident_from_row,
    incident_row,
    notice_from_row,
    notice_row,
    result_from_row,
    result_rows,
    state_from_row,
    state_row,
)
from pymon.store.sql.schema import (
    delivery_table,
    event_table,
    fit_ring,
    heartbeat_table,
    incident_table,
    meta_table,
    metadata,
    notice_table,
    result_table,
    state_table,
    window_table,
)

__all__ = [
    "SqlStore",
    "delivery_table",
    "event_table",
    "heartbeat_table",
    "incident_table",
    "meta_table",
    "metadata",
    "notice_table",
    "result_table",
    "state_table",
    "window_table",
]

#: SQLite waits this long for another connection's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: How long opening a PostgreSQL connection may take before it counts as unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 10.0

#: Arbitrary key of the PostgreSQL advisory lock held while creating the schema.
_SCHEMA_LOCK_KEY = 0x70796D6F6E  # "pymon"

# Errors that mean "the database did not take this", as opposed to a bug in pymon:
# SQLAlchemy wraps driver errors; the drivers raise OSError for network trouble,
# OverflowError/ValueError for a value that cannot be bound (an int beyond 64 bits,
# a string that is not valid Unicode), TimeoutError when connecting takes too long.
_DB_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    OSError,
    OverflowError,
    ValueError,
    TimeoutError,
)


def _async_url(url: str) -> URL:
    """Parse a user-facing URL and point it at pymon's async driver for its backend."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid storage URL {url!r}: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "asyncpg"):
            raise StoreError(
                f"storage URL driver {parsed.drivername!r} is not supported; "
                "write postgresql://user:password@host:port/database"
            )
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise StoreError(
                f"storage URL driver {parsed.drivername!r} is not supported; "
                "write sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        return parsed.set(drivername="sqlite+aiosqlite")
    raise StoreError(
        f"storage URL {parsed.render_as_string(hide_password=True)!r} names an "
        "unsupported database; use sqlite:///path.db or postgresql://host/db"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
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


# Runs SqlStore._statements: in a worker thread (benchmarks/variants.py's
# ``store-on-loop`` puts a plain call here to measure what that saves).
_prepare = asyncio.to_thread


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


def _reason(exc: BaseException) -> str:
    """The driver's own words for a failure, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SqlStore:
    """A :class:`~pymon.store.base.Store` on SQLite or PostgreSQL via SQLAlchemy Core.

    ``url`` is the user-facing storage URL; ``history`` is how many results each
    service keeps (the ring size). Call :meth:`open` before anything else and
    :meth:`close` at the end. Every failure to reach or write the database raises
    :class:`~pymon.errors.StoreError` with the driver's reason, chained to the cause.
    ``url`` (the async-driver URL), ``backend`` (``"sqlite"`` or ``"postgresql"``),
    ``history_size`` and ``where`` (for messages) are readable attributes.

    Result history is keyed by ``seq``: an upsert only replaces a slot that holds an
    older ``seq``, so re-sending a batch is harmless and results persisted under a
    service's state are never overwritten by stale ones. ``seq`` therefore has to
    keep rising per service, which it does when the engine resumes from
    :meth:`load_states` (and :meth:`forget` clears a retired service's ring).
    """

    def __init__(self, url: str, history: int = 1000) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history}")
        self.history_size = history
        self.url = _async_url(url)
        self.backend = self.url.get_backend_name()
        self._memory = self.backend == "sqlite" and self.url.database in (None, "", ":memory:")
        # SQLite only: a memory database lives in one shared connection, which cannot
        # hold two transactions at once, so everything queues; a file has one writer
        # at a time anyway, so writers queue here rather than in the busy handler.
        self._lock: asyncio.Lock | None = None
        self._engine: AsyncEngine | None = None
        # Built once: the statements only differ by dialect, never by batch.
        self._state_upsert = self._upsert(state_table, ["name"])
        # Only ever move a ring slot forward: a replayed or stale result must not
        # overwrite a newer one.
        self._result_upsert = self._upsert(result_table, ["service", "slot"], newer_only=True)
        self._heartbeat_upsert = self._upsert(heartbeat_table, ["service"])
        self._window_upsert = self._upsert(window_table, ["id"])
        self._incident_upsert = self._upsert(incident_table, ["id"])
        # A notice already in the outbox stays as it is (it may be delivered already).
        notice_insert: Any = self._insert(notice_table)
        self._notice_insert: Insert = notice_insert.on_conflict_do_nothing(index_elements=["key"])
        self._event_insert = self._insert(event_table)
        self._multirow: dict[str, _MultiRow] = {}
        delivery_insert: Any = self._insert(delivery_table)
        self._delivery_insert: Insert = delivery_insert.on_conflict_do_nothing(
            index_elements=["key", "channel"]
        )
        meta_insert: Any = self._insert(meta_table)
        self._meta_insert: Insert = meta_insert.on_conflict_do_nothing(index_elements=["key"])

    def __repr__(self) -> str:
        shown = self.url.render_as_string(hide_password=True)
        return f"SqlStore({shown!r}, history={self.history_size})"

    @property
    def where(self) -> str:
        """Where the data lives, for messages: a file path or ``host:port/db``."""
        if self.backend == "sqlite":
            return ":memory:" if self._memory else str(Path(self.url.database or "").absolute())
        host = self.url.host or "localhost"
        port = self.url.port or 5432
        return f"{host}:{port}/{self.url.database or ''}"

    async def open(self) -> None:
        """Connect, create the tables that are missing and fit the ring to ``history``.

        Raises :class:`StoreError` naming the database and the reason when the
        server cannot be reached, the file cannot be created, or the schema fails.
        """
        if self._engine is not None:
            return
        what = "PostgreSQL" if self.backend == "postgresql" else "SQLite database"
        engine = await self._create_engine()
        try:
            # Two processes creating one new SQLite file together can both try to
            # switch it to WAL; SQLite then refuses one at once ("database is
            # locked", its busy timeout does not apply to that deadlock), so the
            # first connection is tried again until the busy timeout has passed.
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    await self._set_up(engine)
                    break
                except OperationalError as exc:
                    locked = self.backend == "sqlite" and "database is locked" in str(exc)
                    if not locked or time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(0.05)
        except BaseException as exc:
            await engine.dispose()
            if isinstance(exc, _DB_ERRORS):
                verb = "connect to" if self.backend == "postgresql" else "open"
                raise StoreError(f"cannot {verb} {what} at {self.where}: {_reason(exc)}") from exc
            raise
        self._engine = engine
        self._lock = asyncio.Lock() if self.backend == "sqlite" else None

    async def _set_up(self, engine: AsyncEngine) -> None:
        """Create the missing tables and fit the ring, in one transaction."""
        async with engine.begin() as conn:
            # Two processes may open one database together (cluster members, a
            # restart overlapping the old process, `pymon check`); checking for a
            # table and creating it must not interleave, so schema setup takes
            # turns: an advisory lock on PostgreSQL, the write lock taken up front
            # on SQLite (whose driver would otherwise run the DDL outside any
            # transaction).
            if self.backend == "postgresql":
                await conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            else:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            await conn.run_sync(metadata.create_all)
            await fit_ring(conn, self.history_size)

    async def _create_engine(self) -> AsyncEngine:
        if self.backend == "postgresql":
            return create_async_engine(
                self.url,
                # Survive a PostgreSQL restart: a dead pooled connection is
                # replaced instead of failing the next write.
                pool_pre_ping=True,
                connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S},
            )
        if self._memory:
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
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    async def close(self) -> None:
        """Close every pooled connection. Safe to call twice or without :meth:`open`."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def _connect(self, doing: str, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A connection (a transaction when ``write``), with failures as StoreError."""
        engine = self._open_engine(doing)
        lock = self._lock if (write or self._memory) else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                if lock is not None:
                    await stack.enter_async_context(lock)
                conn = await stack.enter_async_context(
                    engine.begin() if write else engine.connect()
                )
                yield conn
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot {doing} at {self.where}: {_reason(exc)}") from exc

    def _open_engine(self, doing: str) -> AsyncEngine:
        """The engine; StoreError saying what could not be done when the store is not open."""
        if self._engine is None:
            raise StoreError(f"cannot {doing}: the store at {self.where} is not open")
        return self._engine

    def _insert(self, table: Table) -> Insert:
        # ON CONFLICT is dialect syntax; both dialects spell it the same way in Python.
        if self.backend == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    def _upsert(self, table: Table, keys: Sequence[str], *, newer_only: bool = False) -> Insert:
        """INSERT ... ON CONFLICT (keys) DO UPDATE every other column.

        With ``newer_only`` a conflicting row is replaced only by a higher ``seq``.
        """
        stmt: Any = self._insert(table)
        excluded = stmt.excluded
        updates = {c.name: excluded[c.name] for c in table.columns if c.name not in keys}
        where = table.c.seq < excluded.seq if newer_only else None
        upsert: Insert = stmt.on_conflict_do_update(
            index_elements=list(keys), set_=updates, where=where
        )
        return upsert

    async def write(
        self,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        events: Sequence[Event],
        incidents: Sequence[Incident] = (),
        notices: Sequence[Notice] = (),
    ) -> None:
        """Persist one batch in one transaction: all of it, or (on error) none of it.

        States are upserted by name (the last one in the batch wins); results go to
        their ring slots (when two land in the same slot, the higher ``seq`` wins);
        events are appended in order; incidents are upserted by id; notices enter
        the outbox once (a key already there is left alone). One statement per
        table, whatever the size.
        """
        if not (states or results or events or incidents or notices):
            return
        # Turning a batch into rows and parameters is pure Python work, a few
        # thousand rows at a time: done on the loop it stalled every check for as
        # long (the thread takes the GIL in short turns instead). Done before the
        # write lock is taken, so other writers do not wait for it.
        dialect = self._open_engine("write a batch").dialect
        statements = await _prepare(
            self._statements, dialect, states, results, events, incidents, notices
        )
        async with self._connect("write a batch", write=True) as conn:
            for statement, params in statements:
                if isinstance(statement, str):
                    await conn.exec_driver_sql(statement, params)
                else:
                    await conn.execute(statement, params)

    def _statements(
        self,
        dialect: Dialect,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        events: Sequence[Event],
        incidents: Sequence[Incident],
        notices: Sequence[Notice],
    ) -> list[tuple[Insert | str, Any]]:
        """The batch as statements in write order, each with its rows.

        PostgreSQL gets each table's statement with its rows (one executemany);
        SQLite gets multi-row statement text with flat parameters (see _MultiRow).
        Every row of one table has the same keys (one function builds them), so the
        SQLite text is made once per table for the columns of its first row.
        """
        unique_notices = list({n.key: n for n in notices}.values())
        incident_rows = list({i.id: incident_row(i) for i in incidents}.values())
        state_rows = list({s.name: state_row(s) for s in states}.values())
        tables = (
            (self._incident_upsert, incident_table, incident_rows),
            (self._notice_insert, notice_table, [notice_row(n) for n in unique_notices]),
            (self._delivery_insert, delivery_table, delivery_rows(unique_notices)),
            (self._state_upsert, state_table, state_rows),
            (self._result_upsert, result_table, result_rows(results, self.history_size)),
            # Plain INSERT, no RETURNING: the ids are the database's business.
            (self._event_insert, event_table, [event_row(e) for e in events]),
        )
        statements: list[tuple[Insert | str, Any]] = []
        for stmt, table, rows in tables:
            if not rows:
                continue
            if self.backend != "sqlite":
                statements.append((stmt, rows))
                continue
            multirow = self._multirow.get(table.name)
            if multirow is None:
                multirow = _MultiRow.of(stmt, table, dialect, list(rows[0]))
                self._multirow[table.name] = multirow
            statements.extend(multirow.pages(rows))
        return statements

    async def load_states(self) -> dict[str, ServiceState]:
        """Every persisted service state, keyed by service name."""
        async with self._connect("load service states", write=False) as conn:
            rows = (await conn.execute(select(state_table))).mappings().all()
        return {row["name"]: state_from_row(row) for row in rows}

    async def history(self, service: str, limit: int = 100) -> list[ResultRecord]:
        """The newest ``limit`` results of ``service`` (at most ``history_size``), newest first."""
        if limit <= 0:
            return []
        stmt = (
            select(result_table)
            .where(result_table.c.service == service)
            .order_by(result_table.c.seq.desc())
            .limit(limit)
        )
        async with self._connect(f"read the history of {service!r}", write=False) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [result_from_row(row) for row in rows]

    async def events(self, limit: int = 100, service: str | None = None) -> list[Event]:
        """The newest ``limit`` events, of one ``service`` if given, newest first."""
        if limit <= 0:
            return []
        stmt = select(event_table).order_by(event_table.c.id.desc()).limit(limit)
        if service is not None:
            stmt = stmt.where(event_table.c.service == service)
        async with self._connect("read events", write=False) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [event_from_row(row) for row in rows]

    async def open_incidents(self) -> dict[str, Incident]:
        """The open incident of every service that has one, keyed by service name."""
        stmt = select(incident_table).where(incident_table.c.closed_at.is_(None))
        async with self._connect("load open incidents", write=False) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return {row["service"]: incident_from_row(row) for row in rows}

    async def incidents(self, service: str | None = None, limit: int = 100) -> list[Incident]:
        """The newest ``limit`` incidents (of one service if given), newest first."""
        stmt = select(incident_table).order_by(incident_table.c.opened_at.desc()).limit(limit)
        if service is not None:
            stmt = stmt.where(incident_table.c.service == service)
        async with self._connect("read incidents", write=False) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [incident_from_row(row) for row in rows]

    async def notices(self, limit: int = 100) -> list[Notice]:
        """The newest ``limit`` notices, newest first."""
        stmt = select(notice_table).order_by(notice_table.c.at.desc()).limit(limit)
        async with self._connect("read notices", write=False) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [notice_from_row(row) for row in rows]

    async def due_deliveries(self, now: float, limit: int = 100) -> list[Delivery]:
        """Deliveries neither delivered nor given up whose ``next_at`` has come, oldest first."""
        if limit <= 0:
            return []
        d = delivery_table
        stmt = (
            self._delivery_select()
            .where(d.c.delivered_at.is_(None), d.c.failed_at.is_(None), d.c.next_at <= now)
            .order_by(d.c.next_at, d.c.at)
            .limit(limit)
        )
        async with self._connect("read due deliveries", write=False) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [delivery_from_row(row) for row in rows]

    async def next_delivery_at(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        d = delivery_table
        stmt = select(func.min(d.c.next_at)).where(
            d.c.delivered_at.is_(None), d.c.failed_at.is_(None)
        )
        async with self._connect("read the next delivery time", write=False) as conn:
            value = (await conn.execute(stmt)).scalar()
        return None if value is None else float(value)

    async def claim_delivery(
        self, key: str, channel: str, seen: float, until: float, owner: str = ""
    ) -> bool:
        """Take a pending delivery for one attempt: count the attempt and push ``next_at``
        to ``until`` (the lease) for ``owner``, if it is still pending with ``next_at == seen``."""
        d = delivery_table
        stmt = (
            update(d)
            .where(
                d.c.key == key,
                d.c.channel == channel,
                d.c.next_at == seen,
                d.c.delivered_at.is_(None),
                d.c.failed_at.is_(None),
            )
            .values(attempts=d.c.attempts + 1, next_at=until, claimed_by=owner)
        )
        async with self._connect("claim a delivery", write=True) as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def release_claims(self, owner: str, now: float) -> int:
        """Make the leases ``owner`` still holds due at ``now`` (an earlier life of this
        instance died mid-send); returns how many."""
        d = delivery_table
        stmt = (
            update(d)
            .where(
                d.c.claimed_by == owner,
                d.c.next_at > now,
                d.c.delivered_at.is_(None),
                d.c.failed_at.is_(None),
            )
            .values(next_at=now, claimed_by=None)
        )
        async with self._connect("release delivery claims", write=True) as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)

    async def finish_delivery(
        self,
        key: str,
        channel: str,
        *,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Record an attempt's end: delivered (no ``error``), to be retried at ``retry_at``,
        or (an error and no ``retry_at``) given up for good."""
        d = delivery_table
        if error is None:
            values: dict[str, Any] = {"delivered_at": at, "error": None}
        elif retry_at is not None:
            values = {"next_at": retry_at, "error": error, "claimed_by": None}
        else:
            values = {"failed_at": at, "error": error}
        stmt = update(d).where(d.c.key == key, d.c.channel == channel).values(**values)
        async with self._connect("record a delivery", write=True) as conn:
            await conn.execute(stmt)

    async def deliveries(
        self,
        *,
        state: str | None = None,
        service: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Delivery]:
        """Deliveries newest first, optionally only ``pending``, ``delivered`` or ``failed``
        ones, of one ``service``."""
        d = delivery_table
        stmt = self._delivery_select().order_by(d.c.at.desc(), d.c.key, d.c.channel)
        if state == "pending":
            stmt = stmt.where(d.c.delivered_at.is_(None), d.c.failed_at.is_(None))
        elif state == "delivered":
            stmt = stmt.where(d.c.delivered_at.is_not(None))
        elif state == "failed":
            stmt = stmt.where(d.c.failed_at.is_not(None))
        elif state is not None:
            raise ValueError(f"state must be pending, delivered or failed, got {state!r}")
        if service is not None:
            stmt = stmt.where(d.c.service == service)
        async with self._connect("read deliveries", write=False) as conn:
            rows = (await conn.execute(stmt.limit(limit).offset(offset))).mappings().all()
        return [delivery_from_row(row) for row in rows]

    def _delivery_select(self) -> Select[Any]:
        d, n = delivery_table, notice_table
        return select(
            n,
            d.c.channel,
            d.c.attempts,
            d.c.next_at,
            d.c.delivered_at,
            d.c.failed_at,
            d.c.error,
        ).join(n, n.c.key == d.c.key)

    async def keep_meta(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is stored; return the stored one.

        The first writer wins, so instances sharing a database agree on it.
        """
        async with self._connect("store a setting", write=True) as conn:
            await conn.execute(self._meta_insert, [{"key": key, "value": value}])
            stored = await conn.execute(select(meta_table.c.value).where(meta_table.c.key == key))
            return str(stored.scalar_one())

    async def save_window(self, window_id: str, window: Mapping[str, Any]) -> None:
        """Persist a maintenance window added at run time (its JSON form), by id."""
        async with self._connect("save a maintenance window", write=True) as conn:
            await conn.execute(self._window_upsert, [{"id": window_id, "window": dict(window)}])

    async def delete_window(self, window_id: str) -> bool:
        """Remove a run-time maintenance window; False when there was none with that id."""
        stmt = delete(window_table).where(window_table.c.id == window_id)
        async with self._connect("delete a maintenance window", write=True) as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """Every run-time maintenance window (JSON form), keyed by id."""
        async with self._connect("load maintenance windows", write=False) as conn:
            rows = (await conn.execute(select(window_table))).mappings().all()
        return {row["id"]: dict(row["window"]) for row in rows}

    async def save_heartbeat(self, beat: Heartbeat) -> None:
        """Upsert the last push of ``beat.service``, in its own transaction."""
        row = {"service": beat.service, "at": beat.at, "ok": beat.ok, "message": beat.message}
        async with self._connect("save a heartbeat", write=True) as conn:
            await conn.execute(self._heartbeat_upsert, [row])

    async def load_heartbeats(self) -> dict[str, Heartbeat]:
        """The last push of every heartbeat service, keyed by service name."""
        async with self._connect("load heartbeats", write=False) as conn:
            rows = (await conn.execute(select(heartbeat_table))).mappings().all()
        return {r["service"]: Heartbeat(r["service"], r["at"], r["ok"], r["message"]) for r in rows}

    async def forget(self, names: Sequence[str]) -> None:
        """Delete the state, result history and last heartbeat of services that left the config.

        Their events stay: they are the record of what happened. Unknown names are
        ignored. Called on
        reload for removed services, so a later service of the same name starts
        from nothing (and its ``seq`` from zero) instead of inheriting a stale ring.
        """
        if not names:
            return
        unique = sorted(set(names))
        async with self._connect("forget services", write=True) as conn:
            await conn.execute(delete(state_table).where(state_table.c.name.in_(unique)))
            await conn.execute(delete(result_table).where(result_table.c.service.in_(unique)))
            await conn.execute(delete(heartbeat_table).where(heartbeat_table.c.service.in_(unique)))
