"""Running external programs safely (the plugin check and the command channel both do),
and telling whether a process of this machine still runs.

A :class:`Program` runs in a session and process group of its own, with its
standard output and error read as they come into :class:`CappedOutput` buffers
(the first or the last bytes kept, the rest read and dropped, so a program that
prints megabytes neither fills memory nor blocks on a full pipe). It tells when
the program exited apart from when its pipes closed: a left-over child can hold
the pipes open long after. :meth:`Program.stop` ends whatever is left of the
group (SIGTERM, a grace, SIGKILL), even when cancelled while it waits::

    program = await Program.start(argv, env=env, keep="tail", limit=64 * 1024)
    async with program:  # stops the group on the way out, even on a timeout
        async with asyncio.timeout(30):
            await program.wait()
        await program.drain()
    program.returncode, program.stdout.text(), program.output_open
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal

import psutil

__all__ = [
    "DRAIN_GRACE",
    "KILL_GRACE",
    "CappedOutput",
    "Keep",
    "Program",
    "process_alive",
    "signal_name",
]

log = logging.getLogger("pymon.programs")

#: After a program exits, how long its output may take to reach end of file; only
#: a left-over child still holding the pipes open makes it take longer.
DRAIN_GRACE: Final = 0.5
#: Between SIGTERM and SIGKILL to a program's process group.
KILL_GRACE: Final = 0.5

#: Which bytes of a stream a :class:`CappedOutput` keeps: the first or the last.
Keep = Literal["head", "tail"]


@dataclass(slots=True)
class CappedOutput:
    """At most ``limit`` bytes of one stream (its first or last ones), and how many came in all."""

    limit: int
    keep: Keep
    kept: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, data: bytes) -> None:
        """Take the next piece of the stream, dropping what falls outside the limit."""
        self.total += len(data)
        if self.keep == "head":
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += data[:room]
            return
        # Never copies more than the limit of a large piece.
        self.kept += data[max(0, len(data) - self.limit) :]
        excess = len(self.kept) - self.limit
        if excess > 0:
            del self.kept[:excess]

    @property
    def cut(self) -> bool:
        """Whether the stream was longer than what is kept."""
        return self.total > self.limit

    def text(self) -> str:
        """What is kept, decoded as UTF-8 with undecodable bytes replaced."""
        return self.kept.decode("utf-8", "replace")


class _Protocol(asyncio.SubprocessProtocol):
    """Collects the output and tells when the program exited and when its pipes closed.

    (``asyncio.subprocess.Process.wait()`` cannot tell the first before Python 3.12:
    it returns only once the pipes close, which a left-over child can delay.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, keep: Keep) -> None:
        self.stdout = CappedOutput(limit, keep)
        self.stderr = CappedOutput(limit, keep)
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.stdout if fd == 1 else self.stderr).add(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        # fd 0 ends with BrokenPipeError when the program exits without reading all
        # its input; that is its right, and no failure.
        if fd == 0 and exc is not None:
            log.debug("a program stopped reading its input: %s", exc)

    def process_exited(self) -> None:
        self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


class Program:
    """A started program, leading a process group of its own; see the module's docstring.

    Use it as an async context manager (or call :meth:`stop` in a ``finally``):
    nothing of the program may outlive the one who started it.
    """

    def __init__(
        self, transport: asyncio.SubprocessTransport | _Spawned, protocol: _Protocol
    ) -> None:
        self._transport = transport
        self._protocol = protocol

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        keep: Keep,
        limit: int,
        stdin: bytes | None = None,
    ) -> Program:
        """Start ``argv`` (no shell) with exactly ``env``, keeping ``limit`` bytes of each output.

        ``stdin`` is written to the program's standard input, which is then closed,
        without waiting for it to be read; ``None`` gives it ``/dev/null``. Raises
        what starting raises: :class:`OSError` (``FileNotFoundError`` and
        ``PermissionError`` among them) and :class:`ValueError` (a NUL byte in an
        argument or in ``env``).
        """
        loop = asyncio.get_running_loop()
        protocol = _Protocol(loop, limit, keep)
        transport: asyncio.SubprocessTransport | _Spawned
        if hasattr(os, "pidfd_open"):
            transport = await _Spawned.start(loop, protocol, argv, env=env, stdin=stdin is not None)
        else:  # not Linux: the loop's own subprocess support
            transport, _ = await loop.subprocess_exec(
                lambda: protocol,
                *argv,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                start_new_session=True,
            )
        program = cls(transport, protocol)
        if stdin is not None:
            try:
                program._feed(stdin)
            except BaseException:
                await program.stop()
                raise
        return program

    @property
    def stdout(self) -> CappedOutput:
        """What was kept of the standard output, so far."""
        return self._protocol.stdout

    @property
    def stderr(self) -> CappedOutput:
        """What was kept of the standard error, so far."""
        return self._protocol.stderr

    @property
    def returncode(self) -> int | None:
        """The exit code, ``-N`` for killed by signal N; ``None`` while it runs."""
        return self._transport.get_returncode()

    @property
    def output_open(self) -> bool:
        """Whether something (a left-over child) still held the output pipes open."""
        return not self._protocol.closed.done()

    async def wait(self) -> None:
        """Wait for the program to exit (bound it with :func:`asyncio.timeout`)."""
        # asyncio.wait, unlike wait_for, leaves the future alone when cancelled.
        await asyncio.wait([self._protocol.exited])

    async def drain(self, grace: float = DRAIN_GRACE) -> bool:
        """Wait up to ``grace`` seconds for the output to reach its end; False if it did not."""
        done, _ = await asyncio.wait([self._protocol.closed], timeout=grace)
        return bool(done)

    async def stop(self) -> None:
        """End whatever is left of the process group, then close the pipes."""
        try:
            await self._end_group()
        finally:
            # Closes the pipes even when a child that left the group still holds them.
            self._transport.close()

    async def __aenter__(self) -> Program:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _feed(self, data: bytes) -> None:
        """Hand ``data`` to stdin and close it, without ever waiting for it to be read.

        The pipe transport buffers what the pipe does not take; a program that exits
        without reading makes the rest fail with a broken pipe, which asyncio reports
        to :meth:`_Protocol.pipe_connection_lost`, not here.
        """
        stdin = self._transport.get_pipe_transport(0)
        if not isinstance(stdin, asyncio.WriteTransport):
            return
        try:
            stdin.write(data)
            stdin.close()
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("a program stopped reading its input: %s", exc)

    async def _end_group(self) -> None:
        """SIGTERM to what is left of the group, a grace, then SIGKILL."""
        # The program leads a session and a group of its own, numbered by its pid,
        # which cannot be reused while any process of the group is left. The program
        # itself is reaped when its pidfd says it exited (_Spawned); the kernel hands
        # orphans to init.
        pgid = self._transport.get_pid()
        if self._protocol.exited.done() and not _signal_group(pgid, 0):
            return
        _signal_group(pgid, signal.SIGTERM)
        try:
            # The program's exit ends the grace: the rest of the group had the same warning.
            await asyncio.wait([self._protocol.exited], timeout=KILL_GRACE)
        finally:
            # Even when cancelled while waiting: nothing of the program may outlive it.
            _signal_group(pgid, signal.SIGKILL)


class _Spawned:
    """A program started with ``subprocess.Popen``, its pipes and its exit on the loop:
    what :class:`Program` asks of a subprocess transport.

    Popen starts the program with vfork, whatever the daemon's size. uvloop's own
    subprocess support forks the whole daemon: a plugin run cost 3.2 ms of the
    daemon's CPU and 5.0 ms of the child's in a 300 MiB process, against 0.2 and 1.0
    this way (docs/performance.md). The exit is seen through a pidfd on the loop (no
    child watcher, no thread); the protocol hears of the pipes and the exit as from
    asyncio: ``pipe_data_received``, ``pipe_connection_lost``, ``process_exited``,
    then ``connection_lost`` once the program exited and every pipe closed.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], protocol: _Protocol
    ) -> None:
        self._loop, self._proc, self._protocol = loop, proc, protocol
        self._pipes: dict[int, asyncio.BaseTransport] = {}
        self._open = 0
        self._pidfd = os.pidfd_open(proc.pid)
        loop.add_reader(self._pidfd, self._reap)

    @classmethod
    async def start(
        cls,
        loop: asyncio.AbstractEventLoop,
        protocol: _Protocol,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdin: bool,
    ) -> _Spawned:
        # Blocking only for the vfork and exec (a fifth of a millisecond), as asyncio's
        # own subprocess_exec is.
        proc = subprocess.Popen(  # noqa: ASYNC220
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
        spawned = cls(loop, proc, protocol)
        try:
            for fd, pipe in ((1, proc.stdout), (2, proc.stderr)):
                assert pipe is not None
                spawned._open += 1
                reader, _ = await loop.connect_read_pipe(
                    functools.partial(_Pipe, spawned, fd), pipe
                )
                spawned._pipes[fd] = reader
            if proc.stdin is not None:
                spawned._open += 1
                writer, _ = await loop.connect_write_pipe(
                    functools.partial(_Pipe, spawned, 0), proc.stdin
                )
                spawned._pipes[0] = writer
        except BaseException:
            spawned.close()
            raise
        return spawned

    def get_pid(self) -> int:
        return self._proc.pid

    def get_returncode(self) -> int | None:
        return self._proc.returncode

    def get_pipe_transport(self, fd: int) -> asyncio.BaseTransport | None:
        return self._pipes.get(fd)

    def close(self) -> None:
        """Close the pipes; a program still running is killed (and reaped when it goes)."""
        for pipe in self._pipes.values():
            pipe.close()
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    def _reap(self) -> None:
        if self._proc.poll() is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._protocol.process_exited()
        self._finish()

    def pipe_closed(self, fd: int, exc: Exception | None) -> None:
        self._open -= 1
        self._protocol.pipe_connection_lost(fd, exc)
        self._finish()

    def _finish(self) -> None:
        if self._open == 0 and self._proc.returncode is not None:
            self._open = -1  # once
            self._protocol.connection_lost(None)


class _Pipe(asyncio.Protocol):
    """One of a program's pipes, reported to its :class:`_Spawned`."""

    def __init__(self, spawned: _Spawned, fd: int) -> None:
        self._spawned, self._fd = spawned, fd

    def data_received(self, data: bytes) -> None:
        self._spawned._protocol.pipe_data_received(self._fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._spawned.pipe_closed(self._fd, exc)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` (0: none, just look) to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # A setuid program in the group that changed its user: nothing more can be done.
        return True
    return True


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; the number itself for one no signal has."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def process_alive(pid: int, started_at: float) -> bool:
    """Whether process ``pid`` of this machine still runs and is the one that started
    at ``started_at`` (not a later process given the same pid)."""
    try:
        process = psutil.Process(pid)
        # A killed process its parent has not reaped yet is a zombie: gone.
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but unreadable: another user's, so not ours to judge
    return created <= started_at + 1.0
