"""``http``: request a URL, judge the status code and the body."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pymon.checks import register
from pymon.checks.base import CheckContext
from pymon.config.schema import CheckSpec, MetricThresholds
from pymon.config.ranges import parse_ranges
from pymon.model import CheckResult

# The original pymon's status table; a code in no range is unknown.
HTTP_STATUS = MetricThresholds(
    ok=parse_ranges("100-101, 200-203, 300, 302-305"),
    warn=parse_ranges("204-206, 301, 401-403, 405-407, 411-416"),
    error=parse_ranges("400, 404, 408-410, 417, 500-505"),
    failed=parse_ranges("0"),
)


class HttpSpec(CheckSpec):
    """Keys of an ``http`` service."""

    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    regex: bool = False
    verify_tls: bool = True
    follow_redirects: bool = False
    max_body: int = Field(default=1_048_576, ge=0)


@register("http", HttpSpec, {"status_code": HTTP_STATUS})
async def check_http(spec: HttpSpec, ctx: CheckContext) -> CheckResult:
    """Request ``url``; judge the status code and required/forbidden text in the body."""
    raise NotImplementedError
