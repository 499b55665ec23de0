"""Which maintenance windows cover a service at an instant, and when that next changes.

Pure functions: no I/O and no clock; ``now`` is always a parameter (epoch seconds),
so every case, daylight-saving days included, is a table test.

An *occurrence* of a window is a span ``(start, end)`` of epoch seconds, start
inclusive and end exclusive. A one-off window has one; a cron window one per fire,
lasting ``duration`` of real time; a weekly window one per listed day, from ``from``
to ``to`` on the local clock (so it is an hour shorter or longer when the clocks
change inside it). Wall times become instants through
:func:`pymon.config.windows.local_to_epoch`, which says what happens to skipped and
repeated times.

The rules use these functions to hold notices while :func:`windows_for` is not empty,
and the daemon wakes at :func:`next_change` to notify services still bad when their
maintenance ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from fnmatch import fnmatchcase

from croniter import croniter

from pymon.config.windows import WEEKDAYS, MaintenanceWindow, local_to_epoch

__all__ = [
    "DEFAULT_HORIZON",
    "ActiveWindow",
    "Span",
    "active_at",
    "literal_pattern",
    "matches",
    "next_change",
    "occurrences_between",
    "windows_for",
]

Span = tuple[float, float]
"""An occurrence of a window: (start, end) epoch seconds, start inclusive, end exclusive."""

DEFAULT_HORIZON = 8 * 86400.0
"""How far :func:`next_change` looks ahead: more than a week, so every weekly window is seen."""

_MIDNIGHT = time()
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ActiveWindow:
    """A window covering a service now, with the occurrence that covers it."""

    window: MaintenanceWindow
    start: float
    end: float


def literal_pattern(name: str) -> str:
    """A ``services`` pattern that matches exactly ``name`` (``*``, ``?``, ``[`` bracketed),
    so a window made for one service never covers others with similar names."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def matches(window: MaintenanceWindow, service_name: str, tags: Sequence[str]) -> bool:
    """Whether ``window`` covers a service: its name matches one of ``services``
    (shell-style globs, case-sensitive: ``web-*``, ``db-?``, ``*``) or it carries one
    of the window's ``tags``."""
    return any(fnmatchcase(service_name, pattern) for pattern in window.services) or any(
        tag in window.tags for tag in tags
    )


def active_at(window: MaintenanceWindow, now: float) -> Span | None:
    """The occurrence of ``window`` that covers ``now``, or None.

    When occurrences of a cron window overlap, the latest one started is returned:
    it is the one that ends last.
    """
    first = next(_occurrences(window, now), None)
    if first is not None and first[0] <= now < first[1]:
        return first
    return None


def windows_for(
    windows: Sequence[MaintenanceWindow], name: str, tags: Sequence[str], now: float
) -> list[ActiveWindow]:
    """The windows covering the service ``name`` (with ``tags``) at ``now``, in config order."""
    found = []
    for window in windows:
        if matches(window, name, tags) and (span := active_at(window, now)) is not None:
            found.append(ActiveWindow(window, *span))
    return found


def next_change(
    windows: Sequence[MaintenanceWindow],
    name: str,
    tags: Sequence[str],
    now: float,
    horizon: float = DEFAULT_HORIZON,
) -> float | None:
    """When the service's maintenance flag next flips, if within ``horizon`` of ``now``.

    In maintenance: the end of the covering windows, following any window that
    overlaps or adjoins them (so back-to-back windows give one end). Otherwise: the
    start of the next occurrence. None means no flip before ``now + horizon``; ask
    again by then.
    """
    mine = [w for w in windows if matches(w, name, tags)]
    limit = now + horizon
    spans = _covering(mine, now)
    if not spans:
        return min((s for w in mine if (s := _next_start(w, now, limit)) is not None), default=None)
    edge = max(end for _, end in spans)
    while edge <= limit:
        spans = _covering(mine, edge)
        if not spans:
            return edge
        edge = max(end for _, end in spans)
    return None


def occurrences_between(
    window: MaintenanceWindow, since: float, until: float, limit: int = 20
) -> list[Span]:
    """The occurrences of ``window`` that overlap ``since``..``until``, in order, at most
    ``limit`` of them (a cron window that fires every minute has thousands in a week)."""
    found: list[Span] = []
    for start, end in _occurrences(window, since):
        if start >= until or len(found) >= limit:
            break
        if end > since and end > start:
            found.append((start, end))
    return found


def _covering(windows: Sequence[MaintenanceWindow], now: float) -> list[Span]:
    return [span for w in windows if (span := active_at(w, now)) is not None]


def _next_start(window: MaintenanceWindow, now: float, limit: float) -> float | None:
    """The start of the first occurrence in (now, limit] that is not empty."""
    for start, end in _occurrences(window, now):
        if start > limit:
            return None
        # Empty: a weekly window lying wholly in an hour the clock skips.
        if start > now and end > start:
            return start
    return None


def _occurrences(window: MaintenanceWindow, t: float) -> Iterator[Span]:
    """Occurrences in order of start, from the latest one starting at or before ``t``.

    Of the occurrences starting at or before ``t``, only the latest can cover ``t``:
    weekly ones do not overlap, and later-started cron ones end later.
    """
    match window.kind:
        case "one-off":
            assert window.start is not None and window.end is not None
            yield window.start.timestamp(), window.end.timestamp()
        case "cron":
            yield from _cron_occurrences(window, t)
        case "weekly":
            yield from _weekly_occurrences(window, t)


def _cron_occurrences(window: MaintenanceWindow, t: float) -> Iterator[Span]:
    assert window.cron is not None and window.duration is not None
    zone, duration = window.zone, window.duration
    local = datetime.fromtimestamp(t, zone)
    wall = local.replace(tzinfo=None)
    # If ``t`` is in an hour the clock repeats, fires later on the clock than ``wall``
    # but in the first pass are already past: look back from the end of that pass.
    first_pass = local.replace(fold=0).utcoffset()
    second_pass = local.replace(fold=1).utcoffset()
    if first_pass is not None and second_pass is not None and first_pass > second_pass:
        wall += first_pass - second_pass
    # Fires are on whole minutes and get_prev looks strictly before its start.
    fires = croniter(window.cron, wall.replace(second=0, microsecond=0) + timedelta(minutes=1))
    fire = fires.get_prev(datetime)
    # Wall times map to instants in order (local_to_epoch), so the first fire not
    # after ``t`` is the latest one.
    while (start := local_to_epoch(fire, zone)) > t:
        fire = fires.get_prev(datetime)
    while True:
        yield start, start + duration
        start = local_to_epoch(fires.get_next(datetime), zone)


def _weekly_occurrences(window: MaintenanceWindow, t: float) -> Iterator[Span]:
    assert window.days is not None
    zone = window.zone
    opens, closes = window.from_ or _MIDNIGHT, window.to or _MIDNIGHT
    overnight = closes <= opens
    days = {WEEKDAYS.index(d) for d in window.days}

    def span(day: date) -> Span:
        end_day = day + _DAY if overnight else day
        start = local_to_epoch(datetime.combine(day, opens), zone)
        return start, local_to_epoch(datetime.combine(end_day, closes), zone)

    # From tomorrow back: tomorrow's occurrence may already have started if the clock
    # fell back across midnight. Within eight days every weekday comes round, so the
    # loop ends.
    day = datetime.fromtimestamp(t, zone).date() + _DAY
    while day.weekday() not in days or span(day)[0] > t:
        day -= _DAY
    while True:
        if day.weekday() in days:
            yield span(day)
        day += _DAY
