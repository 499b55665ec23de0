"""``process``: count local processes (psutil) by name, executable, command line, user, pidfile."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil
from pydantic import ConfigDict, Field, field_validator, model_validator

from pymon.checks.base import CheckContext
from pymon.checks.spec import CheckSpec, MetricThresholds
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status
from pymon.ranges import parse_ranges

__all__ = ["CPU_SAMPLE", "PROCESS_COUNT", "ProcessSpec", "check_process"]

PROCESS_COUNT = MetricThresholds(failed=parse_ranges("0"))

# CPU use is CPU time over an interval: the matches' CPU times are read twice, this
# far apart (at most a quarter of the timeout, so the verdict comes before it).
CPU_SAMPLE = 0.5

# PIDs named in a message; the metric still counts them all.
_SHOWN = 5
# A pidfile holds a number; anything longer is not one.
_PIDFILE_MAX = 4096
_CRITERIA = ("process_name", "exe", "cmdline", "user", "pidfile")


class ProcessSpec(CheckSpec):
    """Keys of a ``process`` service; every criterion given must hold (AND)."""

    # `user: 0` and `--user 0` arrive as a number.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    # Not `name`: that is the service's name.
    process_name: str | None = Field(default=None, min_length=1)
    exe: str | None = Field(default=None, min_length=1)
    cmdline: str | None = Field(default=None, min_length=1)
    user: str | None = Field(default=None, min_length=1)
    pidfile: str | None = Field(default=None, min_length=1)

    @field_validator("exe", "pidfile")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not os.path.isabs(path):
            raise ValueError(f"{path!r} is not an absolute path")
        return path

    @field_validator("cmdline")
    @classmethod
    def _regex_compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _has_a_criterion(self) -> ProcessSpec:
        if all(getattr(self, key) is None for key in _CRITERIA):
            raise ValueError(f"give at least one of {', '.join(_CRITERIA)}")
        return self

    def describe(self) -> str:
        """The criteria as the operator wrote them: ``process_name='nginx', user='www'``."""
        return ", ".join(
            f"{key}={value!r}" for key in _CRITERIA if (value := getattr(self, key)) is not None
        )


@dataclass(frozen=True, slots=True)
class _Match:
    proc: psutil.Process
    rss: int
    created: float
    cpu: float
    at: float


@dataclass(slots=True)
class _Scan:
    matches: list[_Match] = field(default_factory=list)
    unreadable: int = 0
    note: str = ""


def _cpu_seconds(proc: psutil.Process) -> tuple[float, float]:
    times = proc.cpu_times()
    # CPU time is real time spent, so its interval is measured on the real clock too.
    return times.user + times.system, time.monotonic()


def _matches(
    proc: psutil.Process, spec: ProcessSpec, exe: str | None, pattern: re.Pattern[str] | None
) -> bool:
    """Whether ``proc`` meets every criterion; cheap ones first, so most processes cost one read."""
    if proc.status() == psutil.STATUS_ZOMBIE:
        return False
    if spec.process_name is not None and proc.name() != spec.process_name:
        return False
    if spec.user is not None and spec.user not in (proc.username(), str(proc.uids().real)):
        return False
    if exe is not None and proc.exe() not in (exe, spec.exe):
        return False
    return pattern is None or pattern.search(" ".join(proc.cmdline())) is not None


def _pid_from_file(path: str) -> int | str:
    """The pid in ``path``, or why there is none."""
    try:
        with open(path, "rb") as f:
            text = f.read(_PIDFILE_MAX).decode(errors="replace")
    except FileNotFoundError:
        return f"pidfile {path} does not exist"
    except OSError as exc:
        raise CheckSetupError(f"cannot read pidfile {path}: {exc.strerror or exc}") from None
    first = text.split(maxsplit=1)[:1]
    if not first or not (first[0].isascii() and first[0].isdigit()) or int(first[0]) == 0:
        return f"pidfile {path} holds no pid: {text[:40]!r}"
    return int(first[0])


def _candidates(spec: ProcessSpec, scan: _Scan) -> Iterable[psutil.Process]:
    if spec.pidfile is None:
        return psutil.process_iter()
    pid = _pid_from_file(spec.pidfile)
    if isinstance(pid, str):
        scan.note = pid
        return []
    try:
        return [psutil.Process(pid)]
    except psutil.NoSuchProcess:
        scan.note = f"pidfile {spec.pidfile} names pid {pid}, which is not running"
        return []


def _scan(spec: ProcessSpec) -> _Scan:
    """Every process that meets the criteria, with what the metrics need (blocking)."""
    scan = _Scan()
    exe = os.path.realpath(spec.exe) if spec.exe is not None else None
    pattern = re.compile(spec.cmdline) if spec.cmdline is not None else None
    me = os.getpid()
    for proc in _candidates(spec, scan):
        if proc.pid == me:
            # `pymon check process --cmdline X` would otherwise always find itself.
            continue
        try:
            with proc.oneshot():
                if not _matches(proc, spec, exe, pattern):
                    continue
                cpu, at = _cpu_seconds(proc)
                scan.matches.append(
                    _Match(proc, proc.memory_info().rss, proc.create_time(), cpu, at)
                )
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            scan.unreadable += 1
    return scan


def _cpu_rate(matches: list[_Match]) -> float:
    """CPU seconds per second used by ``matches`` since they were scanned (blocking)."""
    rate = 0.0
    for match in matches:
        try:
            cpu, at = _cpu_seconds(match.proc)
        except psutil.Error:
            continue  # gone since the scan: its share is unknown, and small
        if at > match.at:
            rate += max(cpu - match.cpu, 0.0) / (at - match.at)
    return rate


def _pids(matches: list[_Match]) -> str:
    pids = sorted(m.proc.pid for m in matches)
    more = f" and {len(pids) - _SHOWN} more" if len(pids) > _SHOWN else ""
    return ", ".join(map(str, pids[:_SHOWN])) + more


async def check_process(spec: ProcessSpec, ctx: CheckContext) -> CheckResult:
    """Count the local processes that meet every given criterion; sum their CPU and memory."""
    ctx.stage = "scanning processes"
    scan = await asyncio.to_thread(_scan, spec)
    matches = scan.matches
    if not matches:
        notes = [scan.note] if scan.note else []
        if scan.unreadable:
            notes.append(f"{scan.unreadable} processes could not be read (access denied)")
        message = f"no process matches {spec.describe()}" + "".join(f"; {n}" for n in notes)
        return CheckResult(Status.OK, message, {"count": 0.0})
    ctx.stage = f"sampling CPU time of {len(matches)} processes"
    await asyncio.sleep(min(CPU_SAMPLE, ctx.timeout / 4))
    cpu_rate = await asyncio.to_thread(_cpu_rate, matches)
    if len(matches) == 1:
        found = f"1 process (pid {_pids(matches)}) matches"
    else:
        found = f"{len(matches)} processes (pids {_pids(matches)}) match"
    return CheckResult(
        Status.OK,
        f"{found} {spec.describe()}",
        {
            "count": float(len(matches)),
            "cpu_pct": round(cpu_rate * 100, 2),
            "rss_mb": round(sum(m.rss for m in matches) / 2**20, 2),
            "age_s": round(max(time.time() - min(m.created for m in matches), 0.0), 1),
        },
    )
