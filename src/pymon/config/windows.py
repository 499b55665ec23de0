"""Maintenance windows in the config: spans of time when notices for some services are held.

A window says *which* services it covers (``services`` name globs and/or ``tags``)
and *when*, with exactly one kind of schedule:

* **one-off**: ``start`` and ``end`` (ISO 8601 date-times or dates);
* **cron**: ``cron`` (5 fields) and ``duration``, each fire opening one occurrence;
* **weekly**: ``days`` with optional ``from`` and ``to`` (``HH:MM``); a ``to`` at or
  before ``from`` ends on the next day.

Wall-clock times are read in the window's ``timezone`` (IANA name, default UTC) by
:func:`local_to_epoch`, which also settles the two daylight-saving cases: a time the
clock skips opens at the moment of the jump, and a time the clock shows twice means
its first occurrence. Which window is active at an instant is decided in
``pymon.engine.maintenance``; this module only validates and interprets the config.

Every window of a config has an ``id`` (see :data:`ConfigWindows`): the ``id`` written
in the config, else one derived from its ``name``, else from what it covers and when.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from pymon.durations import Duration

__all__ = [
    "MAX_SPAN",
    "WEEKDAYS",
    "ConfigWindows",
    "MaintenanceWindow",
    "ScheduleKind",
    "Weekday",
    "derived_id",
    "local_to_epoch",
    "one_off",
    "with_ids",
]

MAX_SPAN = 366 * 86400.0
"""The longest ad hoc window, in seconds from its start to its end, however it is asked
for (the API, the web's forms, the shell, ``maint`` in a reply to an alert)."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as ``days`` stores them, in the order of :meth:`datetime.date.weekday`."""

ScheduleKind = Literal["one-off", "cron", "weekly"]

_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {**{d: d for d in WEEKDAYS}, **dict(zip(_FULL_DAY_NAMES, WEEKDAYS, strict=True))}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})", re.ASCII)
_CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# croniter's hashed (H) and random (R) fields: a window must open at a time people can read
# in the config. The look-arounds keep month and day names (MAR, THU) from matching.
_HASHED_OR_RANDOM = re.compile(r"(?<![A-Z])[HR](?![A-Z])")
_SCHEDULES = "start and end (one-off), cron and duration (recurring), or days with from and to"
# A window id goes into URLs (/api/v1/maintenance/{id}): unreserved characters only.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_SLUG_GAP = re.compile(r"[^a-z0-9]+", re.ASCII)
# What a window covers and when: the content an unnamed window's id is derived from.
_IDENTITY = (
    "services",
    "tags",
    "timezone",
    "start",
    "end",
    "cron",
    "duration",
    "days",
    "from_",
    "to",
)


def local_to_epoch(wall: datetime, zone: tzinfo) -> float:
    """Epoch seconds of the naive wall-clock time ``wall`` in ``zone``.

    On daylight-saving change days (the policy of cron daemons such as cronie):

    * a wall time the clock skips (02:30 when clocks jump from 02:00 to 03:00) maps to
      the instant of the jump, the first one after the gap;
    * a wall time the clock shows twice (02:30 when clocks fall back from 03:00 to
      02:00) maps to its first occurrence (``fold=0``).

    So a later wall time never maps to an earlier instant, and a window whose start
    falls in a skipped hour still opens that day rather than vanishing.
    """
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    before, after = first.utcoffset(), second.utcoffset()
    if before is None or after is None or after <= before:
        return first.timestamp()  # an ordinary or a repeated wall time
    # Skipped: fold=0 reads it with the offset before the jump, which lands after the
    # jump; fold=1 with the offset after it, which lands before. The jump lies between,
    # on a whole second (zone files count in seconds), so bisect for it.
    low, high = int(second.timestamp()), int(first.timestamp()) + 1
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return float(high)


def _parse_day(value: Any) -> Any:
    day = _DAY_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
    if day is None:
        raise ValueError(
            f"unknown day {value!r}: use {', '.join(WEEKDAYS)} (or full names such as monday)"
        )
    return day


def _parse_clock(value: Any) -> Any:
    if isinstance(value, time):
        return value
    m = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is not None and int(m[1]) < 24 and int(m[2]) < 60:
        return time(int(m[1]), int(m[2]))
    if m is not None and (m[1], m[2]) == ("24", "00"):
        raise ValueError(
            "write midnight as 00:00 (a to at or before from ends on the next day), not 24:00"
        )
    raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)")


def _show_clock(value: time) -> str:
    return value.strftime("%H:%M")


def _parse_moment(value: Any, *, end: bool) -> datetime:
    """A date-time from ISO 8601 text, a ``datetime`` or a ``date``.

    A bare date is the midnight that starts it, except as ``end``, where it means the
    midnight that ends it: ``start: 2026-05-01, end: 2026-05-03`` covers three days,
    as people read it.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text)  # only a date, no time of day
        except ValueError:
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not an ISO 8601 date or date-time "
                    "(e.g. 2026-05-01, 2026-05-01T02:00, 2026-05-01T02:00+02:00 or ...Z)"
                ) from None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1) if end else value, time())
    raise ValueError(f"expected a date or date-time such as 2026-05-01T02:00, got {value!r}")


def _unknown_zone(key: str) -> str:
    names = {name.lower(): name for name in available_timezones()}
    guess = names.get(key.strip().lower()) or next(
        iter(difflib.get_close_matches(key.strip().lower(), names, n=1)), None
    )
    hint = f" (did you mean {names.get(guess, guess)}?)" if guess else ""
    return (
        f"unknown time zone {key!r}{hint}: use an IANA name such as UTC, Europe/Berlin "
        "or America/New_York"
    )


Weekday = Annotated[
    Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], BeforeValidator(_parse_day)
]
"""A day of the week, written ``mon``/``monday`` in any case, stored as ``mon``."""

ClockTime = Annotated[
    time, BeforeValidator(_parse_clock), PlainSerializer(_show_clock, return_type=str)
]
"""A wall-clock time of day written ``HH:MM``."""

NonEmpty = Annotated[str, Field(min_length=1)]


class MaintenanceWindow(BaseModel):
    """One maintenance window: which services, and when (one kind of schedule).

    During a window checks go on and are recorded, but notices for the services it
    covers are held; a service still bad when the window ends is notified then.
    Windows made at run time (through the API) carry ``id``, ``author``, ``created``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = ""
    comment: str = ""
    services: tuple[NonEmpty, ...] = ()
    tags: tuple[NonEmpty, ...] = ()
    # Before start/end: their validator reads it to place naive date-times.
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    cron: str | None = None
    duration: Annotated[Duration, Field(gt=0)] | None = None
    days: tuple[Weekday, ...] | None = None
    from_: ClockTime | None = Field(default=None, alias="from")
    to: ClockTime | None = None
    id: str | None = None
    author: str = ""
    created: datetime | None = None

    @property
    def kind(self) -> ScheduleKind:
        """Which schedule this window has (validation guarantees exactly one)."""
        if self.cron is not None:
            return "cron"
        return "weekly" if self.days is not None else "one-off"

    @property
    def zone(self) -> ZoneInfo:
        """``timezone`` as a tzinfo (zoneinfo caches them, so this is cheap)."""
        return ZoneInfo(self.timezone)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a window id: use 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (it goes into URLs)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a key naming a directory of the zone database (e.g. "Europe").
            raise ValueError(_unknown_zone(value)) from None
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _place_moment(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        moment = _parse_moment(value, end=info.field_name == "end")
        key = info.data.get("timezone")  # absent when the time zone itself is bad
        if moment.tzinfo is None and key is not None:
            zone = ZoneInfo(key)
            moment = datetime.fromtimestamp(local_to_epoch(moment, zone), zone)
        return moment

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is None:  # written as `cron: ~`: the same as leaving it out
            return None
        expr = " ".join(value.split())
        fields = len(expr.split(" "))
        example = "(minute hour day-of-month month day-of-week, e.g. '0 2 * * sun')"
        if expr.startswith("@"):
            expr = expr.lower()
            if expr not in _CRON_ALIASES:
                raise ValueError(
                    f"{value!r} is not a cron expression: the @ forms are "
                    f"{', '.join(_CRON_ALIASES)}"
                )
        elif fields != 5:
            raise ValueError(f"{value!r} has {fields} fields; a cron expression has 5 {example}")
        if _HASHED_OR_RANDOM.search(expr.upper()):
            raise ValueError(f"{value!r}: hashed (H) and random (R) cron fields are not supported")
        try:
            croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
        except CroniterBadCronError as exc:
            raise ValueError(f"{value!r} is not a cron expression: {exc} {example}") from None
        except CroniterBadDateError:
            raise ValueError(f"{value!r} never fires (e.g. February 30)") from None
        return expr

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("days must name at least one day, e.g. [sat, sun]")
        # Canonical order, no repeats: so equal windows compare and serialise equal.
        return None if value is None else tuple(d for d in WEEKDAYS if d in value)

    @model_validator(mode="after")
    def _check_shape(self) -> MaintenanceWindow:
        if not self.services and not self.tags:
            raise ValueError(
                'a maintenance window needs services (name patterns such as web-*, or "*" '
                "for all) and/or tags"
            )
        groups = {
            "one-off": [k for k in ("start", "end") if getattr(self, k) is not None],
            "cron": [k for k in ("cron", "duration") if getattr(self, k) is not None],
            "weekly": [
                k
                for k, v in (("days", self.days), ("from", self.from_), ("to", self.to))
                if v is not None
            ],
        }
        used = {kind: keys for kind, keys in groups.items() if keys}
        if not used:
            raise ValueError(f"a maintenance window needs a schedule: {_SCHEDULES}")
        if len(used) > 1:
            found = ", ".join(k for keys in used.values() for k in keys)
            raise ValueError(f"keys of different schedules ({found}): use {_SCHEDULES}")
        if self.start is not None or self.end is not None:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if self.end <= self.start:
                raise ValueError(
                    f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})"
                )
        if self.cron is None and self.duration is not None:
            raise ValueError("duration goes with cron (e.g. cron: '0 2 * * sun', duration: 2h)")
        if self.cron is not None and self.duration is None:
            raise ValueError("a cron window needs a duration: how long each occurrence lasts")
        if self.days is None and (self.from_ is not None or self.to is not None):
            raise ValueError("from and to go with days (e.g. days: [sat, sun])")
        return self


def one_off(
    *,
    start: datetime,
    end: datetime,
    services: Sequence[str] = (),
    tags: Sequence[str] = (),
    comment: str = "",
    author: str = "",
    name: str = "",
    id: str | None = None,
    created: datetime | None = None,
    timezone: str = "UTC",
) -> MaintenanceWindow:
    """A one-off window made at run time (e.g. through the API), validated like config.

    Naive ``start``/``end`` are read in ``timezone``. Raises pydantic's
    ``ValidationError`` with the same messages as the config.
    """
    return MaintenanceWindow.model_validate(
        {
            "name": name,
            "comment": comment,
            "services": tuple(services),
            "tags": tuple(tags),
            "timezone": timezone,
            "start": start,
            "end": end,
            "id": id,
            "author": author,
            "created": created,
        }
    )


def derived_id(window: MaintenanceWindow) -> str:
    """The id of a config window written without one.

    From its ``name`` when it has one (``sunday backup`` -> ``sunday-backup``: lower
    case, accents dropped, every other run of characters a ``-``); otherwise, or when
    nothing of the name is left, ``window-`` and 10 hex digits of a hash of what it
    covers and when (``services``, ``tags``, ``timezone`` and its schedule; not its
    ``comment``). Either way the id changes only when the window itself is edited.
    """
    ascii_name = unicodedata.normalize("NFKD", window.name).encode("ascii", "ignore").decode()
    slug = _SLUG_GAP.sub("-", ascii_name.lower()).strip("-")[:64].rstrip("-")
    if slug:
        return slug
    content = window.model_dump(mode="json", by_alias=True, include=set(_IDENTITY))
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"window-{digest[:10]}"


def with_ids(windows: tuple[MaintenanceWindow, ...]) -> tuple[MaintenanceWindow, ...]:
    """``windows`` (a config's list), each with a unique ``id``.

    An ``id`` written in the config is kept; two windows with the same one are an error
    at the second (``maintenance[N].id``). A window without one gets :func:`derived_id`;
    if another window already has that id, ``-2`` (``-3``, ...) is appended, counting in
    the order of the list, so ids written in the config always keep theirs.
    """
    first: dict[str, int] = {}
    errors: list[InitErrorDetails] = []
    for i, window in enumerate(windows):
        if window.id is None:
            continue
        if window.id in first:
            other = windows[first[window.id]]
            which = f"maintenance[{first[window.id]}]" + (f" ({other.name})" if other.name else "")
            message = (
                f"duplicate window id {window.id!r}: {which} has it too; "
                "each window needs its own id"
            )
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "value_error", "Value error, {error}", {"error": message}
                    ),
                    loc=(i, "id"),
                    input=window.id,
                )
            )
        else:
            first[window.id] = i
    if errors:
        raise ValidationError.from_exception_data("maintenance", errors)
    taken = set(first)
    named: list[MaintenanceWindow] = []
    for window in windows:
        if window.id is None:
            base = unique = derived_id(window)
            n = 1
            while unique in taken:
                n += 1
                unique = f"{base[: 63 - len(str(n))].rstrip('-')}-{n}"  # 64 characters at most
            taken.add(unique)
            window = window.model_copy(update={"id": unique})
        named.append(window)
    return tuple(named)


ConfigWindows = Annotated[tuple[MaintenanceWindow, ...], AfterValidator(with_ids)]
"""A config's ``maintenance`` list: windows validated one by one, then given ids."""
