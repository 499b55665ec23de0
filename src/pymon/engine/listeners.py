"""The log as a synchronous bus listener: one line per transition.

It is called inline for every published item of its types (see
:mod:`pymon.engine.bus`), so it is quick and never blocks. The composition root
registers it (``Daemon._wire_listeners``).
"""

from __future__ import annotations

import logging

from pymon.events import TRANSITION_TYPES, BusItem, NoticeQueued
from pymon.model import Event, EventKind

__all__ = ["LOG_TYPES", "log_event", "log_listener"]

log = logging.getLogger("pymon")


#: What :func:`log_listener` takes from the bus.
LOG_TYPES = (*TRANSITION_TYPES, NoticeQueued)


def log_listener(item: BusItem) -> None:
    """One log line per transition (never per run), and a debug line per queued notice."""
    if isinstance(item, TRANSITION_TYPES):
        log_event(item.event)
    elif isinstance(item, NoticeQueued):
        notice = item.notice
        # Delivery (and the log channel's line) comes from the outbox once stored.
        log.debug(
            "notice %s queued for %s: %s %s: %s",
            notice.kind.value,
            ", ".join(notice.channels),
            notice.service,
            notice.status.value.upper(),
            notice.message,
        )


def log_event(event: Event) -> None:
    """Log the transition ``event``: a warning for a problem status, else info."""
    level = logging.WARNING if event.status.is_problem else logging.INFO
    if event.kind is EventKind.CHANGED:
        log.log(
            level, "%s: %s -> %s: %s", event.service, event.previous, event.status, event.message
        )
    elif event.kind is EventKind.CONFIRMED:
        log.log(level, "%s: %s confirmed (was %s)", event.service, event.status, event.previous)
    else:
        log.log(
            level, "%s: %s: %s", event.service, event.kind.value.replace("_", " "), event.message
        )
