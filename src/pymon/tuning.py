"""Process-wide settings for a long-running daemon: the event loop, the garbage
collector and logging.

``pymon run`` and ``pymon bench`` both use them, so the benchmark measures the
daemon as it runs in production. The figures behind each choice are in
``docs/performance.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import sys
from collections.abc import Callable, Iterator

__all__ = [
    "FREEZE_FROM",
    "GC_THRESHOLD",
    "LoopFactory",
    "freeze_heap",
    "loop_factory",
    "paused_gc",
    "relaxed_gc",
    "setup_logging",
]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

# Every check leaves some 75 container objects behind (tasks, futures, transports,
# aiohttp's request and response) that die young. At the default threshold (700)
# the youngest generation is collected ~90 times a second at 2,000 checks/s and
# the older ones, which walk every service's config and state, every few seconds:
# 10-37 % of the loop's time under load, pauses of up to half a second. Collecting
# the young every 50,000 allocations keeps memory bounded (about +1 KiB per
# service) and takes the collector out of the lateness figures.
GC_THRESHOLD = (50_000, 20, 100)


@contextlib.contextmanager
def relaxed_gc() -> Iterator[None]:
    """Run the block with ``GC_THRESHOLD``; the previous thresholds come back after it.

    At 10,000 services freezing what exists once the daemon started measured no
    better than these thresholds alone (the collected objects are the in-flight
    churn); at 100,000 the rare full collections over the configs and states made
    at start are what pauses the loop, hence :func:`freeze_heap` as well.
    """
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic collector off, for work that builds and keeps.

    A config load makes millions of objects, none of them garbage; the collector,
    set off by their count, walked them all again and again: a third of the time of
    a 100,000-service load (docs/performance.md). Reference counting still frees
    what dies; a collector already off stays off.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


# Services from which freezing pays: a full collection over fewer is short.
FREEZE_FROM = 5_000


def freeze_heap(services: int) -> None:
    """Take every object alive now out of the cyclic collector's sight (``gc.freeze``),
    when there are ``services`` of at least :data:`FREEZE_FROM`.

    Called once the services are built (at start, and after a reload's new config is
    made): at 100,000 services a full collection walked millions of config and state
    objects, pauses of 0.4-0.6 s (docs/performance.md). Frozen objects are still freed
    by reference counting when they die; only a reference cycle among them that dies
    later stays (what checks in flight at that moment leave behind, at most), which
    is why a small daemon, whose full collections are short, is left alone.
    """
    if services >= FREEZE_FROM:
        gc.freeze()


def loop_factory() -> tuple[LoopFactory | None, str]:
    """uvloop's loop when it is installed (a dependency, except on Windows), else asyncio's.

    Returns the factory for ``asyncio.Runner`` (None: asyncio's default) and the
    loop's name for the log. uvloop cuts the CPU of a check by 10-15 %.
    """
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None, "asyncio"
    factory: LoopFactory = uvloop.new_event_loop
    return factory, f"uvloop {getattr(uvloop, '__version__', '')}".rstrip()


def setup_logging(level: str) -> None:
    """Log to standard error at ``level`` (the daemon and its helper processes alike)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # aiosmtpd (the acknowledgement server) logs every SMTP command at INFO, watchfiles
    # every change it sees; pymon logs what matters of both itself.
    for chatty in ("mail.log", "watchfiles"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
