"""What the incident services (PagerDuty, Opsgenie) share: one alert per incident.

pymon's incident maps onto one alert there, named by :func:`alert_key`
(``pymon:<instance>:<incident>``): the same on every retry, after a restart and
from every node of a cluster, so the service de-duplicates whatever pymon sends
twice. A notice becomes one :class:`Step` of that alert's life.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pymon.model import Notice, NoticeKind, Status
from pymon.notify.base import NoticeContext
from pymon.notify.payload import notice_payload

__all__ = ["Step", "alert_details", "alert_key", "level", "step_of"]

# An instance name is the operator's; the key must stay within PagerDuty's 255 characters
# and read as one path segment in Opsgenie's URLs.
_INSTANCE_MAX = 200
_NOT_KEY = re.compile(r"[^A-Za-z0-9._-]")


class Step(StrEnum):
    """What a notice does to the incident's alert."""

    OPEN = "open"  # create, or add to the open alert (the service de-duplicates)
    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    CLOSE = "close"
    NONE = "none"  # nothing to do: no incident, or a flapping notice


_STEPS = {
    NoticeKind.PROBLEM: Step.OPEN,
    NoticeKind.ESCALATION: Step.OPEN,
    NoticeKind.RECOVERY: Step.CLOSE,
    NoticeKind.ACKNOWLEDGED: Step.ACKNOWLEDGE,
    NoticeKind.UNACKNOWLEDGED: Step.UNACKNOWLEDGE,
}


def step_of(notice: Notice) -> Step:
    """The step ``notice`` takes. Flapping notices take none: one that arrives after
    its incident closed would open an alert that nothing ever closes."""
    if notice.incident is None:
        return Step.NONE
    return _STEPS.get(notice.kind, Step.NONE)


def alert_key(notice: Notice, ctx: NoticeContext) -> str:
    """The alert's identity at the service: ``pymon:<instance>:<incident>`` (characters
    of the instance name other than letters, digits, ``.``, ``_`` and ``-`` read ``_``)."""
    assert notice.incident is not None, "only notices of an incident reach an alert"
    instance = _NOT_KEY.sub("_", ctx.instance)[:_INSTANCE_MAX]
    return f"pymon:{instance}:{notice.incident}"


def alert_details(notice: Notice, ctx: NoticeContext, channel: str) -> dict[str, Any]:
    """The notice's facts as a flat JSON object for the alert's details: the webhook
    document's fields, without the per-delivery ones."""
    details = notice_payload(notice, ctx, channel)
    for key in ("version", "id", "attempt"):
        details.pop(key, None)
    return details


def level(
    status: Status, chosen: Mapping[Any, str], defaults: Mapping[Status, str], other: str
) -> str:
    """The service's level (severity, priority) for ``status``: the channel's own
    choice, else pymon's default, else ``other`` (a status no map names)."""
    return chosen.get(status.value) or defaults.get(status, other)
