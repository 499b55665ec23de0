"""The config file watch: edits raise a reload, including one made while the daemon
was starting (after the config was read, before the directories were watched)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from pymon.config.watch import ConfigWatcher


async def _watch_until_reload(watcher: ConfigWatcher, reloaded: asyncio.Event) -> None:
    watcher.start()
    try:
        await asyncio.wait_for(reloaded.wait(), timeout=30)
    finally:
        await watcher.stop()


async def test_an_edit_before_the_watch_started_reloads(tmp_path: Path) -> None:
    cfg = tmp_path / "pymon.yaml"
    cfg.write_text("services: []\n")
    read_at = time.time()
    cfg.write_text("services: []\n# edited while the daemon was starting\n")
    reloaded = asyncio.Event()

    async def reload() -> None:
        reloaded.set()

    async def write_a_database_beside_it() -> None:
        # Unrelated changes all the time (as SQLite's files beside the config make):
        # no pause in which the watch would time out.
        while not reloaded.is_set():
            (tmp_path / "p.db-wal").write_bytes(os.urandom(64))
            await asyncio.sleep(0.02)

    database = asyncio.create_task(write_a_database_beside_it())
    # No event will come for that edit: only the time stamp can tell.
    await _watch_until_reload(ConfigWatcher(cfg, [], reload, since=read_at), reloaded)
    await database


async def test_an_edit_after_the_watch_started_reloads(tmp_path: Path) -> None:
    cfg = tmp_path / "pymon.yaml"
    cfg.write_text("services: []\n")
    reloaded = asyncio.Event()

    async def reload() -> None:
        reloaded.set()

    watcher = ConfigWatcher(cfg, [], reload, debounce_ms=50)

    async def edit_until_seen() -> None:
        # Rewritten until seen: the watch starts in a thread at a moment not reported.
        while not reloaded.is_set():
            cfg.write_text(f"services: []\n# {time.monotonic()}\n")
            await asyncio.sleep(0.2)

    editing = asyncio.create_task(edit_until_seen())
    await _watch_until_reload(watcher, reloaded)
    await editing


def test_changed_since_looks_at_the_file_and_the_include_globs(tmp_path: Path) -> None:
    cfg = tmp_path / "pymon.yaml"
    cfg.write_text("include: [conf.d/*.yaml]\n")
    (tmp_path / "conf.d").mkdir()
    part = tmp_path / "conf.d" / "web.yaml"
    part.write_text("services: []\n")
    (tmp_path / "conf.d" / "notes.txt").write_text("not matched\n")
    watcher = ConfigWatcher(cfg, ["conf.d/*.yaml"], _never)
    an_hour_ago = time.time() - 3600
    for path in (cfg, part):
        os.utime(path, (an_hour_ago, an_hour_ago))
    now = time.time()
    assert not watcher.changed_since(now)
    os.utime(part, (now + 1, now + 1))
    assert watcher.changed_since(now)
    os.utime(part, (an_hour_ago, an_hour_ago))
    os.utime(cfg, (now + 1, now + 1))
    assert watcher.changed_since(now)


async def _never() -> None:
    raise AssertionError("no reload expected")
