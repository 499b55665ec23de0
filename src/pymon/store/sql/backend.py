"""What differs between SQLite and PostgreSQL, behind one interface.

:class:`Backend` is all the store asks of a database; ``sqlite.py`` and
``postgres.py`` each hold one that fits it (the ``_BACKENDS`` table below is the
check that both do). :func:`backend_for` picks one for a user's storage URL. Also
here: the upserts both dialects spell alike, and which errors mean "the database
did not take this".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

from sqlalchemy import ColumnElement, Executable, Table
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from pymon.errors import StoreError
from pymon.store.sql.postgres import PostgresBackend
from pymon.store.sql.sqlite import SqliteBackend, SqliteBatches

__all__ = ["DB_ERRORS", "Backend", "Watch", "backend_for", "insert_new", "reason", "upsert"]


class Watch(Protocol):
    """A running subscription to change signals."""

    @property
    def connected(self) -> bool:
        """Whether signals arrive now (else a change may go unseen: read anyway)."""
        ...

    async def close(self) -> None:
        """Stop listening."""
        ...


class Backend(Protocol):
    """One database kind, for one storage URL."""

    #: SQLAlchemy's backend name: ``"sqlite"`` or ``"postgresql"``.
    name: ClassVar[str]
    #: The URL schemes users write for it, and the one async driver pymon uses.
    schemes: ClassVar[tuple[str, ...]]
    driver: ClassVar[str]
    #: How its URLs look, for the message about one that does not.
    example: ClassVar[str]
    #: What failed when :meth:`create_engine` or :meth:`set_up` fails ("open SQLite database").
    opening: ClassVar[str]

    #: The URL with the async driver.
    url: URL
    #: Writers queue in the store for one lock; readers too when ``queues_reads``.
    queues_writes: bool
    queues_reads: bool

    def __init__(self, url: URL) -> None: ...

    @property
    def where(self) -> str:
        """Where the data lives, for messages."""
        ...

    async def create_engine(self) -> AsyncEngine:
        """A new engine for :attr:`url` (StoreError when it cannot be made)."""
        ...

    async def set_up(
        self, engine: AsyncEngine, create: Callable[[AsyncConnection], Awaitable[None]]
    ) -> None:
        """Run ``create`` (missing tables, the ring's fit) in one transaction, in turn.

        Two processes may open one database together (cluster members, a restart
        overlapping the old process, ``pymon check``); checking for a table and
        creating it must not interleave, so schema setup takes turns.
        """
        ...

    def joined_blobs(self, column: ColumnElement[bytes]) -> ColumnElement[bytes]:
        """An aggregate: the BLOBs of ``column`` in a group, end to end (NULLs left
        out), so a report reads one value per service instead of a row per bucket."""
        ...

    def insert(self, table: Table) -> Insert:
        """An INSERT into ``table`` in this dialect (which has ON CONFLICT)."""
        ...

    def batches(self) -> SqliteBatches | None:
        """A writer of whole batches in one go outside the async driver, where the
        database needs one (a SQLite file); None: batches go through the engine."""
        ...

    def change_signal(self) -> Executable:
        """The statement a batch that changes services' states runs in its
        transaction, so other nodes learn of it (a counter, or a NOTIFY)."""
        ...

    async def watch(self, engine: AsyncEngine, on_change: Callable[[], None]) -> Watch | None:
        """Call ``on_change`` whenever another connection signals a change, if the
        database can push (None: poll :func:`change_count` instead)."""
        ...

    def batch(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: list[dict[str, Any]]
    ) -> Iterable[tuple[Insert | str, Any]]:
        """``stmt`` with ``rows`` (all with the same keys), as (statement, parameters)
        to execute in turn."""
        ...

    def batch_values(
        self, stmt: Insert, table: Table, dialect: Dialect, rows: Sequence[Sequence[Any]]
    ) -> Iterable[tuple[Insert | str, Any]]:
        """:meth:`batch` for rows given as values in ``table``'s column order, every
        column given, each value what the driver binds as it is (no type's
        processing): for the hottest rows, where building and reading a dict per
        row costs more than the database's own work."""
        ...


_BACKENDS: tuple[type[Backend], ...] = (PostgresBackend, SqliteBackend)

# Errors that mean "the database did not take this", as opposed to a bug in pymon:
# SQLAlchemy wraps driver errors; the drivers raise OSError for network trouble,
# OverflowError/ValueError for a value that cannot be bound (an int beyond 64 bits,
# a string that is not valid Unicode), TimeoutError when connecting takes too long.
DB_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    OSError,
    OverflowError,
    ValueError,
    TimeoutError,
)


def backend_for(url: str) -> Backend:
    """The backend for a user-facing URL, pointed at pymon's async driver for it."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid storage URL {url!r}: {exc}") from exc
    scheme, _, driver = parsed.drivername.partition("+")
    for kind in _BACKENDS:
        if scheme not in kind.schemes:
            continue
        if driver not in ("", kind.driver):
            raise StoreError(
                f"storage URL driver {parsed.drivername!r} is not supported; write {kind.example}"
            )
        return kind(parsed.set(drivername=f"{kind.name}+{kind.driver}"))
    raise StoreError(
        f"storage URL {parsed.render_as_string(hide_password=True)!r} names an "
        "unsupported database; use sqlite:///path.db or postgresql://host/db"
    )


def reason(exc: BaseException) -> str:
    """The driver's own words for a failure, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def upsert(insert: Insert, keys: Sequence[str], *, newer_only: bool = False) -> Insert:
    """``insert`` ON CONFLICT (keys) DO UPDATE every other column of its table.

    With ``newer_only`` a conflicting row is replaced only by a higher ``seq``.
    """
    # ON CONFLICT is dialect syntax; both dialects spell it the same way in Python.
    stmt: Any = insert
    table, excluded = stmt.table, stmt.excluded
    updates = {c.name: excluded[c.name] for c in table.columns if c.name not in keys}
    where = table.c.seq < excluded.seq if newer_only else None
    result: Insert = stmt.on_conflict_do_update(
        index_elements=list(keys), set_=updates, where=where
    )
    return result


def insert_new(insert: Insert, keys: Sequence[str]) -> Insert:
    """``insert`` ON CONFLICT (keys) DO NOTHING: a row already there stays as it is."""
    stmt: Any = insert
    result: Insert = stmt.on_conflict_do_nothing(index_elements=list(keys))
    return result
