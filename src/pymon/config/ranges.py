"""Ranged values for thresholds: ``"200-299, 304"``, ``"2000+"``, ``"0.5-1.5"``.

Items are separated by commas; each is ``N`` (exactly N), ``A-B`` (A to B inclusive)
or ``A+`` (A or more). Numbers may be negative and may have decimals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["RangeSet", "parse_ranges"]

_NUM = r"-?\d+(?:\.\d+)?"
_ITEM = re.compile(rf"^(?P<lo>{_NUM})(?:\s*(?P<plus>\+)|\s*-\s*(?P<hi>{_NUM}))?$")


@dataclass(frozen=True, slots=True)
class RangeSet:
    """A union of closed intervals; ``text`` is the canonical written form."""

    intervals: tuple[tuple[float, float], ...]
    text: str

    def __contains__(self, value: float) -> bool:
        return any(lo <= value <= hi for lo, hi in self.intervals)

    def __str__(self) -> str:
        return self.text


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


def parse_ranges(value: Any) -> RangeSet:
    """Parse a ranged value from config (a string, a number or a list of either).

    Raises ValueError naming the item that is not a number, ``A-B`` or ``A+``.
    """
    if isinstance(value, bool):
        raise ValueError("expected a ranged value such as '200-299, 304', not a boolean")
    if isinstance(value, int | float):
        items = [str(value)]
    elif isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = []
        for part in value:
            if isinstance(part, bool) or not isinstance(part, int | float | str):
                raise ValueError(f"range item {part!r} is not a number or a string")
            items.extend(str(part).split(","))
    else:
        raise ValueError(f"expected a ranged value such as '200-299, 304', got {value!r}")
    intervals: list[tuple[float, float]] = []
    texts: list[str] = []
    for raw in items:
        item = raw.strip()
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"range item {item!r} is not N, A-B or A+ (e.g. '200-299, 304')")
        lo = float(m["lo"])
        if m["plus"]:
            intervals.append((lo, math.inf))
            texts.append(f"{_fmt(lo)}+")
            continue
        hi = float(m["hi"]) if m["hi"] is not None else lo
        if hi < lo:
            raise ValueError(f"range item {item!r} runs backwards ({_fmt(lo)} > {_fmt(hi)})")
        intervals.append((lo, hi))
        texts.append(_fmt(lo) if hi == lo else f"{_fmt(lo)}-{_fmt(hi)}")
    if not intervals:
        raise ValueError("empty range")
    return RangeSet(tuple(intervals), ", ".join(texts))
