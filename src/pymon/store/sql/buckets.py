"""The rollups table's rows and statements: buckets as rows and back, the stored rows
a batch merges with, a window's read and the retention's prune.

A batch's buckets are deltas (what happened since the last flush). They are merged
with the stored row inside the writing transaction (read, add, upsert): the time maps
and the duration histogram are JSON, which neither database adds up. One node writes
a service at a time (its shard's lease, and the fence on every write), so no two
transactions merge into one row at once.

Reading every row back before writing it doubled what the SQLite thread did, and
decoding its JSON cost most of that (docs/performance.md, "Uptime rollups"). So
:class:`Written` remembers the bucket each write left in the store, per service and
width, with the epoch of the service's shard then: the next flush of the same bucket
adds its delta to that and writes, without reading. A bucket not remembered (a new
hour, a restart) or remembered under another epoch (the shard went to another node
and back: that node may have written it) is read first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, or_, select, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.dml import Delete

from pymon.model import Status
from pymon.store.base import Fence
from pymon.store.sql.schema import rollup_table
from pymon.uptime import DAY, HOUR, Bucket, Delta, Tally

__all__ = [
    "KEY_CHUNK",
    "Key",
    "Written",
    "bucket_from_row",
    "bucket_row",
    "coalesce",
    "merged_rows",
    "prune",
    "stored_query",
    "stored_sqlite",
    "window_query",
]

#: At most this many services in one ``IN`` list (SQLite's bound parameters).
KEY_CHUNK = 500

#: A bucket's key: service, width, start.
Key = tuple[str, int, int]

_COLUMNS = tuple(c.name for c in rollup_table.columns)


def key_of(bucket: Delta) -> Key:
    """The row key of ``bucket``."""
    return bucket.service, bucket.width, int(bucket.start)


def coalesce(buckets: Iterable[Delta]) -> dict[Key, Delta]:
    """``buckets`` added up by key (those given are left as they are)."""
    out: dict[Key, Delta] = {}
    for bucket in buckets:
        key = key_of(bucket)
        held = out.get(key)
        if held is None:
            out[key] = bucket
        else:
            tally = Tally(held)
            tally.add(bucket)
            out[key] = tally
    return out


def bucket_row(bucket: Delta) -> dict[str, Any]:
    """``bucket`` as a row of the rollups table."""
    return {
        "service": bucket.service,
        "width": bucket.width,
        "start": int(bucket.start),
        "checks": bucket.checks,
        "ok_checks": bucket.ok_checks,
        "seconds": dict(bucket.seconds),
        "maintenance": dict(bucket.maintenance),
        "worst": None if bucket.worst is None else bucket.worst.value,
        "duration_sum": bucket.duration_sum,
        "duration_min": bucket.duration_min,
        "duration_max": bucket.duration_max,
        "bins": {str(k): v for k, v in bucket.bins.items()},
    }


def _json(value: Any) -> Any:
    # The SQLite writer's own connection hands JSON columns back as text.
    return json.loads(value) if isinstance(value, str | bytes) else value


def bucket_from_row(row: Mapping[str, Any] | RowMapping) -> Bucket:
    """A stored row as a :class:`Bucket`."""
    worst = row["worst"]
    return Bucket(
        service=row["service"],
        start=float(row["start"]),
        width=int(row["width"]),
        checks=int(row["checks"]),
        ok_checks=int(row["ok_checks"]),
        seconds={k: float(v) for k, v in _json(row["seconds"]).items()},
        maintenance={k: float(v) for k, v in _json(row["maintenance"]).items()},
        worst=None if worst is None else Status(worst),
        duration_sum=float(row["duration_sum"]),
        duration_min=None if row["duration_min"] is None else float(row["duration_min"]),
        duration_max=None if row["duration_max"] is None else float(row["duration_max"]),
        bins={int(k): int(v) for k, v in _json(row["bins"]).items()},
    )


def _chunks(deltas: Mapping[Key, Delta]) -> Iterator[tuple[list[str], list[int]]]:
    """The services (a chunk at a time) and the starts the deltas touch: the stored
    rows of a chunk are a subset of those services x starts (a flush touches one or
    two hours and days, so the starts are few)."""
    services = sorted({k[0] for k in deltas})
    starts = sorted({k[2] for k in deltas})
    for first in range(0, len(services), KEY_CHUNK):
        yield services[first : first + KEY_CHUNK], starts


def stored_query(deltas: Mapping[Key, Delta]) -> Iterator[Select[Any]]:
    """SELECTs of the stored rows ``deltas`` merge with (and perhaps a few more)."""
    t = rollup_table
    for services, starts in _chunks(deltas):
        yield select(t).where(t.c.service.in_(services), t.c.start.in_(starts))


def stored_sqlite(deltas: Mapping[Key, Delta]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """:func:`stored_query` as SQLite text with positional parameters (for the
    writer's own connection)."""
    names = ", ".join(_COLUMNS)
    for services, starts in _chunks(deltas):
        sql = (
            f"SELECT {names} FROM rollups WHERE service IN ({', '.join('?' * len(services))})"
            f" AND start IN ({', '.join('?' * len(starts))})"
        )
        yield sql, (*services, *starts)


def merged_rows(
    deltas: Mapping[Key, Delta],
    stored: Iterable[RowMapping | Sequence[Any]],
    known: Mapping[Key, Tally] | None = None,
) -> tuple[list[dict[str, Any]], list[Tally]]:
    """The rows to upsert, and the buckets they hold: each delta added (in place) to
    the bucket ``known`` for its key, else to its ``stored`` row, if any. ``stored``
    rows are mappings, or tuples in the table's column order."""
    found: dict[Key, Tally] = dict(known or {})
    for raw in stored:
        row = raw if isinstance(raw, RowMapping) else dict(zip(_COLUMNS, raw, strict=True))
        bucket = bucket_from_row(row)
        found[key_of(bucket)] = Tally(bucket)
    rows = []
    whole = []
    for key, delta in deltas.items():
        tally = found.get(key)
        if tally is None:
            tally = Tally(delta)
        else:
            tally.add(delta)
        whole.append(tally)
        rows.append(bucket_row(tally))
    return rows, whole


class Written:
    """The bucket each write left in the store, per service and width (the newest
    only), with the shard epoch it was written under; see the module's docstring.

    The buckets are kept as :class:`Tally` objects that the next write adds to in
    place: a new bucket per service and flush, alive until the next one, kept the
    garbage collector busy (docs/performance.md, "Uptime rollups"). A write that
    does not commit must :meth:`drop` what it touched.
    """

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], tuple[float, Tally, int | None]] = {}

    @staticmethod
    def _epoch(fence: Fence | None, service: str) -> int | None:
        if fence is None:
            return None
        shard = fence.shard_of.get(service)
        return None if shard is None else fence.epochs.get(shard)

    def known(
        self, deltas: Mapping[Key, Delta], fence: Fence | None
    ) -> tuple[dict[Key, Tally], dict[Key, Delta]]:
        """``deltas`` split: the stored buckets of those this remembers (by key), and
        the deltas whose stored row must be read."""
        known: dict[Key, Tally] = {}
        unknown: dict[Key, Delta] = {}
        for key, delta in deltas.items():
            held = self._held.get((key[0], key[1]))
            if (
                held is not None
                and held[0] == delta.start
                and held[2] == self._epoch(fence, key[0])
            ):
                known[key] = held[1]
            else:
                unknown[key] = delta
        return known, unknown

    def keep(self, tallies: Iterable[Tally], fence: Fence | None) -> None:
        """Remember ``tallies`` as stored (call once their transaction committed)."""
        held = self._held
        for tally in tallies:
            key = (tally.service, tally.width)
            newest = held.get(key)
            if (
                newest is None
                or newest[0] < tally.start
                or (newest[0] == tally.start and newest[1] is not tally)
            ):
                held[key] = (tally.start, tally, self._epoch(fence, tally.service))

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
    where = and_(t.c.width == width, t.c.start < until, t.c.start > since - width)
    stmt = select(t).where(where)
    if names is not None:
        stmt = stmt.where(t.c.service.in_(sorted(set(names))))
    return stmt.order_by(t.c.service, t.c.start)


def prune(before: float, limit: int) -> Delete:
    """Delete at most ``limit`` buckets that ended before ``before`` (oldest first,
    so one run stays short however much is due); each width on its index."""
    t = rollup_table
    ended = or_(*(and_(t.c.width == w, t.c.start <= before - w) for w in (HOUR, DAY)))
    oldest = select(t.c.service, t.c.width, t.c.start).where(ended).order_by(t.c.start)
    return delete(t).where(tuple_(t.c.service, t.c.width, t.c.start).in_(oldest.limit(limit)))
