"""What the API's routes share: the read dependency, a 422 that names a field,
pagination of lists the store cannot count cheaply, the bounds of every integer
parameter, and the error answers each route declares in the OpenAPI document."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from pymon.durations import parse_duration
from pymon.web.auth import require_read

__all__ = [
    "MAX_LIMIT",
    "MAX_OFFSET",
    "READ",
    "ErrorBody",
    "InvalidRequest",
    "Limit",
    "Offset",
    "bad_field",
    "errors",
    "moment",
    "page",
]

READ = [Depends(require_read)]
"""``dependencies=`` of a read route."""

MAX_LIMIT = 10_000
"""The most rows one page may ask for."""

MAX_OFFSET = 1_000_000
"""The deepest page start: every integer parameter is bounded, so a huge one is a 422
naming it, never an integer the store cannot hold (a 500)."""

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
"""A page's size (each route gives its own default)."""

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (at most 1,000,000)")]
"""Where a page starts."""


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, in one sentence."""

    error: str


class FieldError(BaseModel):
    """One bad parameter or body field."""

    field: str
    error: str


class InvalidRequest(BaseModel):
    """A 422: ``error`` is "invalid request", ``fields`` names each bad field."""

    error: str
    fields: list[FieldError]


_ANSWERS: dict[int, tuple[str, type[BaseModel]]] = {
    400: ("the body cannot be read", ErrorBody),
    401: ("credentials are needed (WWW-Authenticate says how)", ErrorBody),
    403: ("the credentials are wrong, or may not do this", ErrorBody),
    404: ("no such service, window or token", ErrorBody),
    409: ("the engine refuses the command in the state it is in", ErrorBody),
    422: ("a bad parameter or body field (named in fields)", InvalidRequest),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` declaring the error answers ``codes`` a route gives."""
    return {code: {"description": _ANSWERS[code][0], "model": _ANSWERS[code][1]} for code in codes}


def bad_field(where: Literal["query", "body", "path"], field: str, message: str) -> Exception:
    """A 422 naming ``field``, in the same shape as FastAPI's own validation errors."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error"}])


def page(rows: Sequence[Any], offset: int, limit: int) -> tuple[list[Any], int | None, int | None]:
    """Rows fetched as ``offset + limit + 1`` from the newest: (this page, total if
    known, next offset if more follow)."""
    shown = list(rows[offset : offset + limit])
    more = len(rows) > offset + limit
    return shown, None if more else offset + len(shown), offset + limit if more else None


def moment(field: str, value: str | None, now: float) -> float | None:
    """``since``/``until``: epoch seconds, an ISO 8601 date-time (naive is UTC), or a
    duration meaning that long ago (``24h``)."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise bad_field("query", field, f"{value[:50]!r} is not a finite number")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - parse_duration(text)
        except (ValueError, OverflowError):
            raise bad_field(
                "query",
                field,
                f"{value[:50]!r} is not epoch seconds, an ISO 8601 date-time "
                "(2026-05-01T02:00Z) or a duration ago (24h)",
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
