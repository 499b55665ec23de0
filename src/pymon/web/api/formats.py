"""How the list of services is answered: JSON in its envelope, or NDJSON for machines
(one service per line, streamed), each service whole or cut to the ``fields`` asked
(:class:`~pymon.web.fragments.ServiceFragments` encodes them).

JSON is the default. NDJSON is chosen by ``format=ndjson``, or, without ``format``, by
an ``Accept`` header that rates ``application/x-ndjson`` above ``application/json``
(quality first, then the order listed; ``*/*`` counts for neither). An NDJSON answer
carries no envelope: the lines are the page's services, and ``X-Total-Count`` says
how many services matched in all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from fastapi.responses import Response, StreamingResponse

from pymon.web.api.common import bad_field
from pymon.web.fragments import json_bytes
from pymon.web.views import SERVICE_FIELDS

if TYPE_CHECKING:
    from pymon.engine.ports import ServiceView

__all__ = [
    "JSON",
    "NDJSON",
    "NDJSON_LINE",
    "Format",
    "chosen_format",
    "json_list",
    "ndjson_list",
    "selected_fields",
]

Format = Literal["json", "ndjson"]
"""What the ``format`` parameter takes."""

JSON = "application/json"
"""The media type of the JSON answer."""

NDJSON = "application/x-ndjson"
"""The media type of the NDJSON answer."""

NDJSON_LINE: dict[str, Any] = {
    "type": "object",
    "description": "one service per line (no envelope); X-Total-Count: how many matched",
}
"""What the OpenAPI document says of an NDJSON line."""

# Lines per chunk of an NDJSON answer: few enough to keep the loop turning between
# chunks when services must be encoded afresh, many enough that a send carries ~64 KB.
_LINES_PER_CHUNK = 128


def _quality(part: str) -> tuple[str, float]:
    """``type/subtype;q=0.5`` as (``type/subtype``, 0.5); an unreadable q counts as 0."""
    media, *params = (p.strip() for p in part.split(";"))
    quality = 1.0
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return media.lower(), quality


def chosen_format(asked: Format | None, accept: str) -> Format:
    """The format a list is answered in: ``asked`` (the ``format`` parameter) if given,
    else NDJSON when ``accept`` prefers it to JSON, else JSON."""
    if asked is not None:
        return asked
    rated = [_quality(part) for part in accept.split(",")]
    ranked = sorted(
        (-quality, position, media)
        for position, (media, quality) in enumerate(rated)
        if media in (JSON, NDJSON) and quality > 0
    )
    return "ndjson" if ranked and ranked[0][2] == NDJSON else "json"


def selected_fields(text: str | None) -> tuple[str, ...] | None:
    """``name,status`` as ("name", "status") in the order given (a repeat counts once);
    None for every field. A 422 naming ``fields`` and the unknown key otherwise."""
    if text is None:
        return None
    asked = [part.strip() for part in text.split(",")]
    unknown = [part for part in asked if part not in SERVICE_FIELDS]
    if unknown:
        shown = ", ".join(repr(part[:50]) for part in unknown[:5])
        raise bad_field(
            "query",
            "fields",
            f"unknown field {shown}; a service has {', '.join(SERVICE_FIELDS)}",
        )
    return tuple(dict.fromkeys(asked))


def json_list(
    total: int,
    offset: int,
    limit: int,
    views: Sequence[ServiceView],
    encode: Callable[[ServiceView], bytes],
) -> Response:
    """``{total, offset, limit, services}`` joined from each service's bytes."""
    head = json_bytes({"total": total, "offset": offset, "limit": limit})
    body = b"".join((head[:-1], b',"services":[', b",".join(map(encode, views)), b"]}"))
    return Response(body, media_type=JSON)


def ndjson_list(
    total: int, views: Sequence[ServiceView], encode: Callable[[ServiceView], bytes]
) -> StreamingResponse:
    """One line per service of ``views``, streamed; ``X-Total-Count`` is ``total``."""

    async def lines() -> AsyncIterator[bytes]:
        for start in range(0, len(views), _LINES_PER_CHUNK):
            if start:
                # A send does not wait unless the client is slow: give the loop a turn.
                await asyncio.sleep(0)
            chunk = views[start : start + _LINES_PER_CHUNK]
            yield b"".join(encode(view) + b"\n" for view in chunk)

    return StreamingResponse(lines(), media_type=NDJSON, headers={"X-Total-Count": str(total)})
