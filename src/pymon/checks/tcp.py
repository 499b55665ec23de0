"""``tcp``: connect to a port, optionally send a line and expect an answer."""

from __future__ import annotations

from pydantic import Field

from pymon.checks import register
from pymon.checks.base import CheckContext
from pymon.config.schema import CheckSpec
from pymon.model import CheckResult


class TcpSpec(CheckSpec):
    """Keys of a ``tcp`` service."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    send: str | None = None
    expect: str | None = None


@register("tcp", TcpSpec)
async def check_tcp(spec: TcpSpec, ctx: CheckContext) -> CheckResult:
    """Connect over TCP; optionally send ``send`` and require ``expect`` in the reply."""
    raise NotImplementedError
