"""Watch the config file and its includes; ask for a reload when one of them changes.

Editors save in different ways: write in place, or write a new file and rename it
over the old one (vim, many IDEs). Watching the file itself would lose the rename
(the watched inode is gone), so the watcher watches the *directories* and keeps
the events whose path is the config file or matches an ``include`` glob.

Bursts (an editor's write + rename + chmod, ``git checkout`` of many files) are
debounced into one reload. Reloads never overlap: a change that arrives while a
reload runs makes exactly one more reload after it, however many changes came.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import watchfiles

__all__ = ["ConfigWatcher", "watched_dirs"]

log = logging.getLogger("pymon")

DEBOUNCE_MS = 500
"""Changes closer together than this become one reload."""


def _norm(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


def _fixed_dir(pattern: str) -> str:
    """The deepest directory of ``pattern`` before its first glob character."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else os.sep


def watched_dirs(config: Path, includes: Iterable[str]) -> tuple[str, list[str]]:
    """The config file as watched, and the include globs as absolute patterns."""
    main = _norm(config)
    base = os.path.dirname(main)
    patterns = [_norm(os.path.join(base, os.path.expanduser(p))) for p in includes if p.strip()]
    return main, patterns


class ConfigWatcher:
    """Calls ``reload`` after the file ``config`` or a file its ``includes`` match changes.

    Watches the directory of the config and the fixed directory of each include
    glob (not their subdirectories); a glob reaching into deeper directories still
    loads, but edits down there need SIGHUP or ``POST /api/v1/reload``.
    """

    def __init__(
        self,
        config: Path,
        includes: Iterable[str],
        reload: Callable[[], Awaitable[object]],
        *,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self._main, self._patterns = watched_dirs(config, includes)
        self._reload = reload
        self._debounce = debounce_ms
        self._stop = asyncio.Event()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def relevant(self, path: str) -> bool:
        """Whether a change of ``path`` concerns the config."""
        path = _norm(path)
        return path == self._main or any(fnmatch.fnmatchcase(path, p) for p in self._patterns)

    @property
    def directories(self) -> list[str]:
        """The existing directories watched (each once)."""
        wanted = [os.path.dirname(self._main), *(_fixed_dir(p) for p in self._patterns)]
        return list(dict.fromkeys(d for d in wanted if os.path.isdir(d)))

    def start(self) -> None:
        """Start watching (in the running loop)."""
        self._tasks = [
            asyncio.create_task(self._watch(), name="config-watch"),
            asyncio.create_task(self._reloads(), name="config-reload"),
        ]

    async def stop(self) -> None:
        """Stop watching; a reload in progress is cancelled with it."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self) -> None:
        dirs = self.directories
        log.info("config: watching %s for changes", ", ".join(dirs))
        try:
            async for _ in watchfiles.awatch(
                *dirs,
                watch_filter=lambda _change, path: self.relevant(path),
                debounce=self._debounce,
                step=50,
                recursive=False,
                stop_event=self._stop,
                yield_on_timeout=False,
                rust_timeout=1000,
            ):
                self._dirty.set()
        except (OSError, RuntimeError) as exc:
            # A directory that vanished or a watch limit reached: reloads still work
            # through SIGHUP and the API, so say so and keep running.
            log.error("config: watching stopped (%s); reload with SIGHUP or the API", exc)

    async def _reloads(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            with contextlib.suppress(Exception):
                await self._reload()
