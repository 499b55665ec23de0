"""The command channel running small Python scripts that behave, fail and misbehave."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pymon.config.schema import CommandChannel
from pymon.model import Notice
from pymon.notify.base import DeliveryError
from pymon.notify.command import MAX_ENV_MESSAGE, CommandSender
from pymon.notify.payload import notice_payload
from tests.notify.helpers import TOKEN, make_context, make_notice
from tests.support.programs import Scripts, gone

Script = Callable[[str], list[str]]

RECORD = """
import json, os, sys
data = sys.stdin.buffer.read()
with open(sys.argv[1], "w") as out:
    json.dump({"env": dict(os.environ), "stdin": data.decode()}, out)
"""

# Starts a grandchild that sleeps (it inherits stdout and stderr), writes "<own pid>
# <grandchild pid>" to argv[1], then per argv[2]: "wait" sleeps, "stubborn" sleeps
# with both ignoring SIGTERM, "leave" exits 0 at once.
FAMILY = r"""
import os, signal, subprocess, sys, time
pids, mode = sys.argv[1], sys.argv[2]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
sleeper = (
    "import signal, sys, time\n"
    "if sys.argv[1] == 'stubborn':\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "open(sys.argv[2], 'w').close()\n"
    "time.sleep(3600)\n"
)
child = subprocess.Popen([sys.executable, "-c", sleeper, mode, pids + ".ready"])
with open(pids + ".tmp", "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
os.rename(pids + ".tmp", pids)
if mode != "leave":
    time.sleep(3600)
"""


def sender(command: list[str], **keys: Any) -> CommandSender:
    config = CommandChannel.model_validate({"type": "command", "command": command, **keys})
    return CommandSender("pager", config)


@pytest.fixture
def script(tmp_path: Path) -> Script:
    """Writes a Python script to tmp_path; returns the argv that runs it."""
    scripts = Scripts(tmp_path, "notify{}.py")
    return lambda body: [sys.executable, str(scripts.write(body))]


async def send(channel: CommandSender, notice: Notice | None = None, attempt: int = 1) -> None:
    async with asyncio.timeout(60):
        await channel.send(notice or make_notice(), make_context(attempt))


async def failure(channel: CommandSender, notice: Notice | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await send(channel, notice)
    return caught.value


async def appears(path: Path, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(path.exists):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)
    return await asyncio.to_thread(path.read_text)


async def test_environment_carries_the_notice(
    script: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INHERITED_FROM_PYMON", "yes")
    out = tmp_path / "out.json"
    channel = sender([*script(RECORD), str(out)], env={"TEAM": "dba", "PYMON_STATUS": "ignored"})
    await send(channel, attempt=2)
    env = json.loads(out.read_text())["env"]
    assert env["INHERITED_FROM_PYMON"] == "yes"
    assert env["TEAM"] == "dba"
    assert {k: v for k, v in env.items() if k.startswith("PYMON_") and k not in os.environ} == {
        "PYMON_SERVICE": "db",
        "PYMON_STATUS": "failed",
        "PYMON_KIND": "problem",
        "PYMON_MESSAGE": "connection refused",
        "PYMON_INCIDENT": "inc-7",
        "PYMON_NOTICE": "inc-7:problem:1",
        "PYMON_DELIVERY": "inc-7:problem:1/pager",
        "PYMON_AT": "1700000000.5",
        "PYMON_SERVICE_URL": "http://127.0.0.1:8080/services/db",
        "PYMON_ATTEMPT": "2",
    }


async def test_stdin_is_the_json_payload_without_the_token(script: Script, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    await send(sender([*script(RECORD), str(out)]))
    stdin = json.loads(out.read_text())["stdin"]
    assert json.loads(stdin) == notice_payload(make_notice(), make_context(), "pager")
    assert TOKEN not in out.read_text()


async def test_without_an_incident_the_variable_is_empty(script: Script, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    await send(sender([*script(RECORD), str(out)]), make_notice(incident=None, since=None))
    assert json.loads(out.read_text())["env"]["PYMON_INCIDENT"] == ""


async def test_hostile_message_is_cleaned_for_the_environment_and_whole_on_stdin(
    script: Script, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    message = "nul\x00 here, bad \udcff byte, " + "x" * 1_000_000
    await send(sender([*script(RECORD), str(out)]), make_notice(message=message))
    recorded = json.loads(out.read_text())
    assert recorded["env"]["PYMON_MESSAGE"].startswith("nul here, bad ? byte, xxx")
    assert len(recorded["env"]["PYMON_MESSAGE"]) == MAX_ENV_MESSAGE - 1
    assert json.loads(recorded["stdin"])["message"] == message


async def test_a_failing_exit_quotes_the_last_stderr_line(script: Script) -> None:
    argv = script("import sys\nprint('first', file=sys.stderr)\nsys.exit('quota exceeded')")
    error = await failure(sender(argv))
    assert str(error) == f"command {sys.executable}: exit 1: quota exceeded"
    assert not error.permanent


async def test_exit_3_is_retried(script: Script) -> None:
    argv = script("import sys\nsys.stderr.write('try later\\n\\n')\nsys.exit(3)")
    error = await failure(sender(argv))
    assert str(error) == f"command {sys.executable}: exit 3: try later"
    assert not error.permanent


@pytest.mark.parametrize("code", [126, 127])
async def test_exits_126_and_127_are_permanent(script: Script, code: int) -> None:
    error = await failure(sender(script(f"import sys\nsys.exit({code})")))
    assert str(error) == f"command {sys.executable}: exit {code}"
    assert error.permanent


async def test_a_missing_program_is_permanent(tmp_path: Path) -> None:
    error = await failure(sender([str(tmp_path / "no-such-program"), "--flag"]))
    assert str(error) == f"command not found: {tmp_path / 'no-such-program'}"
    assert error.permanent


async def test_a_program_that_is_not_executable_is_permanent(tmp_path: Path) -> None:
    path = tmp_path / "notify.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o644)
    error = await failure(sender([str(path)]))
    assert str(error) == f"command not executable: {path} (permission denied)"
    assert error.permanent


async def test_a_nul_in_the_channel_env_is_permanent(script: Script) -> None:
    error = await failure(sender(script("pass"), env={"BAD": "a\x00b"}))
    assert error.permanent
    assert "cannot start" in str(error)


async def test_a_program_killed_by_a_signal_is_retried(script: Script) -> None:
    argv = script("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    error = await failure(sender(argv))
    assert str(error) == f"command {sys.executable}: killed by signal SIGKILL"
    assert not error.permanent


async def test_a_program_that_ignores_stdin_is_delivered(script: Script) -> None:
    # Far more input than a pipe holds: writing it must not wait for a reader.
    await send(sender(script("pass")), make_notice(message="x" * 5_000_000))


async def test_a_program_that_closes_stdin_at_once_is_delivered(script: Script) -> None:
    argv = script("import os, time\nos.close(0)\ntime.sleep(0.2)")
    await send(sender(argv), make_notice(message="x" * 5_000_000))


async def test_a_timeout_kills_the_program_and_its_grandchild(
    script: Script, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    channel = sender([*script(FAMILY), str(pids), "wait"], timeout="2s")
    error = await failure(channel)
    assert str(error) == f"command {sys.executable} timed out after 2s (killed)"
    assert not error.permanent
    for pid in map(int, (await appears(pids)).split()):
        assert await gone(pid)


async def test_a_timeout_kills_a_family_that_ignores_sigterm(
    script: Script, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    error = await failure(sender([*script(FAMILY), str(pids), "stubborn"], timeout="2s"))
    assert "timed out" in str(error)
    for pid in map(int, (await appears(pids)).split()):
        assert await gone(pid)


async def test_cancelling_a_send_kills_the_program_and_its_grandchild(
    script: Script, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    task = asyncio.create_task(send(sender([*script(FAMILY), str(pids), "wait"], timeout="1h")))
    found = await appears(pids)
    await appears(tmp_path / "pids.ready")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in map(int, found.split()):
        assert await gone(pid)


async def test_a_grandchild_left_behind_after_exit_0_is_ended(
    script: Script, tmp_path: Path
) -> None:
    # The grandchild holds stdout and stderr open after the program's exit.
    pids = tmp_path / "pids"
    await send(sender([*script(FAMILY), str(pids), "leave"]))
    for pid in map(int, (await appears(pids)).split()):
        assert await gone(pid)


async def test_ten_megabytes_of_output_are_delivered_in_capped_memory(script: Script) -> None:
    argv = script(
        "import sys\n"
        "for _ in range(160):\n"
        "    sys.stdout.write('o' * 65536)\n"
        "    sys.stderr.write('e' * 65535 + '\\n')\n"
    )
    tracemalloc.start()
    try:
        await send(sender(argv))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # of 20 MB written


async def test_the_quoted_line_is_the_last_of_a_huge_stderr(script: Script) -> None:
    argv = script(
        "import sys\n"
        "sys.stderr.write(('noise ' * 20 + '\\n') * 100_000)\n"
        "sys.stderr.write('\\x1b[31mdisk full\\x00 ' + 'y' * 500 + '\\n')\n"
        "sys.exit(2)"
    )
    error = await failure(sender(argv))
    text = str(error)
    assert text.startswith(f"command {sys.executable}: exit 2: [31mdisk full yyy")
    assert text.endswith("...")
    assert "\x1b" not in text and "\x00" not in text
