"""``ping``: ICMP echo (icmplib's datagram sockets, or one shared raw socket); loss and
round-trip times."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Protocol

import icmplib
from pydantic import Field

from pymon.checks.base import CheckContext, resolve_host
from pymon.checks.echoes import Echoes, echoes
from pymon.checks.spec import CheckSpec, MetricThresholds
from pymon.durations import Duration
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status
from pymon.ranges import parse_ranges

__all__ = ["PING_LOSS", "PingSpec", "check_ping"]

# The original pymon's table, as loss instead of replies: ok 96-100 % replies...
PING_LOSS = MetricThresholds(
    ok=parse_ranges("0-4"),
    warn=parse_ranges("4.01-74.99"),
    error=parse_ranges("75-99.99"),
    failed=parse_ranges("100"),
)

# icmplib waits for each reply in turn, so the whole run takes up to
# count * reply timeout + (count - 1) * interval; this share of what is left of the
# check's timeout goes to that, the rest is margin for building the result.
_BUDGET_SHARE = 0.8
# Below this a reply from a healthy host on a busy network would count as lost.
_MIN_REPLY_TIMEOUT = 0.05


class _Host(Protocol):
    """The part of icmplib's (untyped) Host result this check reads."""

    packets_sent: int
    packets_received: int
    avg_rtt: float
    max_rtt: float


class PingSpec(CheckSpec):
    """Keys of a ``ping`` service."""

    host: str = Field(min_length=1)
    count: int = Field(default=4, ge=1, le=100)
    packet_interval: Duration = Field(default=0.2, gt=0)


@dataclass(slots=True)
class _Echoed:
    """What the shared raw socket's echoes came to (the figures icmplib's Host gives)."""

    packets_sent: int
    packets_received: int
    avg_rtt: float
    max_rtt: float


async def _ping(address: str, spec: PingSpec, reply_timeout: float) -> _Host:
    """The echoes of ``address``: as root over the loop's one raw socket
    (:mod:`pymon.checks.echoes` says why one), else over an ICMP datagram socket of
    the check's own where the system allows one (net.ipv4.ping_group_range)."""
    if os.geteuid() == 0:
        try:
            return await _echo(echoes(address), address, spec, reply_timeout)
        except PermissionError:
            pass  # root without CAP_NET_RAW (a container): datagram sockets, perhaps
    try:
        host: _Host = await icmplib.async_ping(
            address,
            count=spec.count,
            interval=spec.packet_interval,
            timeout=reply_timeout,
            privileged=False,
        )
    except icmplib.SocketPermissionError:
        raise CheckSetupError(
            "ICMP needs root (or CAP_NET_RAW), or net.ipv4.ping_group_range to include "
            f"group {os.getegid()}"
        ) from None
    return host


async def _echo(shared: Echoes, address: str, spec: PingSpec, reply_timeout: float) -> _Echoed:
    """``spec.count`` echoes of ``address`` over ``shared``, ``packet_interval`` apart."""
    rtts: list[float] = []
    for n in range(spec.count):
        if n:
            await asyncio.sleep(spec.packet_interval)
        try:
            rtt = await shared.echo(address, reply_timeout)
        except OSError as exc:
            raise icmplib.ICMPSocketError(str(exc)) from exc
        if rtt is not None:
            rtts.append(rtt)
    average = sum(rtts) / len(rtts) if rtts else 0.0
    return _Echoed(spec.count, len(rtts), average, max(rtts, default=0.0))


async def check_ping(spec: PingSpec, ctx: CheckContext) -> CheckResult:
    """Send ``count`` ICMP echo requests to ``host``."""
    t0 = ctx.clock.monotonic()
    try:
        address = (await resolve_host(spec.host, ctx))[0]
    except OSError as exc:
        return CheckResult(Status.FAILED, f"cannot resolve {spec.host}: {exc.strerror or exc}")
    left = ctx.timeout - (ctx.clock.monotonic() - t0)
    budget = left * _BUDGET_SHARE - (spec.count - 1) * spec.packet_interval
    reply_timeout = max(budget / spec.count, _MIN_REPLY_TIMEOUT)
    ctx.stage = f"sending {spec.count} echo requests to {address}"
    if budget < spec.count * _MIN_REPLY_TIMEOUT:
        ctx.stage += (
            f" (count {spec.count} at packet_interval {spec.packet_interval:g}s"
            f" cannot finish within the {ctx.timeout:g}s timeout)"
        )
    try:
        host = await _ping(address, spec, reply_timeout)
    except icmplib.ICMPLibError as exc:
        return CheckResult(Status.FAILED, f"cannot ping {address}: {exc}")
    sent, received = host.packets_sent, host.packets_received
    where = spec.host if address == spec.host else f"{spec.host} ({address})"
    if sent == 0:
        return CheckResult(Status.FAILED, f"could not send any echo request to {where}")
    loss = round(100.0 * (sent - received) / sent, 2)
    if received == 0:
        return CheckResult(
            Status.FAILED, f"no reply from {where} ({sent} sent)", {"loss_pct": loss}
        )
    avg, peak = host.avg_rtt, host.max_rtt
    return CheckResult(
        Status.OK,
        f"{received}/{sent} replies from {where}, {loss:g}% loss, "
        f"rtt avg {avg:.3g} ms, max {peak:.3g} ms",
        {"loss_pct": loss, "rtt_avg_ms": round(avg, 3), "rtt_max_ms": round(peak, 3)},
    )
