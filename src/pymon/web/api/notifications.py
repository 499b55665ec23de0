"""The API's notifications: every notice's delivery to each of its channels."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from pymon.web.api.common import READ, Limit, Offset, errors, page
from pymon.web.engine import port_of
from pymon.web.views import delivery_json, outbox_json

__all__ = ["router"]

router = APIRouter()


@router.get("/api/v1/notifications", dependencies=READ, responses=errors(401, 403, 422))
async def list_notifications(
    request: Request,
    state: Literal["pending", "delivered", "failed"] | None = Query(
        None, description="only deliveries in this state (failed: given up)"
    ),
    service: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every notice's delivery to each of its channels, newest first, with the last
    error of those that failed, and the outbox's counters since start."""
    port = port_of(request)
    rows = await port.deliveries(state=state, service=service, limit=limit + 1, offset=offset)
    shown, total, next_offset = page(rows, 0, limit)
    return {
        "stats": outbox_json(port.health().notifications),
        "total": None if total is None else offset + total,
        "offset": offset,
        "limit": limit,
        "next_offset": None if next_offset is None else offset + next_offset,
        "deliveries": [delivery_json(d) for d in shown],
    }
