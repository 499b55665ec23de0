"""The SQL store: :class:`SqlStore`, SQLAlchemy 2 Core on an async engine, for SQLite
and PostgreSQL. The package holds:

``__init__.py``
    SqlStore, the one implementation of :class:`~pymon.store.base.Store`: opening,
    batched writes, queries; it re-exports the tables.
``schema.py``
    the tables, each named with what it holds, and the ring's re-slotting.
``rows.py``
    row codecs: pymon's values as rows and back.
``deliveries.py``
    the outbox's statements: due deliveries, claims (leases), their release.
``cluster.py``, ``commands.py``
    the cluster's statements: nodes, leases and fencing; commands for another
    node (sent, taken once, answered, pruned).
``buckets.py``
    the rollups' rows: added to by the upsert in the writing transaction (the
    histogram merged in Python), read by window or summed per service, pruned
    after the retention.
``turns.py``
    writers' turns: one at a time, the outbox's records before queued batches.
``backend.py``
    the Backend interface (what differs between the databases) and picking one
    for a URL; ``sqlite.py`` and ``postgres.py`` are the two that fit it.

Users write plain URLs (``sqlite:///pymon-data/pymon.db``, ``sqlite:////abs.db``,
``sqlite://`` for memory, ``postgresql://user:pw@host:5432/db``); the store picks
the async driver (aiosqlite, asyncpg) itself. Every statement is batched: a
``write`` issues at most one executemany per table (on SQLite, multi-row
statements instead), inside one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, delete, or_, select
from sqlalchemy.engine import Dialect, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from pymon.errors import Fenced, StoreError
from pymon.model import Event, Heartbeat, Incident, Notice, ServiceState
from pymon.store.base import (
    CommandRecord,
    Delivery,
    Fence,
    Lease,
    NodeRecord,
    Outcome,
    ResultRecord,
)
from pymon.store.sql import buckets, cluster, commands, deliveries
from pymon.store.sql.backend import DB_ERRORS, Watch, backend_for, insert_new, reason, upsert
from pymon.store.sql.rows import (
    delivery_from_row,
    delivery_rows,
    event_from_row,
    event_row,
    heartbeat_from_row,
    heartbeat_row,
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
    change_table,
    command_table,
    delivery_table,
    event_table,
    fit_ring,
    heartbeat_table,
    incident_table,
    meta_table,
    metadata,
    node_table,
    notice_table,
    result_table,
    rollup_table,
    shard_table,
    state_table,
    window_table,
)
from pymon.store.sql.sqlite import FenceQuery, SqliteBatches, sqlite_text
from pymon.store.sql.turns import Turns
from pymon.uptime import HOUR, Bucket, Delta, Totals

__all__ = ["SqlStore"]

# Runs SqlStore._statements: in a worker thread. The benchmarks (variants.py's
# ``store-on-loop``, components.py) put a plain call in ``pymon.store.sql._prepare``
# to measure what that saves, so it lives here, beside SqlStore, which looks it up.
_prepare = asyncio.to_thread


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
        self._db = backend_for(url)
        self.url = self._db.url
        self.backend = self._db.name
        # Writers (and on a memory database, readers) queue for this lock: see
        # Backend.queues_writes.
        self._turns: Turns | None = None
        self._engine: AsyncEngine | None = None
        # SQLite files: whole batches written in one go from a thread (SqliteBatches).
        self._batches: SqliteBatches | None = None
        # Change signals heard (PostgreSQL's LISTEN): see change_mark.
        self._watch: Watch | None = None
        self._signals = 0
        # Built once: the statements only differ by dialect, never by batch.
        insert = self._db.insert
        self._state_upsert = upsert(insert(state_table), ["name"])
        # Only ever move a ring slot forward: a replayed or stale result must not
        # overwrite a newer one.
        self._result_upsert = upsert(insert(result_table), ["service", "slot"], newer_only=True)
        self._heartbeat_upsert = upsert(insert(heartbeat_table), ["service"])
        self._window_upsert = upsert(insert(window_table), ["id"])
        self._incident_upsert = upsert(insert(incident_table), ["id"])
        # A notice already in the outbox stays as it is (it may be delivered already).
        self._notice_insert = insert_new(insert(notice_table), ["key"])
        self._event_insert = insert(event_table)
        self._delivery_insert = insert_new(insert(delivery_table), ["key", "channel"])
        self._meta_insert = insert_new(insert(meta_table), ["key"])
        self._node_upsert = upsert(insert(node_table), ["name"])
        self._shard_insert = insert_new(insert(shard_table), ["shard"])
        self._command_insert = insert(command_table)
        # A bucket's row has the delta added to it (the histogram: merged in Python).
        self._rollup_upsert = buckets.added_upsert(insert(rollup_table))
        # The histograms this store wrote last, so the next flush need not read them.
        self._written = buckets.Written()

    def __repr__(self) -> str:
        shown = self.url.render_as_string(hide_password=True)
        return f"SqlStore({shown!r}, history={self.history_size})"

    @property
    def where(self) -> str:
        """Where the data lives, for messages: a file path or ``host:port/db``."""
        return self._db.where

    async def open(self) -> None:
        """Connect, create the tables that are missing and fit the ring to ``history``.

        Raises :class:`StoreError` naming the database and the reason when the
        server cannot be reached, the file cannot be created, or the schema fails.
        """
        if self._engine is not None:
            return
        engine = await self._db.create_engine()
        try:
            await self._db.set_up(engine, self._create)
        except BaseException as exc:
            await engine.dispose()
            if isinstance(exc, DB_ERRORS):
                raise StoreError(
                    f"cannot {self._db.opening} at {self.where}: {reason(exc)}"
                ) from exc
            raise
        self._engine = engine
        self._turns = Turns() if self._db.queues_writes else None
        self._batches = self._db.batches()

    async def _create(self, conn: AsyncConnection) -> None:
        """Create the missing tables and fit the ring (in the backend's setup transaction)."""
        await buckets.drop_first_version(conn)
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert_new(self._db.insert(change_table), ["id"]), [{"id": 1, "seq": 0}])
        await fit_ring(conn, self.history_size)

    async def change_mark(self) -> int:
        """A number that moves whenever a batch with a transition (an event, an incident
        or a notice) was committed by any node: read the others' services again only
        when it moved. PostgreSQL pushes it (LISTEN, started on first use); while that
        is not connected, every call answers a new number. SQLite's is polled."""
        engine = self._open_engine("read the change mark")
        if self._db.name == "sqlite":
            rows = await self._read("read the change mark", select(change_table.c.seq))
            return int(rows[0]["seq"]) if rows else 0
        if self._watch is None:
            self._watch = await self._db.watch(engine, self._signalled)
        if self._watch is None or not self._watch.connected:
            self._signals += 1
        return self._signals

    def _signalled(self) -> None:
        self._signals += 1

    async def close(self) -> None:
        """Close every pooled connection. Safe to call twice or without :meth:`open`."""
        if self._watch is not None:
            await self._watch.close()
            self._watch = None
        if self._batches is not None:
            await self._batches.close()
            self._batches = None
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def _connect(
        self, doing: str, *, write: bool, urgent: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A connection (a transaction when ``write``), with failures as StoreError;
        ``urgent`` goes before the writers still waiting for their turn."""
        engine = self._open_engine(doing)
        turns = self._turns if (write or self._db.queues_reads) else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                if turns is not None:
                    await stack.enter_async_context(turns.turn(urgent=urgent))
                conn = await stack.enter_async_context(
                    engine.begin() if write else engine.connect()
                )
                yield conn
        except DB_ERRORS as exc:
            raise StoreError(f"cannot {doing} at {self.where}: {reason(exc)}") from exc

    @contextlib.asynccontextmanager
    async def _turn(self, doing: str) -> AsyncIterator[None]:
        """This process's turn to write (see :class:`Turns`), without a connection."""
        self._open_engine(doing)
        if self._turns is None:
            yield
            return
        async with self._turns.turn():
            yield

    def _open_engine(self, doing: str) -> AsyncEngine:
        """The engine; StoreError saying what could not be done when the store is not open."""
        if self._engine is None:
            raise StoreError(f"cannot {doing}: the store at {self.where} is not open")
        return self._engine

    async def write(
        self,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        events: Sequence[Event],
        incidents: Sequence[Incident] = (),
        notices: Sequence[Notice] = (),
        rollups: Sequence[Delta] = (),
        *,
        fence: Fence | None = None,
    ) -> None:
        """Persist one batch in one transaction: all of it, or (on error) none of it.

        With a ``fence``, the batch lands only while its node still holds every shard
        it writes for at the epoch it was given; else nothing is written and
        :class:`Fenced` names the shards that were taken.

        States are upserted by name (the last one in the batch wins); results go to
        their ring slots (when two land in the same slot, the higher ``seq`` wins);
        events are appended in order; incidents are upserted by id; notices enter
        the outbox once (a key already there is left alone); rollups' deltas are
        added to the stored buckets by the upsert (the histogram merged with the
        stored one, read inside the transaction when not remembered). One statement
        per table, whatever the size (and one read per 500 services for the
        histograms not remembered).
        """
        if not (states or results or events or incidents or notices or rollups):
            return
        # Turning a batch into rows and parameters is pure Python work, a few
        # thousand rows at a time: done on the loop it stalled every check for as
        # long (the thread takes the GIL in short turns instead). Done before the
        # write lock is taken, so other writers do not wait for it.
        dialect = self._open_engine("write a batch").dialect
        statements = await _prepare(
            self._statements, dialect, states, results, events, incidents, notices
        )
        touched = _touched(fence, states, results, events, incidents, notices, rollups)
        signal = bool(events or incidents or notices)
        # The histograms the rollups' rows hold once written: remembered only after
        # the commit (the remembered ones are added to in place: forgotten if it fails).
        landed: list[buckets.Held] = []
        if self._batches is not None:
            query: FenceQuery | None = None
            if fence is not None and touched:
                query = (fence.owner, touched, functools.partial(_compare, fence, touched))
            # The rollups' deltas are added up, matched with what is remembered and
            # turned into rows in the writer's thread: two a check, off the loop.
            then = (
                functools.partial(self._merge_sqlite, dialect, rollups, fence, landed)
                if rollups
                else None
            )
            try:
                async with self._turn("write a batch"):
                    await self._batches.write(_texts(statements), query, signal=signal, then=then)
            except BaseException:
                self._written.drop(buckets.key_of(b) for b in rollups)
                raise
            self._written.keep(landed, fence)
            return
        deltas = buckets.coalesce(rollups)
        known, unknown = self._written.known(deltas, fence)
        try:
            await self._write_through_engine(
                statements, dialect, deltas, known, unknown, landed, fence, touched, signal
            )
        except BaseException:
            self._written.drop(deltas)
            raise
        self._written.keep(landed, fence)

    async def _write_through_engine(
        self,
        statements: list[tuple[Insert | str, Any]],
        dialect: Dialect,
        deltas: Mapping[buckets.Key, Delta],
        known: Mapping[buckets.Key, dict[int, int]],
        unknown: Mapping[buckets.Key, Delta],
        landed: list[buckets.Held],
        fence: Fence | None,
        touched: list[int],
        signal: bool,
    ) -> None:
        """A batch in one transaction through the async engine (PostgreSQL, or a
        memory SQLite database); ``landed`` gets the rollups' buckets written."""
        async with self._connect("write a batch", write=True) as conn:
            if fence is not None and touched:
                await _check_fence(conn, fence, touched)
            if signal:
                # A transition: other nodes showing this service read it again now.
                await conn.execute(self._db.change_signal())
            for statement, params in statements:
                await _execute(conn, statement, params)
            if deltas:
                stored = [
                    tuple(row)
                    for query_ in buckets.stored_query(unknown)
                    for row in (await conn.execute(query_)).all()
                ]
                rows, whole = buckets.merged_rows(deltas, stored, known)
                landed.extend(whole)
                for statement, params in self._db.batch_values(
                    self._rollup_upsert, rollup_table, dialect, rows
                ):
                    await _execute(conn, statement, params)

    def _merge_sqlite(
        self,
        dialect: Dialect,
        rollups: Sequence[Delta],
        fence: Fence | None,
        landed: list[buckets.Held],
        con: sqlite3.Connection,
    ) -> list[tuple[str, Sequence[Any]]]:
        """The rollups' upserts: the deltas added up by bucket, with their histograms
        added to those remembered, or read on the SQLite writer's own connection,
        inside its transaction; ``landed`` gets the histograms written."""
        deltas = buckets.coalesce(rollups)
        known, unknown = self._written.known(deltas, fence)
        stored = [
            row
            for sql, params in buckets.stored_sqlite(unknown)
            for row in con.execute(sql, params)
        ]
        merged, whole = buckets.merged_bins(deltas, stored, known)
        landed.extend(whole)
        texts, rows = buckets.sqlite_upserts(merged, dialect.insertmanyvalues_max_parameters)
        upserts = self._db.batch_values(self._rollup_upsert, rollup_table, dialect, rows)
        return [*texts, *_texts(list(upserts))]

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = HOUR
    ) -> list[Bucket]:
        """The stored buckets of width ``width`` of ``names`` (every service when None)
        overlapping ``since``..``until``, by service then start."""
        if names is not None and not names:
            return []
        chunks: list[Sequence[str] | None] = [None]
        if names is not None:
            unique = sorted(set(names))
            chunks = [
                unique[i : i + buckets.KEY_CHUNK] for i in range(0, len(unique), buckets.KEY_CHUNK)
            ]
        out: list[Bucket] = []
        for chunk in chunks:
            stmt = buckets.window_query(chunk, since, until, width)
            out.extend(buckets.bucket_from_row(r) for r in await self._read("read rollups", stmt))
        return out

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int = HOUR,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        """The stored buckets :meth:`rollups` would answer, added up per service: those
        wholly inside the window summed in the database (their histograms joined
        into one value per service, merged here), the few at its edges scaled to
        their share inside it as ``summarize`` does: no Bucket per row (docs/performance.md, "Uptime
        rollups"). Services with no bucket are left out."""
        out: dict[str, Totals] = {}
        if names is not None and not names:
            return out
        chunks: list[Sequence[str] | None] = [None]
        if names is not None:
            unique = sorted(set(names))
            chunks = [
                unique[i : i + buckets.KEY_CHUNK] for i in range(0, len(unique), buckets.KEY_CHUNK)
            ]
        # Buckets that end by ``inner`` count whole; the rest (the window's edges, the
        # bucket holding ``now``) are scaled one by one.
        inner = until if now is None else min(until, now)
        for chunk in chunks:
            sums = buckets.totals_query(chunk, since, inner, width, self._db.joined_blobs)
            edges = buckets.edges_query(chunk, since, until, width, inner)
            async with self._connect("read rollups", write=False) as conn:
                buckets.sum_totals((await conn.execute(sums)).all(), out)
                rows = (await conn.execute(edges)).mappings().all()
            for row in rows:
                bucket = buckets.bucket_from_row(row)
                out.setdefault(bucket.service, Totals()).add_within(bucket, since, until, now)
        return out

    async def incidents_between(
        self, names: Sequence[str] | None, since: float, until: float
    ) -> list[Incident]:
        """Incidents (of ``names``, every service when None) open at some time within
        ``since``..``until``, oldest first."""
        t = incident_table
        stmt = select(t).where(
            t.c.opened_at < until, or_(t.c.closed_at.is_(None), t.c.closed_at > since)
        )
        if names is not None:
            if not names:
                return []
            stmt = stmt.where(t.c.service.in_(sorted(set(names))))
        rows = await self._read("read incidents", stmt.order_by(t.c.opened_at, t.c.id))
        return [incident_from_row(row) for row in rows]

    async def prune_rollups(self, before: float, limit: int = 10_000) -> int:
        """Delete at most ``limit`` buckets that ended before ``before``; how many."""
        return await self._change("prune rollups", buckets.prune(before, limit))

    def _statements(
        self,
        dialect: Dialect,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        events: Sequence[Event],
        incidents: Sequence[Incident],
        notices: Sequence[Notice],
    ) -> list[tuple[Insert | str, Any]]:
        """The batch as (statement, parameters) in write order: each table's rows as
        its backend sends them (PostgreSQL: one executemany; SQLite: multi-row text)."""
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
            if rows:
                statements.extend(self._db.batch(stmt, table, dialect, rows))
        return statements

    async def _read(self, doing: str, stmt: Executable) -> Sequence[RowMapping]:
        """The rows ``stmt`` reads (StoreError saying what could not be ``doing``)."""
        async with self._connect(doing, write=False) as conn:
            return (await conn.execute(stmt)).mappings().all()

    async def _change(self, doing: str, stmt: Executable, *, urgent: bool = False) -> int:
        """Run ``stmt`` in a transaction of its own; how many rows it changed."""
        async with self._connect(doing, write=True, urgent=urgent) as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)

    async def load_states(self, names: Sequence[str] | None = None) -> dict[str, ServiceState]:
        """Every persisted service state (of ``names`` only, if given), keyed by name."""
        stmt = select(state_table)
        if names is not None:
            stmt = stmt.where(state_table.c.name.in_(list(names)))
        rows = await self._read("load service states", stmt)
        return {row["name"]: state_from_row(row) for row in rows}

    async def history(self, service: str, limit: int = 100) -> list[ResultRecord]:
        """The newest ``limit`` results of ``service`` (at most ``history_size``), newest first."""
        if limit <= 0:
            return []
        t = result_table
        stmt = select(t).where(t.c.service == service).order_by(t.c.seq.desc()).limit(limit)
        rows = await self._read(f"read the history of {service!r}", stmt)
        return [result_from_row(row) for row in rows]

    async def events(self, limit: int = 100, service: str | None = None) -> list[Event]:
        """The newest ``limit`` events, of one ``service`` if given, newest first."""
        if limit <= 0:
            return []
        stmt = select(event_table).order_by(event_table.c.id.desc()).limit(limit)
        if service is not None:
            stmt = stmt.where(event_table.c.service == service)
        return [event_from_row(row) for row in await self._read("read events", stmt)]

    async def open_incidents(self) -> dict[str, Incident]:
        """The open incident of every service that has one, keyed by service name."""
        stmt = select(incident_table).where(incident_table.c.closed_at.is_(None))
        rows = await self._read("load open incidents", stmt)
        return {row["service"]: incident_from_row(row) for row in rows}

    async def incidents(self, service: str | None = None, limit: int = 100) -> list[Incident]:
        """The newest ``limit`` incidents (of one service if given), newest first."""
        stmt = select(incident_table).order_by(incident_table.c.opened_at.desc()).limit(limit)
        if service is not None:
            stmt = stmt.where(incident_table.c.service == service)
        return [incident_from_row(row) for row in await self._read("read incidents", stmt)]

    async def notices(self, limit: int = 100) -> list[Notice]:
        """The newest ``limit`` notices, newest first."""
        stmt = select(notice_table).order_by(notice_table.c.at.desc()).limit(limit)
        return [notice_from_row(row) for row in await self._read("read notices", stmt)]

    async def due_deliveries(self, now: float, limit: int = 100) -> list[Delivery]:
        """Deliveries neither delivered nor given up whose ``next_at`` has come, oldest first."""
        if limit <= 0:
            return []
        rows = await self._read("read due deliveries", deliveries.due(now, limit))
        return [delivery_from_row(row) for row in rows]

    async def next_delivery_at(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        async with self._connect("read the next delivery time", write=False) as conn:
            value = (await conn.execute(deliveries.next_due())).scalar()
        return None if value is None else float(value)

    async def claim_delivery(
        self, key: str, channel: str, seen: float, until: float, owner: str = ""
    ) -> bool:
        """Take a pending delivery for one attempt: count the attempt and push ``next_at``
        to ``until`` (the lease) for ``owner``, if it is still pending with ``next_at == seen``."""
        stmt = deliveries.claim(key, channel, seen, until, owner)
        return bool(await self._change("claim a delivery", stmt))

    async def release_claims(self, owner: str, now: float) -> int:
        """Make the leases ``owner`` still holds due at ``now`` (an earlier life of this
        instance died mid-send); returns how many."""
        return await self._change("release delivery claims", deliveries.release(owner, now))

    async def finish_delivery(
        self,
        key: str,
        channel: str,
        *,
        retry_at: float | None = None,
        error: str | None = None,
        at: float,
    ) -> None:
        """Record an attempt's end: delivered (no ``error``), to be retried at ``retry_at``,
        or (an error and no ``retry_at``) given up for good. Urgent: it goes before
        queued batch writes (a mail already out is sent again if a crash comes first)."""
        await self.finish_deliveries([Outcome(key, channel, at, error, retry_at)])

    async def finish_deliveries(self, outcomes: Sequence[Outcome]) -> None:
        """Record several attempts' ends in one transaction (the outbox gathers those
        that end while a record is being written: one commit, not one each). Urgent,
        like :meth:`finish_delivery`."""
        if not outcomes:
            return
        async with self._connect("record deliveries", write=True, urgent=True) as conn:
            for o in outcomes:
                await conn.execute(
                    deliveries.finish(o.key, o.channel, at=o.at, error=o.error, retry_at=o.retry_at)
                )

    async def deliveries(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        state: str | None = None,
        service: str | None = None,
    ) -> list[Delivery]:
        """Deliveries newest first, optionally only ``pending``, ``delivered`` or ``failed``
        ones, of one ``service``."""
        stmt = deliveries.listing(state, service).limit(limit).offset(offset)
        return [delivery_from_row(row) for row in await self._read("read deliveries", stmt)]

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
        return bool(await self._change("delete a maintenance window", stmt))

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """Every run-time maintenance window (JSON form), keyed by id."""
        rows = await self._read("load maintenance windows", select(window_table))
        return {row["id"]: dict(row["window"]) for row in rows}

    async def save_heartbeat(self, beat: Heartbeat) -> None:
        """Upsert the last push of ``beat.service``, in its own transaction."""
        async with self._connect("save a heartbeat", write=True) as conn:
            await conn.execute(self._heartbeat_upsert, [heartbeat_row(beat)])

    async def load_heartbeats(self) -> dict[str, Heartbeat]:
        """The last push of every heartbeat service, keyed by service name."""
        rows = await self._read("load heartbeats", select(heartbeat_table))
        return {row["service"]: heartbeat_from_row(row) for row in rows}

    # -- the cluster (docs/cluster.md) ---------------------------------------------------

    async def add_shards(self, count: int) -> None:
        """Create shards 0 to ``count - 1`` where missing (nobody's, epoch 0)."""
        async with self._connect("create shards", write=True) as conn:
            await conn.execute(self._shard_insert, cluster.shard_rows(count))

    async def node_stopped(self, name: str, at: float) -> None:
        """Mark node ``name`` as stopped cleanly at ``at``."""
        await self._change("mark a node stopped", cluster.stopped(name, at), urgent=True)

    async def nodes(self) -> list[NodeRecord]:
        """Every node that ever beat on this database, by name."""
        return [cluster.node_from_row(r) for r in await self._read("read nodes", cluster.nodes())]

    async def leases(self) -> list[Lease]:
        """Every shard's lease, by shard."""
        rows = await self._read("read shard leases", cluster.leases())
        return [cluster.lease_from_row(r) for r in rows]

    async def claim_shards(
        self, owner: str, shards: Sequence[int], now: float, until: float
    ) -> dict[int, int]:
        """Take those of ``shards`` that are free or whose lease ended before ``now``,
        until ``until``; the epoch of each one taken, by shard."""
        if not shards:
            return {}
        stmt = cluster.claim(owner, sorted(shards), now, until)
        return await self._shard_epochs("claim shards", stmt)

    async def keep_leases(self, node: NodeRecord, until: float) -> dict[int, int]:
        """Write ``node``'s heartbeat row and extend its leases to ``until``; the epoch
        of each shard it holds now.

        One transaction. On a SQLite file it goes straight to the batch writer's
        thread, behind at most the batch being written: through the async driver
        each statement waited for a turn of the event loop, and an overloaded node's
        loop (a second behind) took 3-5 s to renew, holding the file's write lock
        all the while, so that both nodes on the file lost their leases in turn
        (docs/performance.md, "Overload on one SQLite file").
        """
        renewal = cluster.renew(node.name, until)
        if self._batches is not None:
            dialect = self._open_engine("renew shard leases").dialect
            heartbeat = self._db.batch(
                self._node_upsert, node_table, dialect, [cluster.node_row(node)]
            )
            rows = await self._batches.write(
                [*_texts(list(heartbeat)), sqlite_text(renewal, dialect)],
                doing="renew shard leases",
            )
        else:
            async with self._connect("renew shard leases", write=True, urgent=True) as conn:
                await conn.execute(self._node_upsert, [cluster.node_row(node)])
                rows = list((await conn.execute(renewal)).all())
        return {int(shard): int(epoch) for shard, epoch in rows}

    async def release_shards(self, owner: str, shards: Sequence[int]) -> None:
        """Give ``shards`` up at once, for another node to claim."""
        if shards:
            stmt = cluster.release(owner, sorted(shards))
            await self._change("release shards", stmt, urgent=True)

    async def _shard_epochs(self, doing: str, stmt: Executable) -> dict[int, int]:
        async with self._connect(doing, write=True, urgent=True) as conn:
            rows = (await conn.execute(stmt)).all()
        return {int(shard): int(epoch) for shard, epoch in rows}

    # Commands go before queued batches (urgent): an operator waits for each answer.

    async def send_command(
        self, service: str, kind: str, arguments: Mapping[str, Any], origin: str, at: float
    ) -> str:
        """Queue a command for the node that runs ``service``; its id (random)."""
        command_id = uuid.uuid4().hex
        row = {
            "id": command_id,
            "service": service,
            "kind": kind,
            "arguments": dict(arguments),
            "origin": origin,
            "created_at": at,
        }
        async with self._connect("send a command", write=True, urgent=True) as conn:
            await conn.execute(self._command_insert, [row])
        return command_id

    async def open_commands(self, since: float, limit: int = 100) -> list[CommandRecord]:
        """Commands nobody took yet, sent at or after ``since``, oldest first."""
        if limit <= 0:
            return []
        rows = await self._read("read open commands", commands.open_since(since, limit))
        return [commands.command_from_row(row) for row in rows]

    async def take_commands(self, owner: str, ids: Sequence[str], at: float) -> list[CommandRecord]:
        """Take those of ``ids`` nobody took yet for ``owner`` (one statement: of two
        nodes taking one command, one gets it); the ones taken, oldest first."""
        if not ids:
            return []
        stmt = commands.take(owner, sorted(set(ids)), at)
        async with self._connect("take commands", write=True, urgent=True) as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        taken = [commands.command_from_row(row) for row in rows]
        return sorted(taken, key=lambda c: (c.created_at, c.id))

    async def finish_command(
        self,
        command_id: str,
        at: float,
        *,
        answer: Mapping[str, Any] | None = None,
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        """Record a taken command's answer, or its error and the error's kind."""
        stmt = commands.finish(command_id, at, answer, error, error_kind)
        await self._change("answer a command", stmt, urgent=True)

    async def withdraw_command(self, command_id: str, at: float) -> bool:
        """Close a command nobody took yet; False when a node took it already."""
        stmt = commands.withdraw(command_id, at)
        return bool(await self._change("withdraw a command", stmt, urgent=True))

    async def command(self, command_id: str) -> CommandRecord | None:
        """One command as it stands, None when there is none with that id."""
        rows = await self._read("read a command", commands.find(command_id))
        return commands.command_from_row(rows[0]) if rows else None

    async def prune_commands(self, before: float) -> int:
        """Delete the commands sent before ``before``, answered or not; how many."""
        return await self._change("prune commands", commands.prune(before))

    async def forget(self, names: Sequence[str]) -> None:
        """Delete the state, result history and last heartbeat of services that left the config.

        Their events stay: they are the record of what happened. Unknown names are
        ignored. Called on reload for removed services, so a later service of the
        same name starts from nothing (and its ``seq`` from zero) instead of
        inheriting a stale ring.
        """
        if not names:
            return
        unique = sorted(set(names))
        async with self._connect("forget services", write=True) as conn:
            await conn.execute(delete(state_table).where(state_table.c.name.in_(unique)))
            await conn.execute(delete(result_table).where(result_table.c.service.in_(unique)))
            await conn.execute(delete(heartbeat_table).where(heartbeat_table.c.service.in_(unique)))


def _touched(
    fence: Fence | None,
    states: Sequence[ServiceState],
    results: Sequence[ResultRecord],
    events: Sequence[Event],
    incidents: Sequence[Incident],
    notices: Sequence[Notice],
    rollups: Sequence[Delta],
) -> list[int]:
    """The shards a batch writes for, by ``fence``'s map (services outside it are not
    fenced); none without a fence."""
    if fence is None:
        return []
    names = {s.name for s in states}
    names.update(r.service for r in results)
    names.update(e.service for e in events)
    names.update(i.service for i in incidents)
    names.update(n.service for n in notices)
    names.update(b.service for b in rollups)
    return sorted({fence.shard_of[n] for n in names if n in fence.shard_of})


def _compare(fence: Fence, touched: Sequence[int], held: Mapping[int, int]) -> None:
    """Raise :class:`Fenced` unless ``fence.owner`` holds (``held``: the epochs the
    store has for it) every shard of ``touched`` at the epoch it was given. A shard
    missing from the fence is one this node no longer holds, whatever the store says."""
    lost = frozenset(s for s in touched if s not in fence.epochs or held.get(s) != fence.epochs[s])
    if lost:
        raise Fenced(lost)


async def _check_fence(conn: AsyncConnection, fence: Fence, touched: Sequence[int]) -> None:
    """:func:`_compare` inside the batch's transaction: on PostgreSQL the shards' rows
    are read FOR SHARE, so a claim waits for the commit. (A SQLite file's batches go
    through :class:`SqliteBatches`, which takes the write lock with BEGIN IMMEDIATE;
    a memory database has one connection that every reader and writer queues for.)"""
    held = dict((await conn.execute(cluster.fence(fence.owner, list(touched)))).all())
    _compare(fence, touched, held)


async def _execute(conn: AsyncConnection, statement: Insert | str, params: Any) -> None:
    """One of a batch's statements, text or not."""
    if isinstance(statement, str):
        await conn.exec_driver_sql(statement, params)
    else:
        await conn.execute(statement, params)


def _texts(statements: Sequence[tuple[Insert | str, Any]]) -> list[tuple[str, Sequence[Any]]]:
    """SQLite's batch statements, which are all text (``SqliteBackend.batch``)."""
    texts: list[tuple[str, Sequence[Any]]] = []
    for statement, params in statements:
        if not isinstance(statement, str):
            raise TypeError(f"a SQLite batch statement must be text, got {statement!r}")
        texts.append((statement, params))
    return texts
