"""Notices and contexts for the channel tests: one problem of service ``db``, and its context."""

from __future__ import annotations

from typing import Any

from pymon.model import Notice, NoticeKind, Status
from pymon.notify.base import NoticeContext

__all__ = ["TOKEN", "make_context", "make_notice"]

#: The acknowledgement token of :func:`make_context`; no channel may leak it.
TOKEN = "0123456789abcdef0123"


def make_notice(**changes: Any) -> Notice:
    """A ``failed`` problem of service ``db`` in incident ``inc-7``; ``changes`` replace fields."""
    values: dict[str, Any] = {
        "key": "inc-7:problem:1",
        "service": "db",
        "kind": NoticeKind.PROBLEM,
        "at": 1_700_000_000.5,
        "status": Status.FAILED,
        "message": "connection refused",
        "channels": ("pager",),
        "incident": "inc-7",
        "metrics": {"time": 1.5},
        "since": 1_699_999_000.0,
    }
    values.update(changes)
    return Notice(**values)


def make_context(attempt: int = 1) -> NoticeContext:
    """The context of the ``attempt``-th delivery of a :func:`make_notice` notice."""
    return NoticeContext(
        instance="lab",
        organization="Example Org",
        host="monitor1",
        service_type="tcp",
        service_uri="pymon://lab/db",
        service_url="http://127.0.0.1:8080/services/db",
        tags=("prod",),
        ack_token=TOKEN,
        ack_address=f"ack+{TOKEN}@example.org",
        attempt=attempt,
    )
