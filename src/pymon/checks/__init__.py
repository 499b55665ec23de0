"""The check registry: check type name -> spec model, check function, default thresholds.

Every module in this package (except ``base`` and ``_private`` helpers) is a check
type and registers itself with :func:`register`; config validation and ``pymon check
TYPE`` read the registry, so adding a check type is adding one module.

A check function has one signature::

    async def check(spec: MySpec, ctx: CheckContext) -> CheckResult

It speaks its protocol and reports what it saw. Timing, the timeout and turning an
unexpected exception into a result are done here, in :func:`run_check`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pymon.checks.base import CheckContext
from pymon.config.schema import CheckSpec, MetricThresholds
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status

__all__ = ["REGISTRY", "CheckContext", "CheckType", "check_type", "register", "run_check"]

log = logging.getLogger("pymon.checks")

S = TypeVar("S", bound=CheckSpec)
CheckFn = Callable[[Any, CheckContext], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckType:
    """One registered check type."""

    name: str
    spec: type[CheckSpec]
    run: CheckFn
    thresholds: Mapping[str, MetricThresholds]
    summary: str


REGISTRY: dict[str, CheckType] = {}


def register(
    name: str,
    spec: type[S],
    thresholds: Mapping[str, MetricThresholds] | None = None,
) -> Callable[[Callable[[S, CheckContext], Awaitable[CheckResult]]], CheckFn]:
    """Register the decorated function as check type ``name`` with its spec model."""

    def deco(fn: Callable[[S, CheckContext], Awaitable[CheckResult]]) -> CheckFn:
        if name in REGISTRY:
            raise RuntimeError(f"check type {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = CheckType(name, spec, fn, dict(thresholds or {}), doc[0] if doc else "")
        return fn

    return deco


def check_type(name: str) -> CheckType:
    """The registered check type ``name``; KeyError names the known ones."""
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
        async with asyncio.timeout(ctx.timeout):
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


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        # base and _private modules are shared helpers, not check types.
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_load_all()
