"""Builds the FastAPI application the daemon serves under ``web.base_path``; it talks to
the engine only through the port it is given (``app.state.port``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Match

from pymon import __version__
from pymon.errors import CommandRefused, UnknownService
from pymon.web import api, pages, public, stream
from pymon.web.auth import AuthMiddleware, log_write_policy
from pymon.web.fragments import ServiceFragments
from pymon.web.gauges import UptimeGauges
from pymon.web.metrics import router as metrics_router
from pymon.web.proxy import ProxyMiddleware

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = ["create_app"]


def create_app(port: EnginePort) -> FastAPI:
    """The web app for ``port``: API routes under ``web.base_path`` and an OpenAPI document."""
    base = port.config.web.base_path.rstrip("/")
    app = FastAPI(
        title="pymon",
        version=__version__,
        openapi_url=f"{base}/api/v1/openapi.json",
        docs_url=f"{base}/api/v1/docs",
        redoc_url=None,
    )
    app.state.port = port
    # Each service's JSON, kept between listings (GET /api/v1/services).
    app.state.fragments = ServiceFragments()
    # /metrics' uptime gauges, computed from the rollups at most once a minute.
    app.state.uptime_gauges = UptimeGauges()
    # Starlette runs the last added middleware first: proxy headers, then credentials
    # (an unauthenticated write is refused there, before its body is read, and the
    # body is capped).
    app.add_middleware(AuthMiddleware)
    app.add_middleware(ProxyMiddleware)
    log_write_policy(port.config.web)
    # Status pages and badges: public, even when reading needs credentials. First,
    # so that the requests a crowd makes are matched before every other route.
    app.include_router(public.router, prefix=base)
    app.include_router(api.router, prefix=base)
    # GET /metrics, Prometheus
    app.include_router(metrics_router, prefix=base)
    # GET /api/v1/stream, the live Server-Sent Events
    app.include_router(stream.router, prefix=base)
    # the dashboard: its pages and their static files
    app.include_router(pages.router, prefix=base)
    app.mount(f"{base}/static", StaticFiles(packages=[("pymon.web", "static")]), name="static")

    # Starlette's own (an unknown path, a method a path lacks) as well as the routes':
    # every error body is {"error": ...}, as docs/api.md promises.
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        _forget(exc)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(app, request))
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(UnknownService)
    async def unknown(_: Request, exc: UnknownService) -> JSONResponse:
        _forget(exc)
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(CommandRefused)
    async def refused(_: Request, exc: CommandRefused) -> JSONResponse:
        _forget(exc)
        return JSONResponse({"error": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"][1:]), "error": err["msg"]}
            for err in exc.errors()
        ]
        _forget(exc)
        return JSONResponse({"error": "invalid request", "fields": fields}, status_code=422)

    return app


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at the request's path: Starlette names only the
    first route's, and several routes share a path (``/ack``, ``/heartbeat``)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _forget(exc: BaseException) -> None:
    """Drop what an answered exception holds on to (every handler here calls it).

    FastAPI raises a JSON error ``from`` the decoder's exception inside the frame that
    holds the body's bytes and the new exception itself: a reference cycle that keeps
    the body, and the decoded text, until the collector's next full pass. Under
    pymon's relaxed collector (``pymon.tuning``) an idle daemon kept each refused
    200 MB body (~400 MB) for good; breaking the cycle frees them when answered.
    Any exception raised where a request's body is a local makes the same cycle.
    """
    chain: list[BaseException] = [exc]
    if isinstance(exc, RequestValidationError):
        exc.body = None
        # A validator's own exception, kept in the error's context, closes a cycle too.
        chain += [
            e
            for err in exc.errors()
            if isinstance(e := err.get("ctx", {}).get("error"), BaseException)
        ]
    seen: set[int] = set()
    while chain:
        link = chain.pop()
        if id(link) not in seen:
            seen.add(id(link))
            link.__traceback__ = None
            chain += [e for e in (link.__cause__, link.__context__) if e is not None]
    exc.__cause__ = exc.__context__ = None
