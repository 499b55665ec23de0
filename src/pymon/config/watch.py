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
import glob
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import watchfiles

__all__ = ["ConfigWatcher", "watched_dirs"]

log = logging.getLogger("pymon")

DEBOUNCE_MS = 500
"""Changes closer together than this become one reload."""

_MTIME_SLACK = 0.05


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
        since: float | None = None,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self._main, self._patterns = watched_dirs(config, includes)
        self._since = since
        self._reload = reload
        self._debounce = debounce_ms
        self._stop = threading.Event()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._thread: threading.Thread | None = None

    def changed_since(self, when: float) -> bool:
        """Whether the config or an included file was modified at ``when`` or later
        (wall-clock seconds; a file's time stamp lags the clock by a tick, hence the slack)."""
        paths = [self._main, *(p for pattern in self._patterns for p in glob.glob(pattern))]
        for path in paths:
            try:
                if os.stat(path).st_mtime >= when - _MTIME_SLACK:
                    return True
            except OSError:
                continue
        return False

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
        loop = asyncio.get_running_loop()
        # A thread of its own: the watch blocks in native code between batches, and
        # one plain thread needs nothing of awatch's per-batch task group and pool.
        self._thread = threading.Thread(
            target=self._watch, args=(loop,), name="pymon-config-watch", daemon=True
        )
        self._thread.start()
        self._tasks = [asyncio.create_task(self._reloads(), name="config-reload")]

    async def stop(self) -> None:
        """Stop watching; a reload in progress is cancelled with it."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._thread is not None:
            # The watch looks at the stop event every step (50 ms).
            await asyncio.to_thread(self._thread.join)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """The watch, in its thread: tells the loop when a reload is due."""
        dirs = self.directories
        log.info("config: watching %s for changes", ", ".join(dirs))
        try:
            for changes in watchfiles.watch(
                *dirs,
                # Unfiltered, so that every batch yields: a directory that also holds
                # the database changes all the time, and a filtered watch would then
                # neither yield nor time out, leaving the first yield below unseen.
                watch_filter=None,
                debounce=self._debounce,
                step=50,
                recursive=False,
                stop_event=self._stop,
                yield_on_timeout=True,
                rust_timeout=1000,
                raise_interrupt=False,
            ):
                # The first yield comes once the directories are watched. An edit made
                # after the config was read and before that (the daemon was starting)
                # raised no event: the file's time stamp tells.
                since, self._since = self._since, None
                ours = any(self.relevant(path) for _change, path in changes)
                if ours or (since is not None and self.changed_since(since)):
                    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                        loop.call_soon_threadsafe(self._dirty.set)
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
