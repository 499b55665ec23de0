"""Durations: ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m``, or plain seconds.

Every duration pymon reads (config, API, forms, shell, ``maint 2h`` by mail) goes
through :func:`parse_duration`, so all of them refuse the same way, bounds included.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["MAX_DURATION", "Duration", "parse_duration"]

#: The longest duration taken: ten years. Longer ones are typos (``99999999d``), and
#: "now + duration" must stay a date (year 9999 is the last one a datetime holds).
MAX_DURATION = 3650 * 86400.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def parse_duration(value: Any) -> float:
    """Seconds from ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m``, or a plain number of seconds.

    Raises ValueError, saying why, for anything else: a negative, infinite or NaN
    value, or one over :data:`MAX_DURATION`.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h, not a boolean")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond the range of a float
            seconds = math.inf
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m[1]) * _UNITS[m[2]]
            pos = m.end()
        if pos != len(text) or not text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"
                ) from None
    else:
        raise ValueError(f"expected a duration such as 30s, got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not math.isfinite(seconds):
        # float() reads "inf" and "nan"; neither is a time anything can wait for.
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than 3650d (ten years), the longest duration taken")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in config as ``500ms``, ``30s``, ``5m``, ``1h``."""
