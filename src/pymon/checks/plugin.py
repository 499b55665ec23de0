"""``plugin``: run a Nagios-compatible plugin; its exit code is the verdict, perfdata metrics."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from pymon.checks import register
from pymon.checks.base import CheckContext
from pymon.config.schema import CheckSpec
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status

__all__ = [
    "MAX_OUTPUT",
    "PLUGIN_DIRS",
    "PluginSpec",
    "check_plugin",
    "parse_output",
    "parse_perfdata",
]

# Where distributions put the Nagios plugins; a bare command name is looked up
# there after PATH.
PLUGIN_DIRS = ("/usr/lib/nagios/plugins", "/usr/lib64/nagios/plugins", "/usr/local/nagios/libexec")

# Bytes kept of each of stdout and stderr; the rest is read and thrown away, so a
# plugin that prints megabytes neither fills memory nor blocks on a full pipe.
MAX_OUTPUT = 64 * 1024
# Characters of the plugin's text, and of each note (stderr, ignored perfdata), in the message.
_MAX_TEXT = 1000
_MAX_NOTE = 200
# After the plugin exits, how long its output may take to reach end of file; only
# a left-over child still holding the pipes open makes it take longer.
_DRAIN_GRACE = 0.5
# Between SIGTERM and SIGKILL to the plugin's process group.
_KILL_GRACE = 0.5

_EXIT_STATUS = {0: Status.OK, 1: Status.WARN, 2: Status.ERROR, 3: Status.UNKNOWN}

# 'label'=value[UOM];warn;crit;min;max -- a quoted label may hold spaces and '' for a quote.
_PERF_ITEM = re.compile(r"('(?:[^']|'')+'|[^\s'=]+)=(\S*)")
_NUMBER = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)([a-zA-Z%]*)")


class PluginSpec(CheckSpec):
    """Keys of a ``plugin`` service."""

    # YAML reads `[check_dummy, 0, fine]` and `PORT: 8080` as numbers.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split the command line: {exc}") from None
        return value

    @field_validator("command")
    @classmethod
    def _names_a_program(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            raise ValueError("the program name is empty")
        return argv


@dataclass(frozen=True, slots=True)
class PluginOutput:
    """A plugin's output as the plugin guidelines define it."""

    text: str
    metrics: dict[str, float]
    ignored: list[str]


def parse_perfdata(perfdata: str) -> tuple[dict[str, float], list[str]]:
    """Metrics from ``'label'=value[UOM];warn;crit;min;max ...``, and the items not usable.

    The unit is dropped (``time=0.25s`` is ``time`` 0.25), as are warn/crit/min/max:
    the plugin's exit code already judged them.
    """
    metrics: dict[str, float] = {}
    ignored: list[str] = []
    for token in _perf_tokens(perfdata):
        item = _PERF_ITEM.fullmatch(token)
        number = _NUMBER.fullmatch(item[2].split(";", 1)[0]) if item else None
        if item is None or number is None:
            ignored.append(token)
            continue
        label = item[1]
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        metrics[label] = float(number[1])
    return metrics, ignored


def _perf_tokens(perfdata: str) -> list[str]:
    """``perfdata`` split on blanks outside quoted labels."""
    return re.findall(r"(?:'(?:[^']|'')*'|[^\s'])+", perfdata)


def parse_output(stdout: str) -> PluginOutput:
    """The first line's text, and the perfdata after ``|`` on the first and later lines.

    Per the guidelines, perfdata may follow a ``|`` on the first line, and a ``|``
    on a later line starts more of it that runs to the end of the output.
    """
    first, _, rest = stdout.partition("\n")
    text, _, perfdata = first.partition("|")
    _, bar, more = rest.partition("|")
    if bar:
        perfdata += " " + more
    metrics, ignored = parse_perfdata(perfdata)
    return PluginOutput(text.strip(), metrics, ignored)


@dataclass(slots=True)
class _Output:
    """What was kept of one stream, and how much the plugin wrote to it."""

    kept: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = MAX_OUTPUT - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    def text(self) -> str:
        return self.kept.decode(errors="replace")


class _Plugin(asyncio.SubprocessProtocol):
    """Collects a plugin's output as it comes and tells when it exited and when the pipes closed.

    (``asyncio.subprocess.Process.wait()`` cannot tell the first: before Python 3.12
    it returns only once the pipes are closed, which a left-over child can delay.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stdout, self.stderr = _Output(), _Output()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.stdout if fd == 1 else self.stderr).add(data)

    def process_exited(self) -> None:
        self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` (0: none, just look) to the process group; False when it has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # A setuid program in the group that changed its user: nothing more can be done.
        return True
    return True


async def _end_group(transport: asyncio.SubprocessTransport, plugin: _Plugin) -> None:
    """Stop whatever is left of the plugin's process group: SIGTERM, a grace, SIGKILL."""
    # The plugin leads a session and a group of its own, numbered by its pid, which
    # cannot be reused while any process of the group is left. asyncio reaps the
    # plugin itself; the kernel hands orphans to init.
    pgid = transport.get_pid()
    if plugin.exited.done() and not _signal_group(pgid, 0):
        return
    _signal_group(pgid, signal.SIGTERM)
    try:
        # The plugin's exit ends the grace: the rest of the group had the same warning.
        # asyncio.wait, unlike wait_for, leaves the future alone when cancelled.
        await asyncio.wait([plugin.exited], timeout=_KILL_GRACE)
    finally:
        # Even when cancelled again while waiting: nothing of the plugin may outlive it.
        _signal_group(pgid, signal.SIGKILL)


def _environment(spec: PluginSpec) -> dict[str, str]:
    env = {**os.environ, **spec.env}
    env["PATH"] = os.pathsep.join([env.get("PATH", os.defpath), *PLUGIN_DIRS])
    return env


async def _start(spec: PluginSpec) -> tuple[asyncio.SubprocessTransport, _Plugin]:
    program = spec.command[0]
    loop = asyncio.get_running_loop()
    try:
        return await loop.subprocess_exec(
            lambda: _Plugin(loop),
            *spec.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(spec),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise CheckSetupError(f"{program}: command not found") from None
    except PermissionError:
        raise CheckSetupError(f"{program}: not executable (permission denied)") from None
    except OSError as exc:
        raise CheckSetupError(f"{program}: {exc.strerror or exc}") from None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _verdict(returncode: int, text: str) -> tuple[Status, str]:
    if returncode in _EXIT_STATUS:
        return _EXIT_STATUS[returncode], text
    if returncode < 0:
        try:
            why = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            why = f"killed by signal {-returncode}"
    else:
        why = f"exit code {returncode} (a plugin exits 0-3)"
    return Status.UNKNOWN, f"{why}: {text}"


def _message(status_text: str, out: _Output, err: _Output, ignored: list[str], held: bool) -> str:
    notes: list[str] = []
    stderr = " ".join(err.text().split())
    if stderr:
        notes.append(f"stderr: {_clip(stderr, _MAX_NOTE)}")
    if out.total > MAX_OUTPUT:
        notes.append(f"output cut at {MAX_OUTPUT // 1024} KiB of {out.total} bytes")
    if held:
        notes.append("a child process kept the output open")
    if ignored:
        notes.append("perfdata ignored: " + _clip(" ".join(ignored), _MAX_NOTE))
    return _clip(status_text, _MAX_TEXT) + "".join(f" ({note})" for note in notes)


@register("plugin", PluginSpec)
async def check_plugin(spec: PluginSpec, ctx: CheckContext) -> CheckResult:
    """Run a Nagios plugin: exit 0 ok, 1 warn, 2 error, 3 unknown; its perfdata are the metrics."""
    program = os.path.basename(spec.command[0])
    ctx.stage = f"starting {program}"
    transport, plugin = await _start(spec)
    try:
        ctx.stage = f"waiting for {program} to exit"
        await asyncio.wait([plugin.exited])
        ctx.stage = f"reading the output of {program}"
        await asyncio.wait([plugin.closed], timeout=_DRAIN_GRACE)
    finally:
        await _end_group(transport, plugin)
        # Closes the pipes even when a child that left the group still holds them.
        transport.close()
    returncode = transport.get_returncode()
    assert returncode is not None  # it exited
    out = plugin.stdout
    parsed = parse_output(out.text())
    text = parsed.text or ("no output" if not out.total else "no text before the perfdata")
    status, status_text = _verdict(returncode, text)
    message = _message(status_text, out, plugin.stderr, parsed.ignored, not plugin.closed.done())
    return CheckResult(status, message, parsed.metrics)
