"""A peer's program run as a child of the bench: a session of its own (its helpers,
which may each take a process group of their own, stay in it), the session's CPU read
from /proc, a port kept for it, and a stop that leaves none of its processes behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["Child", "reserved_ports", "session_cpu"]

# How long a child may take to exit after SIGTERM before its group is killed.
STOP_TIMEOUT = 10.0


@contextlib.contextmanager
def reserved_ports(count: int) -> Iterator[list[int]]:
    """``count`` TCP ports on 127.0.0.1 kept for a child while the block runs.

    Each is held by a socket bound with ``SO_REUSEADDR`` that never listens: no other
    program is handed the port, while a server that also sets ``SO_REUSEADDR`` (as
    the peers' servers do) can listen on it.
    """
    holders: list[socket.socket] = []
    try:
        for _ in range(count):
            holder = socket.socket()
            holders.append(holder)
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(("127.0.0.1", 0))
        yield [h.getsockname()[1] for h in holders]
    finally:
        for holder in holders:
            holder.close()


def _session(sid: int) -> dict[int, float]:
    """The processes of session ``sid`` now alive, by pid, each with its CPU seconds and
    what its exited children (a plugin a worker ran) took: utime + stime + cutime + cstime."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # After the command name (which may hold spaces): session is field 6, utime..cstime
        # fields 14-17.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:
            found[int(entry.name)] = sum(int(f) for f in fields[11:15]) / ticks
    return found


def session_cpu(sid: int) -> float:
    """CPU seconds so far of the processes of session ``sid`` (see :func:`_session`)."""
    return sum(_session(sid).values())


class Child:
    """A program started in a session of its own, output to a log file."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log: Path) -> None:
        self.proc = proc
        self.name = name
        self.log = log

    @classmethod
    async def start(cls, argv: Sequence[str], log: Path, cwd: Path | None = None) -> Child:
        """Start ``argv`` with stdout and stderr to ``log``."""
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=cwd,
                start_new_session=True,
            )
        return cls(proc, Path(argv[0]).name, log)

    def cpu(self) -> float:
        """CPU seconds of its session so far (see :func:`session_cpu`)."""
        return session_cpu(self.proc.pid)

    def tail(self, lines: int = 5) -> str:
        """The last ``lines`` of its log, to say why it failed."""
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        """SIGTERM to it; then SIGKILL to whatever of its session is left."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        # Its helpers (workers, a plugin still running) go with it.
        for pid in _session(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
