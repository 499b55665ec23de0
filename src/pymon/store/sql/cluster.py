"""The cluster's statements on the nodes and shards tables: heartbeats, leases, fencing.

A node claims a shard only when nobody holds it or its lease ran out, and the claim
raises the shard's ``epoch``; renewing keeps the epoch. On PostgreSQL the rows a
claim looks at are locked with ``SKIP LOCKED``, so two nodes claiming at once never
wait for each other (each gets other shards); SQLite has one writer at a time and
needs no such thing. :func:`fence` reads the epochs a write must still hold, inside
the write's transaction (``FOR SHARE`` on PostgreSQL: a claim of the same shard
waits for the write to commit, so the new owner reads what was written).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Update, or_, select, update

from pymon.store.base import Lease, NodeRecord
from pymon.store.sql.schema import node_table, shard_table

__all__ = [
    "claim",
    "fence",
    "lease_from_row",
    "leases",
    "node_from_row",
    "node_row",
    "nodes",
    "release",
    "renew",
    "shard_rows",
    "stopped",
]

_s, _n = shard_table, node_table


def node_row(node: NodeRecord) -> dict[str, Any]:
    """The nodes table's row for ``node``."""
    return {
        "name": node.name,
        "host": node.host,
        "pid": node.pid,
        "location": node.location,
        "config_checksum": node.config_checksum,
        "started_at": node.started_at,
        "heartbeat_at": node.heartbeat_at,
        "stopped_at": node.stopped_at,
        "checks_per_s": node.checks_per_s,
        "web": node.web,
    }


def node_from_row(row: Any) -> NodeRecord:
    """A :class:`NodeRecord` from a row of the nodes table."""
    return NodeRecord(
        name=row["name"],
        host=row["host"],
        pid=int(row["pid"]),
        location=row["location"],
        config_checksum=row["config_checksum"],
        started_at=float(row["started_at"]),
        heartbeat_at=float(row["heartbeat_at"]),
        checks_per_s=float(row["checks_per_s"]),
        web=row["web"],
        stopped_at=None if row["stopped_at"] is None else float(row["stopped_at"]),
    )


def lease_from_row(row: Any) -> Lease:
    """A :class:`Lease` from a row of the shards table."""
    return Lease(int(row["shard"]), row["owner"], float(row["lease_until"]), int(row["epoch"]))


def nodes() -> Select[Any]:
    """Every node, by name."""
    return select(_n).order_by(_n.c.name)


def leases() -> Select[Any]:
    """Every shard's lease, by shard."""
    return select(_s).order_by(_s.c.shard)


def stopped(name: str, at: float) -> Update:
    """``name`` stopped cleanly at ``at``."""
    return update(_n).where(_n.c.name == name).values(stopped_at=at)


def claim(owner: str, shards: Sequence[int], now: float, until: float) -> Update:
    """Take those of ``shards`` nobody holds (or whose lease ended before ``now``) for
    ``owner`` until ``until``, raising their epochs; returns (shard, epoch) of each taken."""
    free = (
        select(_s.c.shard)
        .where(_s.c.shard.in_(shards), or_(_s.c.owner.is_(None), _s.c.lease_until < now))
        .with_for_update(skip_locked=True)
    )
    return (
        update(_s)
        .where(_s.c.shard.in_(free.scalar_subquery()))
        .values(owner=owner, lease_until=until, epoch=_s.c.epoch + 1)
        .returning(_s.c.shard, _s.c.epoch)
    )


def renew(owner: str, until: float) -> Update:
    """Extend every lease ``owner`` still holds to ``until`` (epochs unchanged);
    returns (shard, epoch) of each: what the node holds now."""
    return (
        update(_s)
        .where(_s.c.owner == owner)
        .values(lease_until=until)
        .returning(_s.c.shard, _s.c.epoch)
    )


def release(owner: str, shards: Sequence[int]) -> Update:
    """Give ``shards`` up at once (a node leaving or handing over to a new one)."""
    return (
        update(_s)
        .where(_s.c.owner == owner, _s.c.shard.in_(shards))
        .values(owner=None, lease_until=0.0)
    )


def fence(owner: str, shards: Sequence[int]) -> Select[Any]:
    """(shard, epoch) of those of ``shards`` that ``owner`` holds, locked against a
    claim until the write's transaction ends."""
    return (
        select(_s.c.shard, _s.c.epoch)
        .where(_s.c.owner == owner, _s.c.shard.in_(shards))
        .with_for_update(read=True)
    )


def shard_rows(count: int) -> list[dict[str, Any]]:
    """The rows of a new shards table: ``count`` shards, nobody's."""
    return [{"shard": n, "owner": None, "lease_until": 0.0, "epoch": 0} for n in range(count)]
