"""Frozen value types that flow through pymon: Status, CheckResult, ServiceState, Event,
Incident, Notice, and what a config reload did (ConfigDiff, ReloadResult)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Ack",
    "CheckResult",
    "ConfigDiff",
    "Event",
    "EventKind",
    "Heartbeat",
    "Incident",
    "Notice",
    "NoticeKind",
    "ReloadResult",
    "ServiceState",
    "Status",
]


class Status(StrEnum):
    """What a service is, as the operator reads it.

    ``failed`` means the check got no answer at all (refused, timeout, no route);
    ``error`` means it got an answer and the answer was bad.
    """

    OK = "ok"
    WARN = "warn"
    ERROR = "error"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DISABLED = "disabled"

    @property
    def severity(self) -> int:
        """Rank for "the worst status wins": disabled < ok < unknown < warn < error < failed."""
        return _SEVERITY[self]

    @property
    def is_problem(self) -> bool:
        """True for the statuses that mean something is wrong."""
        return self in (Status.WARN, Status.ERROR, Status.FAILED, Status.UNKNOWN)

    @staticmethod
    def worst(*statuses: Status) -> Status:
        """The most severe of ``statuses`` (ok when given none)."""
        return max(statuses, key=_SEVERITY.__getitem__, default=Status.OK)


_SEVERITY = {
    Status.DISABLED: 0,
    Status.OK: 1,
    Status.UNKNOWN: 2,
    Status.WARN: 3,
    Status.ERROR: 4,
    Status.FAILED: 5,
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one run of a check found.

    ``status`` is the check's own verdict (``failed`` for no answer, ``error`` for a
    bad answer it can judge itself, else ``ok``); thresholds are applied later by
    the rules. ``started_at`` is wall-clock epoch seconds; ``duration`` is seconds.
    """

    status: Status
    message: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    duration: float = 0.0


class EventKind(StrEnum):
    """Kinds of events the rules emit; events happen only on transitions."""

    CHANGED = "changed"  # the status differs from the previous result's
    CONFIRMED = "confirmed"  # the flap guard count was reached: a new confirmed status
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_WORSE = "incident_worse"  # the incident's confirmed status got worse
    INCIDENT_CLOSED = "incident_closed"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"  # taken back, expired, or cleared by a worse status
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_STOPPED = "flapping_stopped"
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_ENDED = "maintenance_ended"
    UNREACHABLE = "unreachable"  # a service it depends on is down
    REACHABLE = "reachable"


@dataclass(frozen=True, slots=True)
class Event:
    """A transition of one service, as stored, logged and shown."""

    service: str
    kind: EventKind
    at: float
    status: Status
    previous: Status
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as the API, the live stream and the store show it."""
        return {
            "service": self.service,
            "kind": self.kind.value,
            "at": self.at,
            "status": self.status.value,
            "previous": self.previous.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Everything pymon knows about one service right now.

    ``count`` is the number of results in a row with ``status``. ``confirmed_status``
    is the last status that reached its flap guard count (the "hard" state; None
    until one has);
    ``confirmed`` says whether ``status`` is that status. ``last_by_status`` maps a
    status name to the time of the last result with it. ``seq`` numbers the results.
    ``flap_history`` holds the statuses of the last results (one letter each, oldest
    first, upper case where the result confirmed a change) that flap detection weighs;
    ``incident`` is the id of the open incident.
    Whether it is acknowledged or escalated lives on the Incident.
    """

    name: str
    status: Status = Status.UNKNOWN
    previous_status: Status = Status.UNKNOWN
    confirmed_status: Status | None = None
    confirmed: bool = False
    recovering: bool = False
    count: int = 0
    message: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    last_check: float | None = None
    last_change: float | None = None
    last_duration: float = 0.0
    last_by_status: Mapping[str, float] = field(default_factory=dict)
    seq: int = 0
    flap_history: str = ""
    flap_pct: float = 0.0
    flapping: bool = False
    maintenance: bool = False
    unreachable: bool = False
    incident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as the API and the store show it."""
        return {
            "name": self.name,
            "status": self.status.value,
            "previous_status": self.previous_status.value,
            "confirmed_status": None
            if self.confirmed_status is None
            else self.confirmed_status.value,
            "confirmed": self.confirmed,
            "recovering": self.recovering,
            "count": self.count,
            "message": self.message,
            "metrics": dict(self.metrics),
            "last_check": self.last_check,
            "last_change": self.last_change,
            "last_duration": self.last_duration,
            "last_by_status": dict(self.last_by_status),
            "seq": self.seq,
            "flapping": self.flapping,
            "flap_pct": self.flap_pct,
            "maintenance": self.maintenance,
            "unreachable": self.unreachable,
            "incident": self.incident,
        }


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The last push a job made to its ``heartbeat`` service (never holds the token)."""

    service: str
    at: float
    ok: bool = True
    message: str = ""


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement: who, why, when, and until when (None: until the incident ends)."""

    author: str
    comment: str
    at: float
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """One stretch of confirmed trouble of one service, from open to close.

    ``status`` is the current confirmed problem status, ``worst`` the worst one seen.
    ``notices`` counts problem notices sent (the cut-off applies to it); ``pending``
    says a problem notice is owed but was held (maintenance, flapping, a parent
    down...) or not yet due.
    """

    id: str
    service: str
    opened_at: float
    status: Status
    worst: Status
    closed_at: float | None = None
    notices: int = 0
    last_notice_at: float | None = None
    pending: bool = True
    escalated: bool = False
    ack: Ack | None = None

    @property
    def open(self) -> bool:
        """True until the incident closes."""
        return self.closed_at is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as the API and the store show it; :meth:`from_dict` reads it.

        ``ack`` is None or ``{"author", "comment", "at", "expires"}``.
        """
        ack = self.ack
        return {
            "id": self.id,
            "service": self.service,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "status": self.status.value,
            "worst": self.worst.value,
            "notices": self.notices,
            "last_notice_at": self.last_notice_at,
            "pending": self.pending,
            "escalated": self.escalated,
            "ack": None
            if ack is None
            else {
                "author": ack.author,
                "comment": ack.comment,
                "at": ack.at,
                "expires": ack.expires,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """The incident :meth:`to_dict` made ``data`` from (a missing ack author or
        comment reads as empty)."""
        ack = data["ack"]
        return cls(
            id=data["id"],
            service=data["service"],
            opened_at=data["opened_at"],
            status=Status(data["status"]),
            worst=Status(data["worst"]),
            closed_at=data["closed_at"],
            notices=int(data["notices"]),
            last_notice_at=data["last_notice_at"],
            pending=bool(data["pending"]),
            escalated=bool(data["escalated"]),
            ack=None
            if ack is None
            else Ack(ack["author"] or "", ack["comment"] or "", ack["at"], ack["expires"]),
        )


class NoticeKind(StrEnum):
    """What a notice tells the people on its channels."""

    PROBLEM = "problem"
    RECOVERY = "recovery"
    ESCALATION = "escalation"
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_STOPPED = "flapping_stopped"
    #: Someone acknowledged the incident (only to channels that want acknowledgements).
    ACKNOWLEDGED = "acknowledged"
    #: The acknowledgement was taken back or ran out (the same channels).
    UNACKNOWLEDGED = "unacknowledged"


@dataclass(frozen=True, slots=True)
class Notice:
    """A message the rules decided to send; delivered later, exactly once, by the outbox.

    ``key`` is unique and stable (incident, kind and number), so a notice written
    twice after a crash is still one notice. ``metrics`` are the service's at the
    time of the notice; ``since`` is when the trouble began (the incident's opening,
    for a recovery too), None when there is no incident.
    """

    key: str
    service: str
    kind: NoticeKind
    at: float
    status: Status
    message: str
    channels: tuple[str, ...]
    incident: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    since: float | None = None


# Names listed in a reload summary before "and N more".
_SHOWN = 10


@dataclass(frozen=True)
class ConfigDiff:
    """Service names by what a reload does to them, each in config order."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when no service is added, changed or removed."""
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        """``2 added (a, b), 1 changed (c), 1 removed (d)``, or ``no service changed``."""
        parts = [
            f"{len(names)} {what} ({_names(names)})"
            for what, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        return ", ".join(parts) or "no service changed"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the API's reload answer)."""
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "unchanged": len(self.unchanged),
        }


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one reload: applied (``ok``) or refused with the ``errors``."""

    ok: bool
    source: str
    at: float
    checksum: str = ""
    diff: ConfigDiff | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``POST /api/v1/reload``)."""
        return {
            "ok": self.ok,
            "source": self.source,
            "at": self.at,
            "checksum": self.checksum,
            "diff": None if self.diff is None else self.diff.to_dict(),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
