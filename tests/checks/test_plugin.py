"""The plugin check running Debian's monitoring-plugins and small scripts that misbehave."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from pymon.checks.plugin import MAX_OUTPUT, PluginSpec, parse_perfdata
from pymon.model import Status
from tests.checks.targets import RawServer, RunCheck, until_eof
from tests.conftest import need
from tests.support.cli import pymon
from tests.support.programs import Scripts, gone

NAGIOS = Path("/usr/lib/nagios/plugins")

Script = Callable[[str], Path]


def nagios_plugin(name: str) -> str:
    path = NAGIOS / name
    need(os.access(path, os.X_OK), f"{path} not found (Debian: monitoring-plugins-basic)")
    return str(path)


@pytest.fixture
def script(tmp_path: Path) -> Script:
    """Write a shell script to tmp_path and make it executable; returns its path."""
    scripts = Scripts(tmp_path, "plugin{}.sh")
    return lambda body: scripts.write("#!/bin/sh\n" + body, mode=0o755)


@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (0, Status.OK, "OK: fine"),
        (1, Status.WARN, "WARNING: fine"),
        (2, Status.ERROR, "CRITICAL: fine"),
        (3, Status.UNKNOWN, "UNKNOWN: fine"),
    ],
)
async def test_exit_code_is_the_status(
    check: RunCheck, code: int, status: Status, text: str
) -> None:
    result = await check("plugin", {"command": [nagios_plugin("check_dummy"), code, "fine"]})
    assert result.status is status
    assert result.message == text
    assert not result.metrics


async def test_bare_name_is_found_in_the_plugin_directory(check: RunCheck) -> None:
    nagios_plugin("check_dummy")
    result = await check("plugin", {"command": "check_dummy 0 'all fine'"})
    assert result.status is Status.OK, result.message
    assert result.message == "OK: all fine"


async def test_check_tcp_perfdata_becomes_metrics(check: RunCheck, raw_server: RawServer) -> None:
    check_tcp = nagios_plugin("check_tcp")
    async with raw_server(until_eof) as port:
        result = await check("plugin", {"command": f"{check_tcp} -H 127.0.0.1 -p {port}"}, within=3)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("TCP OK - ")
    assert set(result.metrics) == {"time"}
    assert result.metrics["time"] >= 0


async def test_check_http_perfdata_becomes_metrics(check: RunCheck, web_url: str) -> None:
    check_http = nagios_plugin("check_http")
    port = web_url.rsplit(":", 1)[1]
    result = await check(
        "plugin", {"command": [check_http, "-H", "127.0.0.1", "-p", port]}, within=3
    )
    assert result.status is Status.OK, result.message
    assert result.message.startswith("HTTP OK: HTTP/1.1 200 OK")
    assert set(result.metrics) == {"time", "size"}
    assert result.metrics["size"] > 0


async def test_exit_255_is_unknown_with_the_reason(check: RunCheck, script: Script) -> None:
    result = await check("plugin", {"command": [str(script("echo 'went wrong'\nexit 255\n"))]})
    assert result.status is Status.UNKNOWN
    assert result.message == "exit code 255 (a plugin exits 0-3): went wrong"


async def test_killed_by_a_signal_is_unknown(check: RunCheck, script: Script) -> None:
    result = await check("plugin", {"command": [str(script("echo started\nkill -SEGV $$\n"))]})
    assert result.status is Status.UNKNOWN
    assert result.message == "killed by signal SIGSEGV: started"


async def test_megabytes_of_output_are_cut(check: RunCheck, script: Script) -> None:
    body = "echo 'BIG OK | lines=1'\nyes 'filler line' | head -c 5000000\n"
    result = await check("plugin", {"command": [str(script(body))]}, within=3)
    assert result.status is Status.OK, result.message
    total = len("BIG OK | lines=1\n") + 5_000_000
    assert result.message == f"BIG OK (output cut at {MAX_OUTPUT // 1024} KiB of {total} bytes)"
    assert result.metrics == {"lines": 1}


async def test_plugin_that_never_exits_is_killed_with_its_children(
    check: RunCheck, script: Script, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    plugin = script(f"sleep 300 &\necho $$ $! > {pids}\nwait\n")
    started = time.monotonic()
    result = await check("plugin", {"command": [str(plugin)]}, within=1)
    assert time.monotonic() - started < 1 + 2
    assert result.status is Status.FAILED
    assert result.message == f"timed out after 1s while waiting for {plugin.name} to exit"
    for pid in map(int, pids.read_text().split()):
        assert await gone(pid), f"pid {pid} still runs"


async def test_plugin_ignoring_sigterm_is_killed(
    check: RunCheck, script: Script, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # An ignored signal stays ignored across fork and exec: the sleep ignores it too.
    body = f"trap '' TERM\nsleep 300 &\necho $$ $! > {pids}\nwait\n"
    result = await check("plugin", {"command": [str(script(body))]}, within=1)
    assert result.status is Status.FAILED
    for pid in map(int, pids.read_text().split()):
        assert await gone(pid), f"pid {pid} still runs"


async def test_child_left_holding_the_output_is_killed(
    check: RunCheck, script: Script, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    body = f"sleep 300 &\necho $! > {pids}\necho 'OK - done'\n"
    result = await check("plugin", {"command": [str(script(body))]}, within=3)
    assert result.status is Status.OK
    assert result.message == "OK - done (a child process kept the output open)"
    assert await gone(int(pids.read_text()))


async def test_stderr_is_shown(check: RunCheck, script: Script) -> None:
    body = "echo 'cannot read /etc/x.conf' >&2\necho ' second  line' >&2\nexit 2\n"
    result = await check("plugin", {"command": [str(script(body))]})
    assert result.status is Status.ERROR
    assert result.message == "no output (stderr: cannot read /etc/x.conf second line)"


async def test_perfdata_on_later_lines(check: RunCheck, script: Script) -> None:
    body = (
        "echo 'DISK OK - free space: / 3326 MB | /=2643MB;5948;5958;0;5968'\n"
        "echo '/boot 68 MB (69%);'\n"
        "echo '/var 819 MB (84%); | /boot=68MB;88;93;0;98'\n"
        "echo '/var=818MB;970;975;0;980'\n"
    )
    result = await check("plugin", {"command": [str(script(body))]})
    assert result.status is Status.OK
    assert result.message == "DISK OK - free space: / 3326 MB"
    assert result.metrics == {"/": 2643, "/boot": 68, "/var": 818}


async def test_quoted_labels_with_spaces(check: RunCheck, script: Script) -> None:
    body = """echo "OK - disks|'disk c'=50%;80;90 'it''s here'=1.5e3B plain=7c" """
    result = await check("plugin", {"command": [str(script(body))]})
    assert result.metrics == {"disk c": 50, "it's here": 1500, "plain": 7}


async def test_non_numeric_perfdata_is_ignored_with_a_note(check: RunCheck, script: Script) -> None:
    result = await check("plugin", {"command": [str(script("echo 'OK|load=U ok=2'\n"))]})
    assert result.status is Status.OK
    assert result.metrics == {"ok": 2}
    assert result.message == "OK (perfdata ignored: load=U)"


async def test_env_reaches_the_plugin(check: RunCheck, script: Script) -> None:
    spec = {"command": [str(script('echo "OK - $PROBE_TARGET"\n'))], "env": {"PROBE_TARGET": 42}}
    result = await check("plugin", spec)
    assert result.message == "OK - 42"


async def test_missing_command_is_unknown_naming_it(check: RunCheck, tmp_path: Path) -> None:
    missing = tmp_path / "check_nothing"
    result = await check("plugin", {"command": [str(missing), "-v"]})
    assert result.status is Status.UNKNOWN
    assert result.message == f"cannot run plugin check: {missing}: command not found"


async def test_file_that_is_not_executable_is_unknown(check: RunCheck, tmp_path: Path) -> None:
    plain = tmp_path / "check_plain"
    plain.write_text("#!/bin/sh\necho OK\n")
    result = await check("plugin", {"command": [str(plain)]})
    assert result.status is Status.UNKNOWN
    assert result.message == f"cannot run plugin check: {plain}: not executable (permission denied)"


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("check_x 'unclosed", "cannot split the command line: No closing quotation"),
        ("", "List should have at least 1 item"),
        ([], "List should have at least 1 item"),
        ([""], "the program name is empty"),
    ],
)
def test_config_errors(command: object, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        PluginSpec.model_validate({"command": command})


def test_perfdata_units_are_dropped() -> None:
    metrics, ignored = parse_perfdata("t=0.25s;1;2;0;10 p=99.5% b=10KB c=3c u=12us")
    assert metrics == {"t": 0.25, "p": 99.5, "b": 10, "c": 3, "u": 12}
    assert ignored == []


@pytest.mark.slow
def test_pymon_check_plugin_from_the_command_line() -> None:
    command = f"{nagios_plugin('check_dummy')} 1 meh"
    out = pymon("check", "plugin", "--command", command)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == "WARN - WARNING: meh\n"
