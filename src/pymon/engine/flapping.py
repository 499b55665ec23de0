"""Flap detection: a service's recent results, and whether they say it is flapping.

Pure functions over ``ServiceState.flap_history``: one letter per result, oldest
first, upper case where that result confirmed a change of the confirmed status.
A service starts flapping at ``flap_detection.changes`` confirmed changes within
the window (pymon's own rule: a state held briefly is a flap), or, as Nagios does,
at a weighted percent of state changes of ``high`` over a full window; it stops
once the window holds no confirmed change and the percent is below ``low``
(``docs/states.md``). The rules (``rules.py``) turn a start or stop into events and
notices.
"""

from __future__ import annotations

from pymon.config.schema import FlapDetection
from pymon.model import ServiceState, Status

__all__ = ["NO_FLAP", "confirmed_changes", "flap_fields", "flap_percent"]

# One letter per status in ``ServiceState.flap_history``; upper case when that result
# confirmed a change (see ``confirmed_changes``).
_LETTER = {
    Status.OK: "o",
    Status.WARN: "w",
    Status.ERROR: "e",
    Status.FAILED: "f",
    Status.UNKNOWN: "u",
    Status.DISABLED: "d",
}


def flap_percent(history: str) -> float:
    """Weighted percent of state changes in ``history`` (one letter per result, oldest first).

    As Nagios does: the ``n - 1`` transitions between consecutive results weigh
    from 0.8 (oldest) to 1.2 (newest), so recent changes count more; the percent
    is the weight of the transitions that changed state over the total weight.
    A letter's case (a confirmed change) does not matter here.
    """
    n = len(history)
    if n < 2 or history.count(history[0]) == n:
        return 0.0  # no change at all: the common case, without the weighing loop
    history = history.lower()
    if history.count(history[0]) == n:
        return 0.0
    changed = total = 0.0
    for i in range(1, n):
        weight = 0.8 + 0.4 * (i - 1) / max(1, n - 2)
        total += weight
        if history[i] != history[i - 1]:
            changed += weight
    return round(min(100.0, 100.0 * changed / total), 2)


def confirmed_changes(history: str) -> int:
    """How many results in ``history`` confirmed a change of the confirmed status.

    Those are the upper-case letters: a status that reached its flap-guard count
    while another one was confirmed (before its first, a service counts as ok).
    Only these open, worsen or close an incident, so only these cost notices.
    """
    if history.islower():
        return 0  # the common case: no confirmed change in the window
    return sum(map(str.isupper, history))


#: (history, percent, flapping) of a service whose flapping is not detected.
NO_FLAP = ("", 0.0, False)


def flap_fields(
    prev: ServiceState, status: Status, change: bool, detection: FlapDetection
) -> tuple[str, float, bool]:
    """(history, percent, flapping) once a result with ``status`` follows ``prev``;
    ``change``: this result confirmed a change."""
    if not detection.enabled:
        return NO_FLAP
    letter = _LETTER[status].upper() if change else _LETTER[status]
    history = (prev.flap_history + letter)[-detection.window :]
    pct = flap_percent(history)
    changes = confirmed_changes(history) if detection.changes else 0
    if prev.flapping:
        # Steady only once the whole window is free of confirmed changes: a single
        # change after that cannot start it again (it takes ``changes`` new ones).
        flapping = pct >= detection.low or changes > 0
    else:
        flapping = (detection.changes > 0 and changes >= detection.changes) or (
            len(history) >= detection.window and pct >= detection.high
        )
    return history, pct, flapping
