"""The process check against real child processes, each marked so only it can match."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from pymon.checks import check_type
from pymon.checks.process import ProcessSpec
from pymon.engine.rules import evaluate
from pymon.model import CheckResult, Status
from tests.checks.targets import RunCheck
from tests.support.cli import pymon

Spawn = Callable[..., subprocess.Popen[bytes]]

SLEEPER = "import time; time.sleep(60)"
SPINNER = "while True: pass"


@pytest.fixture
def marker() -> str:
    """A text only this test's children carry on their command line."""
    return f"pymon-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start child processes (``spawn(*argv)``); every one is killed and reaped at the end."""
    children: list[subprocess.Popen[bytes]] = []

    def start(*argv: str | Path) -> subprocess.Popen[bytes]:
        # Popen returns once the child has exec'd, so its name and cmdline are final.
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
        child.wait()


@pytest.fixture
def python_as(tmp_path: Path) -> Callable[[str], Path]:
    """The Python interpreter under another file name: a process name nothing else has."""

    def link(name: str) -> Path:
        # A directory of its own, so that two processes can share a name.
        folder = tmp_path / uuid.uuid4().hex
        folder.mkdir()
        path = folder / name
        # The interpreter itself, not the venv's link to it: it needs no venv to sleep.
        path.symlink_to(os.path.realpath(sys.executable))
        return path

    return link


def unique_name() -> str:
    # The kernel keeps 15 characters of a process name.
    return f"pm{uuid.uuid4().hex[:12]}"


def judged(result: CheckResult) -> Status:
    """The status after the process type's default thresholds, as the rules apply them."""
    return evaluate(result, check_type("process").thresholds)[0]


async def test_cmdline_regex_finds_the_process(check: RunCheck, spawn: Spawn, marker: str) -> None:
    child = spawn(sys.executable, "-c", SLEEPER, marker)
    result = await check("process", {"cmdline": f"{marker}$"})
    assert result.status is Status.OK, result.message
    assert result.message == f"1 process (pid {child.pid}) matches cmdline='{marker}$'"
    assert result.metrics["count"] == 1
    assert result.metrics["rss_mb"] > 0
    assert result.metrics["cpu_pct"] >= 0
    assert result.metrics["age_s"] >= 0


async def test_process_name_is_matched_exactly(
    check: RunCheck, spawn: Spawn, python_as: Callable[[str], Path]
) -> None:
    name = unique_name()
    first = spawn(python_as(name), "-c", SLEEPER)
    second = spawn(python_as(name + "x"), "-c", SLEEPER)
    result = await check("process", {"process_name": name})
    assert result.metrics["count"] == 1, result.message
    assert f"(pid {first.pid})" in result.message
    assert str(second.pid) not in result.message


async def test_every_match_is_counted_and_named(check: RunCheck, spawn: Spawn, marker: str) -> None:
    children = [spawn(sys.executable, "-c", SLEEPER, marker) for _ in range(3)]
    result = await check("process", {"cmdline": marker})
    assert result.metrics["count"] == 3, result.message
    pids = ", ".join(str(p) for p in sorted(c.pid for c in children))
    assert f"3 processes (pids {pids}) match" in result.message


async def test_pidfile_names_the_process(
    check: RunCheck, spawn: Spawn, marker: str, tmp_path: Path
) -> None:
    child = spawn(sys.executable, "-c", SLEEPER, marker)
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{child.pid}\n")
    result = await check("process", {"pidfile": str(pidfile)})
    assert result.metrics["count"] == 1, result.message
    assert f"(pid {child.pid})" in result.message


async def test_stale_pidfile_counts_zero_and_fails(
    check: RunCheck, spawn: Spawn, marker: str, tmp_path: Path
) -> None:
    dead = spawn(sys.executable, "-c", "pass", marker)
    dead.wait()
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{dead.pid}\n")
    result = await check("process", {"pidfile": str(pidfile)})
    assert result.metrics == {"count": 0}
    assert result.message == (
        f"no process matches pidfile='{pidfile}'; "
        f"pidfile {pidfile} names pid {dead.pid}, which is not running"
    )
    assert judged(result) is Status.FAILED


async def test_missing_pidfile_counts_zero(check: RunCheck, tmp_path: Path) -> None:
    pidfile = tmp_path / "nothing.pid"
    result = await check("process", {"pidfile": str(pidfile)})
    assert result.metrics == {"count": 0}
    assert result.message.endswith(f"; pidfile {pidfile} does not exist")


async def test_pidfile_without_a_pid_counts_zero(check: RunCheck, tmp_path: Path) -> None:
    pidfile = tmp_path / "garbage.pid"
    pidfile.write_text("running\n")
    result = await check("process", {"pidfile": str(pidfile)})
    assert result.metrics == {"count": 0}
    assert result.message.endswith(f"; pidfile {pidfile} holds no pid: 'running\\n'")


async def test_user_is_matched_by_name(check: RunCheck, spawn: Spawn, marker: str) -> None:
    spawn(sys.executable, "-c", SLEEPER, marker)
    me = psutil.Process().username()
    result = await check("process", {"cmdline": marker, "user": me})
    assert result.metrics["count"] == 1, result.message


async def test_other_user_does_not_match(check: RunCheck, spawn: Spawn, marker: str) -> None:
    spawn(sys.executable, "-c", SLEEPER, marker)
    stranger = os.getuid() + 4242
    result = await check("process", {"cmdline": marker, "user": stranger})
    assert result.metrics == {"count": 0}
    assert result.message == f"no process matches cmdline='{marker}', user='{stranger}'"


async def test_criteria_combine_with_and(
    check: RunCheck, spawn: Spawn, marker: str, python_as: Callable[[str], Path]
) -> None:
    name = unique_name()
    both = spawn(python_as(name), "-c", SLEEPER, marker)
    spawn(python_as(unique_name()), "-c", SLEEPER, marker)  # the marker only
    spawn(python_as(name), "-c", SLEEPER)  # the name only
    result = await check("process", {"process_name": name, "cmdline": marker})
    assert result.metrics["count"] == 1, result.message
    assert f"(pid {both.pid})" in result.message


async def test_exe_is_matched_through_symlinks(check: RunCheck, spawn: Spawn, marker: str) -> None:
    child = spawn(sys.executable, "-c", SLEEPER, marker)
    # The venv's python is a symlink; the kernel reports the file it points to.
    result = await check("process", {"exe": sys.executable, "cmdline": marker})
    assert result.metrics["count"] == 1, result.message
    assert f"(pid {child.pid})" in result.message


async def test_no_match_counts_zero_and_fails(check: RunCheck, marker: str) -> None:
    result = await check("process", {"cmdline": marker})
    assert result.status is Status.OK
    assert result.metrics == {"count": 0}
    assert result.message == f"no process matches cmdline='{marker}'"
    assert judged(result) is Status.FAILED


async def test_zombie_is_not_counted(
    check: RunCheck, spawn: Spawn, python_as: Callable[[str], Path]
) -> None:
    name = unique_name()
    zombie = spawn(python_as(name), "-c", "pass")
    # Wait for it to exit without reaping it: it stays a zombie until the fixture does.
    await asyncio.to_thread(os.waitid, os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)
    assert psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE
    result = await check("process", {"process_name": name})
    assert result.metrics == {"count": 0}, result.message


async def test_busy_process_uses_cpu(check: RunCheck, spawn: Spawn, marker: str) -> None:
    spawn(sys.executable, "-c", SPINNER, marker)
    result = await check("process", {"cmdline": marker}, within=2.0)
    assert result.metrics["cpu_pct"] > 0, result.message


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ({}, "give at least one of process_name, exe, cmdline, user, pidfile"),
        ({"cmdline": "a(b"}, "'a(b' is not a valid regular expression"),
        ({"exe": "bin/nginx"}, "'bin/nginx' is not an absolute path"),
        ({"pidfile": "run/x.pid"}, "'run/x.pid' is not an absolute path"),
    ],
)
def test_config_errors(keys: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError, match=why.replace("(", r"\(")):
        ProcessSpec.model_validate(keys)


@pytest.mark.slow
def test_pymon_check_process_from_the_command_line(spawn: Spawn, marker: str) -> None:
    # pymon's own command line carries the marker too; it does not count itself.
    child = spawn(sys.executable, "-c", SLEEPER, marker)
    out = pymon("check", "process", "--cmdline", marker)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"OK - 1 process (pid {child.pid}) matches cmdline='{marker}'|")
    assert "count=1 " in out.stdout


@pytest.mark.slow
def test_pymon_check_process_without_a_match_is_critical(marker: str) -> None:
    out = pymon("check", "process", "--cmdline", marker)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout.startswith("FAILED - count 0 is failed (0) - no process matches")
