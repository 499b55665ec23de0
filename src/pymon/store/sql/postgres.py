"""What only PostgreSQL needs: a pooled engine that survives a server restart, schema
setup under an advisory lock, and batches sent as one executemany per table.

:class:`PostgresBackend` is the store's :class:`~pymon.store.sql.backend.Backend` for
``postgresql://`` URLs (asyncpg); several pymon instances may share its database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

__all__ = ["POSTGRES_CONNECT_TIMEOUT_S", "PostgresBackend"]

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
        """``host:port/database``."""
        host = self.url.host or "localhost"
        port = self.url.port or 5432
        return f"{host}:{port}/{self.url.database or ''}"

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

    def insert(self, table: Table) -> Insert:
        return pg_dialect.insert(table)

    def batch(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: list[dict[str, Any]]
    ) -> Iterator[tuple[Insert, list[dict[str, Any]]]]:
        """``stmt`` with all of ``rows``: one executemany."""
        yield stmt, rows
