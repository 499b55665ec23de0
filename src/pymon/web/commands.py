"""The commands the web takes, each one model whatever path it comes by.

:class:`MaintenanceCommand` asks for an ad hoc (one-off) maintenance window. The API
takes it as the JSON body of ``POST /api/v1/maintenance``; the maintenance page's
add-window form and a service page's "maintenance for" form fill it from their
fields (:meth:`MaintenanceCommand.parse`). Every path has the same bounds and the
same messages, and every error names the field to change (:class:`CommandError`):

* ``services`` (name globs) and/or ``tags``;
* ``start`` (default now) and either ``end`` or ``duration`` (real time from start);
* at most :data:`MAX_SPAN` (366 days) from start to end;
* ``comment`` up to 2000 characters, ``name`` up to 200;
* ``timezone``: where a ``start`` or ``end`` without an offset is read (IANA name).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from pymon.config.windows import MAX_SPAN, MaintenanceWindow, local_to_epoch, one_off
from pymon.durations import parse_duration

__all__ = ["MAX_SPAN", "CommandError", "MaintenanceCommand", "Span"]

# What the OpenAPI document promises a span takes: seconds, or one count of one unit,
# both within MAX_SPAN. The parser reads more (``1h30m``); the document names only
# what is accepted for sure, so that no body it allows is refused.
_SPAN_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SPAN},
        {
            "type": "string",
            "pattern": r"^([1-9][0-9]{0,3}(ms|s|m)|[1-9][0-9]{0,2}h"
            r"|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d)$",
        },
    ],
    "description": "seconds, or a duration such as 30m, 2h, 1d (at most 366 days)",
}

Span = Annotated[float, BeforeValidator(parse_duration), Field(gt=0), WithJsonSchema(_SPAN_SCHEMA)]
"""A positive duration (``2h``, ``30m``, seconds); at most :data:`MAX_SPAN` is checked
where it is used, with a message naming the field."""


def _whole_command(schema: dict[str, Any]) -> None:
    # The rules to_window applies that JSON Schema can say, so that the document
    # allows no body the route refuses for them: services and/or tags, end or
    # duration (one of them), and no null where a value is optional.
    properties = schema["properties"]
    for key in ("start", "end", "duration"):
        branches = properties[key].pop("anyOf")
        properties[key].update(next(b for b in branches if b.get("type") != "null"))
    schema["allOf"] = [
        {
            "anyOf": [
                {"required": ["services"], "properties": {"services": {"minItems": 1}}},
                {"required": ["tags"], "properties": {"tags": {"minItems": 1}}},
            ]
        },
        {"oneOf": [{"required": ["end"]}, {"required": ["duration"]}]},
    ]


class CommandError(ValueError):
    """A command that cannot be carried out as given: ``field`` names what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @classmethod
    def first_of(cls, exc: ValidationError, default: str) -> CommandError:
        """The first error of ``exc``, naming its field (``default`` when it names none)."""
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"]) or default
        message = str((err.get("ctx") or {}).get("error", err["msg"]))
        return cls(field, message.removeprefix("Value error, "))


class MaintenanceCommand(BaseModel):
    """An ad hoc window: which services and/or tags, from when, until when or for how
    long, and why (the module docstring has the bounds)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_whole_command)

    services: list[str] = Field(default_factory=list, max_length=1000)
    tags: list[str] = Field(default_factory=list, max_length=1000)
    start: datetime | None = None
    end: datetime | None = None
    duration: Span | None = None
    comment: str = Field(default="", max_length=2000)
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=100)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> MaintenanceCommand:
        """The command ``data`` holds (a form's fields); :class:`CommandError` naming the
        first bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise CommandError.first_of(exc, "services") from None

    def to_window(self, author: str, now: float) -> MaintenanceWindow:
        """The window this command makes at ``now`` (epoch seconds) for ``author``;
        :class:`CommandError` naming the field when it cannot make one."""
        if not self.services and not self.tags:
            raise CommandError("services", "name services (globs such as web-*) and/or tags")
        if self.end is not None and self.duration is not None:
            raise CommandError("duration", "give end or duration, not both")
        start = datetime.fromtimestamp(now, UTC) if self.start is None else self.start
        end = self.end
        if self.duration is not None:
            if self.duration > MAX_SPAN:
                raise CommandError("duration", "must be at most 366 days")
            start = _placed(start, self.timezone)
            try:
                end = (start.astimezone(UTC) + timedelta(seconds=self.duration)).astimezone(
                    start.tzinfo
                )
            except OverflowError:
                raise CommandError("duration", "is too long") from None
        if end is None:
            raise CommandError("end", "give an end or a duration (e.g. 2h)")
        try:
            window = one_off(
                start=start,
                end=end,
                services=self.services,
                tags=self.tags,
                comment=self.comment,
                author=author,
                name=self.name,
                timezone=self.timezone,
            )
        except ValidationError as exc:
            raise CommandError.first_of(exc, "end") from None
        assert window.start is not None and window.end is not None
        if window.end.timestamp() - window.start.timestamp() > MAX_SPAN:
            raise CommandError("end", "must be at most 366 days after start")
        return window


def _placed(moment: datetime, timezone: str) -> datetime:
    """``moment`` as an instant: a naive one read in ``timezone`` as the window reads
    it; left naive when the zone is unknown (the window then names ``timezone``)."""
    if moment.tzinfo is not None:
        return moment
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return moment
    return datetime.fromtimestamp(local_to_epoch(moment, zone), zone)
