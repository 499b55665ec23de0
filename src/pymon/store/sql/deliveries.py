"""The outbox's statements on the deliveries table: which are due, claiming one for an
attempt (a lease), giving back the leases of an instance that died, recording how an
attempt ended, and listing them with their notices.

A delivery is pending until it is delivered or given up. A sender claims one by
moving its ``next_at`` to the end of a lease, only while ``next_at`` is still the
value it saw: of two instances on one database one wins, and a crash mid-send
leaves the lease to run out, after which the delivery is due again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Update, func, select, update

from pymon.store.sql.schema import delivery_table, notice_table

__all__ = ["claim", "due", "finish", "listing", "next_due", "release"]

_d, _n = delivery_table, notice_table
_PENDING = (_d.c.delivered_at.is_(None), _d.c.failed_at.is_(None))
_STATE_WHERE = {
    "pending": _PENDING,
    "delivered": (_d.c.delivered_at.is_not(None),),
    "failed": (_d.c.failed_at.is_not(None),),
}


def _joined() -> Select[Any]:
    """Deliveries with their notices' columns (what ``delivery_from_row`` reads)."""
    return select(
        _n,
        _d.c.channel,
        _d.c.attempts,
        _d.c.next_at,
        _d.c.delivered_at,
        _d.c.failed_at,
        _d.c.error,
    ).join(_n, _n.c.key == _d.c.key)


def due(now: float, limit: int) -> Select[Any]:
    """Pending deliveries whose ``next_at`` has come, oldest first."""
    return (
        _joined().where(*_PENDING, _d.c.next_at <= now).order_by(_d.c.next_at, _d.c.at).limit(limit)
    )


def next_due() -> Select[Any]:
    """The earliest ``next_at`` of a pending delivery (NULL: none pending)."""
    return select(func.min(_d.c.next_at)).where(*_PENDING)


def claim(key: str, channel: str, seen: float, until: float, owner: str) -> Update:
    """Count an attempt and lease the delivery to ``owner`` until ``until``, if it is
    still pending with ``next_at == seen`` (one row changed: the claim is taken)."""
    return (
        update(_d)
        .where(_d.c.key == key, _d.c.channel == channel, _d.c.next_at == seen, *_PENDING)
        .values(attempts=_d.c.attempts + 1, next_at=until, claimed_by=owner)
    )


def release(owner: str, now: float) -> Update:
    """Make the leases ``owner`` still holds on pending deliveries due at ``now``."""
    return (
        update(_d)
        .where(_d.c.claimed_by == owner, _d.c.next_at > now, *_PENDING)
        .values(next_at=now, claimed_by=None)
    )


def finish(
    key: str, channel: str, *, at: float, error: str | None, retry_at: float | None
) -> Update:
    """An attempt's end: delivered (no ``error``), to be retried at ``retry_at`` (the
    lease given back), or (an error and no ``retry_at``) given up for good."""
    if error is None:
        values: dict[str, Any] = {"delivered_at": at, "error": None}
    elif retry_at is not None:
        values = {"next_at": retry_at, "error": error, "claimed_by": None}
    else:
        values = {"failed_at": at, "error": error}
    return update(_d).where(_d.c.key == key, _d.c.channel == channel).values(**values)


def listing(state: str | None, service: str | None) -> Select[Any]:
    """Deliveries newest first; when given, only those in ``state`` (``pending``,
    ``delivered`` or ``failed``: ValueError for another) and of ``service``."""
    stmt = _joined().order_by(_d.c.at.desc(), _d.c.key, _d.c.channel)
    if state is not None:
        if state not in _STATE_WHERE:
            raise ValueError(f"state must be pending, delivered or failed, got {state!r}")
        stmt = stmt.where(*_STATE_WHERE[state])
    if service is not None:
        stmt = stmt.where(_d.c.service == service)
    return stmt
