"""What only PostgreSQL needs: a pooled engine that survives a server restart, schema
setup under an advisory lock, and batches sent as one executemany per table.

:class:`PostgresBackend` is the store's :class:`~pymon.store.sql.backend.Backend` for
``postgresql://`` URLs (asyncpg); several pymon instances may share its database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Executable, Table, func, literal_column, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

__all__ = ["CHANGES_CHANNEL", "POSTGRES_CONNECT_TIMEOUT_S", "Listener", "PostgresBackend"]

log = logging.getLogger("pymon.store")

#: The NOTIFY channel a batch that changed services' states signals on.
CHANGES_CHANNEL = "pymon_changes"

#: How long opening a PostgreSQL connection may take before it counts as unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 10.0

#: Arbitrary key of the PostgreSQL advisory lock held while creating the schema.
_SCHEMA_LOCK_KEY = 0x70796D6F6E  # "pymon"


class PostgresBackend:
    """PostgreSQL through asyncpg; the server keeps transactions apart, so nothing queues."""

    name: ClassVar[str] = "postgresql"
    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")
    driver: ClassVar[str] = "asyncpg"
    example: ClassVar[str] = "postgresql://user:password@host:port/database"
    opening: ClassVar[str] = "connect to PostgreSQL"

    def __init__(self, url: URL) -> None:
        self.url = url
        self.queues_writes = False
        self.queues_reads = False

    @property
    def where(self) -> str:
        """``host:port/database``; the hosts in turn for a URL that lists several
        (``postgresql://u@/db?host=a:5432&host=b:5432``, for a primary and replicas)."""
        database = self.url.database or ""
        listed = self.url.query.get("host")
        if not self.url.host and listed:
            hosts = (listed,) if isinstance(listed, str) else tuple(listed)
            return f"{','.join(hosts)}/{database}"
        host = self.url.host or "localhost"
        port = self.url.port or 5432
        return f"{host}:{port}/{database}"

    async def create_engine(self) -> AsyncEngine:
        return create_async_engine(
            self.url,
            # Survive a PostgreSQL restart: a dead pooled connection is
            # replaced instead of failing the next write.
            pool_pre_ping=True,
            connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_S},
        )

    async def set_up(
        self, engine: AsyncEngine, create: Callable[[AsyncConnection], Awaitable[None]]
    ) -> None:
        """``create`` holding a transaction-scoped advisory lock: openers take turns."""
        async with engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            await create(conn)

    def batches(self) -> None:
        """Batches go through the engine: the server keeps transactions apart."""
        return

    def change_signal(self) -> Executable:
        """NOTIFY the other nodes (delivered when the batch commits, not before)."""
        return select(func.pg_notify(CHANGES_CHANNEL, ""))

    async def watch(self, engine: AsyncEngine, on_change: Callable[[], None]) -> Listener:
        """LISTEN for the other nodes' change signals on a connection of its own."""
        listener = Listener(engine, on_change)
        listener.start()
        return listener

    def joined_blobs(self, column: ColumnElement[bytes]) -> ColumnElement[bytes]:
        """``string_agg`` over bytea."""
        joined: ColumnElement[bytes] = func.string_agg(column, literal_column("''::bytea"))
        return joined

    def insert(self, table: Table) -> Insert:
        return pg_dialect.insert(table)

    def batch(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: list[dict[str, Any]]
    ) -> Iterator[tuple[Insert, list[dict[str, Any]]]]:
        """``stmt`` with all of ``rows``: one executemany."""
        yield stmt, rows

    def batch_values(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: Sequence[Sequence[Any]]
    ) -> Iterator[tuple[Insert, list[dict[str, Any]]]]:
        """The rows as mappings, then :meth:`batch` (asyncpg binds by name)."""
        names = [c.name for c in table.columns]
        return self.batch(
            stmt, table, dialect, [dict(zip(names, row, strict=True)) for row in rows]
        )


class Listener:
    """Holds one connection that LISTENs on :data:`CHANGES_CHANNEL` and calls
    ``on_change`` for each signal; reconnects with backoff when the server goes away
    (a restart), and says whether it is connected, so a reader knows when a change
    may have been missed."""

    def __init__(self, engine: AsyncEngine, on_change: Callable[[], None]) -> None:
        self._engine = engine
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    def start(self) -> None:
        """Start listening in a task of its own."""
        self._task = asyncio.create_task(self._run(), name="store-listener")

    async def close(self) -> None:
        """Stop listening and give the connection back."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.connected = False

    def _notified(self, *_: object) -> None:
        self._on_change()

    async def _run(self) -> None:
        wait = 0.5
        while True:
            lost = asyncio.Event()
            try:
                async with self._engine.connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    assert raw is not None
                    raw.add_termination_listener(_setter(lost))
                    await raw.add_listener(CHANGES_CHANNEL, self._notified)
                    self.connected = True
                    wait = 0.5
                    # What changed while this was not listening is unknown: say so.
                    self._on_change()
                    await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("store: listening for changes failed, retry in %gs: %s", wait, exc)
            self.connected = False
            await asyncio.sleep(wait)
            wait = min(wait * 2, 10.0)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    """A callback that sets ``event``, whatever it is given."""
    return lambda _: event.set()
