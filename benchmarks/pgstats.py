"""What PostgreSQL did over a window, from its own statistics, and CPU from psutil.

A :class:`Snapshot` is read before and after the window; :func:`report` turns the
two into rates (per second and per 1,000 checks/s). PostgreSQL's cumulative
statistics reach the views when a backend flushes them (PostgreSQL 15: at most once
a second while busy, within 10 s once idle), so a window should be tens of seconds
for the rates to be sharp. There is no LISTEN/NOTIFY in pymon (nodes poll tables),
so its traffic is reported as 0 by construction, not measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support.postgres import PostgresServer

__all__ = [
    "CpuMeter",
    "Snapshot",
    "events_between",
    "postgres_pids",
    "report",
    "snapshot",
    "table",
]

#: The tables a simulated cluster writes, in the order they are reported.
TABLES = (
    "service_state",
    "results",
    "events",
    "incidents",
    "notices",
    "deliveries",
    "shards",
    "nodes",
    "commands",
    "windows",
)
_DB_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "tup_fetched",
    "tup_returned",
)
_ROW_COUNTERS = ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")
_DAY = 86_400


@dataclass(frozen=True)
class Snapshot:
    """PostgreSQL's counters at one moment (``at``: time.monotonic(); ``wall``:
    time.time(), which the events' own times are in)."""

    at: float
    wall: float
    database: dict[str, int]
    tables: dict[str, dict[str, int]]
    sizes: dict[str, int]
    database_bytes: int
    wal_bytes: int | None
    checks_per_s: float


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Read the counters in one new transaction (the views are a per-transaction cache)."""
    async with engine.connect() as conn:
        db = (
            await conn.execute(
                text(
                    f"SELECT {', '.join(_DB_COUNTERS)} FROM pg_stat_database"
                    " WHERE datname = current_database()"
                )
            )
        ).one()
        rows = await conn.execute(
            text(
                f"SELECT relname, {', '.join(_ROW_COUNTERS)}, pg_total_relation_size(relid)"
                " FROM pg_stat_user_tables"
            )
        )
        tables, sizes = {}, {}
        for name, *counts, size in rows:
            tables[name] = dict(zip(_ROW_COUNTERS, map(int, counts), strict=True))
            sizes[name] = int(size)
        total = (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar()
        wal = (await conn.execute(text("SELECT wal_bytes FROM pg_stat_wal"))).scalar()
        rate = (
            await conn.execute(
                text("SELECT coalesce(sum(checks_per_s), 0) FROM nodes WHERE stopped_at IS NULL")
            )
        ).scalar()
    return Snapshot(
        time.monotonic(),
        time.time(),
        dict(zip(_DB_COUNTERS, map(int, db), strict=True)),
        tables,
        sizes,
        int(total or 0),
        None if wal is None else int(wal),
        float(rate or 0.0),
    )


async def events_between(engine: AsyncEngine, start: float, end: float) -> dict[str, int]:
    """Events by kind whose time falls in [start, end), counted in the table itself:
    exact where the statistics' counts may lag by a flush."""
    sql = text("SELECT kind, count(*) FROM events WHERE at >= :start AND at < :end GROUP BY kind")
    async with engine.connect() as conn:
        rows = await conn.execute(sql, {"start": start, "end": end})
        return {str(kind): int(count) for kind, count in rows}


def postgres_pids(server: PostgresServer | None, postmaster: int | None) -> list[int]:
    """The PostgreSQL server's processes: the postmaster (of ``server``, or the pid
    given) and its children; none when neither is known."""
    if server is not None:
        postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
    if postmaster is None:
        return []
    parent = psutil.Process(postmaster)
    return [parent.pid, *(child.pid for child in parent.children(recursive=True))]


@dataclass
class CpuMeter:
    """CPU seconds (user + system) some processes took between :meth:`start` and
    :meth:`used`. Processes are listed anew at the end: one that started in the
    window counts whole, one that ended in it is lost (pooled connections rarely do)."""

    pids: Callable[[], Iterable[int]]
    _start: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        self._start = _cpu(self.pids())

    def used(self) -> float | None:
        """The CPU seconds, or None when there is no process to measure."""
        now = _cpu(self.pids())
        if not now:
            return None
        return sum(spent - self._start.get(pid, 0.0) for pid, spent in now.items())


def _cpu(pids: Iterable[int]) -> dict[int, float]:
    spent = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        spent[pid] = times.user + times.system
    return spent


def report(
    before: Snapshot,
    after: Snapshot,
    *,
    events: dict[str, int],
    pg_cpu: float | None,
    nodes_cpu: float | None,
    settings: dict[str, object],
) -> dict[str, object]:
    """The window's figures as one JSON-able dict."""
    window = after.at - before.at

    def rate(counter: int) -> float:
        return round(counter / window, 1)

    rows = {
        name: {
            key.removeprefix("n_tup_") + "_per_s": rate(
                after.tables.get(name, {}).get(key, 0) - before.tables.get(name, {}).get(key, 0)
            )
            for key in _ROW_COUNTERS
        }
        for name in TABLES
    }
    results = rows["results"]
    checks = results["ins_per_s"] + results["upd_per_s"]
    kilo = checks / 1000 if checks else float("nan")
    wal = None if after.wal_bytes is None else (after.wal_bytes - (before.wal_bytes or 0)) / window
    written = sum(r["ins_per_s"] + r["upd_per_s"] + r["del_per_s"] for r in rows.values())
    return {
        "benchmark": "simulate",
        **settings,
        "window_s": round(window, 1),
        "checks_per_s": round(checks, 1),
        "checks_per_s_nodes": round(after.checks_per_s, 1),
        # Read-only transactions end in a rollback (SQLAlchemy's release of a connection).
        "commits_per_s": rate(after.database["xact_commit"] - before.database["xact_commit"]),
        "transactions_per_s": rate(
            sum(after.database[k] - before.database[k] for k in ("xact_commit", "xact_rollback"))
        ),
        "rollbacks_per_s": rate(after.database["xact_rollback"] - before.database["xact_rollback"]),
        "tup_fetched_per_s": rate(after.database["tup_fetched"] - before.database["tup_fetched"]),
        "rows_written_per_s": round(written, 1),
        "lease_rows_per_s": rows["shards"]["upd_per_s"],
        # A beat every heartbeat, and a no-op update (the write lock) per write batch.
        "node_row_updates_per_s": rows["nodes"]["upd_per_s"],
        "notify_per_s": 0,
        "rows": rows,
        "events_per_s": {kind: round(n / window, 2) for kind, n in sorted(events.items())},
        "pg_cpu_cores": None if pg_cpu is None else round(pg_cpu / window, 3),
        "pg_cpu_cores_per_1k_checks": None if pg_cpu is None else round(pg_cpu / window / kilo, 3),
        "nodes_cpu_cores": None if nodes_cpu is None else round(nodes_cpu / window, 3),
        "nodes_cpu_ms_per_check": (
            None if nodes_cpu is None or not checks else round(nodes_cpu / window / checks * 1e3, 3)
        ),
        "wal_bytes_per_s": None if wal is None else round(wal),
        "wal_bytes_per_check": None if wal is None or not checks else round(wal / checks),
        "wal_gb_per_day_per_1k_checks": None if wal is None else round(wal / kilo * _DAY / 1e9, 1),
        "growth_bytes_per_s": {
            name: round((after.sizes.get(name, 0) - before.sizes.get(name, 0)) / window)
            for name in TABLES
        },
        "sizes_bytes": {name: after.sizes.get(name, 0) for name in TABLES},
        "database_bytes": after.database_bytes,
    }


def table(result: dict[str, object]) -> str:
    """The figures as aligned text lines."""
    rows = result["rows"]
    growth = result["growth_bytes_per_s"]
    assert isinstance(rows, dict) and isinstance(growth, dict)
    lines = [f"{key:<30} {value}" for key, value in result.items() if not isinstance(value, dict)]
    lines.append(f"{'events_per_s (by their time)':<30} {result['events_per_s']}")
    heading = ("table", "ins/s", "upd/s", "hot/s", "del/s", "grew B/s")
    lines.append(f"{heading[0]:<14}" + "".join(f" {h:>9}" for h in heading[1:]))
    for name, r in rows.items():
        lines.append(
            f"{name:<14} {r['ins_per_s']:>9} {r['upd_per_s']:>9} {r['hot_upd_per_s']:>9}"
            f" {r['del_per_s']:>9} {growth[name]:>9}"
        )
    return "\n".join(lines)
