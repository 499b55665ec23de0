"""Real ``pymon run`` nodes for the cluster tests: start, ask, signal, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tests.support.cli import PYMON
from tests.support.servers import reserved_port
from tests.test_cli import get

__all__ = ["Node", "accepting_port", "call", "owners", "rows", "wait"]


def wait(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """What ``sql`` (with ``params``) reads from the SQLite file ``db``."""
    with sqlite3.connect(db, timeout=30) as con:
        return con.execute(sql, params).fetchall()


def owners(db: Path) -> dict[str | None, int]:
    """How many shards each node holds, by the shards table of ``db`` (None: nobody)."""
    counted: dict[str | None, int] = {}
    for (owner,) in rows(db, "SELECT owner FROM shards"):
        counted[owner] = counted.get(owner, 0) + 1
    return counted


def call(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    """An HTTP request with ``body`` as JSON (if any): the status and the JSON answer,
    error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err)


@contextlib.contextmanager
def accepting_port() -> Iterator[int]:
    """A port that accepts (and closes) every connection, from a thread."""
    server = socket.create_server(("127.0.0.1", 0), backlog=1024)
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                server.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join()
        server.close()


class Node:
    """One ``pymon run --node NAME --listen ...`` process, its log in a file."""

    def __init__(self, name: str, cfg: Path, log: IO[str]) -> None:
        self.name = name
        self.port = reserved_port()
        self._cfg, self._log = cfg, log
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The base URL of this node's web server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        self.proc = subprocess.Popen(
            [
                *PYMON,
                "run",
                "-c",
                str(self._cfg),
                "--node",
                self.name,
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def services(self) -> set[str]:
        """The services this node runs now (empty while it does not answer)."""
        try:
            answer = get(f"http://127.0.0.1:{self.port}/api/v1/services?limit=1000")
        except OSError:
            return set()
        return {s["name"] for s in answer["services"]}

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
