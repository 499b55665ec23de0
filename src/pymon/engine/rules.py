"""The rules: a pure function from (previous state, result, service, now) to (state, events).

Nothing here does I/O or reads a clock, so every transition is a table test.

* **Thresholds**: each metric with thresholds is classified (``MetricThresholds``);
  the worst of those and the check's own status wins, and the message names the
  metric and value that decided.
* **Flap guard**: a new status shows at once but is *unconfirmed* until it has been
  seen ``flap_guard[status]`` times in a row. Going back to the confirmed status is
  confirmed at once (a blip does not un-confirm the hard state).
* **Recovering**: an ok that is not yet confirmed after a confirmed problem.
* **Events** only on transitions: ``changed`` when the status differs from the
  previous result's, ``confirmed`` when a new status becomes the confirmed one.
"""

from __future__ import annotations

from collections.abc import Mapping

from pymon.config.schema import FlapGuard, MetricThresholds, ServiceConfig
from pymon.model import CheckResult, Event, EventKind, ServiceState, Status

__all__ = ["apply", "disable", "evaluate"]


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


def apply(
    prev: ServiceState, result: CheckResult, service: ServiceConfig, now: float
) -> tuple[ServiceState, list[Event]]:
    """Fold one check result into a service's state; events only for transitions."""
    status, message = evaluate(result, service.thresholds)
    return _transition(prev, status, message, result, service.flap_guard, now)


def disable(prev: ServiceState, now: float) -> tuple[ServiceState, list[Event]]:
    """The state of a service with ``enabled: false``: ``disabled``, confirmed, no checks."""
    if prev.status is Status.DISABLED:
        return prev, []
    result = CheckResult(Status.DISABLED, "disabled in config", prev.metrics)
    return _transition(prev, Status.DISABLED, result.message, result, FlapGuard(), now)


def _transition(
    prev: ServiceState,
    status: Status,
    message: str,
    result: CheckResult,
    guard: FlapGuard,
    now: float,
) -> tuple[ServiceState, list[Event]]:
    events: list[Event] = []
    if status is prev.status and prev.count > 0:
        count, previous, last_change = prev.count + 1, prev.previous_status, prev.last_change
    else:
        count, previous, last_change = 1, prev.status, now
        events.append(Event(prev.name, EventKind.CHANGED, now, status, prev.status, message))

    confirmed_status = prev.confirmed_status
    if status is confirmed_status:
        confirmed = True
    elif count >= guard.count_for(status):
        confirmed = True
        confirmed_status = status
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
    )
    return state, events
