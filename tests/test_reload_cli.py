"""Reload through a real `pymon run`: edits of the file, a broken edit, SIGHUP, --against."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import pymon
from tests.support.servers import free_port, refused_port
from tests.test_cli import get, start, wait_api


def config(db: Path, web: int, names: list[str], *, watch: bool = True) -> str:
    services = "".join(
        f"  - {{name: {n}, type: tcp, host: 127.0.0.1, port: {refused_port()}}}\n" for n in names
    )
    return (
        f'storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}\n'
        f'web: {{listen: "127.0.0.1:{web}"}}\n'
        f"reload: {{watch: {'true' if watch else 'false'}}}\n"
        "defaults: {interval: 300ms, timeout: 1s}\n"
        "services:\n" + services
    )


def until(probe: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def names(web: int) -> set[str]:
    return {s["name"] for s in get(f"http://127.0.0.1:{web}/api/v1/services")["services"]}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen[str]]]:
    web = free_port()
    cfg = tmp_path / "pymon.yaml"
    cfg.write_text(config(tmp_path / "p.db", web, ["alpha", "beta"]))
    proc = start(cfg)
    try:
        wait_api(f"http://127.0.0.1:{web}/healthz", proc)
        yield cfg, web, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_editing_the_file_adds_removes_and_survives_a_broken_edit(
    tmp_path: Path, running: tuple[Path, int, subprocess.Popen[str]]
) -> None:
    cfg, web, proc = running
    db = tmp_path / "p.db"
    cfg.write_text(config(db, web, ["alpha", "gamma"]))
    until(lambda: names(web) == {"alpha", "gamma"}, "gamma to appear and beta to go")
    until(
        lambda: get(f"http://127.0.0.1:{web}/api/v1/services/gamma")["seq"] >= 1,
        "gamma to be checked",
    )
    cfg.write_text(config(db, web, ["alpha", "gamma"]) + "  - {name: broken, type: tcp}\n")
    health = until(
        lambda: (h := get(f"http://127.0.0.1:{web}/healthz"))["reload"]["ok"] is False and h,
        "the broken edit to be reported",
    )
    assert "broken" in health["reload"]["error"] or "services" in health["reload"]["error"]
    assert proc.poll() is None
    assert names(web) == {"alpha", "gamma"}
    cfg.write_text(config(db, web, ["alpha", "gamma", "delta"]))
    until(lambda: "delta" in names(web), "the fixed edit to apply")
    assert get(f"http://127.0.0.1:{web}/healthz")["reload"]["ok"] is True


@pytest.mark.slow
def test_sighup_reloads(tmp_path: Path) -> None:
    web = free_port()
    cfg = tmp_path / "pymon.yaml"
    db = tmp_path / "p.db"
    cfg.write_text(config(db, web, ["alpha"], watch=False))
    proc = start(cfg)
    try:
        wait_api(f"http://127.0.0.1:{web}/healthz", proc)
        cfg.write_text(config(db, web, ["alpha", "omega"], watch=False))
        time.sleep(0.5)  # nothing watches the file: no change without the signal
        assert names(web) == {"alpha"}
        proc.send_signal(signal.SIGHUP)
        until(lambda: "omega" in names(web), "SIGHUP to reload")
        assert get(f"http://127.0.0.1:{web}/healthz")["reload"]["source"] == "SIGHUP"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_validate_against_prints_the_diff(
    tmp_path: Path, running: tuple[Path, int, subprocess.Popen[str]]
) -> None:
    _, web, _ = running
    other = tmp_path / "next.yaml"
    other.write_text(config(tmp_path / "p.db", web, ["alpha", "zeta"]))
    done = pymon("config", "validate", str(other), "--against", f"http://127.0.0.1:{web}")
    assert done.returncode == 0, done.stderr
    assert "zeta" in done.stdout and "beta" in done.stdout
