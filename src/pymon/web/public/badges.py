"""``GET /badge/{name}/status.svg``, ``/uptime.svg?window=30d``, ``/response.svg?window=24h``.

Public, like status pages, and only for a service a status page shows or that has
``badge: true``: for any other name, a service or not, the answer is the same 404,
so badges never tell that a private service exists. The label is the public name
of the first component showing the service, else (``badge: true``) its own name.

``uptime`` is by time over the window (docs/uptime.md); ``response`` is the 95th
percentile of check durations over the window, in milliseconds. Both read the hour
buckets for 24 h and 7 d and the day buckets beyond: the window is that many whole
buckets, the current one last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from pymon.uptime import DAY, HOUR, Uptime, bucket_start, summarize
from pymon.web.engine import port_of
from pymon.web.public.cache import Rendered
from pymon.web.public.exposure import exposure_of
from pymon.web.public.shields import badge
from pymon.web.public.status import snapshots_of
from pymon.web.public.vocabulary import PublicState, service_state

__all__ = ["WINDOWS", "response_colour", "router", "uptime_colour"]

router = APIRouter()

Window = Literal["24h", "7d", "30d", "90d", "1y"]

WINDOWS: Final[dict[str, tuple[float, int]]] = {
    "24h": (DAY, HOUR),
    "7d": (7 * DAY, HOUR),
    "30d": (30 * DAY, DAY),
    "90d": (90 * DAY, DAY),
    "1y": (365 * DAY, DAY),
}
"""Each window: its length in seconds and the width of the buckets read for it."""

_HEADERS: Final = {"Cache-Control": "public, max-age=60", "X-Content-Type-Options": "nosniff"}
_SVG: Final = "image/svg+xml"

STATE_COLOURS: Final = {
    PublicState.OPERATIONAL: "brightgreen",
    PublicState.DEGRADED: "yellow",
    PublicState.PARTIAL: "orange",
    PublicState.MAJOR: "red",
    PublicState.MAINTENANCE: "blue",
    PublicState.NO_DATA: "grey",
}


def uptime_colour(pct: float | None) -> str:
    """The uptime badge's colour: 99.9 % and up bright green, 99 green, 98 yellow-green,
    97 yellow, 95 orange, below red; grey without data."""
    if pct is None:
        return "grey"
    for floor, colour in ((99.9, "brightgreen"), (99.0, "green"), (98.0, "yellowgreen")):
        if pct >= floor:
            return colour
    return "yellow" if pct >= 97.0 else "orange" if pct >= 95.0 else "red"


def response_colour(ms: float | None) -> str:
    """The response badge's colour: under 200 ms bright green, 500 green, 1 s yellow,
    2 s orange, else red; grey without data."""
    if ms is None:
        return "grey"
    for ceiling, colour in ((200, "brightgreen"), (500, "green"), (1000, "yellow")):
        if ms < ceiling:
            return colour
    return "orange" if ms < 2000 else "red"


def _label(request: Request, name: str) -> str:
    label = exposure_of(request).labels.get(name)
    if label is None or port_of(request).config.service(name) is None:
        # The same answer for a private service as for no service at all.
        raise HTTPException(404, "no such badge")
    return label


def _svg(request: Request, rendered: Rendered) -> Response:
    return rendered.response(request, _SVG, _HEADERS)


@router.get("/badge/{name:path}/status.svg")
async def status_badge(request: Request, name: str) -> Response:
    """The service's state now, in the status pages' vocabulary."""
    label = _label(request, name)
    port = port_of(request)

    async def make() -> bytes:
        view = await port.service(name)
        state = service_state(view.state) if view is not None else PublicState.NO_DATA
        return badge(label, state.label.lower(), STATE_COLOURS[state])

    key = (id(port.config), port.config.checksum, "status", name)
    return _svg(request, await snapshots_of(request).get(key, make))


@router.get("/badge/{name:path}/uptime.svg")
async def uptime_badge(
    request: Request, name: str, window: Annotated[Window, Query()] = "30d"
) -> Response:
    """The service's uptime over ``window``, in percent."""
    return await _measured(request, name, window, _uptime)


@router.get("/badge/{name:path}/response.svg")
async def response_badge(
    request: Request, name: str, window: Annotated[Window, Query()] = "24h"
) -> Response:
    """The 95th percentile of the service's check durations over ``window``, in ms."""
    return await _measured(request, name, window, _response)


def _uptime(summary: Uptime) -> tuple[str, str, str]:
    pct = summary.uptime_pct
    return "uptime", "no data" if pct is None else f"{_percent(pct)} %", uptime_colour(pct)


def _response(summary: Uptime) -> tuple[str, str, str]:
    p95 = None if summary.response_p95 is None else summary.response_p95 * 1000
    return "p95", "no data" if p95 is None else f"{p95:.0f} ms", response_colour(p95)


async def _measured(
    request: Request, name: str, window: str, measure: Callable[[Uptime], tuple[str, str, str]]
) -> Response:
    """A badge of a figure over ``window``: ``measure`` says what it is called, its
    value and colour from the service's summary over the window."""
    label = _label(request, name)
    port = port_of(request)

    async def make() -> bytes:
        span, width = WINDOWS[window]
        # Whole buckets, the current one last: it holds no time to come, so it counts
        # whole (a window ending now would count only its share of it).
        until = bucket_start(port.now(), width) + width
        buckets = await port.rollups([name], until - span, until, width)
        what, value, colour = measure(summarize(name, buckets, until - span, until))
        return badge(f"{label} {what} {window}", value, colour)

    key = (id(port.config), port.config.checksum, measure.__name__, name, window)
    return _svg(request, await snapshots_of(request).get(key, make))


def _percent(pct: float) -> str:
    """99.95, 100, 97.3: two decimals at most; never 100 unless nothing was down."""
    if pct >= 100.0:
        return "100"
    return f"{min(round(pct, 2), 99.99):.2f}".rstrip("0").rstrip(".")
