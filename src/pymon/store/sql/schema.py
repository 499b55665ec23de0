"""The store's tables, in portable column types that serve SQLite and PostgreSQL alike.

``service_state``
    one row per service: everything in its ServiceState (status, counts in a row,
    last message and metrics, flap history, open incident id...), upserted by name
    on every batch.
``results``
    each service's bounded history of check results, a ring: the primary key is
    ``(service, slot)`` with ``slot = seq % history``, and a result is upserted into
    its slot. A service can never hold more than ``history`` rows, by construction,
    so no prune job exists and a write costs the same on day one and on day one
    thousand. :func:`fit_ring` re-slots it when ``history`` changes.
``events``
    transitions of services, append-only, numbered by an autoincrement id.
``incidents``
    one row per incident (a stretch of confirmed trouble of one service): its
    statuses, notices sent, escalation and acknowledgement, upserted by id; open
    ones have no ``closed_at``.
``notices``
    the outbox: every notice the rules decided, written in the same transaction as
    the state that caused it; its ``key`` makes a notice written twice one notice.
``deliveries``
    one row per (notice, channel): how delivering it goes (attempts, when next,
    delivered or given up, last error, which instance holds its lease).
``meta``
    small named values pymon keeps for itself (the key incident tokens derive from).
``windows``
    maintenance windows added at run time, as JSON, by id (config windows live in
    the config).
``heartbeats``
    the last push of each ``heartbeat`` service (never its token), upserted.
``nodes``, ``shards``
    the cluster's nodes (heartbeats) and the leases on its shards (docs/cluster.md).
``rollup_buckets``
    each service's hour and day buckets (docs/uptime.md), keyed by service, width
    (3600 or 86400) and start (UTC seconds): added to in the same transaction as the
    service's state, pruned after ``storage.rollups``. (The first version's
    ``rollups`` table, with JSON maps, is dropped on open: see store/sql/buckets.py.)
``commands``
    commands sent to a node that does not run their service, for the node that
    does: taken once, answered, then pruned after a while (docs/cluster.md).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from pymon.model import Status

__all__ = [
    "change_table",
    "command_table",
    "delivery_table",
    "event_table",
    "fit_ring",
    "heartbeat_table",
    "incident_table",
    "meta_table",
    "metadata",
    "node_table",
    "notice_table",
    "result_table",
    "rollup_table",
    "shard_table",
    "state_table",
    "window_table",
]

metadata = MetaData()

# seq and ids are 64-bit: a service checked every second passes 2**31 in 68 years,
# but a cluster's event id sequence is shared by every service. On SQLite the events
# id must be declared INTEGER (not BIGINT) to become the rowid alias that
# autoincrements, hence the variant.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

state_table = Table(
    "service_state",
    metadata,
    Column("name", String, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("previous_status", String(16), nullable=False),
    Column("confirmed_status", String(16), nullable=True),
    Column("confirmed", Boolean, nullable=False),
    Column("recovering", Boolean, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("last_check", Double, nullable=True),
    Column("last_change", Double, nullable=True),
    Column("last_duration", Double, nullable=False),
    Column("last_by_status", JSON, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("flap_history", String(100), nullable=False),
    Column("flap_pct", Double, nullable=False),
    Column("flapping", Boolean, nullable=False),
    Column("maintenance", Boolean, nullable=False),
    Column("unreachable", Boolean, nullable=False),
    Column("incident", String(32), nullable=True),
)

# No extra index on (service, seq): a service owns at most ``history`` rows, which
# the primary key prefix finds; sorting those few is cheaper than maintaining a
# second index on every write.
result_table = Table(
    "results",
    metadata,
    Column("service", String, primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("duration", Double, nullable=False),
    Column("lateness", Double, nullable=False),
)

event_table = Table(
    "events",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("service", String, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", Double, nullable=False),
    Column("status", String(16), nullable=False),
    Column("previous", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_events_service_id", "service", "id"),
    Index("ix_events_at", "at"),
)

incident_table = Table(
    "incidents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("service", String, nullable=False),
    Column("opened_at", Double, nullable=False),
    Column("closed_at", Double, nullable=True),
    Column("status", String(16), nullable=False),
    Column("worst", String(16), nullable=False),
    Column("notices", Integer, nullable=False),
    Column("last_notice_at", Double, nullable=True),
    Column("pending", Boolean, nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("ack_author", Text, nullable=True),
    Column("ack_comment", Text, nullable=True),
    Column("ack_at", Double, nullable=True),
    Column("ack_expires", Double, nullable=True),
    Index("ix_incidents_service_opened", "service", "opened_at"),
    Index("ix_incidents_open", "closed_at"),
)

notice_table = Table(
    "notices",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("service", String, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", Double, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("channels", JSON, nullable=False),
    Column("incident", String(32), nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("since", Double, nullable=True),
    Index("ix_notices_at", "at"),
)

# Written with the notice: each channel is delivered and retried on its own, so a
# webhook that is down never re-sends the e-mail. ``next_at`` is when to try next;
# a sender claims a row by moving it forward (a lease), so a crash mid-send retries
# after the lease and two instances on one database never both send it.
delivery_table = Table(
    "deliveries",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("channel", String(100), primary_key=True),
    Column("service", String, nullable=False),
    Column("at", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", Double, nullable=False),
    Column("delivered_at", Double, nullable=True),
    Column("failed_at", Double, nullable=True),
    Column("error", Text, nullable=True),
    Column("claimed_by", String(200), nullable=True),
    Index("ix_deliveries_due", "delivered_at", "failed_at", "next_at"),
    Index("ix_deliveries_at", "at"),
)

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

window_table = Table(
    "windows",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("window", JSON, nullable=False),
)

heartbeat_table = Table(
    "heartbeats",
    metadata,
    Column("service", String, primary_key=True),
    Column("at", Double, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("message", Text, nullable=False),
)

# The nodes of a cluster (docs/cluster.md): each renews its row every heartbeat.
node_table = Table(
    "nodes",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("location", String(200), nullable=False),
    Column("config_checksum", String(64), nullable=False),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("stopped_at", Double, nullable=True),
    Column("checks_per_s", Double, nullable=False),
    Column("web", String(300), nullable=False),
)

# Every service belongs to one shard; a node owns a shard while its lease runs.
# ``epoch`` rises with every change of owner: a write carries the epoch its node
# holds and is refused once another node has taken the shard (fencing).
shard_table = Table(
    "shards",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(200), nullable=True),
    Column("lease_until", Double, nullable=False),
    Column("epoch", BigInteger, nullable=False),
)


# A service's hour and day buckets (pymon/uptime.py's Bucket): a column per status
# for the time in it (``ok_s``...) and in maintenance (``ok_maint_s``...), ``worst``
# as the status's severity, so a write adds to them in SQL and a report sums them in
# SQL; the duration histogram is a BLOB of (bin, count) pairs merged in Python
# (store/sql/buckets.py). The index on (width, start) serves a report over every
# service and the retention's prune.
rollup_table = Table(
    "rollup_buckets",
    metadata,
    Column("service", String, primary_key=True),
    Column("width", Integer, primary_key=True, autoincrement=False),
    Column("start", BigInteger, primary_key=True, autoincrement=False),
    Column("checks", BigInteger, nullable=False),
    Column("ok_checks", BigInteger, nullable=False),
    *(Column(f"{status.value}_s", Double, nullable=False) for status in Status),
    *(Column(f"{status.value}_maint_s", Double, nullable=False) for status in Status),
    Column("worst", SmallInteger, nullable=True),
    Column("duration_sum", Double, nullable=False),
    Column("duration_min", Double, nullable=True),
    Column("duration_max", Double, nullable=True),
    Column("bins", LargeBinary, nullable=False),
    Index("ix_rollup_buckets_width_start", "width", "start"),
)


# A command (ack, unack, run now) for a service another node runs: the owner takes
# it by setting ``taken_by`` where it is still NULL (one taker wins), applies it and
# records ``answer`` (JSON) or ``error`` and ``error_kind``; the sender polls the row.
command_table = Table(
    "commands",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("service", String, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("arguments", JSON, nullable=False),
    Column("origin", String(200), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("taken_by", String(200), nullable=True),
    Column("taken_at", Double, nullable=True),
    Column("done_at", Double, nullable=True),
    Column("answer", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("error_kind", String(16), nullable=True),
    Index("ix_commands_open", "done_at", "taken_by", "created_at"),
    Index("ix_commands_created", "created_at"),
)

# How many batches changed a service's state or incident (one row, id 1): on SQLite,
# nodes poll it to know whether the others' services need reading again (PostgreSQL
# tells them with NOTIFY instead).
change_table = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)


async def fit_ring(conn: AsyncConnection, history: int) -> None:
    """Re-slot the kept results when ``history`` differs from the last run's.

    Rows written under another ring size sit in ``seq % old`` slots; left alone,
    new results would overwrite the wrong ones (or, when shrinking, slots beyond
    the ring would stay forever). So: keep the newest row per new slot, then move
    each to ``seq % history``, in two passes through negative slots because the
    primary key is checked row by row. Costs one scan when nothing changed.
    """
    t, n = result_table, history
    misplaced = select(t.c.service).where(t.c.slot != t.c.seq % n).limit(1)
    if (await conn.execute(misplaced)).first() is None:
        return
    rank = (
        func.row_number()
        .over(partition_by=(t.c.service, t.c.seq % n), order_by=t.c.seq.desc())
        .label("newest_first")
    )
    ranked = select(t.c.service, t.c.slot, rank).subquery()
    losers = select(ranked.c.service, ranked.c.slot).where(ranked.c.newest_first > 1)
    await conn.execute(delete(t).where(tuple_(t.c.service, t.c.slot).in_(losers)))
    await conn.execute(update(t).values(slot=-1 - t.c.seq % n))
    await conn.execute(update(t).values(slot=-1 - t.c.slot))
