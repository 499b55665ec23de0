"""The command line as an operator uses it: real subprocesses, real listeners."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import pytest

from pymon.cli import cli, main
from tests.support.cli import PYMON, pymon
from tests.support.servers import free_port, refused_port


@pytest.fixture
def open_port() -> Iterator[int]:
    """A plain listening socket (the kernel completes the handshakes)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        yield s.getsockname()[1]


def test_validate_good_file(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text("services:\n  - {name: a, type: tcp, host: 127.0.0.1, port: 1}\n")
    out = pymon("config", "validate", str(f))
    assert out.returncode == 0, out.stderr
    assert "ok (1 services)" in out.stdout


def test_validate_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "services:\n"
        "  - name: a\n"
        "    type: tcp\n"
        "    host: 127.0.0.1\n"
        "    port: notaport\n"
        "  - name: b\n"
        "    type: nosuch\n"
    )
    out = pymon("config", "validate", str(f))
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert any(line.startswith(f"{f}:5: services[0].port:") for line in lines), out.stderr
    assert any(line.startswith(f"{f}:7: services[1].type:") for line in lines), out.stderr


def test_check_adhoc_ok(open_port: int) -> None:
    out = pymon("check", "tcp", "--host", "127.0.0.1", "--port", str(open_port))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK - ")
    assert "|connect_ms=" in out.stdout


def test_check_adhoc_refused_is_critical() -> None:
    out = pymon("check", "tcp", "--host", "127.0.0.1", "--port", str(free_port()))
    assert out.returncode == 2
    assert out.stdout.startswith("FAILED - ") and "refused" in out.stdout


def test_check_adhoc_bad_key_is_unknown() -> None:
    out = pymon("check", "tcp", "--host", "127.0.0.1", "--prot", "1")
    assert out.returncode == 3
    assert "prot" in out.stderr


def test_check_unknown_type_is_usage_error() -> None:
    out = pymon("check", "gopher", "--host", "x")
    assert out.returncode == 2 and "unknown check type" in out.stderr


def test_check_configured_service(tmp_path: Path, open_port: int) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(f"services:\n  - {{name: web, type: tcp, host: 127.0.0.1, port: {open_port}}}\n")
    out = pymon("check", "-c", str(f), "web")
    assert out.returncode == 0 and out.stdout.startswith("OK - ")


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)


def wait_api(url: str, proc: subprocess.Popen[str], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            config = Path(cast(list[str], proc.args)[-1])  # as start() gave it
            raise AssertionError(f"pymon exited: {log_of(config).read_text()}")
        try:
            return get(url)
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def log_of(config: Path) -> Path:
    """Where :func:`start` writes the daemon's output."""
    return config.with_name(config.name + ".log")


def start(config: Path, log: IO[str] | None = None) -> subprocess.Popen[str]:
    """``pymon run -c config``, its output to ``log`` or else :func:`log_of` ``config``:
    a pipe that nobody reads fills up and stalls the daemon's logging, and its loop."""
    with contextlib.ExitStack() as files:
        out = log or files.enter_context(log_of(config).open("w"))
        return subprocess.Popen(
            [*PYMON, "run", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@pytest.mark.slow
def test_kill_9_then_restart_restores_state(tmp_path: Path, open_port: int) -> None:
    web = free_port()
    db = tmp_path / "data" / "p.db"
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}
web: {{listen: "127.0.0.1:{web}"}}
defaults: {{interval: 200ms, timeout: 1s}}
services:
  - {{name: up, type: tcp, host: 127.0.0.1, port: {open_port}}}
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
"""
    )
    api = f"http://127.0.0.1:{web}/api/v1/services/down"
    proc = start(cfg)
    try:
        wait_api(api, proc)
        deadline = time.monotonic() + 20
        while not get(api)["confirmed"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # let a few more flushes land, then die at an arbitrary moment
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (persisted_seq,) = con.execute(
            "SELECT seq FROM service_state WHERE name = 'down'"
        ).fetchone()
    assert persisted_seq >= 3

    proc = start(cfg)
    try:
        restored = wait_api(api, proc)
        assert restored["status"] == "failed"
        assert restored["confirmed"] is True
        assert restored["seq"] >= persisted_seq
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_sigterm_stops_cleanly_within_five_seconds(tmp_path: Path) -> None:
    web = free_port()
    cfg = tmp_path / "p.yaml"
    hang = free_port()
    import socket

    with socket.socket() as silent:
        # A listener nobody accepts from: connects succeed, then nothing ever comes.
        silent.bind(("127.0.0.1", hang))
        silent.listen(16)
        cfg.write_text(
            f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{listen: "127.0.0.1:{web}"}}
services:
  - {{name: hang, type: tcp, host: 127.0.0.1, port: {hang}, send: "hi", expect: "never",
      interval: 1s, timeout: 30s}}
"""
        )
        proc = start(cfg)
        wait_api(f"http://127.0.0.1:{web}/healthz", proc)
        time.sleep(1.5)  # the hanging check is now in flight
        t0 = time.monotonic()
        proc.terminate()
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
    logged = log_of(cfg).read_text()
    assert code == 0, logged
    assert elapsed < 5
    # uvloop is a dependency on this platform, and the log names the loop in use.
    assert "event loop: uvloop" in logged


def test_every_command_is_on_the_group() -> None:
    assert sorted(cli.commands) == [
        "ack",
        "bench",
        "capacity",
        "check",
        "config",
        "hash-password",
        "nodes",
        "report",
        "run",
        "shell",
    ]
    assert callable(main)


def test_help_lists_every_command() -> None:
    done = pymon("--help")
    assert done.returncode == 0
    for name in cli.commands:
        assert f"  {name} " in done.stdout
