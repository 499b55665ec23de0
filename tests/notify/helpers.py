"""Notices and contexts for the channel tests: one problem of service ``db``, and its context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymon.model import Notice, NoticeKind, Status
from pymon.notify.base import NoticeContext

__all__ = ["TOKEN", "daemon_config", "make_context", "make_notice"]

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


def daemon_config(tmp_path: Path, target: int, channels: str, extra: str = "") -> str:
    """A daemon config: instance ``lab`` of ``ACME Ops``, SQLite in ``tmp_path``, the API on
    a free port, fast checks and retries, ``channels`` (indented YAML) and service ``web``
    (tcp to ``target``, failed at once, ok at once), with ``extra`` top-level keys."""
    return f"""
instance: {{name: lab, organization: ACME Ops}}
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
notifications:
  cutoff: 2
  renotify: 300ms
  delivery: {{backoff: 100ms, max_backoff: 200ms}}
  channels:
{channels}
{extra}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {target}}}
"""
