"""The rules: pure functions from (state, incident, result, policy, situation) to what follows.

Nothing here does I/O or reads a clock, so every transition is a table test, and
``docs/states.md`` draws the machine these functions implement.

* **Thresholds**: each metric with thresholds is classified (``MetricThresholds``);
  the worst of those and the check's own status wins, and the message names the
  metric and value that decided.
* **Flap guard**: a new status shows at once but is *unconfirmed* until it has been
  seen ``flap_guard[status]`` times in a row. Going back to the confirmed status is
  confirmed at once (a blip does not un-confirm the hard state).
* **Flap detection**: ``changes`` confirmed changes within the last ``window``
  results (the original pymon's rule: a confirmed state held only briefly is a flap),
  or the weighted percent of state changes over a full window reaching ``high`` (as
  Nagios does); steady again once the window holds no confirmed change and the
  percent is below ``low``.
* **Incidents**: a confirmed problem opens one; a worse confirmed status makes it
  worse (and clears an acknowledgement); a confirmed ok (or disabling) closes it.
* **Notices**: a problem notice is owed when an incident opens or gets worse, and
  again every ``renotify`` while unacknowledged, up to ``cutoff`` per incident. It
  is held while the service is flapping, in maintenance, unreachable (a service it
  depends on is down), waiting for its parents' fresh verdict (``Outcome.waiting_on``)
  or acknowledged, and goes out when the hold ends if the incident is still open
  and the service still has a problem. Recovery, escalation and flapping notices are documented
  in ``docs/states.md``. An acknowledgement given, taken back or run out is a notice
  to the channels that want acknowledgements (PagerDuty, Opsgenie), once the
  incident has been notified (:func:`ack_notice`).
* **Events** only on transitions.

It is one module past the house's ~500 lines on purpose: it is one state machine,
and its steps share private helpers and one reading order (thresholds, guard,
flapping, incident, notices); split, each part would only make sense beside the
others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pymon.config.schema import (
    FlapDetection,
    FlapGuard,
    MetricThresholds,
    NotificationsConfig,
    ServiceConfig,
)
from pymon.engine.flapping import NO_FLAP, confirmed_changes, flap_fields
from pymon.model import (
    Ack,
    CheckResult,
    Event,
    EventKind,
    Incident,
    Notice,
    NoticeKind,
    ServiceState,
    Status,
)

__all__ = [
    "Outcome",
    "ParentView",
    "Situation",
    "ack_notice",
    "acknowledge",
    "apply",
    "channels_for",
    "disable",
    "evaluate",
    "review",
    "unacknowledge",
    "wants_retry",
]


@dataclass(frozen=True, slots=True)
class ParentView:
    """What a child needs to know of one service it depends on.

    ``decided``: its last result is not an unconfirmed problem (a problem that may
    yet be confirmed, so its verdict on the parent is still out). ``checked_from``:
    when the check behind its last result started (``-inf`` before any; ``inf`` for
    a parent that is never checked, such as a disabled one: nothing will come).
    """

    name: str
    decided: bool = True
    checked_from: float = float("inf")

    def settled_since(self, onset: float) -> bool:
        """Whether its verdict covers a child's problem that began at ``onset``."""
        return self.decided and self.checked_from >= onset


@dataclass(frozen=True, slots=True)
class Situation:
    """What the rules need to know besides the result: the time and the world around.

    ``maintenance``: a maintenance window covers the service now. ``parent_down``: a
    service it depends on is confirmed error or failed. ``parents``: every service
    it depends on, so a problem notice waits until each has spoken about the time
    the problem began.
    """

    now: float
    maintenance: bool = False
    parent_down: bool = False
    parents: tuple[ParentView, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one step of the rules decided.

    ``incident`` is the service's current incident after the step: open, or closed
    in this very step (so it can be persisted), or None when there is none.
    ``waiting_on`` names the parents whose fresh verdict a held problem notice waits
    for: the caller runs them now and reviews the service when they answer.
    """

    state: ServiceState
    incident: Incident | None
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    waiting_on: tuple[str, ...] = ()


def evaluate(result: CheckResult, thresholds: Mapping[str, MetricThresholds]) -> tuple[Status, str]:
    """The status and message of ``result`` once its metrics went through ``thresholds``.

    A metric the result does not carry is not judged. When a threshold makes the
    status worse than the check's own, the message starts with why, e.g.
    ``status_code 404 is error (400, 404, 408-410...)``.
    """
    status = result.status
    reasons: list[str] = []
    for metric, limits in thresholds.items():
        value = result.metrics.get(metric)
        if value is None:
            continue
        verdict = limits.classify(value)
        if verdict is Status.OK:
            continue
        ranges = getattr(limits, verdict.value, None)
        where = f" ({ranges})" if ranges is not None else " (in no range)"
        reasons.append(f"{metric} {value:g} is {verdict.value}{where}")
        status = Status.worst(status, verdict)
    if status is result.status or not reasons:
        return status, result.message
    return status, "; ".join(reasons) + (f" - {result.message}" if result.message else "")


def channels_for(
    service: ServiceConfig, policy: NotificationsConfig, status: Status
) -> tuple[str, ...]:
    """The channels a notice about ``service`` in ``status`` goes to (empty: nobody).

    ``notify: false`` means nobody; a list of channel names means exactly those;
    otherwise the routes decide (a route matches when the service has one of its
    tags, or it names none, and the status is one of its statuses, or it names
    none), and with no routes every channel gets every notice.
    """
    if not policy.enabled or service.notify is False:
        return ()
    if service.notify is not None:
        return tuple(service.notify)
    if not policy.routes:
        return tuple(policy.channels)
    chosen: dict[str, None] = {}
    for route in policy.routes:
        if route.statuses and status.value not in route.statuses:
            continue
        if route.tags and not set(route.tags) & set(service.tags):
            continue
        chosen.update(dict.fromkeys(route.channels))
    return tuple(chosen)


def apply(
    prev: ServiceState,
    incident: Incident | None,
    result: CheckResult,
    service: ServiceConfig,
    policy: NotificationsConfig,
    situation: Situation,
) -> Outcome:
    """Fold one check result into a service's state, incident, events and notices."""
    status, message = evaluate(result, service.thresholds)
    state, events = _transition(
        prev, status, message, result, service.flap_guard, situation.now, service.flap_detection
    )
    flap_events, flap_notices = _flap_news(prev, state, service, policy, situation)
    return _workflow(
        prev, state, incident, [*events, *flap_events], flap_notices, service, policy, situation
    )


def wants_retry(state: ServiceState) -> bool:
    """Whether ``state`` asks for its next check sooner than the regular rhythm.

    An unconfirmed problem is checked again soon so that a real outage is confirmed
    quickly, and so is an unconfirmed recovery from a confirmed problem, so that its
    incident closes quickly. The first ok of a service never confirmed before has
    nothing waiting on it: the next regular run confirms it. (Retrying it too would
    double the load of the first interval after a start with many new services.)
    """
    return not state.confirmed and (state.status is not Status.OK or state.recovering)


def review(
    state: ServiceState,
    incident: Incident | None,
    service: ServiceConfig,
    policy: NotificationsConfig,
    situation: Situation,
) -> Outcome:
    """Re-decide without a new result: a window opened or closed, a parent changed,
    an acknowledgement came or expired, a renotify came due."""
    return _workflow(state, state, incident, [], [], service, policy, situation)


def disable(prev: ServiceState, incident: Incident | None, now: float) -> Outcome:
    """A service with ``enabled: false``: ``disabled``, confirmed, no checks, no incident.

    An incident still open is closed without a recovery notice (nothing recovered).
    """
    events: list[Event] = []
    state = prev
    if prev.status is not Status.DISABLED:
        result = CheckResult(Status.DISABLED, "disabled in config", prev.metrics)
        state, events = _transition(
            prev, Status.DISABLED, result.message, result, FlapGuard(), now, None
        )
    state = replace(
        state,
        flapping=False,
        flap_history="",
        flap_pct=0.0,
        maintenance=False,
        unreachable=False,
        incident=None,
    )
    if incident is not None and incident.open:
        incident = replace(incident, closed_at=now, pending=False)
        events.append(
            Event(
                state.name,
                EventKind.INCIDENT_CLOSED,
                now,
                Status.DISABLED,
                incident.status,
                state.message,
            )
        )
    return Outcome(state, incident, events)


def acknowledge(incident: Incident, ack: Ack) -> tuple[Incident, list[Event]]:
    """Acknowledge an open incident: its notices stop until it closes or gets worse."""
    text = f"acknowledged by {ack.author}" + (f": {ack.comment}" if ack.comment else "")
    event = Event(
        incident.service, EventKind.ACKNOWLEDGED, ack.at, incident.status, incident.status, text
    )
    return replace(incident, ack=ack), [event]


def unacknowledge(incident: Incident, now: float, why: str) -> tuple[Incident, list[Event]]:
    """Take an acknowledgement back (by hand, on expiry, or because it got worse)."""
    if incident.ack is None:
        return incident, []
    event = Event(
        incident.service, EventKind.UNACKNOWLEDGED, now, incident.status, incident.status, why
    )
    return replace(incident, ack=None), [event]


def ack_notice(
    incident: Incident,
    kind: NoticeKind,
    now: float,
    text: str,
    service: ServiceConfig,
    policy: NotificationsConfig,
) -> list[Notice]:
    """The notice of an acknowledgement given (``kind`` ACKNOWLEDGED) or taken back
    (UNACKNOWLEDGED), for the channels the incident's notices went to that want
    acknowledgements; none when no notice of the incident went out yet (there is
    nothing to acknowledge on the other side)."""
    if incident.notices == 0 and not incident.escalated:
        return []
    reached = channels_for(service, policy, incident.status)
    if incident.escalated:
        reached = tuple(dict.fromkeys((*reached, *policy.escalation)))
    specs = policy.channels
    wanted = tuple(c for c in reached if c in specs and specs[c].acknowledgements)
    if not wanted:
        return []
    # Milliseconds keep the key unique per act (ack, unack, ack again) and stable
    # when the same decision is written twice.
    key = f"{incident.id}:{kind.value}:{round(now * 1000)}"
    notice = Notice(
        key, incident.service, kind, now, incident.status, text, wanted, incident.id,
        since=incident.opened_at,
    )  # fmt: skip
    return [notice]


def _transition(
    prev: ServiceState,
    status: Status,
    message: str,
    result: CheckResult,
    guard: FlapGuard,
    now: float,
    detection: FlapDetection | None,
) -> tuple[ServiceState, list[Event]]:
    events: list[Event] = []
    if status is prev.status and prev.count > 0:
        count, previous, last_change = prev.count + 1, prev.previous_status, prev.last_change
    else:
        count, previous, last_change = 1, prev.status, now
        events.append(Event(prev.name, EventKind.CHANGED, now, status, prev.status, message))

    confirmed_status = prev.confirmed_status
    change = False
    if status is confirmed_status:
        confirmed = True
    elif count >= guard.count_for(status):
        confirmed = True
        confirmed_status = status
        # A service is presumed ok until it confirms anything: its first confirmed
        # problem opens an incident like any other change does.
        change = status is not (prev.confirmed_status or Status.OK)
        was = prev.confirmed_status or Status.UNKNOWN
        events.append(Event(prev.name, EventKind.CONFIRMED, now, status, was, message))
    else:
        confirmed = False

    recovering = (
        status is Status.OK
        and not confirmed
        and prev.confirmed_status is not None
        and prev.confirmed_status.is_problem
    )
    flap_history, flap_pct, flapping = (
        NO_FLAP if detection is None else flap_fields(prev, status, change, detection)
    )
    # Built field by field rather than with dataclasses.replace: this runs once per
    # check, and replace's generic copy costs several times as much.
    state = ServiceState(
        name=prev.name,
        status=status,
        previous_status=previous,
        confirmed_status=confirmed_status,
        confirmed=confirmed,
        recovering=recovering,
        count=count,
        message=message,
        metrics=result.metrics,
        last_check=now,
        last_change=last_change,
        last_duration=result.duration,
        last_by_status={**prev.last_by_status, status.value: now},
        seq=prev.seq + 1,
        flap_history=flap_history,
        flap_pct=flap_pct,
        flapping=flapping,
        maintenance=prev.maintenance,
        unreachable=prev.unreachable,
        incident=prev.incident,
    )
    return state, events


def _flap_news(
    prev: ServiceState,
    state: ServiceState,
    service: ServiceConfig,
    policy: NotificationsConfig,
    situation: Situation,
) -> tuple[list[Event], list[Notice]]:
    """The event (and notice) when ``state`` started or stopped flapping."""
    flapping, pct, history = state.flapping, state.flap_pct, state.flap_history
    if flapping == prev.flapping:
        return [], []
    now = situation.now
    if flapping:
        kind, notice_kind = EventKind.FLAPPING_STARTED, NoticeKind.FLAPPING_STARTED
        text = (
            f"flapping started: notices held; {confirmed_changes(history)} confirmed "
            f"changes, {pct:g}% state change over the last {len(history)} results"
        )
    else:
        kind, notice_kind = EventKind.FLAPPING_STOPPED, NoticeKind.FLAPPING_STOPPED
        text = f"stopped flapping: {pct:g}% state change; now {state.status.value}"
    events = [Event(state.name, kind, now, state.status, state.status, text)]
    channels = channels_for(service, policy, state.status)
    if situation.maintenance or not channels:
        return events, []
    notice = Notice(
        f"{state.name}:{notice_kind.value}:{state.seq}",
        state.name,
        notice_kind,
        now,
        state.status,
        text,
        channels,
        prev.incident,
        state.metrics,
    )
    return events, [notice]


def _incident_id(service: str, seq: int, now: float) -> str:
    # Deterministic from its inputs (the rules stay pure), unique in practice.
    return hashlib.sha256(f"{service}\0{seq}\0{now!r}".encode()).hexdigest()[:16]


def _workflow(
    prev: ServiceState,
    state: ServiceState,
    incident: Incident | None,
    events: list[Event],
    notices: list[Notice],
    service: ServiceConfig,
    policy: NotificationsConfig,
    situation: Situation,
) -> Outcome:
    now = situation.now
    events = list(events)
    notices = list(notices)
    name = state.name

    # Flags that ride on the status; most runs change neither (and then skip the
    # events and the copy of all twenty fields).
    maintenance = situation.maintenance
    unreachable = situation.parent_down and state.status.is_problem
    for kind in (
        _flip(
            prev.maintenance,
            maintenance,
            EventKind.MAINTENANCE_STARTED,
            EventKind.MAINTENANCE_ENDED,
        ),
        _flip(prev.unreachable, unreachable, EventKind.UNREACHABLE, EventKind.REACHABLE),
    ):
        if kind is not None:
            events.append(Event(name, kind, now, state.status, state.status, state.message))
    if (state.maintenance, state.unreachable) != (maintenance, unreachable):
        state = replace(state, maintenance=maintenance, unreachable=unreachable)

    if incident is not None and not incident.open:
        incident = None
    confirmed = next((e for e in events if e.kind is EventKind.CONFIRMED), None)
    if confirmed is not None:
        incident, more_events, more_notices = _on_confirmed(
            state, incident, confirmed, service, policy, now
        )
        events += more_events
        notices += more_notices

    waiting: tuple[str, ...] = ()
    if incident is not None and incident.open:
        waiting = _waiting_on(state, incident, situation)
        incident, more_events, more_notices = _notify(
            state, incident, service, policy, situation, waiting=bool(waiting)
        )
        events += more_events
        notices += more_notices

    open_id = incident.id if incident is not None and incident.open else None
    if state.incident != open_id:
        state = replace(state, incident=open_id)
    return Outcome(state, incident, events, notices, waiting)


def _waiting_on(state: ServiceState, incident: Incident, situation: Situation) -> tuple[str, ...]:
    """The parents an owed problem notice waits for before it may go out.

    Services are checked at their own phases, so a child often confirms its problem
    before its parent does; notified then, every child of a fallen gateway would
    page. So a problem notice owed by a child whose parents are not (yet) down waits
    until each parent has a decided result from a check started after the child's
    problem began: then the parent is either confirmed down (the child is
    unreachable, held) or really fine (the child's own problem, notified).
    """
    if situation.parent_down or not incident.pending or not state.status.is_problem:
        return ()
    onset = state.last_change if state.last_change is not None else situation.now
    return tuple(p.name for p in situation.parents if not p.settled_since(onset))


def _flip(was: bool, now: bool, on: EventKind, off: EventKind) -> EventKind | None:
    """The event for a flag that went from ``was`` to ``now``; None when it stayed."""
    if now == was:
        return None
    return on if now else off


def _on_confirmed(
    state: ServiceState,
    incident: Incident | None,
    confirmed: Event,
    service: ServiceConfig,
    policy: NotificationsConfig,
    now: float,
) -> tuple[Incident | None, list[Event], list[Notice]]:
    name = state.name
    status = confirmed.status
    if status.is_problem:
        if incident is None:
            incident = Incident(_incident_id(name, state.seq, now), name, now, status, status)
            # The change is the confirmed one: from what really was (``unknown`` for a
            # service never confirmed), not an assumed ``ok``.
            event = Event(
                name, EventKind.INCIDENT_OPENED, now, status, confirmed.previous, state.message
            )
            return incident, [event], []
        if status.severity > incident.status.severity:
            events = [
                Event(name, EventKind.INCIDENT_WORSE, now, status, incident.status, state.message)
            ]
            incident = replace(
                incident, status=status, worst=Status.worst(incident.worst, status), pending=True
            )
            incident, cleared = unacknowledge(
                incident, now, f"acknowledgement cleared: {status.value} is worse"
            )
            return incident, events + cleared, []
        return replace(incident, status=status), [], []
    if incident is None:
        return None, [], []
    closed = replace(incident, closed_at=now, pending=False)
    events = [Event(name, EventKind.INCIDENT_CLOSED, now, status, incident.status, state.message)]
    notices: list[Notice] = []
    channels = channels_for(service, policy, status)
    # Sent while flapping too: it ends a thread people saw (only an incident notified
    # before the flapping started has one), and says the flapping goes on.
    recovered = status is Status.OK and incident.notices > 0
    if policy.recovery and recovered and channels:
        text = f"recovered from {incident.worst.value}: {state.message}"
        if state.flapping:
            text = f"recovered from {incident.worst.value}, still flapping: {state.message}"
        notices.append(
            Notice(
                f"{incident.id}:recovery",
                name,
                NoticeKind.RECOVERY,
                now,
                status,
                text,
                channels,
                incident.id,
                state.metrics,
                incident.opened_at,
            )
        )
    return closed, events, notices


def _notify(
    state: ServiceState,
    incident: Incident,
    service: ServiceConfig,
    policy: NotificationsConfig,
    situation: Situation,
    *,
    waiting: bool,
) -> tuple[Incident, list[Event], list[Notice]]:
    now = situation.now
    events: list[Event] = []
    notices: list[Notice] = []
    if (
        incident.ack is not None
        and incident.ack.expires is not None
        and incident.ack.expires <= now
    ):
        incident, events = unacknowledge(incident, now, "acknowledgement expired")
        notices += ack_notice(
            incident, NoticeKind.UNACKNOWLEDGED, now, events[0].message, service, policy
        )
    # A service back to ok (its recovery not yet confirmed) is sent no problem: a
    # notice held until then (say, while its parent was down) would only tell an ok
    # as a problem. If the problem comes back the notice still goes out; if the
    # recovery is confirmed the incident closes without a word.
    held = (
        waiting
        or not state.status.is_problem
        or state.flapping
        or state.maintenance
        or state.unreachable
        or incident.ack is not None
    )
    channels = channels_for(service, policy, incident.status)
    if held or not channels:
        return incident, events, notices
    renotify_due = (
        policy.renotify > 0
        and incident.last_notice_at is not None
        and now - incident.last_notice_at >= policy.renotify
    )
    if incident.pending or renotify_due:
        if incident.notices < policy.cutoff:
            number = incident.notices + 1
            notices.append(
                Notice(
                    f"{incident.id}:problem:{number}",
                    state.name,
                    NoticeKind.PROBLEM,
                    now,
                    incident.status,
                    state.message,
                    channels,
                    incident.id,
                    state.metrics,
                    incident.opened_at,
                )
            )
            incident = replace(incident, notices=number, last_notice_at=now, pending=False)
        else:
            incident = replace(incident, pending=False)
    if not incident.escalated and policy.escalation and _escalation_due(incident, policy, now):
        incident = replace(incident, escalated=True)
        text = (
            f"escalated: {incident.status.value} since {incident.opened_at:.0f}, "
            f"{incident.notices} notices unacknowledged - {state.message}"
        )
        events.append(
            Event(state.name, EventKind.ESCALATED, now, incident.status, incident.status, text)
        )
        notices.append(
            Notice(
                f"{incident.id}:escalation",
                state.name,
                NoticeKind.ESCALATION,
                now,
                incident.status,
                text,
                tuple(policy.escalation),
                incident.id,
                state.metrics,
                incident.opened_at,
            )
        )
    return incident, events, notices


def _escalation_due(incident: Incident, policy: NotificationsConfig, now: float) -> bool:
    by_count = (
        policy.escalate_after_notices is not None
        and incident.notices >= policy.escalate_after_notices
    )
    by_time = (
        policy.escalate_after is not None and now - incident.opened_at >= policy.escalate_after
    )
    return by_count or by_time
