"""The value axis of the service page's chart: a human title from a metric's name,
and round tick values (1, 2 or 5 x 10^n apart).

``static/axis.js`` holds the same rules for the browser's redraw, step for step, so
the page the server renders and the one the browser redraws show the same axis;
``tests/web/test_axis.py`` and the browser suite pin both to one table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Ticks", "axis_title", "metric_label", "ticks"]

# The last word of a metric's name, when it is a unit: the unit as an axis shows it.
_UNITS = {
    "ms": "ms",
    "s": "s",
    "seconds": "s",
    "pct": "%",
    "percent": "%",
    "bytes": "bytes",
    "kb": "KB",
    "mb": "MB",
    "gb": "GB",
    "days": "days",
    "hours": "hours",
}
# Abbreviations the checks' metric names use, spelt out.
_WORDS = {
    "rtt": "round-trip time",
    "avg": "average",
    "cert": "certificate",
    "cpu": "CPU",
    "rss": "RSS",
}
# At most this many characters of a title: plugin metrics are named by the plugin.
_TITLE_MAX = 60
# At most this many steps between the lowest tick and the highest: a step is the
# smallest round one that covers the range in as many.
_STEPS = 5
# Values beyond this magnitude are drawn at it: the axis stays finite and its ticks few.
_LIMIT = 1e15


def metric_label(name: str) -> tuple[str, str]:
    """``(label, unit)`` of a metric: ``response_time_ms`` -> ``("response time", "ms")``,
    ``cert_days_left`` -> ``("certificate days left", "days")``; ``unit`` is ``""``
    when the name carries none."""
    words = [w for w in name.replace("_", " ").split(" ") if w]
    unit = ""
    if len(words) > 1 and words[-1].lower() in _UNITS:
        unit = _UNITS[words.pop().lower()]
    elif len(words) > 1 and words[-1].lower() == "left" and words[-2].lower() in _UNITS:
        unit = _UNITS[words[-2].lower()]  # "days left": the label keeps its unit word
    return " ".join(_WORDS.get(w.lower(), w) for w in words), unit


def axis_title(name: str) -> str:
    """What the chart's value axis says: ``response time (ms)``, ``loss (%)``,
    ``certificate days left`` (a unit the label already names is not repeated)."""
    label, unit = metric_label(name)
    title = f"{label} ({unit})" if unit and unit not in label.split(" ") else label
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class Ticks:
    """Round values from ``values[0]`` (the axis' low end) to ``values[-1]`` (its high
    end), ``step`` apart, each shown with ``decimals`` decimals."""

    values: tuple[float, ...]
    step: float
    decimals: int

    def labels(self) -> list[str]:
        """The tick values as text: ``0``, ``20``, ``40``; ``0.5``, ``1.0``."""
        return [f"{v:.{self.decimals}f}" for v in self.values]


def ticks(low: float, high: float) -> Ticks:
    """Round ticks covering ``low``..``high``: the smallest step of 1, 2 or 5 x 10^n
    of which five cover the range, the ends widened to whole steps (which may add a
    sixth). An empty range (``low == high``)
    (or one narrower than a millionth) is widened upwards by ``|low|``, or by 1 when
    that is as small; a non-finite end reads as 0
    and ends beyond +-10^15 are cut there."""
    low = min(max(low, -_LIMIT), _LIMIT) if math.isfinite(low) else 0.0
    high = min(max(high, -_LIMIT), _LIMIT) if math.isfinite(high) else 0.0
    if high < low:
        low, high = high, low
    if high - low < 1e-6:
        high = low + (abs(low) if abs(low) >= 1e-6 else 1.0)
    raw = (high - low) / _STEPS
    # Powers of ten by repeated * and / (not log10) so JavaScript gets the same bits.
    power, decimals = 1.0, 0
    while power > raw:
        power, decimals = power / 10, decimals + 1
    while power * 10 <= raw:
        power, decimals = power * 10, decimals - 1
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    if step == 10 * power:
        decimals -= 1
    decimals = max(decimals, 0)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    values = tuple(round(k * step, decimals) + 0.0 for k in range(first, last + 1))
    return Ticks(values, step, decimals)
