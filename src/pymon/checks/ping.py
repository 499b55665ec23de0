"""``ping``: ICMP echo with icmplib; loss and round-trip times."""

from __future__ import annotations

from pydantic import Field

from pymon.checks import register
from pymon.checks.base import CheckContext
from pymon.config.ranges import parse_ranges
from pymon.config.schema import CheckSpec, Duration, MetricThresholds
from pymon.model import CheckResult

# The original pymon's table, as loss instead of replies: ok 96-100 % replies...
PING_LOSS = MetricThresholds(
    ok=parse_ranges("0-4"),
    warn=parse_ranges("4.01-74.99"),
    error=parse_ranges("75-99.99"),
    failed=parse_ranges("100"),
)


class PingSpec(CheckSpec):
    """Keys of a ``ping`` service."""

    host: str = Field(min_length=1)
    count: int = Field(default=4, ge=1, le=100)
    packet_interval: Duration = Field(default=0.2, gt=0)


@register("ping", PingSpec, {"loss_pct": PING_LOSS})
async def check_ping(spec: PingSpec, ctx: CheckContext) -> CheckResult:
    """Send ``count`` ICMP echo requests to ``host``."""
    raise NotImplementedError
