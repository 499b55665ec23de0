"""The JSON document a notice becomes for programs: webhook bodies and command stdin.

Version 1 of the schema, one object (keys sorted, compact, ASCII)::

    {
      "version": 1,               # bumped only on an incompatible change
      "id": "<key>/<channel>",    # delivery id: the same on every retry; drop duplicates by it
      "key": "...",               # the notice's own key (stable across channels)
      "kind": "problem",          # problem | recovery | escalation
                                  # | flapping_started | flapping_stopped
                                  # | acknowledged | unacknowledged
      "service": "web",
      "status": "error",          # ok | warn | error | failed | unknown | disabled
      "message": "...",
      "at": 1700000000.25,        # when the notice was decided, epoch seconds
      "at_iso": "2023-11-14T22:13:20.250000+00:00",
      "since": 1699999000.0,      # when the trouble began, or null without an incident
      "since_iso": "...",         # or null
      "incident": "...",          # or null
      "metrics": {"time": 0.25},  # a metric that is not a finite number is null
      "instance": "...", "organization": "...", "host": "...",
      "service_type": "http", "service_uri": "pymon://<instance>/<service>",
      "service_url": "https://...",
      "tags": ["..."],
      "attempt": 1                # 1 for the first delivery to this channel
    }

The acknowledgement token is never part of it: a webhook receiver or a command's
log is not a place for a secret that acknowledges incidents.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from pymon.model import Notice
from pymon.notify.base import NoticeContext

__all__ = ["PAYLOAD_VERSION", "delivery_id", "encode_payload", "notice_payload"]

#: The ``version`` of the documents built here.
PAYLOAD_VERSION = 1


def delivery_id(notice: Notice, channel: str) -> str:
    """The id of delivering ``notice`` on ``channel``: the same on every attempt."""
    return f"{notice.key}/{channel}"


def notice_payload(notice: Notice, ctx: NoticeContext, channel: str) -> dict[str, Any]:
    """``notice`` as the JSON-ready document described in this module's docstring."""
    return {
        "version": PAYLOAD_VERSION,
        "id": delivery_id(notice, channel),
        "key": notice.key,
        "kind": notice.kind.value,
        "service": notice.service,
        "status": notice.status.value,
        "message": notice.message,
        "at": notice.at,
        "at_iso": _iso(notice.at),
        "since": notice.since,
        "since_iso": None if notice.since is None else _iso(notice.since),
        "incident": notice.incident,
        "metrics": {name: _finite(value) for name, value in notice.metrics.items()},
        "instance": ctx.instance,
        "organization": ctx.organization,
        "host": ctx.host,
        "service_type": ctx.service_type,
        "service_uri": ctx.service_uri,
        "service_url": ctx.service_url,
        "tags": list(ctx.tags),
        "attempt": ctx.attempt,
    }


def encode_payload(payload: dict[str, Any]) -> bytes:
    """``payload`` serialised once, as sent and as signed: compact, sorted keys, ASCII.

    ASCII (non-ASCII as ``\\u`` escapes) so that any text, even a lone surrogate
    from undecodable check output, yields valid bytes.
    """
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity; a receiver's strict parser would reject the document.
    return value if math.isfinite(value) else None
