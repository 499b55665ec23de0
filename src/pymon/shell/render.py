"""How the shell shows what the daemon answers: plain text cleaned of markup and
terminal escapes, status colours, tables, times, durations and the one-line
descriptions of flags, incidents and acknowledgements.

Everything here is pure: it turns the API's JSON rows into ``rich`` text and never
writes or asks the daemon anything.
"""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pymon.client import ClientError

__all__ = [
    "FLAGS",
    "STATUSES",
    "STATUS_STYLES",
    "ack_line",
    "ago",
    "change",
    "clean",
    "clock_time",
    "explain",
    "flags",
    "incident_line",
    "location_lines",
    "metrics",
    "moment",
    "seconds",
    "styled",
    "summary",
    "table",
]

STATUSES = ("ok", "warn", "error", "failed", "unknown", "disabled")
FLAGS = ("acknowledged", "maintenance", "flapping", "escalated", "unreachable", "recovering")
STATUS_STYLES = {
    "ok": "green",
    "warn": "yellow",
    "error": "red",
    "failed": "bold red",
    "unknown": "magenta",
    "disabled": "dim",
}


def explain(exc: ClientError) -> str:
    """What an operator should read for a failed request."""
    if exc.status is None:
        return str(exc)
    if exc.status in (401, 403):
        return f"the daemon refused: {exc.status} {exc.reason} — pass --token (or set $PYMON_TOKEN)"
    if exc.status in (404, 409, 422):
        return exc.reason
    return f"the daemon answered {exc.status}: {exc.reason}"


def clean(value: object) -> str:
    """``value`` as one printable line: control characters (terminal escapes included)
    and bidirectional overrides shown as escapes, newlines and tabs as spaces."""
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\n\t\r":
            out.append(" ")
        elif ch.isprintable() or ord(ch) in _INVISIBLE_OK:
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


# Invisible format characters that are part of ordinary text (joiners in emoji and
# scripts); every other non-printable one, bidi overrides included, is escaped.
_INVISIBLE_OK = frozenset({0x200C, 0x200D})


def styled(*parts: str | tuple[str, str]) -> Text:
    """Plain text of strings and (text, style) pairs; markup in them is not read."""
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(part)
    return text


def table(console: Console, *columns: str) -> Table:
    """A table with these columns: ruled on a terminal, bare for pipes and files."""
    terminal = console.is_terminal
    grid = Table(
        box=box.SIMPLE_HEAD if terminal else None,
        show_edge=terminal,
        pad_edge=False,
        header_style="bold" if terminal else "",
    )
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def flags(row: dict[str, Any]) -> list[str]:
    """A service row's flags, ``soft`` for a status not confirmed yet, ``partial:
    eu-west`` naming the locations that see a problem its quorum does not confirm."""
    found = [flag for flag in FLAGS if row.get(flag)]
    if not row.get("confirmed") and row.get("status") not in ("ok", "unknown", "disabled"):
        found.append("soft")
    if row.get("partial"):
        where = row.get("partial_locations")
        named = " ".join(map(str, where)) if isinstance(where, list) else ""
        found.append(clean(f"partial: {named}".strip()))
    return found


def location_lines(row: dict[str, Any], now: float) -> list[tuple[str, Text]]:
    """A service row's locations, one ``(location, what it sees)`` each: status,
    message, age and node, or why it does not count."""
    shown = row.get("locations")
    if not isinstance(shown, dict):
        return []
    lines = []
    for where, seen in shown.items():
        if not isinstance(seen, dict):
            continue
        status = str(seen.get("status") or "none yet")
        text = styled((status, STATUS_STYLES.get(status, "")))
        if seen.get("message"):
            text.append(f" - {clean(seen['message'])}")
        text.append(f" ({ago(seen.get('last_check'), now)}, node {clean(seen.get('node') or '-')})")
        if not seen.get("present", True):
            text.append(f" absent: {clean(seen.get('absent_reason') or '?')}", style="dim")
        lines.append((f"@{clean(where)}", text))
    return lines


def summary(row: dict[str, Any]) -> str:
    """A service row's status and flags, to tell whether it changed."""
    return f"{row.get('status')} {','.join(flags(row))}"


def change(row: dict[str, Any]) -> Text:
    """An event's status, after the previous one when it differs."""
    status, previous = str(row.get("status", "?")), str(row.get("previous", ""))
    text = Text()
    if previous and previous != status:
        text.append(clean(previous), style=STATUS_STYLES.get(previous, ""))
        text.append(" → ")
    text.append(clean(status), style=STATUS_STYLES.get(status, ""))
    return text


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def ago(value: object, now: float) -> str:
    """How long before (or after) ``now`` the timestamp ``value`` is: ``5m ago``."""
    at = _number(value)
    if at is None:
        return "never"
    delta = now - at
    ahead = delta < 0
    delta = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            amount = f"{int(delta // size)}{unit}"
            break
    else:
        amount = f"{int(delta)}s"
    return f"in {amount}" if ahead else f"{amount} ago"


def clock_time(value: object) -> str:
    """The timestamp ``value`` in local time; the date too unless it is today."""
    at = _number(value)
    if at is None:
        return "-"
    try:
        when = time.localtime(at)
    except (OverflowError, OSError, ValueError):
        return "-"
    if time.strftime("%Y-%m-%d", when) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d %H:%M:%S", when)


def moment(value: object, now: float) -> str:
    """The timestamp ``value`` as a clock time and how long ago."""
    if _number(value) is None:
        return "never"
    return f"{clock_time(value)} ({ago(value, now)})"


def seconds(value: object) -> str:
    """A duration in seconds, as milliseconds below one second."""
    amount = _number(value)
    if amount is None:
        return "-"
    return f"{amount * 1000:.0f} ms" if amount < 1 else f"{amount:g} s"


def metrics(value: object) -> str:
    """A result's metrics as ``key=value`` pairs."""
    if not isinstance(value, dict):
        return ""
    return ", ".join(
        f"{clean(k)}={v:g}" if _number(v) is not None else f"{clean(k)}={clean(v)}"
        for k, v in value.items()
    )


def incident_line(incident: dict[str, Any], now: float) -> str:
    """An open incident in one line: id, status, since when, worst status, notices."""
    return (
        f"#{incident.get('id', '?')} {clean(incident.get('status', '?'))} "
        f"since {moment(incident.get('opened_at'), now)}, "
        f"worst {clean(incident.get('worst', '?'))}, "
        f"{incident.get('notices', 0)} notices"
        + (", escalated" if incident.get("escalated") else "")
    )


def ack_line(ack: dict[str, Any], now: float) -> str:
    """An acknowledgement in one line: who, when, why, until when."""
    text = f"by {clean(ack.get('author', '?'))} at {moment(ack.get('at'), now)}"
    if ack.get("comment"):
        text += f": {clean(ack['comment'])}"
    if _number(ack.get("expires")) is not None:
        text += f" (until {moment(ack['expires'], now)})"
    return text
