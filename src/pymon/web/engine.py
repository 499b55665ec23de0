"""The web's one way to the engine: the port ``create_app`` put on ``app.state``, and a
service looked up through it (404 when there is none)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort, ServiceView

__all__ = ["lookup", "port_of"]


def port_of(request: Request) -> EnginePort:
    """The engine's port of the app serving ``request``."""
    port: EnginePort = request.app.state.port
    return port


async def lookup(port: EnginePort, name: str) -> ServiceView:
    """The service ``name``; an HTTP 404 naming it when there is none."""
    view = await port.service(name)
    if view is None:
        raise HTTPException(404, f"no service named {name!r}")
    return view
