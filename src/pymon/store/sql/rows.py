"""Row codecs: pymon's values as table rows (``*_row``) and back (``*_from_row``).

One function builds every row of a table, so all rows of one batch have the same
keys (SQLite's multi-row statements rely on it). Metrics go through
:func:`encode_floats` / :func:`decode_floats`, which keep NaN and infinities (JSON
has neither). An incident's row is its :meth:`~pymon.model.Incident.to_dict` with
the acknowledgement spread over ``ack_*`` columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy.engine import RowMapping

from pymon.model import (
    Ack,
    Event,
    EventKind,
    Heartbeat,
    Incident,
    Notice,
    NoticeKind,
    ServiceState,
    Status,
)
from pymon.store.base import Delivery, ResultRecord

__all__ = [
    "decode_floats",
    "delivery_from_row",
    "delivery_rows",
    "encode_floats",
    "event_from_row",
    "event_row",
    "heartbeat_from_row",
    "heartbeat_row",
    "incident_from_row",
    "incident_row",
    "json_text",
    "notice_from_row",
    "notice_row",
    "result_from_row",
    "result_rows",
    "state_from_row",
    "state_row",
]

# JSON has no NaN or infinities, and PostgreSQL's json type rejects the bare tokens
# Python's json module would write; a metric can honestly be either (a ratio over
# zero samples), so they are stored as these strings and turned back on load.
_NONFINITE_OUT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_NONFINITE_IN = {v: float(k) for k, v in _NONFINITE_OUT.items()}

# An incident's acknowledgement has a column per field (``ack_author``...), all
# None when there is none.
_ACK_FIELDS = tuple(f.name for f in fields(Ack))


def _refuse(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json_encoder() -> Any:
    """``json.dumps``'s own C encoder, made once: ``dumps`` makes one for every value,
    which was most of what writing a JSON column cost. None where the interpreter
    has no C encoder, or one of another shape."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # markers, default, key encoder, indent, separators, sort_keys, skipkeys, allow_nan
        ascii_text = json.encoder.encode_basestring_ascii
        return make(None, _refuse, ascii_text, None, ": ", ", ", False, False, True)
    except TypeError:
        return None


_ENCODER = _json_encoder()


def json_text(value: Any) -> str:
    """``value`` as JSON text, exactly as ``json.dumps(value)`` writes it."""
    if _ENCODER is None:
        return json.dumps(value)
    return "".join(_ENCODER(value, 0))


def encode_floats(values: Mapping[str, float]) -> Mapping[str, float | str]:
    """``values`` fit for a JSON column: NaN and infinities as strings."""
    # Runs for every stored result: the usual all-finite mapping goes as it is.
    if isinstance(values, dict) and all(map(math.isfinite, values.values())):
        return values
    return {
        key: (value if math.isfinite(value) else _NONFINITE_OUT[repr(float(value))])
        for key, value in values.items()
    }


def decode_floats(values: Mapping[str, Any] | None) -> dict[str, float]:
    """What :func:`encode_floats` was given (None and empty read as no values)."""
    if not values:
        return {}
    return {
        key: (_NONFINITE_IN[value] if isinstance(value, str) else float(value))
        for key, value in values.items()
    }


def state_row(state: ServiceState) -> dict[str, Any]:
    return {
        "name": state.name,
        "status": state.status.value,
        "previous_status": state.previous_status.value,
        "confirmed_status": (
            None if state.confirmed_status is None else state.confirmed_status.value
        ),
        "confirmed": state.confirmed,
        "recovering": state.recovering,
        "count": state.count,
        "message": state.message,
        "metrics": encode_floats(state.metrics),
        "last_check": state.last_check,
        "last_change": state.last_change,
        "last_duration": state.last_duration,
        "last_by_status": encode_floats(state.last_by_status),
        "seq": state.seq,
        "flap_history": state.flap_history,
        "flap_pct": state.flap_pct,
        "flapping": state.flapping,
        "maintenance": state.maintenance,
        "unreachable": state.unreachable,
        "incident": state.incident,
    }


def state_from_row(row: RowMapping) -> ServiceState:
    return ServiceState(
        name=row["name"],
        status=Status(row["status"]),
        previous_status=Status(row["previous_status"]),
        confirmed_status=None
        if row["confirmed_status"] is None
        else Status(row["confirmed_status"]),
        confirmed=bool(row["confirmed"]),
        recovering=bool(row["recovering"]),
        count=int(row["count"]),
        message=row["message"],
        metrics=decode_floats(row["metrics"]),
        last_check=row["last_check"],
        last_change=row["last_change"],
        last_duration=float(row["last_duration"]),
        last_by_status=decode_floats(row["last_by_status"]),
        seq=int(row["seq"]),
        flap_history=row["flap_history"],
        flap_pct=float(row["flap_pct"]),
        flapping=bool(row["flapping"]),
        maintenance=bool(row["maintenance"]),
        unreachable=bool(row["unreachable"]),
        incident=row["incident"],
    )


def result_rows(records: Iterable[ResultRecord], history: int) -> list[dict[str, Any]]:
    """One row per (service, slot) of a ``history``-long ring, the highest seq winning.

    PostgreSQL refuses an INSERT ... ON CONFLICT that touches one row twice, so a
    batch longer than the ring (or with a duplicate) is settled here first.
    """
    newest: dict[tuple[str, int], ResultRecord] = {}
    for record in records:
        key = (record.service, record.seq % history)
        kept = newest.get(key)
        if kept is None or record.seq > kept.seq:
            newest[key] = record
    return [
        {
            "service": r.service,
            "slot": slot,
            "seq": r.seq,
            "status": r.status.value,
            "message": r.message,
            "metrics": encode_floats(r.metrics),
            "started_at": r.started_at,
            "duration": r.duration,
            "lateness": r.lateness,
        }
        for (_, slot), r in newest.items()
    ]


def result_from_row(row: RowMapping) -> ResultRecord:
    return ResultRecord(
        service=row["service"],
        seq=int(row["seq"]),
        status=Status(row["status"]),
        message=row["message"],
        metrics=decode_floats(row["metrics"]),
        started_at=float(row["started_at"]),
        duration=float(row["duration"]),
        lateness=float(row["lateness"]),
    )


def event_row(ev: Event) -> dict[str, Any]:
    # The event's own JSON form is its row: the columns are named after its fields.
    return ev.to_dict()


def event_from_row(row: RowMapping) -> Event:
    return Event(
        service=row["service"],
        kind=EventKind(row["kind"]),
        at=float(row["at"]),
        status=Status(row["status"]),
        previous=Status(row["previous"]),
        message=row["message"],
    )


def heartbeat_row(beat: Heartbeat) -> dict[str, Any]:
    return {"service": beat.service, "at": beat.at, "ok": beat.ok, "message": beat.message}


def heartbeat_from_row(row: RowMapping) -> Heartbeat:
    return Heartbeat(row["service"], row["at"], row["ok"], row["message"])


def incident_row(incident: Incident) -> dict[str, Any]:
    row = incident.to_dict()
    ack = row.pop("ack") or dict.fromkeys(_ACK_FIELDS)
    row.update({f"ack_{name}": ack[name] for name in _ACK_FIELDS})
    return row


def incident_from_row(row: RowMapping) -> Incident:
    data = dict(row)
    ack = {name: data.pop(f"ack_{name}") for name in _ACK_FIELDS}
    return Incident.from_dict({**data, "ack": None if ack["at"] is None else ack})


def notice_row(notice: Notice) -> dict[str, Any]:
    return {
        "key": notice.key,
        "service": notice.service,
        "kind": notice.kind.value,
        "at": notice.at,
        "status": notice.status.value,
        "message": notice.message,
        "channels": list(notice.channels),
        "incident": notice.incident,
        "metrics": encode_floats(notice.metrics),
        "since": notice.since,
    }


def notice_from_row(row: RowMapping) -> Notice:
    return Notice(
        key=row["key"],
        service=row["service"],
        kind=NoticeKind(row["kind"]),
        at=row["at"],
        status=Status(row["status"]),
        message=row["message"],
        channels=tuple(row["channels"]),
        incident=row["incident"],
        metrics=decode_floats(row["metrics"]),
        since=row["since"],
    )


def delivery_rows(notices: Sequence[Notice]) -> list[dict[str, Any]]:
    """The new deliveries of ``notices``: one per channel (named twice: once), due at once."""
    return [
        {
            "key": n.key,
            "channel": channel,
            "service": n.service,
            "at": n.at,
            "attempts": 0,
            "next_at": n.at,
            "delivered_at": None,
            "failed_at": None,
            "error": None,
            "claimed_by": None,
        }
        for n in notices
        for channel in dict.fromkeys(n.channels)
    ]


def delivery_from_row(row: RowMapping) -> Delivery:
    """A delivery from a deliveries row joined with its notice's row."""
    return Delivery(
        notice=notice_from_row(row),
        channel=row["channel"],
        attempts=int(row["attempts"]),
        next_at=float(row["next_at"]),
        delivered_at=row["delivered_at"],
        failed_at=row["failed_at"],
        error=row["error"],
    )
