"""The daemon's synchronous bus listeners: the store, the log and the event counters.

Each is called inline for every published item (see :mod:`pymon.engine.bus`), so
each is quick and never blocks. The daemon registers them, in one place, in
``Daemon._wire_listeners``.
"""

from __future__ import annotations

import logging
from collections import Counter

from pymon.engine.bus import BusItem
from pymon.engine.events import (
    EVENT_TYPES,
    TRANSITION_TYPES,
    TYPE_NAMES,
    Decided,
    NoticeQueued,
    type_name,
)
from pymon.model import Event, EventKind
from pymon.store.writer import BatchWriter

__all__ = ["LOG_TYPES", "EventCounts", "StoreListener", "log_listener"]

log = logging.getLogger("pymon")


class StoreListener:
    """Queues each decision of the rules into the batch writer, whole.

    A :class:`~pymon.engine.events.Decided` carries state, result, events, incident
    and notices together, so they reach the writer in one ``add`` and the store in
    one transaction; the writer tells the outbox once the notices are durable.
    """

    __slots__ = ("_writer",)

    #: What it takes from the bus.
    TYPES = (Decided,)

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer

    def __call__(self, item: BusItem) -> None:
        """Queue ``item`` when it is a decision; ignore the rest."""
        if isinstance(item, Decided):
            outcome = item.outcome
            self._writer.add(
                outcome.state, item.record, outcome.events, outcome.incident, outcome.notices
            )


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


class EventCounts:
    """Counts the typed events by type since start (``pymon_events_total{type}``)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        # Every type from the start, so a scrape shows zeros rather than no series.
        self.counts: Counter[str] = Counter(dict.fromkeys(TYPE_NAMES, 0))

    def __call__(self, item: BusItem) -> None:
        """Count ``item`` when it is a typed event."""
        if isinstance(item, EVENT_TYPES):
            self.counts[type_name(item)] += 1
