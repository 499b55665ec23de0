"""Helpers for tests that run external programs: scripts to run, and processes to see end."""

from __future__ import annotations

import asyncio
import time
from itertools import count
from pathlib import Path

import psutil

__all__ = ["Scripts", "gone"]


class Scripts:
    """Writes scripts into ``folder``, named by ``pattern`` with a running number for ``{}``."""

    def __init__(self, folder: Path, pattern: str) -> None:
        self._folder = folder
        self._pattern = pattern
        self._numbers = count(1)

    def write(self, text: str, mode: int = 0o644) -> Path:
        """A new file holding ``text`` with permissions ``mode``; returns its path."""
        path = self._folder / self._pattern.format(next(self._numbers))
        path.write_text(text)
        path.chmod(mode)
        return path


async def gone(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` stops running within ``within`` seconds (an unreaped zombie has stopped).

    An orphan is reaped by init, which may take its time; it no longer runs meanwhile.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.02)
    return False
