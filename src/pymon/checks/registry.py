"""The check registry: one table, check type name -> spec model, check function, default thresholds.

Every check type is one row of :data:`REGISTRY`, written out below; a protocol
module knows nothing of the table (it imports only ``base`` and its helpers), so
adding a check type is one module and one row. Config validation, ``pymon check``
and the scheduler read the table.

A check function has one signature::

    async def check(spec: MySpec, ctx: CheckContext) -> CheckResult

It speaks its protocol and reports what it saw. Timing, the timeout and turning an
unexpected exception into a result are done here, in :func:`run_check`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pymon.checks import dns, ftp, heartbeat, http, ping, plugin, process, smtp, tcp, tls
from pymon.checks.base import CheckContext
from pymon.checks.deadlines import Deadline
from pymon.checks.spec import CheckSpec, MetricThresholds
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status

__all__ = ["REGISTRY", "CheckFn", "CheckType", "check_type", "run_check"]

log = logging.getLogger("pymon.checks")

S = TypeVar("S", bound=CheckSpec)
CheckFn = Callable[[Any, CheckContext], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckType:
    """One row of the registry: a check type's name, spec model, function and default
    thresholds (per metric; a service's own thresholds are merged over them)."""

    name: str
    spec: type[CheckSpec]
    run: CheckFn
    thresholds: Mapping[str, MetricThresholds] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The first line of the check function's docstring: what the type does."""
        doc = (self.run.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


def _row(
    name: str,
    spec: type[S],
    run: Callable[[S, CheckContext], Awaitable[CheckResult]],
    thresholds: Mapping[str, MetricThresholds] | None = None,
) -> CheckType:
    # Typed so that a function written for another spec model does not fit its row.
    return CheckType(name, spec, run, dict(thresholds or {}))


def _table(*rows: CheckType) -> dict[str, CheckType]:
    table = {row.name: row for row in rows}
    if len(table) != len(rows):
        raise RuntimeError("two check types have the same name")
    return table


#: Every check type, by name. Nothing in pymon writes to it; a benchmark may add or
#: swap a row in its own process (benchmarks/components.py, variants.py).
REGISTRY: dict[str, CheckType] = _table(
    _row("ping", ping.PingSpec, ping.check_ping, {"loss_pct": ping.PING_LOSS}),
    _row("tcp", tcp.TcpSpec, tcp.check_tcp),
    _row(
        "http",
        http.HttpSpec,
        http.check_http,
        {"status_code": http.HTTP_STATUS, "cert_days_left": tls.CERT_DAYS_LEFT},
    ),
    _row("tls", tls.TlsSpec, tls.check_tls, {"cert_days_left": tls.CERT_DAYS_LEFT}),
    _row("smtp", smtp.SmtpSpec, smtp.check_smtp),
    _row("ftp", ftp.FtpSpec, ftp.check_ftp),
    _row("dns", dns.DnsSpec, dns.check_dns),
    _row("process", process.ProcessSpec, process.check_process, {"count": process.PROCESS_COUNT}),
    _row("plugin", plugin.PluginSpec, plugin.check_plugin),
    _row("heartbeat", heartbeat.HeartbeatSpec, heartbeat.check_heartbeat),
)


def check_type(name: str) -> CheckType:
    """The check type ``name``; KeyError names the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown check type {name!r} (known: {known})") from None


async def run_check(kind: CheckType, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """Run one check under its timeout; always returns a result, never raises.

    A timeout is ``failed`` and names the stage the check had reached; a check that
    cannot run here at all (CheckSetupError) or that crashed is ``unknown``.
    """
    started_at = ctx.clock.time()
    t0 = ctx.clock.monotonic()
    try:
        with Deadline(ctx.timeout):
            result = await kind.run(spec, ctx)
    except TimeoutError:
        result = CheckResult(Status.FAILED, f"timed out after {ctx.timeout:g}s while {ctx.stage}")
    except CheckSetupError as exc:
        result = CheckResult(Status.UNKNOWN, f"cannot run {kind.name} check: {exc}")
    except Exception as exc:
        log.exception("%s check crashed", kind.name)
        result = CheckResult(Status.UNKNOWN, f"check crashed: {type(exc).__name__}: {exc}")
    return CheckResult(
        result.status, result.message, result.metrics, started_at, ctx.clock.monotonic() - t0
    )
