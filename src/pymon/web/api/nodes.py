"""The API's cluster: the nodes sharing the store, their shards and heartbeats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from pymon.web.api.common import READ, errors
from pymon.web.engine import port_of
from pymon.web.views import node_json

__all__ = ["router"]

router = APIRouter()


@router.get("/api/v1/nodes", dependencies=READ, responses=errors(401, 403))
async def list_nodes(request: Request) -> dict[str, Any]:
    """Every node that ever beat on the store, by name: whether it is alive (beat
    within the lease, not stopped), how many shards it holds, its heartbeat's age in
    seconds, its config checksum and checks per second."""
    return {"nodes": [node_json(node) for node in await port_of(request).nodes()]}
