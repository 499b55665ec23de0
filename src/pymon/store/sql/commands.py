"""The relay's statements on the commands table: sending, the open ones, taking,
answering, withdrawing and pruning (docs/cluster.md, "Commands on any node").

A command is taken by one conditional ``UPDATE`` (``taken_by IS NULL`` in its
``WHERE``): on SQLite one writer runs at a time, and on PostgreSQL a second taker
waits for the first one's row lock, then finds ``taken_by`` set and changes
nothing. So a command is applied by one node once, however many look at it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Delete, Select, Update, delete, select, update

from pymon.store.base import CommandRecord
from pymon.store.sql.schema import command_table

__all__ = [
    "command_from_row",
    "find",
    "finish",
    "open_since",
    "prune",
    "take",
    "withdraw",
]

_c = command_table
_UNTAKEN = (_c.c.done_at.is_(None), _c.c.taken_by.is_(None))


def command_from_row(row: Any) -> CommandRecord:
    """A :class:`CommandRecord` from a row of the commands table."""
    return CommandRecord(
        id=row["id"],
        service=row["service"],
        kind=row["kind"],
        arguments=dict(row["arguments"]),
        origin=row["origin"],
        created_at=float(row["created_at"]),
        taken_by=row["taken_by"],
        taken_at=None if row["taken_at"] is None else float(row["taken_at"]),
        done_at=None if row["done_at"] is None else float(row["done_at"]),
        answer=None if row["answer"] is None else dict(row["answer"]),
        error=row["error"],
        error_kind=row["error_kind"],
    )


def open_since(since: float, limit: int) -> Select[Any]:
    """Commands nobody took yet, sent at or after ``since``, oldest first."""
    return (
        select(_c)
        .where(*_UNTAKEN, _c.c.created_at >= since)
        .order_by(_c.c.created_at, _c.c.id)
        .limit(limit)
    )


def take(owner: str, ids: Sequence[str], at: float) -> Update:
    """Take those of ``ids`` nobody took yet for ``owner``; returns the rows taken."""
    return (
        update(_c)
        .where(_c.c.id.in_(ids), *_UNTAKEN)
        .values(taken_by=owner, taken_at=at)
        .returning(*_c.c)
    )


def finish(
    command_id: str,
    at: float,
    answer: Mapping[str, Any] | None,
    error: str | None,
    error_kind: str | None,
) -> Update:
    """A taken command's end: its answer, or its error and the error's kind."""
    return (
        update(_c)
        .where(_c.c.id == command_id, _c.c.done_at.is_(None))
        .values(
            done_at=at,
            answer=None if answer is None else dict(answer),
            error=error,
            error_kind=error_kind,
        )
    )


def withdraw(command_id: str, at: float) -> Update:
    """Close a command nobody took (its sender stopped waiting), so no node applies
    it later: one row changed when it was still untaken."""
    return (
        update(_c)
        .where(_c.c.id == command_id, *_UNTAKEN)
        .values(done_at=at, error="the sender stopped waiting", error_kind="expired")
    )


def find(command_id: str) -> Select[Any]:
    """One command by id."""
    return select(_c).where(_c.c.id == command_id)


def prune(before: float) -> Delete:
    """Delete every command sent before ``before``, done or not (nobody waits for it)."""
    return delete(_c).where(_c.c.created_at < before)
