"""The vocabulary every check type's keys are written in.

:class:`CheckSpec` is the base of each check type's own keys (``checks/<type>.py``
defines its model on it); :class:`MetricThresholds` maps a metric's value to a
status by ranged values (``"200-299, 304"``, see :mod:`pymon.ranges`). The config
builds services from these; they import nothing of the config.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from pymon.model import Status
from pymon.ranges import RangeSet, parse_ranges

__all__ = ["CheckSpec", "MetricThresholds", "Ranged", "StrictModel"]

Ranged = Annotated[
    RangeSet,
    BeforeValidator(lambda v: v if isinstance(v, RangeSet) else parse_ranges(v)),
    PlainSerializer(str, return_type=str),
]
"""A ranged value such as ``"200-299, 304"`` (see ``ranges.py``)."""


class StrictModel(BaseModel):
    """A frozen model that refuses unknown keys: the base of every config model."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class CheckSpec(StrictModel):
    """Base of every check type's own keys (``host``, ``port``, ``url``...).

    ``unique_fields`` names the keys whose value no two services of the type may
    share (a heartbeat's ``token``: a push must reach exactly one service); the
    loader reports the second use and names the first.
    """

    unique_fields: ClassVar[tuple[str, ...]] = ()


class MetricThresholds(StrictModel):
    """Ranges that map one metric's value to a status; checked ok, warn, error, failed.

    A value in no range is ``unknown`` when ``ok`` is given, else ``ok`` (so
    ``{warn: "500-1999", error: "2000+"}`` needs no ``ok``).
    """

    ok: Ranged | None = None
    warn: Ranged | None = None
    error: Ranged | None = None
    failed: Ranged | None = None

    def classify(self, value: float) -> Status:
        """The status ``value`` falls into."""
        for status, ranges in (
            (Status.OK, self.ok),
            (Status.WARN, self.warn),
            (Status.ERROR, self.error),
            (Status.FAILED, self.failed),
        ):
            if ranges is not None and value in ranges:
                return status
        return Status.UNKNOWN if self.ok is not None else Status.OK
