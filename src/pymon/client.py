"""A small client of a running pymon's JSON API, for the command line (and the shell).

Synchronous on purpose: a command runs one request and exits. Every failure is a
:class:`ClientError` whose message an operator can act on (daemon not running,
unknown service, what the API refused and why).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

__all__ = ["Client", "ClientError"]


class ClientError(Exception):
    """The daemon could not be reached or refused the request; the message says why."""


class Client:
    """Talks to the pymon at ``url`` (e.g. ``http://127.0.0.1:8080``, with any base path)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def service(self, name: str) -> dict[str, Any]:
        """One service's state."""
        return self._call("GET", f"/api/v1/services/{quote(name, safe='')}")

    def acknowledge(
        self, name: str, *, author: str, comment: str = "", expires: str | None = None
    ) -> dict[str, Any]:
        """Acknowledge ``name``'s open incident."""
        body: dict[str, Any] = {"author": author, "comment": comment}
        if expires is not None:
            body["expires"] = expires
        return self._call("POST", f"/api/v1/services/{quote(name, safe='')}/ack", body)

    def unacknowledge(self, name: str, *, author: str) -> dict[str, Any]:
        """Take the acknowledgement of ``name`` back."""
        query = urlencode({"author": author})
        return self._call("DELETE", f"/api/v1/services/{quote(name, safe='')}/ack?{query}")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer: dict[str, Any] = json.load(response)
                return answer
        except urllib.error.HTTPError as exc:
            raise ClientError(f"{method} {path}: {exc.code}: {_reason(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach pymon at {self.url}: {reason}") from None
        except ValueError as exc:
            raise ClientError(f"{method} {path}: the answer is not JSON: {exc}") from None


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.load(exc)
    except ValueError:
        return str(exc.reason)
    error = body.get("error", exc.reason) if isinstance(body, dict) else exc.reason
    fields = body.get("fields") if isinstance(body, dict) else None
    if fields:
        error = f"{error}: " + "; ".join(f"{f['field']}: {f['error']}" for f in fields)
    return str(error)
