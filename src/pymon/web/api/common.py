"""What the API's routes share: the read dependency, a 422 that names a field, and
pagination of lists the store cannot count cheaply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fastapi import Depends
from fastapi.exceptions import RequestValidationError

from pymon.web.auth import require_read

__all__ = ["READ", "bad_field", "page"]

READ = [Depends(require_read)]
"""``dependencies=`` of a read route."""


def bad_field(where: Literal["query", "body", "path"], field: str, message: str) -> Exception:
    """A 422 naming ``field``, in the same shape as FastAPI's own validation errors."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error"}])


def page(rows: Sequence[Any], offset: int, limit: int) -> tuple[list[Any], int | None, int | None]:
    """Rows fetched as ``offset + limit + 1`` from the newest: (this page, total if
    known, next offset if more follow)."""
    shown = list(rows[offset : offset + limit])
    more = len(rows) > offset + limit
    return shown, None if more else offset + len(shown), offset + limit if more else None
