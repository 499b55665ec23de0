"""``plugin``: run a Nagios-compatible plugin; its exit code is the verdict, perfdata metrics."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from pymon.checks.base import CheckContext
from pymon.checks.spec import CheckSpec
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status
from pymon.programs import CappedOutput, Program, signal_name

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


def _environment(spec: PluginSpec) -> dict[str, str]:
    env = {**os.environ, **spec.env}
    env["PATH"] = os.pathsep.join([env.get("PATH", os.defpath), *PLUGIN_DIRS])
    return env


async def _start(spec: PluginSpec) -> Program:
    program = spec.command[0]
    try:
        return await Program.start(
            spec.command, env=_environment(spec), keep="head", limit=MAX_OUTPUT
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
        why = f"killed by signal {signal_name(-returncode)}"
    else:
        why = f"exit code {returncode} (a plugin exits 0-3)"
    return Status.UNKNOWN, f"{why}: {text}"


def _message(
    status_text: str, out: CappedOutput, err: CappedOutput, ignored: list[str], held: bool
) -> str:
    notes: list[str] = []
    stderr = " ".join(err.text().split())
    if stderr:
        notes.append(f"stderr: {_clip(stderr, _MAX_NOTE)}")
    if out.cut:
        notes.append(f"output cut at {MAX_OUTPUT // 1024} KiB of {out.total} bytes")
    if held:
        notes.append("a child process kept the output open")
    if ignored:
        notes.append("perfdata ignored: " + _clip(" ".join(ignored), _MAX_NOTE))
    return _clip(status_text, _MAX_TEXT) + "".join(f" ({note})" for note in notes)


async def check_plugin(spec: PluginSpec, ctx: CheckContext) -> CheckResult:
    """Run a Nagios plugin: exit 0 ok, 1 warn, 2 error, 3 unknown; its perfdata are the metrics."""
    program = os.path.basename(spec.command[0])
    ctx.stage = f"starting {program}"
    plugin = await _start(spec)
    async with plugin:
        ctx.stage = f"waiting for {program} to exit"
        await plugin.wait()
        ctx.stage = f"reading the output of {program}"
        await plugin.drain()
    returncode = plugin.returncode
    assert returncode is not None  # it exited
    out = plugin.stdout
    parsed = parse_output(out.text())
    text = parsed.text or ("no output" if not out.total else "no text before the perfdata")
    status, status_text = _verdict(returncode, text)
    message = _message(status_text, out, plugin.stderr, parsed.ignored, plugin.output_open)
    return CheckResult(status, message, parsed.metrics)
