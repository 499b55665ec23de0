"""A small reverse proxy on 127.0.0.1 that serves an upstream under a path prefix.

``/PREFIX/rest`` is forwarded to ``UPSTREAM/rest`` with ``X-Forwarded-Prefix:
/PREFIX`` (and ``-Proto``, ``-Host``, ``-For``), as nginx's ``location /PREFIX/ {
proxy_pass http://upstream/; }`` does. Responses are streamed through unbuffered, so
Server-Sent Events pass as they come. Anything outside the prefix is a 404.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from yarl import URL

from tests.support.servers import free_port

__all__ = ["PrefixProxy"]

# Hop-by-hop headers (RFC 9110 section 7.6.1) are the proxy's own business.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


class PrefixProxy:
    """Serves ``upstream`` (``http://127.0.0.1:PORT``) at ``http://127.0.0.1:{port}{prefix}/``."""

    def __init__(self, upstream: str, prefix: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.prefix = "/" + prefix.strip("/")
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The public base URL, prefix included, no trailing slash."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    async def start(self) -> None:
        """Listen; call :meth:`stop` when done."""
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening and close the upstream connections."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return web.Response(status=404, text="not under the proxy's prefix\n")
        rest = path[len(self.prefix) :] or "/"
        query = request.rel_url.raw_query_string
        target = f"{self.upstream}{rest}" + (f"?{query}" if query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.update(
            {
                "X-Forwarded-Prefix": self.prefix,
                "X-Forwarded-Proto": request.scheme,
                "X-Forwarded-Host": request.host,
                "X-Forwarded-For": request.remote or "",
            }
        )
        assert self._session is not None
        body = await request.read()
        async with self._session.request(
            # encoded=True: pass the path on exactly as the client quoted it.
            request.method,
            URL(target, encoded=True),
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the client left (a browser closing its event stream): nothing to do
            return response
