"""The ``command`` channel: runs a program per notice.

The program (``command``: an argument list, no shell) gets the notice as the JSON
document of ``payload.py`` on its standard input, and in its environment, beside
pymon's own and the channel's ``env``:

``PYMON_SERVICE``, ``PYMON_STATUS``, ``PYMON_KIND``, ``PYMON_MESSAGE`` (cut at
:data:`MAX_ENV_MESSAGE` characters; stdin has it whole), ``PYMON_INCIDENT`` (empty
without one), ``PYMON_NOTICE`` (the notice key), ``PYMON_DELIVERY`` (the delivery
id, the same on every retry), ``PYMON_AT`` (epoch seconds), ``PYMON_SERVICE_URL``
and ``PYMON_ATTEMPT`` (1 for the first try).

Exit 0 delivers. Any other exit is retried by the outbox, except 126 and 127 (the
shell's "not executable" and "not found") and a program that cannot be started:
those are permanent. The program runs in a process group of its own; when it
outlives the channel's ``timeout`` the whole group gets SIGTERM and, after a short
grace, SIGKILL, and whatever is left of the group after the program exits is ended
the same way: a notice program must not leave work running in the background.
Each of its standard output and error is read to the end, and the last
:data:`MAX_OUTPUT` bytes of each are kept (the error quotes the last line of
stderr).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Final

from pymon.config.schema import CommandChannel
from pymon.model import Notice
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.payload import encode_payload, notice_payload

__all__ = ["MAX_ENV_MESSAGE", "MAX_OUTPUT", "CommandSender"]

log = logging.getLogger("pymon.notify")

#: Bytes kept of each of stdout and stderr (the last ones; the rest is read and dropped).
MAX_OUTPUT: Final = 64 * 1024
#: Characters of the message in ``PYMON_MESSAGE``: the kernel caps one variable at 128 KiB.
MAX_ENV_MESSAGE: Final = 16 * 1024
# Characters of the program's output quoted in an error.
_MAX_QUOTE = 200
# After the program exits, how long its output may take to reach end of file; only
# a left-over child still holding the pipes open makes it take longer.
_DRAIN_GRACE = 0.5
# Between SIGTERM and SIGKILL to the program's process group.
_KILL_GRACE = 0.5
# The shell's codes for "found but not executable" and "not found": retrying cannot help.
_PERMANENT_EXITS = frozenset({126, 127})
# Start failures that stay until the config or the file system changes.
_PERMANENT_ERRNOS = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.ENOTDIR, errno.EISDIR}
)


@dataclass(slots=True)
class _Tail:
    """The last :data:`MAX_OUTPUT` bytes of one stream, and how many came in all."""

    kept: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self.kept += data[-MAX_OUTPUT:]
        excess = len(self.kept) - MAX_OUTPUT
        if excess > 0:
            del self.kept[:excess]

    def last_line(self) -> str:
        """The last line with something printable on it, cut to the length an error quotes."""
        for line in reversed(self.kept.decode("utf-8", "replace").splitlines()):
            text = " ".join("".join(c if c.isprintable() else " " for c in line).split())
            if text:
                return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."
        return ""


class _Program(asyncio.SubprocessProtocol):
    """Collects the program's output and tells when it exited and when its pipes closed.

    (``asyncio.subprocess.Process.wait()`` cannot tell the first before Python 3.12:
    it returns only once the pipes close, which a left-over child can delay.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stdout, self.stderr = _Tail(), _Tail()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.stdout if fd == 1 else self.stderr).add(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        # fd 0 ends with BrokenPipeError when the program exits without reading all
        # its input; that is its right, and no failure.
        if fd == 0 and exc is not None:
            log.debug("command stopped reading its input: %s", exc)

    def process_exited(self) -> None:
        self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


class CommandSender:
    """Delivers notices by running one configured program per notice."""

    def __init__(self, name: str, config: CommandChannel) -> None:
        self.name = name
        self.config = config
        self._program = config.command[0]

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Run the program; return when it exits 0, raise :class:`DeliveryError` otherwise."""
        payload = notice_payload(notice, ctx, self.name)
        transport, program = await self._start(self._environment(notice, ctx, payload["id"]))
        timed_out = False
        try:
            _feed(transport, encode_payload(payload))
            try:
                async with asyncio.timeout(self.config.timeout):
                    # asyncio.wait, unlike wait_for, leaves the future alone when cancelled.
                    await asyncio.wait([program.exited])
            except TimeoutError:
                timed_out = True
            else:
                await asyncio.wait([program.closed], timeout=_DRAIN_GRACE)
        finally:
            await _end_group(transport, program)
            # Closes the pipes even when a child that left the group still holds them.
            transport.close()
        if timed_out:
            raise DeliveryError(
                f"command {self._program} timed out after {self.config.timeout:g}s (killed)"
            )
        self._judge(transport.get_returncode(), program, notice)

    async def close(self) -> None:
        """Nothing is held between notices."""

    def _environment(self, notice: Notice, ctx: NoticeContext, delivery: str) -> dict[str, str]:
        message = notice.message[:MAX_ENV_MESSAGE]
        own = {
            "PYMON_SERVICE": notice.service,
            "PYMON_STATUS": notice.status.value,
            "PYMON_KIND": notice.kind.value,
            "PYMON_MESSAGE": message,
            "PYMON_INCIDENT": notice.incident or "",
            "PYMON_NOTICE": notice.key,
            "PYMON_DELIVERY": delivery,
            "PYMON_AT": repr(notice.at),
            "PYMON_SERVICE_URL": ctx.service_url,
            "PYMON_ATTEMPT": str(ctx.attempt),
        }
        return {**os.environ, **self.config.env, **{k: _env_value(v) for k, v in own.items()}}

    async def _start(self, env: dict[str, str]) -> tuple[asyncio.SubprocessTransport, _Program]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.subprocess_exec(
                lambda: _Program(loop),
                *self.config.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise DeliveryError(f"command not found: {self._program}", permanent=True) from None
        except PermissionError:
            raise DeliveryError(
                f"command not executable: {self._program} (permission denied)", permanent=True
            ) from None
        except OSError as exc:
            raise DeliveryError(
                f"command {self._program}: cannot start: {exc.strerror or exc}",
                permanent=exc.errno in _PERMANENT_ERRNOS,
            ) from None
        except ValueError as exc:
            # A NUL byte in an argument, or a bad name or value in the channel's env.
            raise DeliveryError(
                f"command {self._program}: cannot start: {exc}", permanent=True
            ) from None

    def _judge(self, returncode: int | None, program: _Program, notice: Notice) -> None:
        said = program.stderr.last_line() or program.stdout.last_line()
        if returncode == 0:
            log.debug(
                "command %s took notice %s%s",
                self._program,
                notice.key,
                f": {said}" if said else "",
            )
            return
        if returncode is None or returncode >= 0:
            why = f"exit {returncode}"
        else:
            try:
                why = f"killed by signal {signal.Signals(-returncode).name}"
            except ValueError:
                why = f"killed by signal {-returncode}"
        raise DeliveryError(
            f"command {self._program}: {why}" + (f": {said}" if said else ""),
            permanent=returncode in _PERMANENT_EXITS,
        )


def _feed(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    """Hand ``data`` to the program's stdin without ever waiting for it to be read.

    The pipe transport buffers what the pipe does not take; a program that exits
    without reading makes the rest fail with a broken pipe, which asyncio reports
    to :meth:`_Program.pipe_connection_lost`, not here.
    """
    stdin = transport.get_pipe_transport(0)
    if not isinstance(stdin, asyncio.WriteTransport):
        return
    try:
        stdin.write(data)
        stdin.close()
    except (BrokenPipeError, ConnectionResetError) as exc:
        log.debug("command stopped reading its input: %s", exc)


def _env_value(text: str) -> str:
    """``text`` as an environment value can hold it: no NUL, nothing UTF-8 cannot encode."""
    return text.replace("\0", "").encode("utf-8", "replace").decode("utf-8")


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


async def _end_group(transport: asyncio.SubprocessTransport, program: _Program) -> None:
    """Stop whatever is left of the program's process group: SIGTERM, a grace, SIGKILL."""
    # The program leads a session and group of its own, numbered by its pid, which
    # cannot be reused while any process of the group is left.
    pgid = transport.get_pid()
    if program.exited.done() and not _signal_group(pgid, 0):
        return
    _signal_group(pgid, signal.SIGTERM)
    try:
        await asyncio.wait([program.exited], timeout=_KILL_GRACE)
    finally:
        # Even when cancelled while waiting: nothing of the program may outlive it.
        _signal_group(pgid, signal.SIGKILL)
