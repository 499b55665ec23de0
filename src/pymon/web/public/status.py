"""``GET /status/{slug}`` and ``GET /status/{slug}.json``: a status page, public.

Neither route asks for credentials, even when ``web.auth.read`` is on: a status page
is made to be public, and shows only what :mod:`pymon.web.public.board` lets out.
Both answers are rendered once per the page's ``cache`` (10 s unless set) and
served from :class:`~pymon.web.public.cache.Snapshots` meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape

from pymon import __version__
from pymon.config.pages import StatusPage
from pymon.web.engine import port_of
from pymon.web.proxy import public_prefix
from pymon.web.public.board import AHEAD, DAYS, DayBar, build_board
from pymon.web.public.cache import Snapshots
from pymon.web.public.exposure import exposure_of

__all__ = ["router", "snapshots_of"]

router = APIRouter()

# The page has no script at all, and no inline style: the policy says so. The logo
# is the one thing fetched from elsewhere (an http(s) URL the config gives).
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data: https: http:; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_env = Environment(
    loader=PackageLoader("pymon.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _bars(days: Sequence[DayBar]) -> Markup:
    """A component's bars as markup: 90 of them for each of up to 500 components, made
    here rather than by the template, which took ten times as long."""
    return Markup(
        "".join(
            f'<li data-state="{day.state.value}"'
            + (' data-maintenance="yes"' if day.maintenance else "")
            + f' title="{escape(day.title)}"></li>'
            for day in days
        )
    )


_env.filters.update(iso=_iso, when=_when, bars=_bars)


def snapshots_of(request: Request) -> Snapshots:
    """The app's cache of rendered pages and badges (made on first use)."""
    found: Snapshots | None = getattr(request.app.state, "snapshots", None)
    if found is None:
        found = request.app.state.snapshots = Snapshots(port_of(request).now)
    return found


def _headers(page: StatusPage) -> dict[str, str]:
    # A proxy or a browser may keep the page as long as pymon does.
    fresh = f"public, max-age={page.cache:.0f}" if page.cache >= 1 else "no-cache"
    return {**_HEADERS, "Cache-Control": fresh}


def _page(request: Request, slug: str) -> StatusPage:
    page = exposure_of(request).pages.get(slug)
    if page is None:
        raise HTTPException(404, "no such status page")
    return page


@router.get("/status/{slug}.json")
async def status_json(request: Request, slug: str) -> Response:
    """The status page ``slug`` as JSON (docs/api.md, Status pages)."""
    page = _page(request, slug)
    port = port_of(request)

    async def make() -> bytes:
        board = await build_board(port, page, exposure_of(request))
        return json.dumps(board.to_json(), ensure_ascii=False).encode()

    key = (id(port.config), port.config.checksum, "json", slug)
    rendered = await snapshots_of(request).get(key, make, page.cache)
    return rendered.response(request, "application/json", _headers(page))


@router.get("/status/{slug}")
async def status_page(request: Request, slug: str) -> Response:
    """The status page ``slug``: HTML that needs no script."""
    page = _page(request, slug)
    port = port_of(request)
    prefix = public_prefix(request)

    async def make() -> bytes:
        board = await build_board(port, page, exposure_of(request))
        html = _env.get_template("status.html").render(
            board=board, prefix=prefix, version=__version__, days=DAYS, ahead_days=AHEAD // 86400
        )
        return html.encode()

    key = (id(port.config), port.config.checksum, "html", slug, prefix)
    rendered = await snapshots_of(request).get(key, make, page.cache)
    return rendered.response(request, "text/html; charset=utf-8", _headers(page))
