"""Real ``pymon run --node NAME --listen ...`` processes sharing one SQLite file, for
the multi-process cluster tests: the nodes, their config, a port that is always up,
and what the database says."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from tests.support.cli import PYMON
from tests.support.servers import refused_port, reserved_port

__all__ = [
    "SERVICES",
    "CountingPorts",
    "Node",
    "always_up",
    "call",
    "get",
    "owners",
    "rows",
    "seqs",
    "wait",
    "write_config",
]

#: Services in :func:`write_config`'s config: ``s00`` ... ``s39``.
SERVICES = 40


def get(url: str) -> Any:
    """The JSON a GET of ``url`` answers."""
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` (with ``params``) reads from the SQLite file ``db``."""
    with sqlite3.connect(db, timeout=30) as con:
        return con.execute(sql, params).fetchall()


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


def wait(
    predicate: Callable[[], bool], what: str, timeout: float = 30.0, *, log: Path | None = None
) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds,
    with the end of ``log`` (the processes' output) if given."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            tail = "" if log is None else "\n" + log.read_text()[-4000:]
            raise AssertionError(f"timed out waiting for {what}{tail}")
        time.sleep(0.05)


class Node:
    """One ``pymon run --node NAME --listen ...`` process, its log in a file.

    ``host`` is the address its web UI listens on (127.0.0.1 unless said); ``wrap``
    makes the argv it runs from pymon's own (e.g. to run it inside a network
    namespace, :func:`tests.support.netns.exec_argv`); ``args`` go after pymon's.
    """

    def __init__(
        self,
        name: str,
        cfg: Path,
        log: IO[str],
        *,
        host: str = "127.0.0.1",
        wrap: Callable[[list[str]], list[str]] = list,
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.port = reserved_port()
        self.url = f"http://{host}:{self.port}"
        self._cfg, self._log = cfg, log
        self._host, self._wrap, self._args = host, wrap, list(args)
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Node:
        argv = [
            *PYMON,
            "run",
            "-c",
            str(self._cfg),
            "--node",
            self.name,
            "--listen",
            f"{self._host}:{self.port}",
            *self._args,
        ]
        self.proc = subprocess.Popen(
            self._wrap(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def listed(self) -> list[dict[str, Any]]:
        """Every service this node's API lists (empty while it does not answer)."""
        try:
            answer = get(f"{self.url}/api/v1/services?limit=1000")
        except OSError:
            return []
        services: list[dict[str, Any]] = answer["services"]
        return services

    def services(self) -> set[str]:
        """The services this node runs now, as its own API says."""
        return {s["name"] for s in self.listed() if s["node"] == self.name}

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


@contextlib.contextmanager
def always_up(host: str = "127.0.0.1") -> Iterator[int]:
    """A port on ``host`` that accepts (and closes) every connection, from a thread."""
    server = socket.create_server((host, 0), backlog=1024)
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


class CountingPorts:
    """``count`` ports that accept (and close) every connection, from a thread, and
    note when each connection came: one port per service shows whether two nodes
    ever ran the same service at once, and the longest time it went unchecked."""

    def __init__(self, count: int) -> None:
        self._servers = [socket.create_server(("127.0.0.1", 0), backlog=256) for _ in range(count)]
        self.ports = [server.getsockname()[1] for server in self._servers]
        #: Monotonic times of the connections to each port.
        self.seen: dict[int, list[float]] = {port: [] for port in self.ports}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> CountingPorts:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()
        for server in self._servers:
            server.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            for server in self._servers:
                server.setblocking(False)
                sel.register(server, selectors.EVENT_READ)
            while not self._done.is_set():
                for key, _ in sel.select(timeout=0.1):
                    listener: socket.socket = key.fileobj  # type: ignore[assignment]
                    with contextlib.suppress(BlockingIOError):
                        listener.accept()[0].close()
                        self.seen[listener.getsockname()[1]].append(time.monotonic())


def write_config(tmp_path: Path, up_port: int) -> tuple[Path, Path]:
    """A config of :data:`SERVICES` tcp services (every tenth one down) on a SQLite
    file, with short cluster times (heartbeat 0.2 s, lease 2 s, 16 shards); the
    config's path and the database's."""
    db = tmp_path / "p.db"
    cfg = tmp_path / "p.yaml"
    down = refused_port()
    services = [
        f"  - {{name: s{n:02d}, type: tcp, host: 127.0.0.1, "
        f"port: {down if n % 10 == 0 else up_port}}}"
        for n in range(SERVICES)
    ]
    cfg.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}
defaults: {{interval: 200ms, timeout: 1s}}
cluster: {{heartbeat: 200ms, lease: 2s, shards: 16}}
reload: {{watch: false}}
services:
"""
        + "\n".join(services)
        + "\n"
    )
    return cfg, db


def owners(db: Path) -> dict[str | None, int]:
    """How many shards each node holds (None: nobody's), as the shards table says."""
    counted: dict[str | None, int] = {}
    for (owner,) in rows(db, "SELECT owner FROM shards"):
        counted[owner] = counted.get(owner, 0) + 1
    return counted


def seqs(db: Path) -> dict[str, int]:
    """Every service's last persisted sequence number."""
    return dict(rows(db, "SELECT name, seq FROM service_state"))
