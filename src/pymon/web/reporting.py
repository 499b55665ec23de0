"""Reading an uptime report through the engine's port: the buckets
:func:`pymon.web.uptime.uptime_of` reads (day buckets for whole days, hour buckets
at the edges, added up in the store) and the incidents of the window, handed to the pure
:func:`pymon.reports.build`. The API and the Reports page read reports this way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymon.reports import Report, Target, build
from pymon.web.uptime import MAX_WINDOW, uptime_of

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = ["MAX_WINDOW", "read_report"]


async def read_report(
    port: EnginePort,
    targets: Sequence[Target],
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
    every: bool = False,
) -> Report:
    """The report of ``targets`` over ``since``..``until``; ``every`` says the targets
    are every service, so the port is asked for all of them (no list of names)."""
    names = None if every else [t.service for t in targets]
    if not targets:
        return build(targets, {}, [], since, until, include_maintenance=include_maintenance)
    uptimes = await uptime_of(port, names, since, until, include_maintenance=include_maintenance)
    incidents = await port.incidents_between(names, since, until)
    return build(targets, uptimes, incidents, since, until, include_maintenance=include_maintenance)
