"""A report's read of the rollups: N services x a year of buckets in a SQLite store,
read back with ``SqlStore.rollups`` and summarized per service over 30 days and a year.

From the repository root::

    .venv/bin/python -m benchmarks.rollups [--services 10000] [--days 365] \\
        [--hours edges|all] [--chunk 1000] [--read totals|buckets] [--db PATH] [--json PATH]

Seeding writes the rows with one ``executemany`` per table page on a plain sqlite3
connection (journal off: it is a scratch file), after ``SqlStore.open`` made the
schema. Day buckets cover every day; hour buckets cover, with ``--hours edges``
(the default), only the days a window's edges fall in (a window reads day buckets
for its whole days and hours only at its edges, ``pymon.uptime.layout``), with
``--hours all`` every hour of the year (87.6 million rows for 10,000 services: tens
of GB and many minutes to seed). The read goes through the store as a report would,
``--chunk`` services at a time (each chunk summarized, then dropped, so memory stays
bounded by the chunk), and reports wall time, CPU time and peak RSS. ``--read totals``
(the default) sums each chunk's rows in the database (``SqlStore.totals``, then
``pymon.uptime.total``); ``--read buckets`` reads them as Buckets
(``SqlStore.rollups``, then ``summarize``), as the first version did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymon.model import Status
from pymon.store.sql import SqlStore
from pymon.store.sql.buckets import pack_bins
from pymon.store.sql.schema import rollup_table
from pymon.uptime import (
    DAY,
    HOUR,
    Totals,
    Uptime,
    bin_of,
    bucket_start,
    layout,
    summarize,
    total,
)

_PAGE = 50_000


def _rows(names: list[str], starts: list[int], width: int) -> Iterator[tuple[Any, ...]]:
    """Rows of the rollups table for each name x start, mostly up (a few failed
    minutes a day) with a handful of check durations."""
    checks = width // 60
    bins = pack_bins({bin_of(0.002): checks - 2, bin_of(0.03): 2})
    columns = [c.name for c in rollup_table.columns]
    ok, failed_at = columns.index("ok_s"), columns.index("failed_s")
    for name in names:
        for start in starts:
            failed = 60.0 if (start // width + len(name)) % 17 == 0 else 0.0
            row: list[Any] = [name, width, start, checks, checks - (1 if failed else 0)]
            row += [0.0] * 12
            row[ok] = width - failed
            row[failed_at] = failed
            worst = Status.FAILED if failed else Status.OK
            row += [worst.severity, 0.002 * checks, 0.0015, 0.03, bins]
            yield tuple(row)


def _seed(path: Path, names: list[str], now: float, days: int, hours: str) -> dict[str, Any]:
    """Write the buckets; how many rows and how long it took."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    today = int(bucket_start(now, DAY))
    day_starts = [today - k * DAY for k in range(days, -1, -1)]
    if hours == "all":
        hour_days = day_starts
    else:
        # The days a 30-day and a year's window (ending now) have their edges in.
        hour_days = sorted({today, today - 30 * DAY, today - 365 * DAY})
    hour_starts = [d + k * HOUR for d in hour_days for k in range(24) if d + k * HOUR < now]
    width_of_row = len(rollup_table.columns)
    sql = f"INSERT INTO {rollup_table.name} VALUES (" + ", ".join("?" * width_of_row) + ")"
    began = time.perf_counter()
    count = 0
    con.execute("BEGIN")
    for width, starts in ((DAY, day_starts), (HOUR, hour_starts)):
        rows = _rows(names, starts, width)
        while page := [row for _, row in zip(range(_PAGE), rows, strict=False)]:
            con.executemany(sql, page)
            count += len(page)
    con.execute("COMMIT")
    con.close()
    return {"rows": count, "seed_s": time.perf_counter() - began}


async def _read(
    url: str, names: list[str], now: float, window: float, chunk: int, via: str
) -> dict[str, Any]:
    """Every service's uptime over the ``window`` ending ``now``, ``chunk`` at a time."""
    store = SqlStore(url)
    await store.open()
    since = now - window
    rows = 0
    summaries: list[Uptime] = []
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        for first in range(0, len(names), chunk):
            part = names[first : first + chunk]
            if via == "totals":
                sums: dict[str, list[Totals]] = {name: [] for name in part}
                for width, low, high in layout(since, now):
                    for name, totals in (await store.totals(part, low, high, width)).items():
                        sums[name].append(totals)
                        rows += 1
                summaries.extend(total(n, sums[n], since, now) for n in part)
                continue
            found: dict[str, list[Any]] = {name: [] for name in part}
            for width, low, high in layout(since, now):
                for bucket in await store.rollups(part, low, high, width):
                    found[bucket.service].append(bucket)
                    rows += 1
            summaries.extend(summarize(n, found[n], since, now) for n in part)
    finally:
        await store.close()
    return {
        "window_days": window / DAY,
        "services": len(summaries),
        "read": via,
        # Rows read as Buckets, or (service, piece) sums made by the database.
        "rows_read": rows,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "mean_uptime_pct": sum(u.uptime_pct or 0.0 for u in summaries) / len(summaries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--hours", choices=("edges", "all"), default="edges")
    parser.add_argument("--chunk", type=int, default=1000, help="services read at a time")
    parser.add_argument(
        "--read", choices=("totals", "buckets"), default="totals", help="how a chunk is read"
    )
    parser.add_argument("--db", type=Path, default=Path("/tmp/pymon-rollups-bench.db"))
    parser.add_argument("--json", type=Path, default=None, help="append the figures here")
    args = parser.parse_args()

    names = [f"svc-{i:05d}" for i in range(args.services)]
    now = bucket_start(time.time(), HOUR) + 1800.0
    args.db.unlink(missing_ok=True)
    url = f"sqlite:///{args.db}"

    async def create() -> None:
        store = SqlStore(url)
        await store.open()
        await store.close()

    asyncio.run(create())
    seeded = _seed(args.db, names, now, args.days, args.hours)
    seeded["db_bytes"] = args.db.stat().st_size
    print(
        f"seeded {seeded['rows']:,} rows in {seeded['seed_s']:.1f} s "
        f"({seeded['db_bytes'] / 1e6:,.0f} MB)"
    )
    report: dict[str, Any] = {
        "seeded": seeded,
        "hours": args.hours,
        "chunk": args.chunk,
        "reads": [],
    }
    for window in (30 * DAY, 365 * DAY):
        figures = asyncio.run(_read(url, names, now, window, args.chunk, args.read))
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report["reads"].append(figures)
        print(
            f"{figures['window_days']:.0f} d: {figures['services']:,} services, "
            f"{figures['rows_read']:,} {'rows' if args.read == 'buckets' else 'sums'}, "
            f"{figures['wall_s']:.1f} s wall, "
            f"{figures['cpu_s']:.1f} s CPU, peak RSS {figures['peak_rss_mb']:.0f} MB"
        )
    if args.json is not None:
        with args.json.open("a") as out:
            out.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
