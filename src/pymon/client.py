"""A small client of a running pymon's JSON API, for the command line and the shell.

Synchronous on purpose: a command runs one request and exits, and the shell runs
one command at a time (``watch`` reads the event stream in the foreground). Every
failure is a :class:`ClientError` whose message an operator can act on (daemon not
running, unknown service, what the API refused and why); its ``status`` is the HTTP
status when the daemon answered, None when it could not be reached.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

#: How long a reload may take to answer: the daemon parses the whole config in a
#: fresh process (10,000 services take seconds; a busy machine, several times that).
RELOAD_TIMEOUT = 120.0

__all__ = ["RELOAD_TIMEOUT", "Client", "ClientError", "ReportFilters", "StreamEvent"]


class ClientError(Exception):
    """The daemon could not be reached or refused the request; the message says why.

    ``status`` is the HTTP status of a refusal (None: no answer at all), ``reason``
    the daemon's own words for it, without the method and path, and ``body`` its
    answer as parsed JSON (None when there was none or it was not JSON).
    """

    def __init__(
        self, message: str, *, status: int | None = None, reason: str = "", body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or message
        self.body = body


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One Server-Sent Event: its ``kind`` (``hello``, ``state``, ``event``, ``counts``,
    or ``message`` when unnamed) and its data, parsed as JSON (the raw text if not JSON)."""

    kind: str
    data: Any


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """What an uptime report covers: ``since``..``until`` (``30d``, ISO 8601, epoch
    seconds; None: the daemon's defaults), ``services`` and services with ``tags``
    (every service when neither), and whether maintenance counts."""

    since: str | None = None
    until: str | None = None
    services: Sequence[str] = ()
    tags: Sequence[str] = ()
    include_maintenance: bool = False

    def query(self, format: str) -> str:
        """The report's query string, answered in ``format`` (json, csv)."""
        pairs: list[tuple[str, str]] = [("format", format)]
        pairs += [(k, v) for k, v in (("since", self.since), ("until", self.until)) if v]
        pairs += [("service", name) for name in self.services]
        pairs += [("tag", tag) for tag in self.tags]
        if self.include_maintenance:
            pairs.append(("include_maintenance", "true"))
        return urlencode(pairs)


class Client:
    """Talks to the pymon at ``url`` (e.g. ``http://127.0.0.1:8080``, with any base path).

    A URL without a scheme (``127.0.0.1:8080``) means plain HTTP.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        url = url.strip()
        if "://" not in url:
            url = "http://" + url
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def services(
        self, *, status: str | None = None, text: str | None = None, tag: str | None = None
    ) -> list[dict[str, Any]]:
        """Every service with its state, in config order (optionally filtered by status,
        by text in name, message, type or tags, or by tag)."""
        rows: list[dict[str, Any]] = []
        while True:
            query: dict[str, Any] = {"limit": 10_000, "offset": len(rows)}
            query |= {k: v for k, v in (("status", status), ("q", text), ("tag", tag)) if v}
            page = self._call("GET", f"/api/v1/services?{urlencode(query)}")
            batch = page.get("services") or []
            rows += batch
            if not batch or len(rows) >= int(page.get("total") or 0):
                return rows

    def service(self, name: str) -> dict[str, Any]:
        """One service's state."""
        return self._call("GET", f"/api/v1/services/{quote(name, safe='')}")

    def history(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """``name``'s newest ``limit`` results, newest first."""
        query = urlencode({"limit": limit})
        answer = self._call("GET", f"/api/v1/services/{quote(name, safe='')}/history?{query}")
        results: list[dict[str, Any]] = answer.get("results") or []
        return results

    def events(self, limit: int = 20, service: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` transitions (of one service if given), newest first."""
        query: dict[str, Any] = {"limit": limit}
        if service is not None:
            query["service"] = service
        answer = self._call("GET", f"/api/v1/events?{urlencode(query)}")
        events: list[dict[str, Any]] = answer.get("events") or []
        return events

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

    def maintenance(
        self, *, services: list[str], duration: str, comment: str = "", name: str = ""
    ) -> dict[str, Any]:
        """Add an ad hoc maintenance window from now for ``duration`` (``2h``) over the
        services matching the globs ``services``; answers the window."""
        body = {"services": services, "duration": duration, "comment": comment, "name": name}
        return self._call("POST", "/api/v1/maintenance", body)

    def run_now(self, name: str) -> dict[str, Any]:
        """Queue ``name``'s check to run at once (the state changes when it ends)."""
        return self._call("POST", f"/api/v1/services/{quote(name, safe='')}/run")

    def reload(self) -> dict[str, Any]:
        """Ask the daemon to read its config again; waits up to ``RELOAD_TIMEOUT``."""
        return self._call("POST", "/api/v1/reload", timeout=max(self._timeout, RELOAD_TIMEOUT))

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes by name: alive, shards, heartbeat age, checks/s, config."""
        nodes: list[dict[str, Any]] = self._call("GET", "/api/v1/nodes").get("nodes") or []
        return nodes

    def config(self) -> dict[str, Any]:
        """The running config's source, checksum and a fingerprint per service."""
        return self._call("GET", "/api/v1/config")

    def uptime_report(self, filters: ReportFilters | None = None) -> dict[str, Any]:
        """The SLA report the ``filters`` ask for (the daemon's defaults when None):
        ``{since, until, services: [row, ...]}``."""
        query = (filters or ReportFilters()).query("json")
        return self._call("GET", f"/api/v1/reports/uptime?{query}")

    def uptime_report_csv(self, filters: ReportFilters | None = None) -> str:
        """The same report as CSV text (a header row, then a row per service)."""
        query = (filters or ReportFilters()).query("csv")
        raw = self._fetch("GET", f"/api/v1/reports/uptime?{query}", accept="text/csv")
        return raw.decode("utf-8", "replace")

    def stream(self) -> Iterator[StreamEvent]:
        """The live event stream, event by event, until the daemon ends it.

        Connecting obeys the client's timeout; reading does not (an idle stream only
        carries a ping every few seconds), so the caller stops it (Ctrl-C) or the
        daemon does. Closing the iterator closes the connection.
        """
        parts = urlsplit(self.url)
        self._check_scheme()
        path = (parts.path or "") + "/api/v1/stream"
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname or "",
                parts.port,
                timeout=self._timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=self._timeout
            )
        try:
            try:
                conn.connect()
                sock = conn.sock
                conn.request("GET", path, headers=self._headers("text/event-stream"))
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc) from None
            if response.status != 200:
                reason = _reason_text(response.read(), response.reason)
                raise ClientError(
                    f"GET /api/v1/stream: {response.status}: {reason}",
                    status=response.status,
                    reason=reason,
                )
            if isinstance(sock, socket.socket):
                sock.settimeout(None)
            yield from _events(response)
        finally:
            conn.close()

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _check_scheme(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ClientError(f"cannot reach pymon at {self.url}: not an http(s) address")

    def _unreachable(self, exc: BaseException) -> ClientError:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, OSError) and reason.strerror:
            what = reason.strerror.lower()
        elif isinstance(reason, TimeoutError):
            what = "timed out"
        elif isinstance(reason, http.client.HTTPException):
            what = f"not a pymon (bad HTTP answer: {type(reason).__name__})"
        else:
            what = str(reason) or type(reason).__name__
        return ClientError(f"cannot reach pymon at {self.url}: {what}")

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        raw = self._fetch(method, path, body, timeout=timeout)
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise ClientError(f"{method} {path}: the answer is not JSON: {exc}") from None
        if not isinstance(answer, dict):
            raise ClientError(f"{method} {path}: the answer is not a JSON object")
        return answer

    def _fetch(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        accept: str = "application/json",
    ) -> bytes:
        """The answer's body; a :class:`ClientError` for a refusal or no answer."""
        self._check_scheme()
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        for key, value in self._headers(accept).items():
            request.add_header(key, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self._timeout) as response:
                raw: bytes = response.read()
                return raw
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            reason = _reason_text(raw, str(exc.reason))
            raise ClientError(
                f"{method} {path}: {exc.code}: {reason}",
                status=exc.code,
                reason=reason,
                body=_json_or_none(raw),
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _reason_text(raw: bytes, fallback: str) -> str:
    """The daemon's ``{"error": ..., "fields": [...]}`` (or ``{"errors": [...]}``) as one line."""
    body = _json_or_none(raw)
    if not isinstance(body, dict):
        return fallback
    errors = body.get("errors")
    if "error" not in body and isinstance(errors, list) and errors:
        return "; ".join(map(str, errors))
    error = body.get("error", body.get("detail", fallback))
    fields = body.get("fields")
    if isinstance(fields, list) and fields:
        error = f"{error}: " + "; ".join(
            f"{f.get('field')}: {f.get('error')}" for f in fields if isinstance(f, dict)
        )
    return str(error)


def _events(response: http.client.HTTPResponse) -> Iterator[StreamEvent]:
    """Parse Server-Sent Events: ``event:`` and ``data:`` lines up to a blank line;
    comments (``: ping``), ``id:`` and ``retry:`` carry nothing for us."""
    kind = ""
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield StreamEvent(kind or "message", value)
            kind, data = "", []
            continue
        field, _, value_text = line.partition(":")
        value_text = value_text.removeprefix(" ")
        if field == "event":
            kind = value_text
        elif field == "data":
            data.append(value_text)
