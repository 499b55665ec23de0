"""The ``log`` channel: one line per notice in pymon's own log (logger ``pymon.notice``)."""

from __future__ import annotations

import logging
from typing import Final

from pymon.config.schema import LogChannel
from pymon.model import Notice
from pymon.notify.base import NoticeContext
from pymon.text import one_line

__all__ = ["LOGGER", "LogSender"]

#: The logger notices go to, apart from pymon's own chatter on ``pymon.notify``.
LOGGER: Final = "pymon.notice"

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogSender:
    """Writes each notice as one log line at the channel's level; never fails."""

    def __init__(self, name: str, config: LogChannel) -> None:
        self.name = name
        self.config = config
        self._level = _LEVELS[config.level]
        self._log = logging.getLogger(LOGGER)

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Log ``notice problem: web ERROR - <message> (incident <id>)``.

        On one line: a message from a hostile target must not forge further log lines.
        """
        self._log.log(
            self._level,
            "notice %s: %s %s - %s%s",
            notice.kind.value,
            one_line(notice.service),
            notice.status.value.upper(),
            one_line(notice.message),
            f" (incident {one_line(notice.incident)})" if notice.incident else "",
        )

    async def close(self) -> None:
        """Nothing is held."""
