"""One check, once, outside a running daemon: what ``pymon check`` runs.

The check runs as the daemon would run it (its timeout, its own HTTP session) and
its result is judged by the service's thresholds; no state, no store, no notice.
"""

from __future__ import annotations

from pymon.checks import CheckContext, check_type, run_check
from pymon.checks.base import Resolver, SystemResolver
from pymon.checks.http import HttpSessions
from pymon.config.schema import ServiceConfig
from pymon.engine import rules
from pymon.model import CheckResult, Status

__all__ = ["check_once"]


async def check_once(
    service: ServiceConfig, *, resolver: Resolver | None = None
) -> tuple[CheckResult, Status, str]:
    """Run ``service``'s check once: the raw result, and status and message after thresholds."""
    sessions = HttpSessions()
    try:
        ctx = CheckContext(
            timeout=service.timeout,
            http_session=sessions.get,
            resolver=resolver or SystemResolver(),
        )
        result = await run_check(check_type(service.type), service.check, ctx)
    finally:
        await sessions.close()
    status, message = rules.evaluate(result, service.thresholds)
    return result, status, message
