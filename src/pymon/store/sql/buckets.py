"""The rollups' rows and statements: buckets as rows and back, the upsert that adds a
batch's deltas to them, a window's read (as Buckets, or summed in the database) and
the retention's prune.

Each status's time is a column of its own (``ok_s``... and ``ok_maint_s``...),
``worst`` is the status's severity: a batch's deltas are **added in SQL** by the
upsert (``ON CONFLICT ... DO UPDATE SET ok_s = rollup_buckets.ok_s + excluded.ok_s``,
the extremes with ``CASE``, which both databases spell alike), and a report sums a
window's rows per service in SQL (:func:`totals_query`, the histograms joined into
one BLOB per service) instead of turning each into a Bucket. The first version kept
the times as JSON maps, read each row back, merged and rewrote it; decoding that
JSON was most of what a report cost (docs/performance.md, "Uptime rollups").

The duration histogram is a BLOB of (bin, count) pairs (:func:`pack_bins`, 6 bytes
a bin that has checks; a bucket has a handful), which SQL does not add up: it alone
is merged in Python, with the stored one, inside the writing transaction. One node
writes a service at a time (its shard's lease, and the fence on every write), so no
two transactions merge into one row at once. :class:`Written` remembers the
histogram each write left in the store, per service and width, with the epoch of
the service's shard then: the next flush of the same bucket adds its delta to that,
without reading. A bucket not remembered (a new hour, a restart) or remembered under
another epoch (the shard went to another node and back: that node may have written
it) has its histogram read first.

A database made by the first version has its ``rollups`` table (JSON columns)
dropped when the store opens (:func:`drop_first_version`): that version was never
released, its buckets are not converted, and the new table has another name so the
two can never be confused.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, delete, func, or_, select, text, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Delete, Insert

from pymon.model import Status
from pymon.store.base import Fence
from pymon.store.sql.schema import rollup_table
from pymon.uptime import DAY, HOUR, STATUSES, Bucket, Delta, Tally, Totals

__all__ = [
    "KEY_CHUNK",
    "Key",
    "Written",
    "added_upsert",
    "bucket_from_row",
    "bucket_row",
    "bucket_values",
    "coalesce",
    "drop_first_version",
    "edges_query",
    "merged_bins",
    "merged_rows",
    "pack_bins",
    "prune",
    "sqlite_upserts",
    "stored_query",
    "stored_sqlite",
    "sum_totals",
    "totals_query",
    "unpack_bins",
    "window_query",
]

#: At most this many services in one ``IN`` list (SQLite's bound parameters).
KEY_CHUNK = 500

#: A bucket's key: service, width, start.
Key = tuple[str, int, int]

#: Each status's value with its time column and its maintenance time column.
_TIMES = tuple((s.value, f"{s.value}_s", f"{s.value}_maint_s") for s in STATUSES)
_BY_SEVERITY = {s.severity: s for s in Status}
#: The columns a delta is added to as it is.
_ADDED = ("checks", "ok_checks", *(c for _, c, _ in _TIMES), *(m for _, _, m in _TIMES))
_ADDED += ("duration_sum",)
_KEYS = ("service", "width", "start")
_COLUMNS = tuple(c.name for c in rollup_table.columns)
_SECONDS_AT = {status: _COLUMNS.index(column) for status, column, _ in _TIMES}
_MAINTENANCE_AT = {status: _COLUMNS.index(column) for status, _, column in _TIMES}
_NO_TIME = (0.0,) * (2 * len(_TIMES))
_PAIR = struct.Struct("<HI")


def pack_bins(bins: Mapping[int, int]) -> bytes:
    """A histogram as stored: (bin, count) pairs, little-endian uint16 and uint32."""
    if len(bins) == 1:
        # A bucket of steady checks has one bin: no list, no join.
        ((index, count),) = bins.items()
        return _PAIR.pack(index, count)
    return b"".join([_PAIR.pack(index, count) for index, count in bins.items()])


def unpack_bins(blob: bytes, into: dict[int, int]) -> dict[int, int]:
    """Add a stored histogram to ``into``; ``into``."""
    for index, count in _PAIR.iter_unpack(blob):
        into[index] = into.get(index, 0) + count
    return into


def key_of(bucket: Delta) -> Key:
    """The row key of ``bucket``."""
    return bucket.service, bucket.width, int(bucket.start)


def coalesce(buckets: Iterable[Delta]) -> dict[Key, Delta]:
    """``buckets`` added up by key (those given are left as they are)."""
    out: dict[Key, Delta] = {}
    for bucket in buckets:
        key = (bucket.service, bucket.width, int(bucket.start))
        held = out.get(key)
        if held is None:
            out[key] = bucket
        else:
            tally = Tally.of(held)
            tally.add(bucket)
            out[key] = tally
    return out


def bucket_row(bucket: Delta, bins: bytes) -> dict[str, Any]:
    """``bucket`` as a row of the rollups table, with the stored histogram ``bins``."""
    return dict(zip(_COLUMNS, bucket_values(bucket, bins), strict=True))


def bucket_values(bucket: Delta, bins: bytes) -> list[Any]:
    """:func:`bucket_row`'s values, in the table's column order."""
    # Two rows a check pass here, in the SQLite writer's thread (holding the GIL the
    # event loop wants): no dict, and only the statuses that had time looked up.
    worst = bucket.worst
    values = [
        bucket.service,
        bucket.width,
        int(bucket.start),
        bucket.checks,
        bucket.ok_checks,
        *_NO_TIME,
        None if worst is None else worst.severity,
        bucket.duration_sum,
        bucket.duration_min,
        bucket.duration_max,
        bins,
    ]
    for status, seconds in bucket.seconds.items():
        values[_SECONDS_AT[status]] = seconds
    if bucket.maintenance:
        for status, seconds in bucket.maintenance.items():
            values[_MAINTENANCE_AT[status]] = seconds
    return values


def bucket_from_row(row: Mapping[str, Any] | RowMapping) -> Bucket:
    """A stored row as a :class:`Bucket` (statuses with no time left out of its maps)."""
    worst = row["worst"]
    low, high = row["duration_min"], row["duration_max"]
    return Bucket(
        service=row["service"],
        start=float(row["start"]),
        width=int(row["width"]),
        checks=int(row["checks"]),
        ok_checks=int(row["ok_checks"]),
        seconds={s: float(row[c]) for s, c, _ in _TIMES if row[c]},
        maintenance={s: float(row[m]) for s, _, m in _TIMES if row[m]},
        worst=None if worst is None else _BY_SEVERITY[int(worst)],
        duration_sum=float(row["duration_sum"]),
        duration_min=None if low is None else float(low),
        duration_max=None if high is None else float(high),
        bins=unpack_bins(bytes(row["bins"]), {}),
    )


def added_upsert(insert: Insert) -> Insert:
    """``insert`` of rollup rows ON CONFLICT adding each delta to the stored row: the
    counts and times summed, the worst and the extremes kept, the histogram replaced
    (the row carries the merged one, :func:`merged_rows`)."""
    stmt: Any = insert
    t, new = stmt.table.c, stmt.excluded
    sets: dict[str, Any] = {name: t[name] + new[name] for name in _ADDED}
    # CASE rather than SQLite's min()/max() or PostgreSQL's LEAST/GREATEST: one
    # spelling for both, and a NULL (no check yet) on either side is skipped.
    sets["worst"] = case((or_(t.worst.is_(None), new.worst > t.worst), new.worst), else_=t.worst)
    sets["duration_min"] = case(
        (or_(t.duration_min.is_(None), new.duration_min < t.duration_min), new.duration_min),
        else_=t.duration_min,
    )
    sets["duration_max"] = case(
        (or_(t.duration_max.is_(None), new.duration_max > t.duration_max), new.duration_max),
        else_=t.duration_max,
    )
    sets["bins"] = new.bins
    result: Insert = stmt.on_conflict_do_update(index_elements=list(_KEYS), set_=sets)
    return result


async def drop_first_version(conn: AsyncConnection) -> None:
    """Drop the first version's ``rollups`` table (JSON maps), if this database has
    one (see the module's docstring)."""
    await conn.execute(text("DROP TABLE IF EXISTS rollups"))


def _chunks(deltas: Mapping[Key, Delta]) -> Iterator[tuple[list[str], list[int]]]:
    """The services (a chunk at a time) and the starts the deltas touch: the stored
    rows of a chunk are a subset of those services x starts (a flush touches one or
    two hours and days, so the starts are few)."""
    services = sorted({k[0] for k in deltas})
    starts = sorted({k[2] for k in deltas})
    for first in range(0, len(services), KEY_CHUNK):
        yield services[first : first + KEY_CHUNK], starts


def stored_query(deltas: Mapping[Key, Delta]) -> Iterator[Select[Any]]:
    """SELECTs of the stored histograms ``deltas`` merge with (and perhaps a few more),
    as (service, width, start, bins)."""
    t = rollup_table
    for services, starts in _chunks(deltas):
        yield select(t.c.service, t.c.width, t.c.start, t.c.bins).where(
            t.c.service.in_(services), t.c.start.in_(starts)
        )


def stored_sqlite(deltas: Mapping[Key, Delta]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """:func:`stored_query` as SQLite text with positional parameters (for the
    writer's own connection)."""
    for services, starts in _chunks(deltas):
        sql = (
            "SELECT service, width, start, bins FROM rollup_buckets"
            f" WHERE service IN ({', '.join('?' * len(services))})"
            f" AND start IN ({', '.join('?' * len(starts))})"
        )
        yield sql, (*services, *starts)


#: A histogram held for a bucket's key, as written.
Held = tuple[Key, dict[int, int]]


def merged_rows(
    deltas: Mapping[Key, Delta],
    stored: Iterable[Sequence[Any]],
    known: Mapping[Key, dict[int, int]] | None = None,
) -> tuple[list[list[Any]], list[Held]]:
    """The rows to upsert (:func:`bucket_values`), and the histograms they leave
    stored (:func:`merged_bins`)."""
    merged, held = merged_bins(deltas, stored, known)
    return [bucket_values(delta, blob) for delta, blob in merged], held


def merged_bins(
    deltas: Mapping[Key, Delta],
    stored: Iterable[Sequence[Any]],
    known: Mapping[Key, dict[int, int]] | None = None,
) -> tuple[list[tuple[Delta, bytes]], list[Held]]:
    """Each delta with the histogram its row will hold (packed), and those histograms
    by key: each delta's bins added (in place) to the histogram ``known`` for its
    key, else to its ``stored`` one ((service, width, start, bins) rows), if any."""
    found: dict[Key, dict[int, int]] = {}
    for service, width, start, blob in stored:
        found[(service, int(width), int(start))] = unpack_bins(bytes(blob), {})
    merged: list[tuple[Delta, bytes]] = []
    held: list[Held] = []
    remembered = known or {}
    for key, delta in deltas.items():
        bins = found.get(key)
        if bins is None:
            bins = remembered.get(key)
            if bins is None:
                bins = {}
        for index, count in delta.bins.items():
            bins[index] = bins.get(index, 0) + count
        held.append((key, bins))
        merged.append((delta, pack_bins(bins)))
    return merged, held


#: The columns bound for a row whose time was all ``ok`` outside maintenance (a
#: steady service's hour and day: almost every row), in the table's order; the
#: other time columns are literal zeros, and left alone when the row exists.
_OK_ONLY: tuple[str, ...] = ("service", "width", "start", "checks", "ok_checks", "ok_s")
_OK_ONLY += ("worst", "duration_sum", "duration_min", "duration_max", "bins")
if tuple(c for c in _COLUMNS if c in _OK_ONLY) != _OK_ONLY:  # pragma: no cover
    raise AssertionError("_OK_ONLY must follow the table's column order")
_OK_ADDED = ("checks", "ok_checks", "ok_s", "duration_sum")
_OK_STATUS = Status.OK.value


def _kept(column: str, compare: str) -> str:
    """SQLite's SET of an extreme: the delta's when it is further out (or the row has
    none), as :func:`added_upsert` spells it."""
    held, new = f"rollup_buckets.{column}", f"excluded.{column}"
    further = f"{held} IS NULL OR {new} {compare} {held}"
    return f"{column} = CASE WHEN {further} THEN {new} ELSE {held} END"


_OK_HEAD = f"INSERT INTO rollup_buckets ({', '.join(_COLUMNS)}) VALUES "
_OK_GROUP = "(" + ", ".join("?" if c in _OK_ONLY else "0" for c in _COLUMNS) + ")"
_OK_TAIL = " ON CONFLICT (service, width, start) DO UPDATE SET " + ", ".join(
    [
        *(f"{c} = rollup_buckets.{c} + excluded.{c}" for c in _OK_ADDED),
        _kept("worst", ">"),
        _kept("duration_min", "<"),
        _kept("duration_max", ">"),
        "bins = excluded.bins",
    ]
)


def sqlite_upserts(
    merged: Sequence[tuple[Delta, bytes]], page: int
) -> tuple[list[tuple[str, tuple[Any, ...]]], list[list[Any]]]:
    """SQLite upserts of the rows whose time was all ``ok`` outside maintenance, at
    most ``page`` parameters each (11 bound a row, where :func:`added_upsert` binds
    22 and adds 12 time columns: binding and adding were most of what a row cost),
    and the rest as :func:`bucket_values` rows for :func:`added_upsert`. A row
    added to either way ends the same."""
    flat: list[Any] = []
    rest: list[list[Any]] = []
    for delta, blob in merged:
        seconds = delta.seconds
        if delta.maintenance or (seconds and (len(seconds) > 1 or _OK_STATUS not in seconds)):
            rest.append(bucket_values(delta, blob))
            continue
        worst = delta.worst
        flat += (
            delta.service,
            delta.width,
            int(delta.start),
            delta.checks,
            delta.ok_checks,
            seconds.get(_OK_STATUS, 0.0),
            None if worst is None else worst.severity,
            delta.duration_sum,
            delta.duration_min,
            delta.duration_max,
            blob,
        )
    size = len(_OK_ONLY)
    rows = max(1, page // size) * size
    statements = [
        (_OK_HEAD + ", ".join([_OK_GROUP] * (len(chunk) // size)) + _OK_TAIL, tuple(chunk))
        for chunk in (flat[first : first + rows] for first in range(0, len(flat), rows))
    ]
    return statements, rest


class Written:
    """The histogram each write left in the store, per service and width (the newest
    bucket only), with the shard epoch it was written under; see the module's
    docstring. The next write adds to it in place: a write that does not commit
    must :meth:`drop` what it touched.
    """

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], tuple[int, dict[int, int], int | None]] = {}

    @staticmethod
    def _epoch(fence: Fence | None, service: str) -> int | None:
        if fence is None:
            return None
        shard = fence.shard_of.get(service)
        return None if shard is None else fence.epochs.get(shard)

    def known(
        self, deltas: Mapping[Key, Delta], fence: Fence | None
    ) -> tuple[dict[Key, dict[int, int]], dict[Key, Delta]]:
        """``deltas`` split: the stored histograms of those this remembers (by key),
        and the deltas whose stored histogram must be read."""
        known: dict[Key, dict[int, int]] = {}
        unknown: dict[Key, Delta] = {}
        for key, delta in deltas.items():
            held = self._held.get((key[0], key[1]))
            if held is not None and held[0] == key[2] and held[2] == self._epoch(fence, key[0]):
                known[key] = held[1]
            else:
                unknown[key] = delta
        return known, unknown

    def keep(self, written: Iterable[Held], fence: Fence | None) -> None:
        """Remember ``written`` as stored (call once their transaction committed)."""
        held = self._held
        for (service, width, start), bins in written:
            newest = held.get((service, width))
            if (
                newest is None
                or newest[0] < start
                or (newest[0] == start and newest[1] is not bins)
            ):
                held[(service, width)] = (start, bins, self._epoch(fence, service))

    def drop(self, deltas: Iterable[Key]) -> None:
        """Forget the buckets of ``deltas``' services and widths: a write that added to
        them did not commit, so what is held is not what is stored."""
        for service, width, _ in deltas:
            self._held.pop((service, width), None)


def window_query(
    names: Sequence[str] | None, since: float, until: float, width: int
) -> Select[Any]:
    """The buckets of width ``width`` of ``names`` (all when None) overlapping
    ``since``..``until``, by service then start."""
    t = rollup_table
    return (
        select(t).where(_overlapping(names, since, until, width)).order_by(t.c.service, t.c.start)
    )


def _overlapping(names: Sequence[str] | None, since: float, until: float, width: int) -> Any:
    """The rows of width ``width`` of ``names`` (all when None) overlapping the window."""
    t = rollup_table
    where = and_(t.c.width == width, t.c.start < until, t.c.start > since - width)
    if names is not None:
        where = and_(where, t.c.service.in_(sorted(set(names))))
    return where


def totals_query(
    names: Sequence[str] | None,
    since: float,
    until: float,
    width: int,
    joined: Callable[[ColumnElement[bytes]], ColumnElement[bytes]],
) -> Select[Any]:
    """The sums per service of :func:`window_query`'s rows wholly inside the window
    (those at its edges are :func:`edges_query`'s, scaled as ``summarize`` scales
    them): (service, checks, ok_checks, the time columns, worst, duration sum, min
    and max, the histograms joined end to end by ``joined``, the backend's)."""
    t = rollup_table
    times = [func.sum(t.c[c]) for _, c, _ in _TIMES]
    times += [func.sum(t.c[m]) for _, _, m in _TIMES]
    return (
        select(
            t.c.service,
            func.sum(t.c.checks),
            func.sum(t.c.ok_checks),
            *times,
            func.max(t.c.worst),
            func.sum(t.c.duration_sum),
            func.min(t.c.duration_min),
            func.max(t.c.duration_max),
            joined(case((t.c.checks > 0, t.c.bins))),
        )
        .where(
            _overlapping(names, since, until, width),
            t.c.start >= since,
            t.c.start <= until - width,
        )
        .group_by(t.c.service)
    )


def edges_query(
    names: Sequence[str] | None, since: float, until: float, width: int, inner: float
) -> Select[Any]:
    """:func:`window_query`'s rows not wholly inside ``since``..``inner`` (``inner``
    is ``until``, or ``now`` when that is earlier): at most one at each edge per
    service, and the one holding ``now``."""
    t = rollup_table
    return select(t).where(
        _overlapping(names, since, until, width), or_(t.c.start < since, t.c.start > inner - width)
    )


def sum_totals(sums: Iterable[Sequence[Any]], into: dict[str, Totals]) -> dict[str, Totals]:
    """:func:`totals_query`'s rows added to ``into`` (a :class:`Totals` per service);
    ``into``."""
    count = len(_TIMES)
    for row in sums:
        totals = into.get(row[0])
        if totals is None:
            totals = into[row[0]] = Totals()
        totals.checks += int(row[1])
        totals.ok_checks += int(row[2])
        for at, (status, _, _) in enumerate(_TIMES):
            for spent, seconds in (
                (totals.seconds, row[3 + at]),
                (totals.maintenance, row[3 + count + at]),
            ):
                if seconds:
                    spent[status] = spent.get(status, 0.0) + float(seconds)
        worst, duration_sum, low, high, bins = row[3 + 2 * count :]
        totals.duration_sum += float(duration_sum)
        totals.extremes(
            None if worst is None else _BY_SEVERITY[int(worst)],
            None if low is None else float(low),
            None if high is None else float(high),
        )
        if bins:
            unpack_bins(bytes(bins), totals.bins)
    return into


def prune(before: float, limit: int) -> Delete:
    """Delete at most ``limit`` buckets that ended before ``before`` (oldest first,
    so one run stays short however much is due); each width on its index."""
    t = rollup_table
    ended = or_(*(and_(t.c.width == w, t.c.start <= before - w) for w in (HOUR, DAY)))
    oldest = select(t.c.service, t.c.width, t.c.start).where(ended).order_by(t.c.start)
    return delete(t).where(tuple_(t.c.service, t.c.width, t.c.start).in_(oldest.limit(limit)))
