"""What the engine knows of each service now, and the one way that changes.

A :class:`ServiceBook` holds every service's current state and open incident.
They change only by a decision of the rules (an :class:`~pymon.engine.rules.Outcome`),
taken whole by :meth:`ServiceBook.apply`: kept in memory, handed to the store's
writer (state, result, events, incident, notices and the rollups' deltas land in one
transaction), then told on the bus. The deltas come from the previous state and the
new one (:func:`pymon.uptime.credit`, added straight into the writer's pending
tallies), with each service's gap limit. It also counts the typed events
published, for ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable

from pymon.engine.bus import Bus
from pymon.engine.rules import Outcome
from pymon.events import (
    EVENT_TYPES,
    TYPE_NAMES,
    BusItem,
    CheckCompleted,
    NoticeQueued,
    StateChanged,
    from_transition,
    type_name,
)
from pymon.model import Incident, ServiceState
from pymon.store.base import ResultRecord
from pymon.store.writer import BatchWriter

__all__ = ["ServiceBook"]


class ServiceBook:
    """Every service's state and open incident, kept, written and told as one."""

    def __init__(
        self,
        writer: BatchWriter,
        bus: Bus[BusItem],
        gap: Callable[[str], float] = lambda name: 0.0,
    ) -> None:
        self.states: dict[str, ServiceState] = {}
        self.incidents: dict[str, Incident] = {}
        #: Typed events published on the bus since start, by type label.
        self.event_counts = dict.fromkeys(TYPE_NAMES, 0)
        self._writer = writer
        self._bus = bus
        # Each service's gap limit (uptime.gap_limit), 0 for one no longer configured.
        self._gap = gap
        bus.listen(self._count, *EVENT_TYPES)

    def apply(self, outcome: Outcome, record: ResultRecord | None = None) -> None:
        """Take a decision of the rules: memory, then the writer, then the bus."""
        state = outcome.state
        name = state.name
        previous = self.states.get(name)
        changed = previous is not state or self.incidents.get(name) is not outcome.incident
        writer = self._writer
        if record is not None:
            writer.credit(previous or ServiceState(name), state, record.duration, self._gap(name))
        elif previous is not None and previous.last_check != state.last_check:
            # A decision without a check that still moved the clock on (disabled).
            writer.credit(previous, state, None, self._gap(name))
        self.states[name] = state
        if outcome.incident is not None:
            if outcome.incident.open:
                self.incidents[name] = outcome.incident
            else:
                self.incidents.pop(name, None)
        # The rollups were credited just above, with no await before record's add:
        # they land in the state's flush.
        self.record(outcome, record, changed=changed)

    def record(self, outcome: Outcome, record: ResultRecord | None, *, changed: bool) -> None:
        """Write one decision, then tell the bus: ``CheckCompleted`` when a check ran, a
        typed event per transition, a ``NoticeQueued`` per notice, and ``StateChanged``
        when ``changed``. Every piece goes out in this one call (the rollups were
        credited to the writer by :meth:`apply`)."""
        self._writer.add(outcome.state, record, outcome.events, outcome.incident, outcome.notices)
        bus = self._bus
        name = outcome.state.name
        if record is not None:
            bus.publish(CheckCompleted(name, outcome.state, record))
        for event in outcome.events:
            bus.publish(from_transition(event, outcome.incident))
        for notice in outcome.notices:
            bus.publish(NoticeQueued(notice))
        if changed:
            bus.publish(StateChanged(name))

    def drop(self, name: str) -> tuple[ServiceState, Incident | None]:
        """Forget ``name``: its last state (a fresh one if none) and its incident."""
        return self.states.pop(name, None) or ServiceState(name), self.incidents.pop(name, None)

    def _count(self, item: BusItem) -> None:
        if isinstance(item, EVENT_TYPES):
            self.event_counts[type_name(item)] += 1
