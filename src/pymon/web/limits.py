"""Request bodies are capped while they stream in: ``web.max_body`` bytes at most.

A ``Content-Length`` over the cap is refused at once (413) without reading a byte;
a body that grows past the cap as it arrives (chunked, or a lying length) is refused
at the chunk that crosses it, so no more than the cap plus one chunk is ever held.
The 413 closes the connection: the rest of the body is never read.
:class:`pymon.web.auth.AuthMiddleware` applies both once the credentials passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope

__all__ = ["capped", "over_limit", "too_large"]


def too_large(limit: int) -> HTTPException:
    """The 413 for a body over ``limit`` bytes (the connection closes after it)."""
    return HTTPException(
        413,
        f"request body over the limit of {limit} bytes (web.max_body)",
        headers={"Connection": "close"},
    )


def over_limit(scope: Scope, limit: int) -> bool:
    """Whether the request announces (``Content-Length``) a body over ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value) > limit
            except ValueError:
                # The server refuses a malformed length itself; the bytes are counted anyway.
                return False
    return False


def capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :func:`too_large` once the body passes ``limit`` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                # Raised into whoever reads the body; FastAPI passes an HTTPException
                # through, and the app's handler answers it.
                raise too_large(limit)
        return message

    return counted
