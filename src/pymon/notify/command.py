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
from typing import Final

from pymon.config.schema import CommandChannel
from pymon.model import Notice
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.payload import encode_payload, notice_payload
from pymon.programs import CappedOutput, Program, signal_name

__all__ = ["MAX_ENV_MESSAGE", "MAX_OUTPUT", "CommandSender"]

log = logging.getLogger("pymon.notify")

#: Bytes kept of each of stdout and stderr (the last ones; the rest is read and dropped).
MAX_OUTPUT: Final = 64 * 1024
#: Characters of the message in ``PYMON_MESSAGE``: the kernel caps one variable at 128 KiB.
MAX_ENV_MESSAGE: Final = 16 * 1024
# Characters of the program's output quoted in an error.
_MAX_QUOTE = 200
# The shell's codes for "found but not executable" and "not found": retrying cannot help.
_PERMANENT_EXITS = frozenset({126, 127})
# Start failures that stay until the config or the file system changes.
_PERMANENT_ERRNOS = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.ENOTDIR, errno.EISDIR}
)


def _last_line(output: CappedOutput) -> str:
    """The last line with something printable on it, cut to the length an error quotes."""
    for line in reversed(output.text().splitlines()):
        text = " ".join("".join(c if c.isprintable() else " " for c in line).split())
        if text:
            return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."
    return ""


class CommandSender:
    """Delivers notices by running one configured program per notice."""

    def __init__(self, name: str, config: CommandChannel) -> None:
        self.name = name
        self.config = config
        self._program = config.command[0]

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Run the program; return when it exits 0, raise :class:`DeliveryError` otherwise."""
        payload = notice_payload(notice, ctx, self.name)
        env = self._environment(notice, ctx, payload["id"])
        program = await self._start(env, encode_payload(payload))
        timed_out = False
        async with program:
            try:
                async with asyncio.timeout(self.config.timeout):
                    await program.wait()
            except TimeoutError:
                timed_out = True
            else:
                await program.drain()
        if timed_out:
            raise DeliveryError(
                f"command {self._program} timed out after {self.config.timeout:g}s (killed)"
            )
        self._judge(program, notice)

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

    async def _start(self, env: dict[str, str], stdin: bytes) -> Program:
        try:
            return await Program.start(
                self.config.command,
                env=env,
                keep="tail",
                limit=MAX_OUTPUT,
                stdin=stdin,
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

    def _judge(self, program: Program, notice: Notice) -> None:
        returncode = program.returncode
        said = _last_line(program.stderr) or _last_line(program.stdout)
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
            why = f"killed by signal {signal_name(-returncode)}"
        raise DeliveryError(
            f"command {self._program}: {why}" + (f": {said}" if said else ""),
            permanent=returncode in _PERMANENT_EXITS,
        )


def _env_value(text: str) -> str:
    """``text`` as an environment value can hold it: no NUL, nothing UTF-8 cannot encode."""
    return text.replace("\0", "").encode("utf-8", "replace").decode("utf-8")
